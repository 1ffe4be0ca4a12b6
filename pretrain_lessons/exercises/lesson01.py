"""Exercises of 01_loss_formula: compute a loss, write a stable log-softmax, reason about logits, mask positions,
and judge a transfer experiment from its draws."""
from __future__ import annotations

import functools
import math

import torch

from .core import Exercise, Incorrect, call, close, number

Q1_LOGITS = [1.5, -0.5, 3.0]   # true class 0; not a batch row or a widget default of the lesson


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
    question="A model outputs the logits [1.5, -0.5, 3.0] for one example whose true class is 0. "
             "What is its cross-entropy loss (in nats)? Compute it step by step with torch.",
    checker=_check_q1,
    hint_text="softmax first: p = exp(z) / exp(z).sum(); the loss is −log p[0]. Class 2 has the largest logit, so "
              "the loss is well above the uniform guess's log 3 ≈ 1.1.",
    solution_code=("z = torch.tensor([1.5, -0.5, 3.0])\n"
                   "p = torch.exp(z) / torch.exp(z).sum()\n"
                   "loss = -torch.log(p[0])"),
    answer_name="loss",
    setup="import torch",
    wrong_answers=["loss = 0.1800", "loss = -1.7147", "loss = 0.2147", "loss = 'about 1.7'",
                   "import math\nloss = -math.log(1.5 / 4.0)", "loss = 3.7147"],
)


_BANNED = [(torch, "log_softmax"), (torch, "logsumexp"), (torch.nn.functional, "log_softmax"),
           (torch.special, "log_softmax"), (torch.special, "logsumexp"), (torch.Tensor, "log_softmax"),
           (torch.Tensor, "logsumexp")]


class _UsedBanned(Exception):
    pass


def _call_without_builtins(fn, z):
    """Call the learner's function with PyTorch's own log-softmax and logsumexp switched off."""
    def refuse(*args, **kwargs):
        raise _UsedBanned
    saved = [(owner, name, getattr(owner, name)) for owner, name in _BANNED]
    try:
        for owner, name, _ in saved:
            setattr(owner, name, refuse)
        return call(fn, z)
    except _UsedBanned:
        raise Incorrect("your function calls PyTorch's log_softmax or logsumexp; the point is to write the stable "
                        "formula yourself (subtract the max, exponentiate, sum, log).") from None
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def _reference_log_softmax(z: torch.Tensor) -> torch.Tensor:
    z = z.double()
    shifted = z - z.max(dim=-1, keepdim=True).values
    return (shifted - shifted.exp().sum(dim=-1, keepdim=True).log()).float()


def _check_q2(answer):
    if not callable(answer):
        raise Incorrect("give a function: def stable_log_softmax(z): ... returning a tensor of log-probabilities.")
    cases = {
        "ordinary logits": torch.tensor([[2.0, 1.0, 0.1], [-1.0, 0.5, 3.0]]),
        "huge logits (around 1000)": torch.tensor([[1000.0, 1001.0, 1002.0]]),
        "very negative logits (around −1000)": torch.tensor([[-1000.0, -1001.0, -1002.0]]),
        "a batch of 4 × 10 random logits": torch.randn(4, 10, generator=torch.Generator().manual_seed(0)) * 5,
        "a batch with one row near +1000 and one near −1000": torch.tensor([[1000.0, 1001.0, 1002.0],
                                                                          [-1002.0, -1001.0, -1000.0]]),
    }
    for what, z in cases.items():
        out = _call_without_builtins(answer, z.clone())
        if not isinstance(out, torch.Tensor):
            raise Incorrect(f"on {what} your function returned {type(out).__name__}, not a tensor.")
        if out.shape != z.shape:
            raise Incorrect(f"on {what} (shape {tuple(z.shape)}) your function returned shape {tuple(out.shape)}: "
                            "keep one log-probability per logit (use keepdim=True when you reduce over the last dim).")
        if not torch.isfinite(out).all():
            if "one row near" in what:
                raise Incorrect(f"on {what} your function returned {out.tolist()}: each row needs its *own* maximum "
                                "(z.max(dim=-1, keepdim=True)); one maximum for the whole batch leaves the other "
                                "row far below 0, where exp underflows.")
            raise Incorrect(f"on {what} your function returned {out.tolist()}: inf or nan — it overflows. "
                            "Subtract the largest logit before exponentiating.")
        expected = _reference_log_softmax(z)
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
        "def stable_log_softmax(z):\n    shifted = z - z.max()\n"
        "    return shifted - torch.log(torch.exp(shifted).sum(dim=-1, keepdim=True))",
        "def stable_log_softmax(z):\n    return torch.log_softmax(z, dim=-1)",
        "def stable_log_softmax(z):\n    return z - torch.logsumexp(z, dim=-1, keepdim=True)",
        "import torch.nn.functional as F\ndef stable_log_softmax(z):\n    return F.log_softmax(z, dim=-1)",
        "def stable_log_softmax(z):\n    return z.log_softmax(-1)",
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


Q5_DRAWS = 20


@functools.lru_cache(maxsize=1)
def _q5_truth():
    from .. import losses, stats

    runs = [losses.transfer_experiment(d, related=False) for d in range(Q5_DRAWS)]
    return stats.compare([r["fine-tuned"]["heldout_accuracy"] for r in runs],
                         [r["scratch"]["heldout_accuracy"] for r in runs],
                         names=("fine-tuned from task A", "from scratch"), percent=True)


def _check_q5(answer):
    from .. import stats

    if not isinstance(answer, str) or answer.strip().lower() not in stats.VERDICTS:
        raise Incorrect(f"answer with one of {list(stats.VERDICTS)}: fine-tuned from task A, compared with scratch.")
    truth = _q5_truth()
    if answer.strip().lower() == truth.verdict:
        return f"{truth}. Pretraining on an unrelated task is not neutral: the weights it leaves point the wrong way, " \
               "and ten small steps do not undo them (negative transfer, 负迁移 — lesson 06 meets it on images)."
    if answer.strip().lower() == "no measurable difference":
        raise Incorrect("run it: losses.transfer_experiment(draw, related=False) for draws 0 to 19, then compare the "
                        "held-out accuracies draw by draw with stats.compare. An unrelated start is not a neutral one.")
    raise Incorrect("compare the held-out accuracies of the two models draw by draw (paired), over all 20 draws.")


q5 = Exercise(
    name="q5",
    question="Run the lesson's transfer experiment with an unrelated task A (related=False), draws 0–19. On held-out "
             "examples of task B, is fine-tuning from task A 'better', 'worse', or 'no measurable difference' "
             "compared with training from scratch?",
    checker=_check_q5,
    hint_text="runs = [losses.transfer_experiment(d, related=False) for d in range(20)]; then stats.compare on the "
              "lists of r['fine-tuned']['heldout_accuracy'] and r['scratch']['heldout_accuracy'] (paired by draw).",
    solution_code=("runs = [losses.transfer_experiment(d, related=False) for d in range(20)]\n"
                   "verdict = stats.compare([r['fine-tuned']['heldout_accuracy'] for r in runs],\n"
                   "                        [r['scratch']['heldout_accuracy'] for r in runs]).verdict"),
    answer_name="verdict",
    setup="from pretrain_lessons import losses, stats",
    wrong_answers=["verdict = 'no measurable difference'", "verdict = 'better'", "verdict = 'same'", "verdict = 0.65"],
)
