"""Exercises of 06_resnet_transfer: a verdict from noisy curves, a head swap for any torchvision classifier,
measuring catastrophic forgetting, and a control measured over several draws."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .core import Exercise, Incorrect, call

# What the notebook has imported by the time of the exercises.
SETUP = """
import numpy as np
import torch
from torch import nn
from torchvision import models
from pretrain_lessons import stats, vision
"""

VERDICTS = ("better", "worse", "no measurable difference")

# ---------------------------------------------------------------- q1: a verdict from the curves

# Test accuracy of two methods on the same draws of the labelled subset (draw i of A and draw i of B used the same
# labelled images). Made for this exercise; not from the notebook's runs.
Q1_SCORES = {
    "method A": {2: [0.71, 0.52, 0.68, 0.55, 0.70, 0.50, 0.66, 0.69],
                 10: [0.795, 0.745, 0.825, 0.770, 0.805],
                 50: [0.835, 0.850, 0.842]},
    "method B": {2: [0.59, 0.58, 0.59, 0.60, 0.60, 0.57, 0.58, 0.58],
                 10: [0.782, 0.728, 0.813, 0.754, 0.792],
                 50: [0.862, 0.879, 0.873]},
}


def q1_figure():
    """The two methods' curves: every draw a dot, the mean with its 95 % interval."""
    from ..plots import repeated_runs

    return repeated_runs(Q1_SCORES, grid=[2, 10, 50], logx=True, percent=True,
                         xlabel="labelled training images per class (log scale)", ylabel="test accuracy",
                         title="Exercise 1: method A vs method B, same draws")


def _q1_truth() -> dict:
    from ..stats import compare

    return {k: compare(Q1_SCORES["method A"][k], Q1_SCORES["method B"][k]).verdict for k in (2, 10, 50)}


def _norm_verdict(value) -> str:
    text = str(value).strip().lower()
    if text in ("tie", "no difference", "no measurable difference", "none", "same"):
        return "no measurable difference"
    return text


def _check_q1(answer):
    if not isinstance(answer, dict):
        raise Incorrect("give a dict with one verdict per budget, e.g. {2: 'better', 10: 'worse', 50: 'no measurable "
                        "difference'} (method A compared with method B).")
    missing = [k for k in (2, 10, 50) if k not in answer]
    if missing:
        raise Incorrect(f"give a verdict for every budget: {missing} missing (the keys are the budgets 2, 10, 50).")
    given = {k: _norm_verdict(answer[k]) for k in (2, 10, 50)}
    bad = [v for v in given.values() if v not in VERDICTS]
    if bad:
        raise Incorrect(f"{bad[0]!r} is not a verdict: use 'better', 'worse' or 'no measurable difference'.")
    truth = _q1_truth()
    if given[2] != truth[2]:
        raise Incorrect("at 2 labels per class A's mean is higher, but look at the dots: A swings from about 50 % to "
                        "71 % with the draw, and on some draws it is below B. Compare the draws pairwise "
                        "(stats.compare(a, b)) before you call a winner.")
    if given[10] != truth[10]:
        raise Incorrect("at 10 labels per class the two intervals overlap, yet on every single draw A is ahead of B by "
                        "about the same amount: the draw moves both methods together. A paired comparison "
                        "(stats.compare with paired=True, the default) removes that shared noise.")
    if given[50] != truth[50]:
        raise Incorrect("at 50 labels per class look at the sign as well as the p-value: is A above or below B?")


q1 = Exercise(
    name="q1",
    question=("Two methods were run on the same draws of the labelled subset; `ex.Q1_SCORES[method][k]` holds their "
              "test accuracies, and `ex.q1_figure()` draws them. For each budget (2, 10, 50), is method A better than, "
              "worse than, or not measurably different from method B? Answer with a dict {budget: verdict}."),
    checker=_check_q1,
    hint_text=("Draw i of A and draw i of B used the same labelled images, so compare them pairwise: "
               "stats.compare(ex.Q1_SCORES['method A'][k], ex.Q1_SCORES['method B'][k]).verdict for each k. "
               "A higher mean is not yet a verdict, and overlapping intervals are not yet a tie."),
    solution_code="""from pretrain_lessons.exercises import lesson06 as ex

verdicts = {k: stats.compare(ex.Q1_SCORES["method A"][k], ex.Q1_SCORES["method B"][k]).verdict for k in (2, 10, 50)}""",
    answer_name="verdicts",
    setup=SETUP,
    wrong_answers=[
        "verdicts = {2: 'better', 10: 'better', 50: 'worse'}",                    # means only, at 2
        "verdicts = {2: 'no measurable difference', 10: 'no measurable difference', 50: 'worse'}",   # unpaired at 10
        "verdicts = {2: 'no measurable difference', 10: 'better', 50: 'better'}",
        "verdicts = 'better'",
        "verdicts = {2: 'better', 10: 'better'}",
    ],
)


# ---------------------------------------------------------------- q2: a new head for any torchvision classifier


def _builders():
    from torchvision import models

    return [("ResNet-18", lambda: models.resnet18(weights=None)),
            ("MobileNetV3-Small", lambda: models.mobilenet_v3_small(weights=None)),
            ("EfficientNet-B0", lambda: models.efficientnet_b0(weights=None))]


def _check_q2(new_head):
    if not callable(new_head):
        raise Incorrect("define a function new_head(model, num_classes) that returns the model.")
    for label, build in _builders():
        torch.manual_seed(0)
        model = build().eval()
        n_linear = sum(isinstance(m, nn.Linear) for m in model.modules())
        try:
            result = call(new_head, model, 7)
        except (AttributeError, RuntimeError, TypeError, IndexError) as exc:
            raise Incorrect(f"on a {label} your function failed ({type(exc).__name__}: {str(exc).splitlines()[0]}). "
                            "Not every classifier calls its head `fc`: find the last nn.Linear.") from None
        if not isinstance(result, nn.Module):
            raise Incorrect("return the whole model (with its new head), not just the head or None.")
        linears = [m for m in result.modules() if isinstance(m, nn.Linear)]
        if any(m.out_features == 1000 for m in linears):
            raise Incorrect(f"a layer with 1000 outputs (the ImageNet classes) is still in the {label}: replace the last "
                            "linear layer, do not add one on top of it.")
        if len(linears) != n_linear:
            raise Incorrect(f"the {label} had {n_linear} linear layers and now has {len(linears)}: swap the head, "
                            "do not add or remove layers.")
        try:
            with torch.no_grad():
                out = result.eval()(torch.randn(2, 3, 64, 64))
        except RuntimeError as exc:
            raise Incorrect(f"the {label} no longer runs ({str(exc).splitlines()[0]}): the new layer must take as many "
                            "inputs as the old one had (its in_features).") from None
        if out.shape != (2, 7):
            raise Incorrect(f"for num_classes=7 the {label} should output shape (2, 7); it gives {tuple(out.shape)}.")


q2 = Exercise(
    name="q2",
    question=("Write `new_head(model, num_classes)` that gives *any* torchvision classifier — a ResNet (head `fc`), a "
              "MobileNet or an EfficientNet (head at the end of `classifier`) — a fresh last linear layer with "
              "`num_classes` outputs in place of its 1000-class ImageNet one, and returns the model."),
    checker=_check_q2,
    hint_text=("Find the last nn.Linear among model.named_modules() and replace it with nn.Linear(old.in_features, "
               "num_classes): its parent is model.get_submodule(name.rpartition('.')[0]), and setattr(parent, "
               "name.rpartition('.')[2], new) puts the new layer in place (for a Sequential the attribute is '1')."),
    solution_code="""def new_head(model, num_classes):
    name, old = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    parent_name, _, attribute = name.rpartition(".")
    setattr(model.get_submodule(parent_name), attribute, nn.Linear(old.in_features, num_classes))
    return model""",
    answer_name="new_head",
    setup=SETUP,
    wrong_answers=[
        "def new_head(model, num_classes):\n    model.fc = nn.Linear(model.fc.in_features, num_classes)\n    return model",
        "def new_head(model, num_classes):\n    model.fc = nn.Linear(512, num_classes)\n    return model",
        ("def new_head(model, num_classes):\n    return nn.Sequential(model, nn.Linear(1000, num_classes))"),
        ("def new_head(model, num_classes):\n"
         "    name, old = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]\n"
         "    setattr(model.get_submodule(name.rpartition('.')[0]), name.rpartition('.')[2], nn.Linear(1000, num_classes))\n"
         "    return model"),
    ],
)


# ---------------------------------------------------------------- q3: measuring catastrophic forgetting


def _q3_models():
    from ..vision import resnet18_for

    torch.manual_seed(0)
    finetuned = resnet18_for(in_channels=1, num_classes=3)
    with torch.no_grad():
        finetuned(torch.randn(64, 1, 28, 28) * 2 + 1)      # training-mode forward: its batch-norm statistics move
    finetuned.train()
    old_head = nn.Linear(512, 5)
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(40, 1, 28, 28, generator=generator)
    labels = torch.randint(0, 5, (40,), generator=generator)
    return finetuned, old_head, images, labels


def _reference_q3(finetuned, old_head, images, labels) -> float:
    import copy

    model = copy.deepcopy(finetuned)
    model.fc = copy.deepcopy(old_head)
    with torch.no_grad():
        return (model.eval()(images).argmax(1) == labels).float().mean().item()


def _check_q3(source_accuracy):
    if not callable(source_accuracy):
        raise Incorrect("define a function source_accuracy(finetuned, old_head, images, labels) returning a number.")
    finetuned, old_head, images, labels = _q3_models()
    head_before = finetuned.fc.weight.detach().clone()
    expected = _reference_q3(finetuned, old_head, images, labels)
    for module in finetuned.modules():   # the reference ran on a copy; make sure the learner's function gets train mode
        module.train()
    result = call(source_accuracy, finetuned, old_head, images, labels)
    if isinstance(result, torch.Tensor) and result.numel() == 1:
        result = result.item()
    if isinstance(result, bool) or not isinstance(result, (int, float)):
        raise Incorrect(f"return the accuracy as a number between 0 and 1, not {type(result).__name__}.")
    if finetuned.fc.out_features != 3 or not torch.equal(finetuned.fc.weight, head_before):
        raise Incorrect("your function replaced the head of `finetuned` itself: the fine-tuned model has lost its "
                        "target-task head. Work on a copy (copy.deepcopy(finetuned)).")
    if 1 < result <= 100:
        raise Incorrect("give the accuracy as a fraction between 0 and 1, not a percentage.")
    if abs(result - expected) > 1e-6:
        raise Incorrect(f"you get {result:.3f}; putting the old head on a copy of the fine-tuned network and scoring it "
                        "in evaluation mode gives another number. Is the copy in eval mode (batch normalisation must "
                        "use its stored statistics, not those of the test batch)?")


q3 = Exercise(
    name="q3",
    question=("Catastrophic forgetting, measured: write `source_accuracy(finetuned, old_head, images, labels)` that "
              "puts the pretrained network's old head `old_head` back on the fine-tuned ResNet `finetuned` — without "
              "changing `finetuned` itself — and returns its accuracy (a fraction) on the source task's `images` "
              "and `labels`."),
    checker=_check_q3,
    hint_text=("model = copy.deepcopy(finetuned); model.fc = copy.deepcopy(old_head); then, with torch.no_grad(), "
               "(model.eval()(images).argmax(1) == labels).float().mean().item(). Evaluation mode matters."),
    solution_code="""import copy

def source_accuracy(finetuned, old_head, images, labels):
    model = copy.deepcopy(finetuned)
    model.fc = copy.deepcopy(old_head)
    with torch.no_grad():
        return (model.eval()(images).argmax(1) == labels).float().mean().item()""",
    answer_name="source_accuracy",
    setup=SETUP,
    wrong_answers=[
        ("def source_accuracy(finetuned, old_head, images, labels):\n    finetuned.fc = old_head\n"
         "    with torch.no_grad():\n        return (finetuned.eval()(images).argmax(1) == labels).float().mean().item()"),
        ("import copy\ndef source_accuracy(finetuned, old_head, images, labels):\n    model = copy.deepcopy(finetuned)\n"
         "    model.fc = old_head\n    with torch.no_grad():\n        return (model(images).argmax(1) == labels).float().mean().item()"),
        ("import copy\ndef source_accuracy(finetuned, old_head, images, labels):\n    model = copy.deepcopy(finetuned)\n"
         "    model.fc = old_head\n    with torch.no_grad():\n"
         "        return 100 * (model.eval()(images).argmax(1) == labels).float().mean().item()"),
        "def source_accuracy(finetuned, old_head, images, labels):\n    return 'high'",
    ],
)


# ---------------------------------------------------------------- q4: a control, measured over several draws


def _q4_task():
    from ..vision import Task

    generator = torch.Generator().manual_seed(6)
    templates = torch.rand(4, 28, 28, generator=generator) * 200

    def images(n):
        labels = torch.arange(4).repeat(n)
        noise = torch.rand(len(labels), 28, 28, generator=generator) * 200
        return (templates[labels] * 0.15 + noise).clamp(0, 255).to(torch.uint8), labels

    pool, val, test = images(12), images(5), images(10)
    return Task("exercise", ["a", "b", "c", "d"], *pool, *val, *test)


def _reference_q4(task, k, n_draws):
    from ..vision import balanced_subset, mnist_normalize, probe_predictions

    def pixels(images):
        return mnist_normalize(images).flatten(1)

    out = []
    for draw in range(n_draws):
        chosen = balanced_subset(task.pool_labels, k, seed=draw)
        predicted = probe_predictions(pixels(task.pool_images[chosen]), task.pool_labels[chosen],
                                      pixels(task.test_images), task.num_classes)
        out.append((predicted == task.test_labels).float().mean().item())
    return out


def _check_q4(pixel_control):
    if not callable(pixel_control):
        raise Incorrect("define a function pixel_control(task, k, n_draws) returning a list of accuracies.")
    task = _q4_task()
    result = call(pixel_control, task, 3, 4)
    if isinstance(result, (float, int)) or (isinstance(result, torch.Tensor) and result.dim() == 0):
        raise Incorrect("return one accuracy per draw (a list of n_draws numbers), not their mean: the spread is part "
                        "of the result.")
    values = [float(v) for v in (result.tolist() if isinstance(result, (torch.Tensor, np.ndarray)) else result)]
    if len(values) != 4:
        raise Incorrect(f"pixel_control(task, 3, 4) should give 4 accuracies (one per draw); it gives {len(values)}.")
    if len(set(np.round(values, 6))) == 1:
        raise Incorrect("all your draws give the same accuracy: is every draw the same subset? Draw d should be "
                        "vision.balanced_subset(task.pool_labels, k, seed=d).")
    expected = _reference_q4(task, 3, 4)
    if np.allclose(values, _reference_q4_on(task, 3, 4, "val"), atol=1e-6):
        raise Incorrect("you scored the draws on the validation split: the reported numbers come from the test split "
                        "(task.test_images, task.test_labels).")
    if not np.allclose(values, expected, atol=1e-6):
        raise Incorrect("the accuracies differ from the reference. Per draw d: chosen = vision.balanced_subset("
                        "task.pool_labels, k, seed=d); features = vision.mnist_normalize(images).flatten(1); "
                        "vision.probe_predictions(train features, train labels, test features, task.num_classes); "
                        "accuracy against task.test_labels.")


def _reference_q4_on(task, k, n_draws, part):
    from ..vision import balanced_subset, mnist_normalize, probe_predictions

    out = []
    for draw in range(n_draws):
        chosen = balanced_subset(task.pool_labels, k, seed=draw)
        predicted = probe_predictions(mnist_normalize(task.pool_images[chosen]).flatten(1), task.pool_labels[chosen],
                                      mnist_normalize(getattr(task, f"{part}_images")).flatten(1), task.num_classes)
        out.append((predicted == getattr(task, f"{part}_labels")).float().mean().item())
    return out


q4 = Exercise(
    name="q4",
    question=("Measure a control the way § 6 does: write `pixel_control(task, k, n_draws)` that, for each draw "
              "d = 0 … n_draws − 1, takes k labelled images per class from `task.pool_*` (draw d), trains a logistic "
              "regression on their raw pixels (`vision.probe_predictions` with its default settings) and returns the "
              "list of test accuracies, one per draw."),
    checker=_check_q4,
    hint_text=("chosen = vision.balanced_subset(task.pool_labels, k, seed=d); pixels = "
               "vision.mnist_normalize(images).flatten(1); predicted = vision.probe_predictions(pixels of "
               "task.pool_images[chosen], task.pool_labels[chosen], pixels of task.test_images, task.num_classes); "
               "append (predicted == task.test_labels).float().mean().item()."),
    solution_code="""def pixel_control(task, k, n_draws):
    def pixels(images):
        return vision.mnist_normalize(images).flatten(1)
    accuracies = []
    for draw in range(n_draws):
        chosen = vision.balanced_subset(task.pool_labels, k, seed=draw)
        predicted = vision.probe_predictions(pixels(task.pool_images[chosen]), task.pool_labels[chosen],
                                             pixels(task.test_images), task.num_classes)
        accuracies.append((predicted == task.test_labels).float().mean().item())
    return accuracies""",
    answer_name="pixel_control",
    setup=SETUP,
    wrong_answers=[
        ("def pixel_control(task, k, n_draws):\n    out = []\n    for draw in range(n_draws):\n"
         "        chosen = vision.balanced_subset(task.pool_labels, k, seed=0)\n"
         "        p = vision.probe_predictions(vision.mnist_normalize(task.pool_images[chosen]).flatten(1), "
         "task.pool_labels[chosen], vision.mnist_normalize(task.test_images).flatten(1), task.num_classes)\n"
         "        out.append((p == task.test_labels).float().mean().item())\n    return out"),
        ("def pixel_control(task, k, n_draws):\n    out = []\n    for draw in range(n_draws):\n"
         "        chosen = vision.balanced_subset(task.pool_labels, k, seed=draw)\n"
         "        p = vision.probe_predictions(vision.mnist_normalize(task.pool_images[chosen]).flatten(1), "
         "task.pool_labels[chosen], vision.mnist_normalize(task.val_images).flatten(1), task.num_classes)\n"
         "        out.append((p == task.val_labels).float().mean().item())\n    return out"),
        ("def pixel_control(task, k, n_draws):\n    out = []\n    for draw in range(n_draws):\n"
         "        chosen = vision.balanced_subset(task.pool_labels, k, seed=draw)\n"
         "        p = vision.probe_predictions(vision.mnist_normalize(task.pool_images[chosen]).flatten(1), "
         "task.pool_labels[chosen], vision.mnist_normalize(task.test_images).flatten(1), task.num_classes)\n"
         "        out.append((p == task.test_labels).float().mean().item())\n    return sum(out) / len(out)"),
    ],
)
