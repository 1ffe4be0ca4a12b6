"""Transfer learning for images: ResNet adapters, source and target tasks, a source-pretrained ResNet-18 (cached),
EfficientNet-Lite0 with its ImageNet weights, cached frozen features, linear probes, fine-tuning, ImageFolder."""
from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import math
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import paths, scale

# ---------------------------------------------------------------- ResNet adapters


def resnet18_for(in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    """A torchvision ResNet-18 (random weights) whose first convolution takes `in_channels` channels."""
    from torchvision import models

    model = models.resnet18(weights=None, num_classes=num_classes)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


def head_name(model: nn.Module) -> str:
    """The attribute that holds a classifier's last linear layer: `fc` (ResNet) or `_fc` (EfficientNet-Lite0)."""
    for name in ("fc", "_fc"):
        if isinstance(getattr(model, name, None), nn.Linear):
            return name
    raise ValueError(f"{type(model).__name__} has no linear head named fc or _fc")


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Swap a classifier's head (`fc` or `_fc`) for a fresh linear layer with `num_classes` outputs (in place)."""
    name = head_name(model)
    setattr(model, name, nn.Linear(getattr(model, name).in_features, num_classes))
    return model


def freeze_all_but(model: nn.Module, trainable: tuple[str, ...] = ("fc",)) -> nn.Module:
    """Freeze every parameter except those whose name starts with one of `trainable` (in place; returns model)."""
    for name, param in model.named_parameters():
        param.requires_grad = name.startswith(trainable)
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter values in a model (only the trainable ones with `trainable_only`)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def discriminative_param_groups(model: nn.Module, head_lr: float, backbone_lr: float,
                                head: str | None = None) -> list[dict]:
    """Two optimizer parameter groups: the head (names starting with `head`, found by `head_name` when not given)
    and everything else, each with its own learning rate."""
    head = head or head_name(model)
    head_params = [p for n, p in model.named_parameters() if n.startswith(head)]
    body_params = [p for n, p in model.named_parameters() if not n.startswith(head)]
    return [{"params": body_params, "lr": backbone_lr, "name": "backbone"},
            {"params": head_params, "lr": head_lr, "name": "head"}]


# ---------------------------------------------------------------- tasks: a pool to draw labels from, validation, test


@dataclass
class Task:
    """A classification task of uint8 images (N, 28, 28) with labels 0 … n-1.

    `pool`: training images the labelled subsets are drawn from; `val`: other training images, for every choice
    (learning rate, steps, layer, resolution); `test`: the held-out test images, for the reported numbers only.
    """

    name: str
    class_names: list[str]
    pool_images: torch.Tensor
    pool_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def fingerprint(self) -> str:
        """A short hash of the task's images and labels (cached features of another task are not reused)."""
        digest = hashlib.sha256(self.name.encode())
        for part in ("pool", "val", "test"):
            for kind in ("images", "labels"):
                digest.update(getattr(self, f"{part}_{kind}").contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def __repr__(self) -> str:
        return (f"Task({self.name!r}: {self.num_classes} classes; pool {len(self.pool_labels):,}, "
                f"validation {len(self.val_labels):,}, test {len(self.test_labels):,} images)")


def _per_class(labels: torch.Tensor, classes: list[int], n: int, order: torch.Tensor, skip: int = 0) -> torch.Tensor:
    out = []
    for c in classes:
        of_class = order[labels[order] == c]
        if len(of_class) < skip + n:
            raise ValueError(f"class {c} has {len(of_class)} images; {skip + n} are needed")
        out.append(of_class[skip:skip + n])
    return torch.cat(out)


def make_task(name: str, data: dict, classes: list[int], class_names: list[str], pool_per_class: int,
              val_per_class: int, test_per_class: int, seed: int = 0) -> Task:
    """A Task from `data` (train/test images and labels as from `mnist_tensors()`), keeping `classes` (renumbered
    0 … n-1): `val_per_class` then `pool_per_class` training images of each class (disjoint), and
    `test_per_class` test images of each class, all picked in a seeded random order."""
    generator = torch.Generator().manual_seed(seed)
    train_order = torch.randperm(len(data["train_labels"]), generator=generator)
    test_order = torch.randperm(len(data["test_labels"]), generator=generator)
    remap = torch.full((int(data["train_labels"].max()) + 1,), -1, dtype=torch.long)
    remap[torch.tensor(classes)] = torch.arange(len(classes))
    val = _per_class(data["train_labels"], classes, val_per_class, train_order)
    pool = _per_class(data["train_labels"], classes, pool_per_class, train_order, skip=val_per_class)
    test = _per_class(data["test_labels"], classes, test_per_class, test_order)
    return Task(name, list(class_names), data["train_images"][pool], remap[data["train_labels"][pool]],
                data["train_images"][val], remap[data["train_labels"][val]],
                data["test_images"][test], remap[data["test_labels"][test]])


def balanced_subset(labels: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Indices of `per_class` examples of every class: draw number `seed` of a labelled subset.

    Each draw is a seeded random order, so a draw's smaller budgets are subsets of its larger ones, and two draws
    (two seeds) give different images.
    """
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    chosen = []
    for c in labels.unique().tolist():
        of_class = order[labels[order] == c]
        if len(of_class) < per_class:
            raise ValueError(f"class {c} has only {len(of_class)} examples; cannot take {per_class}")
        chosen.append(of_class[:per_class])
    return torch.cat(chosen).sort().values


# ---------------------------------------------------------------- image preparation


def mnist_normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) images → float (N, 1, 28, 28), standardised with the MNIST mean and std."""
    from .data.loaders import MNIST_MEAN, MNIST_STD

    return ((images.float() / 255 - MNIST_MEAN) / MNIST_STD).unsqueeze(1)


# EfficientNet-Lite was trained on pixels scaled to [-1, 1]: (value·255 − 127) / 128, the same for R, G and B.
LITE_MEAN, LITE_STD = (0.498, 0.498, 0.498), (0.502, 0.502, 0.502)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def lite_input(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 grey (N, 28, 28) images → what EfficientNet-Lite0 expects: (N, 3, size, size), scaled to [-1, 1].

    The same steps as `Resize((size, size))`, `Grayscale(3)`, `ToTensor()`, `Normalize(LITE_MEAN, LITE_STD)` on
    PIL images, done on a whole batch of tensors at once (bilinear resizing; values differ from PIL's by rounding).
    """
    x = images.float().div(255).unsqueeze(1)
    if size != x.shape[-1]:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    x = ((x - LITE_MEAN[0]) / LITE_STD[0]).expand(-1, 3, -1, -1)
    return x.contiguous(memory_format=torch.channels_last)   # the layout `efficientnet_lite0()` uses


class ShiftAugment:
    """Wraps a TensorLoader: each batch moved by a random whole-pixel shift of up to `pixels` (data augmentation)."""

    def __init__(self, loader, pixels: int = 2, seed: int = 0):
        self.loader, self.pixels = loader, pixels
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def labels(self):
        return self.loader.labels

    def __iter__(self):
        p = self.pixels
        for x, y in self.loader:
            dx, dy = torch.randint(-p, p + 1, (2,), generator=self.generator).tolist()
            yield torch.roll(x, shifts=(dy, dx), dims=(-2, -1)), y


# ---------------------------------------------------------------- the course's source-pretrained ResNet-18


@dataclass(frozen=True)
class SourceRecipe:
    """How the source network is pretrained: which data and classes, and the training settings."""

    name: str
    dataset: str                         # "mnist" or "fashion_mnist"
    classes: tuple[int, ...]
    class_names: tuple[str, ...]
    epochs: int = 1
    lr: float = 2e-3
    weight_decay: float = 1e-4
    batch_size: int = 128
    shift_pixels: int = 0                # data augmentation: random shifts of up to this many pixels
    n_train: dict = field(default_factory=lambda: {"smoke": 1024, "cpu": None, "gpu": None})  # None: all

    def fingerprint(self) -> str:
        """A short hash of the recipe and the scale in force: a checkpoint made another way is stale."""
        text = json.dumps({**asdict(self), "scale": scale.current()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


DIGITS_SOURCE = SourceRecipe("resnet18-digits-0-4", "mnist", (0, 1, 2, 3, 4), ("0", "1", "2", "3", "4"))


def _source_data(recipe: SourceRecipe) -> dict:
    from .data.loaders import fashion_mnist_tensors, mnist_tensors

    data = {"mnist": mnist_tensors, "fashion_mnist": fashion_mnist_tensors}[recipe.dataset]()
    out = {}
    remap = torch.full((10,), -1, dtype=torch.long)
    remap[torch.tensor(recipe.classes)] = torch.arange(len(recipe.classes))
    for part in ("train", "test"):
        keep = torch.isin(data[f"{part}_labels"], torch.tensor(recipe.classes))
        out[f"{part}_images"] = data[f"{part}_images"][keep]
        out[f"{part}_labels"] = remap[data[f"{part}_labels"][keep]]
    return out


def source_test_set(recipe: SourceRecipe = DIGITS_SOURCE, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The source task's test images (uint8) and labels: the data its source-task accuracy is measured on."""
    data = _source_data(recipe)
    return data["test_images"][:n], data["test_labels"][:n]


def source_resnet18(recipe: SourceRecipe = DIGITS_SOURCE, progress: bool = True) -> nn.Module:
    """The ResNet-18 (1-channel stem) pretrained on the source task: loaded from its checkpoint, trained if missing.

    The checkpoint is `checkpoints/<scale>/<recipe.name>/model.pt`. It carries the recipe's fingerprint: one
    made with other settings is stale and is replaced (written to a temporary file, then renamed, so a reader never
    sees half a file). Training is resumable (`fit` checkpoints). The model carries `source_test_accuracy`,
    `train_seconds`, `trained_now` (False when loaded) and `recipe`.
    """
    folder = paths.checkpoint_dir(recipe.name)
    final, fingerprint = folder / "model.pt", recipe.fingerprint()
    model = resnet18_for(in_channels=1, num_classes=len(recipe.classes))
    if final.exists():
        saved = torch.load(final, map_location="cpu", weights_only=True)
        if saved.get("fingerprint") == fingerprint:
            model.load_state_dict(saved["model"])
            model.source_test_accuracy, model.train_seconds = float(saved["test_accuracy"]), float(saved["seconds"])
            model.trained_now, model.recipe = False, recipe
            return model.eval()
    from .data.loaders import TensorLoader
    from .train import evaluate, fit

    torch.manual_seed(0)
    model = resnet18_for(in_channels=1, num_classes=len(recipe.classes))
    data = _source_data(recipe)
    n = recipe.n_train.get(scale.current())
    x, y = mnist_normalize(data["train_images"][:n]), data["train_labels"][:n]
    loader = TensorLoader(x, y, batch_size=recipe.batch_size, shuffle=True)
    if recipe.shift_pixels:
        loader = ShiftAugment(loader, recipe.shift_pixels)
    history = fit(model, loader, epochs=recipe.epochs, lr=recipe.lr, weight_decay=recipe.weight_decay,
                  scheduler="cosine", warmup_steps=min(50, len(loader) // 10), seed=0,
                  checkpoint=folder / f"train-{fingerprint}.pt", checkpoint_every=100, progress=progress)
    x_test, y_test = source_test_set(recipe, n=scale.pick(smoke=500, cpu=None))
    test = TensorLoader(mnist_normalize(x_test), y_test, batch_size=500)
    accuracy = evaluate(model, test, progress=False)["accuracy"]
    partial = folder / f"model.pt.{os.getpid()}.tmp"
    torch.save({"model": model.state_dict(), "test_accuracy": accuracy, "seconds": history.seconds,
                "fingerprint": fingerprint}, partial)
    os.replace(partial, final)
    (folder / f"train-{fingerprint}.pt").unlink(missing_ok=True)
    model.source_test_accuracy, model.train_seconds, model.trained_now, model.recipe = (
        accuracy, history.seconds, True, recipe)
    return model.eval()


# ---------------------------------------------------------------- EfficientNet-Lite0 (ImageNet weights that ship offline)

# (expansion, output channels, repeats, first stride, kernel) per stage, as in the EfficientNet-B0/Lite0 paper table.
LITE0_STAGES = [(1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3),
                (6, 112, 3, 1, 5), (6, 192, 4, 2, 5), (6, 320, 1, 1, 3)]


class SameConv2d(nn.Conv2d):
    """A convolution padded like TensorFlow's 'SAME' (extra pixel at the bottom/right), as the weights were trained."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)  # TensorFlow's batch-norm settings


class MBConv(nn.Module):
    """Inverted residual block: 1×1 expand → depthwise k×k → 1×1 project, ReLU6, a skip when shapes allow (no SE in Lite)."""

    def __init__(self, c_in: int, c_out: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = c_in * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(c_in, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.skip else out


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (4.7M parameters). Layer names mirror the published state dict so it loads as is."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, 2, bias=False)
        self._bn0 = _bn(32)
        blocks, c_in = [], 32
        for expand, c_out, repeats, stride, kernel in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(c_in, c_out, expand, kernel, stride if i == 0 else 1))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 1280-number feature vector of each image (global average of the last feature map)."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x))).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.features(x)))


def efficientnet_lite0(pretrained: bool = True, seed: int = 0) -> EfficientNetLite0:
    """EfficientNet-Lite0 with the provisioned ImageNet weights (or seeded random weights), in eval mode.

    The weights are stored channels-last: on a CPU its depthwise convolutions then run 1.6–1.9×
    faster, with the same results. Inputs from `lite_input` come in the same layout.
    """
    torch.manual_seed(seed)
    model = EfficientNetLite0()
    if pretrained:
        from .data.loaders import efficientnet_lite0_weights

        state = torch.load(efficientnet_lite0_weights(), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    return model.to(memory_format=torch.channels_last).eval()


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names (shipped inside torchvision, no download)."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


# ---------------------------------------------------------------- frozen features, cached


def feature_extractor(model: nn.Module, layer: str = "layer4") -> nn.Module:
    """The part of a classifier before its head, sharing its weights: EfficientNet's `features`, or a torchvision
    ResNet's child modules up to `layer` ('layer1' … 'layer4'), then global average pooling and a flatten."""
    if isinstance(model, EfficientNetLite0):
        return _Features(model)
    names = [name for name, _ in model.named_children()]
    kept = [module for name, module in model.named_children()][: names.index(layer) + 1]
    return nn.Sequential(*kept, nn.AdaptiveAvgPool2d(1), nn.Flatten())


class _Features(nn.Module):
    """Wraps a model that has a `features` method as a module."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x)


@torch.no_grad()
def extract_features(extractor: nn.Module, loader, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Run a frozen feature extractor (in eval mode) over a loader of (images, labels); return (features, labels) on the CPU."""
    was_training = extractor.training
    extractor.eval().to(device)
    feats, labels = [], []
    for x, y in loader:
        feats.append(extractor(x.to(device)).float().cpu())
        labels.append(y)
    extractor.train(was_training)
    return torch.cat(feats), torch.cat(labels)


@torch.no_grad()
def features_of(extractor: nn.Module, images: torch.Tensor, prepare: Callable[[torch.Tensor], torch.Tensor],
                batch_size: int = 500, device: torch.device | str = "cpu") -> torch.Tensor:
    """Frozen features of uint8 images, prepared batch by batch with `prepare` (eval mode; on the CPU)."""
    was_training = extractor.training
    extractor.eval().to(device)
    out = [extractor(prepare(images[i:i + batch_size]).to(device)).float().cpu()
           for i in range(0, len(images), batch_size)]
    extractor.train(was_training)
    return torch.cat(out)


def cached(name: str, fingerprint: str, compute: Callable[[], dict]) -> tuple[dict, bool]:
    """`compute()`'s dict of tensors, stored in `checkpoints/<scale>/lesson06-cache/<name>.pt` under `fingerprint`.

    Returns (value, loaded): a stored value made with another fingerprint is recomputed and replaced atomically.
    Cache only what is deterministic and expensive (frozen features); repeat what is noisy (training runs).
    """
    path = paths.checkpoint_dir("lesson06-cache") / f"{name}.pt"
    if path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("fingerprint") == fingerprint:
            return saved["value"], True
    value = compute()
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save({"fingerprint": fingerprint, "value": value}, partial)
    os.replace(partial, path)
    return value, False


def task_features(name: str, extractor: nn.Module, task: Task, prepare: Callable[[torch.Tensor], torch.Tensor],
                  device: torch.device | str = "cpu") -> tuple[dict, bool]:
    """Frozen features {'pool', 'val', 'test'} of a task's images, cached under `name` (which must say how the
    images are prepared, e.g. '… 48px'). Returns (features, loaded from the cache)."""
    fingerprint = hashlib.sha256(f"{name}|{state_fingerprint(extractor)}|{task.fingerprint()}".encode()).hexdigest()[:16]
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    return cached(safe, fingerprint, lambda: {part: features_of(extractor, getattr(task, f"{part}_images"), prepare,
                                                                device=device) for part in ("pool", "val", "test")})


def state_fingerprint(model: nn.Module) -> str:
    """A short hash of a model's weights and buffers (which network made a set of cached features)."""
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------- linear probes


class LinearProbe(nn.Module):
    """A linear classifier on frozen features, centred with their training mean and scaled by one overall std.

    One overall scale (not one per feature) keeps features that happen to be nearly constant in a few training
    examples from being blown up, which matters when there are only a handful of labels.
    """

    def __init__(self, train_features: torch.Tensor, num_classes: int):
        super().__init__()
        self.register_buffer("mean", train_features.mean(0))
        self.register_buffer("scale", (train_features - train_features.mean(0)).std().clamp(min=1e-6))
        self.linear = nn.Linear(train_features.shape[1], num_classes)
        nn.init.zeros_(self.linear.weight)   # a convex problem: starting from zero makes the probe deterministic
        nn.init.zeros_(self.linear.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear((features - self.mean) / self.scale)


def train_probe(features: torch.Tensor, labels: torch.Tensor, num_classes: int, weight_decay: float = 1e-2,
                steps: int = 150, lr: float = 0.05) -> LinearProbe:
    """Logistic regression on cached features: full-batch Adam on the cross-entropy plus an L2 penalty."""
    probe = LinearProbe(features, num_classes)
    optimizer = torch.optim.Adam(probe.linear.parameters(), lr=lr)
    for _ in range(steps):
        loss = F.cross_entropy(probe(features), labels) + weight_decay * probe.linear.weight.pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return probe.eval()


@torch.no_grad()
def probe_predictions(train_features: torch.Tensor, train_labels: torch.Tensor, eval_features: torch.Tensor,
                      num_classes: int, weight_decay: float = 1e-2, steps: int = 150) -> torch.Tensor:
    """Train a probe on (train_features, train_labels); return its predicted classes for `eval_features`."""
    with torch.enable_grad():
        probe = train_probe(train_features, train_labels, num_classes, weight_decay, steps)
    return probe(eval_features).argmax(1)


# ---------------------------------------------------------------- fine-tuning


@torch.no_grad()
def predict_classes(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The predicted class of every image of a prepared float tensor (eval mode; the mode is restored)."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def fine_tune(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
              x_val: torch.Tensor, y_val: torch.Tensor, steps: int, batch_size: int = 32, checks: int = 4,
              seed: int = 0) -> tuple[nn.Module, dict]:
    """Train every parameter the optimizer holds on (x, y) for `steps` steps of `batch_size` random examples.

    The validation images are scored `checks` times, evenly spaced; the weights from the best check are kept (early
    stopping on validation: the number of steps is chosen on validation, never on the test set). Returns the model,
    in eval mode, and {'step': the chosen step, 'val_accuracy': its validation accuracy, 'curve': all checks}.
    """
    generator = torch.Generator().manual_seed(seed)
    at = sorted({max(1, round(steps * (i + 1) / checks)) for i in range(checks)})
    best, curve = (-1.0, 0, None), []
    model.train()
    for step in range(1, steps + 1):
        batch = torch.randperm(len(x), generator=generator)[:batch_size]
        loss = F.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step in at:
            accuracy = (predict_classes(model, x_val) == y_val).float().mean().item()
            curve.append((step, accuracy))
            if accuracy > best[0]:
                best = (accuracy, step, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    return model.eval(), {"step": best[1], "val_accuracy": best[0], "curve": curve}


def with_head(model: nn.Module, head: nn.Linear) -> nn.Module:
    """A copy of `model` with `head` put back in place of its own (to score a fine-tuned backbone on its old task)."""
    other = copy.deepcopy(model)
    setattr(other, head_name(other), copy.deepcopy(head))
    return other.eval()


# ---------------------------------------------------------------- images on disk: ImageFolder


def class_folder_name(index: int, name: str, n_classes: int = 10) -> str:
    """A folder name for class `index` that sorts in label order and is safe on every file system ('0_T-shirt_top').

    The index is zero-padded to the width of the largest one, so that alphabetical order is label order.
    """
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
    return f"{index:0{len(str(n_classes - 1))}d}_{safe}"


def write_image_folder(images: torch.Tensor, labels: torch.Tensor, class_names: list[str], root: str | Path) -> Path:
    """Write uint8 (N, H, W) images as PNG files into one folder per class (`root/<class>/<n>.png`), replacing `root`."""
    import shutil

    from PIL import Image

    root = Path(root)
    if root.exists():
        shutil.rmtree(root)
    folders = [root / class_folder_name(i, name, len(class_names)) for i, name in enumerate(class_names)]
    for folder in folders:
        folder.mkdir(parents=True)
    for n, (image, label) in enumerate(zip(images.numpy(), labels.tolist())):
        Image.fromarray(image).save(folders[label] / f"{n:05d}.png")
    return root


# ---------------------------------------------------------------- weights that may need a download


def attempt(build: Callable[[], object], quiet: bool | None = None) -> tuple[object | None, list[str], str | None]:
    """Call `build()`; return (its result or None, the warnings it raised, the error message or None).

    With `quiet` (the default when download.pytorch.org cannot be reached) the download chatter on stdout/stderr is
    swallowed; online it is shown, so a learner sees the download's progress. The home folder is shown as ~.
    """
    if quiet is None:
        from .device import is_online

        quiet = not is_online("download.pytorch.org")
    home = str(Path.home())
    streams = ((contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO())) if quiet
               else (contextlib.nullcontext(), contextlib.nullcontext()))
    with warnings.catch_warnings(record=True) as caught, streams[0], streams[1]:
        warnings.simplefilter("always")
        try:
            result, error = build(), None
        except Exception as exc:  # noqa: BLE001 - offline, any download failure means "not available"
            result, error = None, f"{type(exc).__name__}: {exc}".replace(home, "~")
    return result, [str(w.message).replace(home, "~") for w in caught], error


@dataclass
class ImageNetNet:
    """An ImageNet-pretrained network with the input normalisation it was trained with."""

    name: str
    model: nn.Module
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    note: str


def imagenet_network(arch: str = "resnet50") -> ImageNetNet:
    """torchvision's ImageNet weights for `arch` ('resnet50', 'resnet18') when they can be had (cache or download),
    else the provisioned EfficientNet-Lite0, which stands in offline."""
    from torchvision import models

    weights = models.get_model_weights(arch).IMAGENET1K_V1
    net, _, error = attempt(lambda: models.get_model(arch, weights=weights))
    if net is not None:
        return ImageNetNet(f"{arch} (ImageNet)", net.eval(), IMAGENET_MEAN, IMAGENET_STD,
                           f"torchvision's {arch} ImageNet weights ({weights}) loaded.")
    return ImageNetNet("EfficientNet-Lite0 (ImageNet)", efficientnet_lite0(), LITE_MEAN, LITE_STD,
                       f"torchvision's {arch} ImageNet weights cannot be had here ({error}); the provisioned "
                       "EfficientNet-Lite0 ImageNet weights stand in.")
