"""Exercises of 01_loss_formula: compute a loss, write a stable log-softmax, reason about logits, mask positions."""
from __future__ import annotations

import math

import torch

from .core import Exercise, Incorrect, call, close, number

Q1_LOGITS = [2.0, 1.0, 0.1]


def _expected_q1() -> float:
    return float(-torch.log_softmax(torch.tensor(Q1_LOGITS, dtype=torch.float64), -1)[0])


def _check_q1(answer):
    expected = _expected_q1()
    value = number(answer, "give the loss as one number (a float, or a 0-dimensional tensor).")
    probs = torch.softmax(torch.tensor(Q1_LOGITS, dtype=torch.float64), -1)
    if math.isclose(value, float(probs[0]), rel_tol=1e-3):
        raise Incorrect(f"{value:.4f} is the probability p(y=0|x), not the loss: take −log of it.")
    if math.isclose(value, -expected, rel_tol=1e-3):
        raise Incorrect("the sign is wrong: the loss is the *negative* log-probability, a positive number.")
    if math.isclose(value, -math.log(Q1_LOGITS[0] / sum(Q1_LOGITS)), rel_tol=1e-3):
        raise Incorrect("you normalised the logits themselves; softmax exponentiates them first: e^z / Σ e^z.")
    for k in (1, 2):
        if math.isclose(value, float(-torch.log(probs[k])), rel_tol=1e-3):
            raise Incorrect(f"that is the loss for class {k}; the true class is 0.")
    close(value, expected, tol=1e-3, what="loss")


q1 = Exercise(
    name="q1",
    question="A model outputs the logits [2.0, 1.0, 0.1] for one example whose true class is 0. "
             "What is its cross-entropy loss (in nats)? Compute it step by step with torch.",
    checker=_check_q1,
    hint_text="softmax first: p = exp(z) / exp(z).sum(); the loss is −log p[0]. It is a bit above 0.4.",
    solution_code=("z = torch.tensor([2.0, 1.0, 0.1])\n"
                   "p = torch.exp(z) / torch.exp(z).sum()\n"
                   "loss = -torch.log(p[0])"),
    answer_name="loss",
    setup="import torch",
    wrong_answers=["loss = 0.659", "loss = -0.417", "loss = 1.417", "loss = 'about 0.4'",
                   "import math\nloss = -math.log(2.0 / 3.1)"],
)


def _check_q2(answer):
    if not callable(answer):
        raise Incorrect("give a function: def stable_log_softmax(z): ... returning a tensor of log-probabilities.")
    cases = {
        "ordinary logits": torch.tensor([[2.0, 1.0, 0.1], [-1.0, 0.5, 3.0]]),
        "huge logits (around 1000)": torch.tensor([[1000.0, 1001.0, 1002.0]]),
        "very negative logits (around −1000)": torch.tensor([[-1000.0, -1001.0, -1002.0]]),
        "a batch of 4 × 10 random logits": torch.randn(4, 10, generator=torch.Generator().manual_seed(0)) * 5,
    }
    for what, z in cases.items():
        out = call(answer, z.clone())
        if not isinstance(out, torch.Tensor):
            raise Incorrect(f"on {what} your function returned {type(out).__name__}, not a tensor.")
        if out.shape != z.shape:
            raise Incorrect(f"on {what} (shape {tuple(z.shape)}) your function returned shape {tuple(out.shape)}: "
                            "keep one log-probability per logit (use keepdim=True when you reduce over the last dim).")
        if not torch.isfinite(out).all():
            raise Incorrect(f"on {what} your function returned {out.tolist()}: inf or nan — it overflows. "
                            "Subtract the largest logit before exponentiating.")
        expected = torch.log_softmax(z, -1)
        if not torch.allclose(out, expected, atol=1e-4):
            if torch.allclose(out.exp().sum(-1), torch.ones(len(z)), atol=1e-3):
                raise Incorrect(f"on {what} your values differ from torch.log_softmax: {out.tolist()} vs {expected.tolist()}.")
            raise Incorrect(f"on {what} the probabilities exp(output) do not sum to 1: subtract log Σ exp(z − max) "
                            "as well as the max.")


q2 = Exercise(
    name="q2",
    question="Write stable_log_softmax(z): log-probabilities over the last dimension that stay finite for "
             "logits around ±1000 (no torch.log_softmax, F.log_softmax or torch.logsumexp).",
    checker=_check_q2,
    hint_text="log softmax(z) = (z − m) − log Σ exp(z − m) with m = z.max(dim=-1, keepdim=True).values: "
              "the largest exponent is then exp(0) = 1.",
    solution_code=("def stable_log_softmax(z):\n"
                   "    shifted = z - z.max(dim=-1, keepdim=True).values\n"
                   "    return shifted - torch.log(torch.exp(shifted).sum(dim=-1, keepdim=True))"),
    answer_name="stable_log_softmax",
    setup="import torch",
    wrong_answers=[
        "def stable_log_softmax(z):\n    return torch.log(torch.exp(z) / torch.exp(z).sum(dim=-1, keepdim=True))",
        "def stable_log_softmax(z):\n    return z - z.max(dim=-1, keepdim=True).values",
        "def stable_log_softmax(z):\n    return z - torch.log(torch.exp(z).sum())",
        "stable_log_softmax = 3",
    ],
)

_Q3_CHOICES = {"decreases", "increases", "stays the same"}


def _check_q3(answer):
    if not isinstance(answer, str) or answer.strip().lower() not in _Q3_CHOICES:
        raise Incorrect(f"answer with one of {sorted(_Q3_CHOICES)}.")
    answer = answer.strip().lower()
    if answer == "stays the same":
        raise Incorrect("softmax ignores *adding* a constant to every logit, not *multiplying* them: doubling "
                        "the gaps between logits changes the probabilities. Try it with torch.softmax(2 * z).")
    if answer == "increases":
        raise Incorrect("doubling widens the gap between the largest logit and the others; which class gains "
                        "probability when the gaps grow?")


q3 = Exercise(
    name="q3",
    question="An example is classified correctly: its true class already has the largest logit. Every logit is "
             "doubled (z → 2z). Does the loss 'decreases', 'increases' or 'stays the same'?",
    checker=_check_q3,
    hint_text="softmax(2z) is a 'sharper' softmax: compare torch.softmax(z, -1) and torch.softmax(2 * z, -1) "
              "for z = torch.tensor([2.0, 1.0, 0.1]).",
    solution_code="doubled = 'decreases'",
    answer_name="doubled",
    wrong_answers=["doubled = 'stays the same'", "doubled = 'increases'", "doubled = 'halves'"],
)


Q4_LOGITS = [[2.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 4.0]]
Q4_LABELS = [-100, 1, -100, 2]


def _expected_q4() -> float:
    z = torch.tensor(Q4_LOGITS, dtype=torch.float64)
    return float(torch.nn.functional.cross_entropy(z, torch.tensor(Q4_LABELS), ignore_index=-100))


def _check_q4(answer):
    value = number(answer, "give the loss as one number.")
    z = torch.tensor(Q4_LOGITS, dtype=torch.float64)
    per_token = -torch.log_softmax(z, -1)
    masked_sum = float(per_token[1, 1] + per_token[3, 2])
    if math.isclose(value, masked_sum, rel_tol=1e-3):
        raise Incorrect("that is the sum over the masked positions; MLM averages: divide by how many are masked.")
    if math.isclose(value, masked_sum / 4, rel_tol=1e-3):
        raise Incorrect("you divided by all 4 positions; positions labelled −100 are left out of the mean too.")
    close(value, _expected_q4(), tol=1e-3, what="masked-position loss")


q4 = Exercise(
    name="q4",
    question="Four token positions over a vocabulary of 4 have the logits Q4_LOGITS and the labels "
             "[-100, 1, -100, 2] (−100: not masked, no prediction asked). What mean loss does masked-language-model "
             "training use? (Compute it by hand or with F.cross_entropy(..., ignore_index=-100).)",
    checker=_check_q4,
    hint_text="Only positions 1 and 3 count: average −log softmax(z_1)[1] and −log softmax(z_3)[2].",
    solution_code=("z = torch.tensor(ex.Q4_LOGITS)\n"
                   "masked_loss = F.cross_entropy(z, torch.tensor(ex.Q4_LABELS), ignore_index=-100)"),
    answer_name="masked_loss",
    setup="import torch\nimport torch.nn.functional as F\nfrom pretrain_lessons.exercises import lesson01 as ex",
    wrong_answers=[
        "z = torch.tensor(ex.Q4_LOGITS)\nmasked_loss = F.cross_entropy(z, torch.tensor([0, 1, 0, 2]))",
        "z = torch.tensor(ex.Q4_LOGITS)\nmasked_loss = F.cross_entropy(z, torch.tensor(ex.Q4_LABELS), "
        "ignore_index=-100, reduction='sum')",
        "masked_loss = None",
    ],
)
