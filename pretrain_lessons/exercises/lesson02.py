"""Exercises of 02_mnist_linear: steps per epoch, accuracy from a confusion matrix, a hidden layer, a weight template,
and a verdict on two recipes from their seeds."""
from __future__ import annotations

import functools
import math

import torch
from torch import nn

from .core import Exercise, Incorrect, call


def _check_q1(answer):
    if not isinstance(answer, int) or isinstance(answer, bool):
        raise Incorrect("give a whole number of steps (an int).")
    if answer == 55_000 // 96:
        raise Incorrect("55,000 / 96 = 572.9…: the last, smaller batch of 88 images is still a step "
                        "(the loader keeps it unless drop_last=True). Round up.")
    if answer == 10 * math.ceil(55_000 / 96):
        raise Incorrect("that is for 10 epochs; the question asks for one epoch.")
    if answer == math.ceil(60_000 / 96):
        raise Incorrect("the validation images are held out: the optimizer only sees the 55,000 training images.")
    if answer != math.ceil(55_000 / 96):
        raise Incorrect(f"{answer} is not it: one step per batch, and 55,000 images in batches of 96.")


q1 = Exercise(
    name="q1",
    question="A run trains on the 55,000 images of the training split (the 5,000 validation images held out) with "
             "batch_size=96. How many optimizer steps make one epoch?",
    checker=_check_q1,
    hint_text="One step per batch; a last, incomplete batch is still a batch. math.ceil helps.",
    solution_code="import math\nsteps_per_epoch = math.ceil(55_000 / 96)",
    answer_name="steps_per_epoch",
    wrong_answers=["steps_per_epoch = 572", "steps_per_epoch = 55_000 // 96", "steps_per_epoch = 5730",
                   "steps_per_epoch = 625", "steps_per_epoch = 572.9"],
)


_Q2_CASES = [
    torch.tensor([[5, 1], [2, 12]]),
    torch.tensor([[50, 3, 2], [4, 40, 6], [0, 10, 85]]),
    torch.tensor([[0, 7], [3, 0]]),
    torch.eye(10, dtype=torch.long) * 100 + 1,
]


def _check_q2(answer):
    if not callable(answer):
        raise Incorrect("give a function: def accuracy_from_confusion(m): ... returning a float.")
    for m in _Q2_CASES:
        expected = (m.diag().sum() / m.sum()).item()
        got = call(answer, m.clone())
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise Incorrect(f"for {m.tolist()} your function returned {got!r}, not a number.") from None
        if math.isclose(got, 100 * expected, rel_tol=1e-6) and expected > 0:
            raise Incorrect("that is a percentage; return the share between 0 and 1.")
        if not math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-9):
            hint = ""
            recalls = (m.diag().double() / m.sum(1).double()).mean().item()
            if math.isclose(got, recalls, rel_tol=1e-6):
                hint = " That is the mean per-class recall (balanced accuracy), not the accuracy."
            elif math.isclose(got, float(m.diag().sum()), rel_tol=1e-6):
                hint = " That is the number of correct predictions; divide by the number of examples."
            raise Incorrect(f"for the matrix {m.tolist()} your function returned {got:.4g}, expected {expected:.4g}.{hint}")


q2 = Exercise(
    name="q2",
    question="Write accuracy_from_confusion(m): the accuracy (a share between 0 and 1) from a confusion matrix m "
             "whose rows are true classes and columns predicted classes.",
    checker=_check_q2,
    hint_text="Correct predictions are on the diagonal: m.diag().sum(); every example is counted once somewhere "
              "in the matrix: m.sum().",
    solution_code=("def accuracy_from_confusion(m):\n"
                   "    return (m.diag().sum() / m.sum()).item()"),
    answer_name="accuracy_from_confusion",
    setup="import torch",
    wrong_answers=[
        "def accuracy_from_confusion(m):\n    return m.diag().sum().item()",
        "def accuracy_from_confusion(m):\n    return (100 * m.diag().sum() / m.sum()).item()",
        "def accuracy_from_confusion(m):\n    return (m.diag().double() / m.sum(1)).mean().item()",
        "accuracy_from_confusion = 0.92",
    ],
)


Q3_TARGET = 0.94   # a softmax regression tops out near 92-93 % on MNIST


@functools.lru_cache(maxsize=1)
def _validation_set() -> tuple[torch.Tensor, torch.Tensor]:
    from ..mnist_linear import flat_mnist

    data = flat_mnist()   # the lesson's split: the same 5,000 validation images
    return data["x_val"], data["y_val"]


def _is_affine(model: nn.Module) -> bool:
    """Whether the model behaves as an affine map f(x) = Wx + b on a few random inputs (no nonlinearity)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 784, generator=g), torch.randn(4, 784, generator=g)
    zero = torch.zeros(1, 784)
    with torch.no_grad():
        lhs = model(a + b) + model(zero)
        rhs = model(a) + model(b)
    return torch.allclose(lhs, rhs, atol=1e-3 * max(1.0, rhs.abs().max().item()))


def _check_q3(answer):
    if not isinstance(answer, nn.Module):
        raise Incorrect("give the trained model itself (an nn.Module, e.g. an nn.Sequential).")
    answer = answer.cpu().eval()
    linear_layers = [m for m in answer.modules() if isinstance(m, nn.Linear)]
    if len(linear_layers) < 2:
        raise Incorrect(f"your model has {len(linear_layers)} nn.Linear layer(s); a hidden layer means two: "
                        "784 → hidden, then hidden → 10.")
    try:
        with torch.no_grad():
            out = answer(torch.zeros(2, 784))
    except Exception as exc:  # noqa: BLE001
        raise Incorrect(f"your model cannot take a batch of flat images of shape (N, 784): {exc}") from None
    if out.shape != (2, 10):
        raise Incorrect(f"your model outputs shape {tuple(out.shape)} for 2 images; it should output 10 logits each.")
    if _is_affine(answer):
        raise Incorrect("your model is still a linear (affine) function of the pixels: two Linear layers with nothing "
                        "between them compose to one. Put a nonlinearity such as nn.ReLU() between them.")
    x, y = _validation_set()
    with torch.no_grad():
        accuracy = (answer(x).argmax(1) == y).double().mean().item()
    if accuracy < Q3_TARGET:
        raise Incorrect(f"its validation accuracy is {100 * accuracy:.2f} %; beat {100 * Q3_TARGET:.0f} % "
                        "(train it: has fit() run? try the hint's settings, or more epochs).")
    return (f"Validation accuracy {100 * accuracy:.2f} % — above what any linear model reaches on MNIST. (The checker "
            "scores the validation split, never the test set: trying settings against the test set would make its "
            "number a tuned one.)")


q3 = Exercise(
    name="q3",
    question="Add a hidden layer (784 → hidden units → ReLU → 10), train it on data['x_train'] with fit(), and beat "
             f"the linear model: the checker wants at least {100 * Q3_TARGET:.0f} % validation accuracy.",
    checker=_check_q3,
    hint_text="nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)), trained like the linear model: "
              "fit() for 2 epochs on a TensorLoader of batch 128 with SGD (lr 0.05, momentum 0.9) and "
              "scheduler='cosine'.",
    solution_code=("torch.manual_seed(0)\n"
                   "mlp = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))\n"
                   "fit(mlp, TensorLoader(data['x_train'], data['y_train'], batch_size=128, shuffle=True), epochs=2,\n"
                   "    optimizer=torch.optim.SGD(mlp.parameters(), lr=0.05, momentum=0.9), scheduler='cosine',\n"
                   "    progress=False)"),
    answer_name="mlp",
    setup=("import torch\nfrom torch import nn\nfrom pretrain_lessons.train import fit\n"
           "from pretrain_lessons.data.loaders import TensorLoader\nfrom pretrain_lessons.mnist_linear import flat_mnist\n"
           "data = flat_mnist()"),
    wrong_answers=[
        "mlp = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))",          # untrained
        "mlp = nn.Sequential(nn.Linear(784, 128), nn.Linear(128, 10))",                      # no nonlinearity
        "mlp = nn.Linear(784, 10)",
        "mlp = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 3))",
        "mlp = 0.97",
    ],
)


_Q4_REGIONS = {"centre", "ring", "corners"}
_Q4_ALIASES = {"center": "centre", "middle": "centre", "the centre": "centre", "the center": "centre"}


def _check_q4(answer):
    if not isinstance(answer, str):
        raise Incorrect(f"answer with one word: one of {sorted(_Q4_REGIONS)}.")
    word = _Q4_ALIASES.get(answer.strip().lower(), answer.strip().lower())
    if word not in _Q4_REGIONS:
        raise Incorrect(f"answer with one of {sorted(_Q4_REGIONS)}.")
    if word == "ring":
        raise Incorrect("the ring is where a 0 *has* ink: ink there is evidence for 0, so those weights are positive "
                        "(red). Where would ink be evidence *against* a 0?")
    if word == "corners":
        raise Incorrect("almost no digit has ink in the corners, so those pixels are −1 in every image and their "
                        "weights barely matter (near white). Look at the middle of the 0 template.")


q4 = Exercise(
    name="q4",
    question="In the weight template of digit 0, which region is strongly negative (blue): 'centre', 'ring' or "
             "'corners'? Then explain to yourself why.",
    checker=_check_q4,
    hint_text="A pixel's weight is large and negative when ink there makes the class less likely. Where does a 0 "
              "never have ink, while 1s, 7s and 8s often do?",
    solution_code="region = 'centre'",
    answer_name="region",
    wrong_answers=["region = 'ring'", "region = 'corners'", "region = 'top'", "region = 0"],
)


# Validation accuracies of two recipes of section 5, five seeds each, paired by seed (same start, same batches),
# as measured by the lesson at cpu scale: lr 0.03 with momentum 0.9 and cosine decay (A), lr 0.1 with cosine decay (B).
Q5_A = [0.9216, 0.9226, 0.9228, 0.9218, 0.9208]
Q5_B = [0.9220, 0.9224, 0.9218, 0.9230, 0.9228]


def _check_q5(answer):
    from .. import stats

    if not isinstance(answer, str):
        raise Incorrect(f"answer with one of {list(stats.VERDICTS)}.")
    word = answer.strip().lower()
    if word not in stats.VERDICTS:
        raise Incorrect(f"answer with one of {list(stats.VERDICTS)} — for A compared with B.")
    truth = stats.compare(Q5_A, Q5_B, paired=True, names=("A", "B"), percent=True)
    if word != truth.verdict:
        unpaired = stats.compare(Q5_A, Q5_B, paired=False, percent=True)
        if word == unpaired.verdict:
            raise Incorrect("that is what an unpaired test says. The runs are paired — seed k gave both recipes the "
                            "same starting weights and the same batches — so compare seed by seed: "
                            "stats.compare(A, B, paired=True).")
        raise Incorrect(f"look at the differences seed by seed and their spread, not only at the means "
                        f"(A {100 * sum(Q5_A) / len(Q5_A):.2f} %, B {100 * sum(Q5_B) / len(Q5_B):.2f} %).")
    return f"{truth}"


q5 = Exercise(
    name="q5",
    question="Is recipe A (lr 0.03, momentum 0.9, cosine) better than, worse than, or not measurably different from "
             "recipe B (lr 0.1, cosine)? ex.Q5_A and ex.Q5_B are their validation accuracies, paired by seed.",
    checker=_check_q5,
    hint_text="The runs are paired (seed k: same start, same batches for both recipes). stats.compare(a, b) does a "
              "paired t-test and says 'better', 'worse' or 'no measurable difference' for a against b.",
    solution_code=("from pretrain_lessons import stats\n"
                   "verdict = stats.compare(ex.Q5_A, ex.Q5_B, paired=True).verdict"),
    answer_name="verdict",
    setup="from pretrain_lessons.exercises import lesson02 as ex",
    wrong_answers=["verdict = 'worse'", "verdict = 'better'", "verdict = 'tie'", "verdict = 0.9219"],
)
