"""Exercises of 06_resnet_transfer: freezing, swapping the head, discriminative learning rates, ImageNet transforms."""
from __future__ import annotations

import torch
from torch import nn

from .core import Exercise, Incorrect, call

# What the notebook has imported by the time of the exercises.
SETUP = """
import torch
from torch import nn
from torchvision import models, transforms
from pretrain_lessons import vision
"""


# ---------------------------------------------------------------- q1: trainable parameters after freezing


def _check_q1(answer):
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise Incorrect(f"give a whole number (an int), not {type(answer).__name__}; sum p.numel() over the parameters "
                        "with requires_grad=True.")
    if answer == 5120:
        raise Incorrect("5,120 is the weight matrix (10 × 512) alone: the head's bias has 10 more values.")
    if answer in (512 * 1000 + 1000, 512 * 1000):
        raise Incorrect("that is the size of the 1000-class ImageNet head: this model's head has 10 outputs.")
    if answer > 1_000_000:
        raise Incorrect(f"{answer:,} counts the frozen backbone too: count only parameters with requires_grad=True.")
    if answer != 512 * 10 + 10:
        raise Incorrect(f"{answer:,} is not it: after freezing, only the head fc = Linear(512, 10) is trainable.")


q1 = Exercise(
    name="q1",
    question=("Take `model = vision.resnet18_for(in_channels=1, num_classes=10)`, freeze everything except the head `fc` "
              "(set `requires_grad = False`), and count the trainable parameter values that remain."),
    checker=_check_q1,
    hint_text=("Loop over model.named_parameters(): p.requires_grad = name.startswith('fc'). Then "
               "sum(p.numel() for p in model.parameters() if p.requires_grad). The head is Linear(512, 10): weights and biases."),
    solution_code="""from pretrain_lessons.vision import resnet18_for

model = resnet18_for(in_channels=1, num_classes=10)
for name, p in model.named_parameters():
    p.requires_grad = name.startswith("fc")
n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)""",
    answer_name="n_trainable",
    setup=SETUP,
    wrong_answers=[
        "n_trainable = 512 * 10",
        "model = vision.resnet18_for(1, 10)\nn_trainable = sum(p.numel() for p in model.parameters())",
        "n_trainable = 512 * 1000 + 1000",
        "n_trainable = '5130'",
    ],
)


# ---------------------------------------------------------------- q2: swap the head correctly


def _check_q2(swap_head):
    from torchvision import models

    if not callable(swap_head):
        raise Incorrect("define a function swap_head(model, num_classes) that returns the model.")
    for build, width in ((lambda: models.resnet18(weights=None), 512), (lambda: models.resnet50(weights=None), 2048)):
        torch.manual_seed(0)
        model = build()
        try:
            result = call(swap_head, model, 7)
        except RuntimeError as exc:
            raise Incorrect(f"building the head failed ({exc}). The new layer must take the {width} features that reach "
                            "fc: use model.fc.in_features.") from None
        if not isinstance(result, nn.Module):
            raise Incorrect("return the whole model (with its new head), not just the head or None.")
        linears = [m for m in result.modules() if isinstance(m, nn.Linear)]
        if any(m.out_features == 1000 for m in linears):
            raise Incorrect("a layer with 1000 outputs (the ImageNet classes) is still in the model: replace fc, "
                            "do not stack a new layer on top of it.")
        try:
            with torch.no_grad():
                out = result.eval()(torch.randn(2, 3, 64, 64))
        except RuntimeError as exc:
            raise Incorrect(f"the model no longer runs ({str(exc).splitlines()[0]}). The new head must take the {width} "
                            "features that reach it: model.fc.in_features, not the 1000 ImageNet classes "
                            "and not a hard-coded number.") from None
        if out.shape != (2, 7):
            raise Incorrect(f"for num_classes=7 the model should output shape (2, 7) on 2 images; it gives {tuple(out.shape)}.")
        if not isinstance(result.fc, nn.Linear) or result.fc.in_features != width:
            raise Incorrect("model.fc should be a single nn.Linear(model.fc.in_features, num_classes).")


q2 = Exercise(
    name="q2",
    question=("Write `swap_head(model, num_classes)` that gives any torchvision ResNet (ResNet-18, ResNet-50, …) a fresh "
              "classifier with `num_classes` outputs in place of its 1000-class ImageNet head, and returns the model."),
    checker=_check_q2,
    hint_text=("A ResNet's head is model.fc, an nn.Linear; its input size is model.fc.in_features (512 for ResNet-18, "
               "2048 for ResNet-50). Assign a new nn.Linear to model.fc."),
    solution_code="""def swap_head(model, num_classes):
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model""",
    answer_name="swap_head",
    setup=SETUP,
    wrong_answers=[
        "def swap_head(model, num_classes):\n    model.fc = nn.Linear(1000, num_classes)\n    return model",
        "def swap_head(model, num_classes):\n    model.fc = nn.Sequential(model.fc, nn.Linear(1000, num_classes))\n    return model",
        "def swap_head(model, num_classes):\n    model.fc = nn.Linear(512, num_classes)\n    return model",
        "def swap_head(model, num_classes):\n    model.fc = nn.Linear(model.fc.in_features, num_classes)",
    ],
)


# ---------------------------------------------------------------- q3: discriminative learning rates


def _check_q3(make_optimizer):
    from ..vision import resnet18_for

    if not callable(make_optimizer):
        raise Incorrect("define a function make_optimizer(model) that returns a torch optimizer.")
    model = resnet18_for(in_channels=1, num_classes=10)
    optimizer = call(make_optimizer, model)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise Incorrect(f"return an optimizer such as torch.optim.AdamW(...), not {type(optimizer).__name__}.")
    lr_of = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            lr_of[id(p)] = group["lr"]
    missing = [n for n, p in model.named_parameters() if id(p) not in lr_of]
    if any(not n.startswith("fc") for n in missing):
        raise Incorrect(f"{len(missing)} parameter tensors (e.g. {missing[0]}) are in no group: the backbone is not "
                        "trained at all. That is a frozen backbone, not fine-tuning with a smaller learning rate.")
    if missing:
        raise Incorrect("the head's parameters are in no group: the new head would never learn.")
    head = {lr_of[id(p)] for n, p in model.named_parameters() if n.startswith("fc")}
    body = {lr_of[id(p)] for n, p in model.named_parameters() if not n.startswith("fc")}
    if len(head) != 1 or len(body) != 1:
        raise Incorrect("give the head one learning rate and the whole backbone another.")
    head_lr, body_lr = head.pop(), body.pop()
    if head_lr == body_lr:
        raise Incorrect(f"head and backbone share the learning rate {head_lr:g}: the backbone's should be 10× smaller.")
    if body_lr > head_lr:
        raise Incorrect("the learning rates are swapped: the new, random head needs the larger one; the pretrained "
                        "backbone should move gently.")
    if abs(head_lr - 1e-3) > 1e-12:
        raise Incorrect(f"the head's learning rate is {head_lr:g}; the exercise asks for 1e-3.")
    if abs(body_lr - 1e-4) > 1e-12:
        raise Incorrect(f"the backbone's learning rate is {body_lr:g}; 10× smaller than 1e-3 is 1e-4.")


q3 = Exercise(
    name="q3",
    question=("Discriminative fine-tuning (分层学习率): write `make_optimizer(model)` returning an AdamW optimizer that "
              "trains a ResNet's head `fc` with learning rate 1e-3 and every other parameter with a 10× smaller one."),
    checker=_check_q3,
    hint_text=("torch.optim.AdamW accepts a list of parameter groups, each a dict {'params': [...], 'lr': ...}. Split "
               "model.named_parameters() by whether the name starts with 'fc'."),
    solution_code="""def make_optimizer(model):
    head = [p for n, p in model.named_parameters() if n.startswith("fc")]
    backbone = [p for n, p in model.named_parameters() if not n.startswith("fc")]
    return torch.optim.AdamW([{"params": backbone, "lr": 1e-4}, {"params": head, "lr": 1e-3}])""",
    answer_name="make_optimizer",
    setup=SETUP,
    wrong_answers=[
        "def make_optimizer(model):\n    return torch.optim.AdamW(model.parameters(), lr=1e-3)",
        "def make_optimizer(model):\n    return torch.optim.AdamW(model.fc.parameters(), lr=1e-3)",
        ("def make_optimizer(model):\n    head = [p for n, p in model.named_parameters() if n.startswith('fc')]\n"
         "    backbone = [p for n, p in model.named_parameters() if not n.startswith('fc')]\n"
         "    return torch.optim.AdamW([{'params': backbone, 'lr': 1e-3}, {'params': head, 'lr': 1e-4}])"),
        ("def make_optimizer(model):\n    head = [p for n, p in model.named_parameters() if n.startswith('fc')]\n"
         "    backbone = [p for n, p in model.named_parameters() if not n.startswith('fc')]\n"
         "    return torch.optim.AdamW([{'params': backbone, 'lr': 1e-5}, {'params': head, 'lr': 1e-3}])"),
    ],
)


# ---------------------------------------------------------------- q4: a grey image ready for an ImageNet network


def _reference_transform():
    from torchvision import transforms

    return transforms.Compose([transforms.Resize((64, 64)), transforms.Grayscale(num_output_channels=3),
                               transforms.ToTensor(),
                               transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])


def _check_q4(transform):
    import numpy as np
    from PIL import Image

    if not callable(transform):
        raise Incorrect("build the pipeline with transforms.Compose([...]) and assign it to `transform`.")
    pixels = (np.arange(28 * 28).reshape(28, 28) % 251).astype(np.uint8)
    image = Image.fromarray(pixels, mode="L")
    out = transform(image)
    if not isinstance(out, torch.Tensor):
        raise Incorrect("the pipeline should end with a tensor: add transforms.ToTensor() (before Normalize).")
    if out.dim() != 3 or out.shape[0] != 3:
        raise Incorrect(f"the result has shape {tuple(out.shape)}: an ImageNet network needs 3 channels. "
                        "transforms.Grayscale(num_output_channels=3) copies the grey channel three times.")
    if tuple(out.shape[1:]) != (64, 64):
        raise Incorrect(f"the result is {out.shape[1]}×{out.shape[2]} pixels; the exercise asks for 64×64.")
    expected = _reference_transform()(image)
    if not torch.allclose(out, expected, atol=1e-3):
        if out.min() >= 0:
            raise Incorrect("the values are all ≥ 0: the ImageNet normalization (mean and std per channel) is missing.")
        raise Incorrect("shape is right but the values differ: normalise with ImageNet's mean=[0.485, 0.456, 0.406] and "
                        "std=[0.229, 0.224, 0.225], after ToTensor.")


q4 = Exercise(
    name="q4",
    question=("Seed 002's transforms assume colour photos. Compose a `transform` that turns a grey 28×28 PIL image into "
              "what an ImageNet ResNet expects: resized to 64×64, 3 channels, a tensor normalised with ImageNet's mean "
              "and std."),
    checker=_check_q4,
    hint_text=("transforms.Compose([transforms.Resize((64, 64)), transforms.Grayscale(num_output_channels=3), "
               "transforms.ToTensor(), transforms.Normalize(mean=..., std=...)]) — the mean and std are seed 002's."),
    solution_code="""transform = transforms.Compose([
    transforms.Resize((64, 64)),
    transforms.Grayscale(num_output_channels=3),
    transforms.ToTensor(),
    transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
])""",
    answer_name="transform",
    setup=SETUP,
    wrong_answers=[
        ("transform = transforms.Compose([transforms.Resize((64, 64)), transforms.ToTensor(),\n"
         "    transforms.Normalize(mean=[0.485], std=[0.229])])"),
        ("transform = transforms.Compose([transforms.Resize((64, 64)), transforms.Grayscale(3), transforms.ToTensor()])"),
        ("transform = transforms.Compose([transforms.Resize((224, 224)), transforms.Grayscale(3), transforms.ToTensor(),\n"
         "    transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])"),
        ("transform = transforms.Compose([transforms.Resize((64, 64)), transforms.Grayscale(3), transforms.ToTensor(),\n"
         "    transforms.Normalize(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])])"),
    ],
)
