"""Exercises of 07_attention_inside_bert: attention's cost, masks, parameter counts, reading heads, judging noise."""
from __future__ import annotations

import math

import torch

from ..attention import offset_attention
from ..stats import compare
from .core import Exercise, Incorrect, call, number

# ---------------------------------------------------------------- q1: the cost of cross-attention


def _cross_flops(lq: int, lk: int, d: int, dv: int) -> int:
    return 2 * lq * lk * d + 2 * lq * lk * dv


def _check_q1(fn):
    if not callable(fn):
        raise Incorrect("give a function cross_attention_flops(Lq, Lk, d, dv) that returns a number.")
    for lq, lk, d, dv in [(7, 11, 16, 8), (1, 300, 64, 64), (128, 32, 32, 96)]:
        got = number(call(fn, lq, lk, d, dv), "return a number (the FLOPs).")
        want = _cross_flops(lq, lk, d, dv)
        if got == want:
            continue
        if got == want // 2:
            raise Incorrect("that counts multiply-adds; a multiply-add is 2 floating-point operations (multiply, then add).")
        if got == 4 * lq * lk * d:
            raise Incorrect(f"for Lq={lq}, Lk={lk}, d={d}, dv={dv}: the weighted sum of the values has length dv, not d — "
                            "its cost is 2·Lq·Lk·dv.")
        if got in (4 * lq * lq * d, 2 * lq * lq * (d + dv)):
            raise Incorrect("that is self-attention's count (Lq × Lq scores); here every one of the Lq queries meets Lk keys.")
        if got == 2 * lq * lk * d:
            raise Incorrect("that is the scores QKᵀ only; add the weighted sum of the values (weights (Lq × Lk) times V (Lk × dv)).")
        raise Incorrect(f"for Lq={lq}, Lk={lk}, d={d}, dv={dv} the answer is not {got:,.0f}. Count the two matrix products: "
                        "(Lq × d)·(d × Lk) and (Lq × Lk)·(Lk × dv).")


q1 = Exercise(
    name="q1",
    question=("Write cross_attention_flops(Lq, Lk, d, dv): the FLOPs (a multiply-add counts 2) of QKᵀ plus the weighted sum "
              "of the values, for Lq queries, Lk keys, query/key size d and value size dv."),
    checker=_check_q1,
    hint_text=("A product of an (m × n) and an (n × p) matrix takes m·n·p multiply-adds. The scores are (Lq × d)·(d × Lk); "
               "the output is (Lq × Lk)·(Lk × dv). Check with att.counted_flops(lambda: q @ k.T) on small tensors."),
    solution_code="def cross_attention_flops(Lq, Lk, d, dv):\n    return 2 * Lq * Lk * d + 2 * Lq * Lk * dv",
    answer_name="cross_attention_flops",
    wrong_answers=[
        "def cross_attention_flops(Lq, Lk, d, dv):\n    return Lq * Lk * d + Lq * Lk * dv",
        "def cross_attention_flops(Lq, Lk, d, dv):\n    return 4 * Lq * Lk * d",
        "def cross_attention_flops(Lq, Lk, d, dv):\n    return 4 * Lq * Lq * d",
        "def cross_attention_flops(Lq, Lk, d, dv):\n    return 2 * Lq * Lk * d",
        "def cross_attention_flops(Lq, Lk, d, dv):\n    return 2 * Lq * Lk * (d + dv) + Lq * Lk",
    ],
)

# ---------------------------------------------------------------- q2: an additive mask


def _check_q2(fn):
    if not callable(fn):
        raise Incorrect("give a function additive_mask(attention_mask).")
    attention_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    got = call(fn, attention_mask)
    if not isinstance(got, torch.Tensor):
        raise Incorrect(f"return a torch tensor; got {type(got).__name__}.")
    if got.shape != (2, 1, 1, 5):
        raise Incorrect(f"the mask must broadcast over heads and queries: shape (B, 1, 1, L) = (2, 1, 1, 5); yours is "
                        f"{tuple(got.shape)}. Index with [:, None, None, :].")
    if not got.is_floating_point():
        raise Incorrect(f"an additive mask is added to float scores: make it a float tensor (yours is {got.dtype}).")
    keep = attention_mask.bool()[:, None, None, :]
    on_tokens, on_padding = got[keep], got[~keep]
    if (on_tokens <= -1e4).all() and (on_padding == 0).all():
        raise Incorrect("that is inverted: the large negative number belongs on the padding (attention_mask = 0), 0 on real tokens.")
    if not (on_tokens == 0).all():
        raise Incorrect("real tokens (attention_mask = 1) must get exactly 0, so their scores are unchanged.")
    if not (on_padding <= -1e4).all():
        raise Incorrect("padding must get a very large negative number (e.g. torch.finfo(torch.float32).min, or at most −1e4), "
                        f"so that exp(score + mask) ≈ 0; yours has {on_padding.max().item():g} there.")
    scores = torch.randn(2, 3, 5, 5)
    weights = (scores + got).softmax(-1)
    if not torch.isfinite(weights).all():
        raise Incorrect("adding your mask to the scores gives NaN after the softmax.")
    if weights[0, :, :, 3:].max() > 1e-6:
        raise Incorrect("after the softmax the padded keys still get weight: use a larger negative number.")


q2 = Exercise(
    name="q2",
    question=("Write additive_mask(attention_mask): from a tokenizer's attention_mask (B, L) of 1/0, a float tensor (B, 1, 1, L) "
              "that is 0 on real tokens and a very large negative number on padding."),
    checker=_check_q2,
    hint_text=("(1 - attention_mask) is 1 exactly on the padding. Multiply it by torch.finfo(torch.float32).min, make it float, "
               "and add the two broadcasting axes with [:, None, None, :]."),
    solution_code=("import torch\n\ndef additive_mask(attention_mask):\n"
                   "    blocked = (1 - attention_mask[:, None, None, :]).float()\n"
                   "    return blocked * torch.finfo(torch.float32).min"),
    answer_name="additive_mask",
    wrong_answers=[
        "import torch\ndef additive_mask(attention_mask):\n    return attention_mask[:, None, None, :].float() * torch.finfo(torch.float32).min",
        "def additive_mask(attention_mask):\n    return (attention_mask == 0)[:, None, None, :]",
        "def additive_mask(attention_mask):\n    return (1 - attention_mask).float() * -1e9",
        "def additive_mask(attention_mask):\n    return (1 - attention_mask[:, None, None, :]).float()",
        "def additive_mask(attention_mask):\n    return (1 - attention_mask[:, None, None, :]).float() * -100.0",
    ],
)

# ---------------------------------------------------------------- q3: parameters of a Transformer block


def _check_q3(answer):
    d, ff = 128, 512
    attention = 4 * d * d + 4 * d
    feed_forward = d * ff + ff + ff * d + d
    norms = 2 * 2 * d
    want = attention + feed_forward + norms
    if isinstance(answer, bool):
        raise Incorrect("give a whole number.")
    value = number(answer, "give a whole number (an int).")
    if value != int(value):
        raise Incorrect("a parameter count is a whole number.")
    value = int(value)
    if value == want:
        return
    if value == attention + feed_forward:
        raise Incorrect("add the two layer norms: each has a scale and a shift of size d.")
    if value == 4 * d * d + 2 * d * ff + norms or value == 4 * d * d + 2 * d * ff:
        raise Incorrect("every nn.Linear also has a bias (d for the projections and the second feed-forward layer, ff for the first).")
    if value in (2 * attention + feed_forward + norms, value == attention):
        raise Incorrect("the heads do not multiply the count: they share the four d × d projections.")
    if value == attention:
        raise Incorrect("that is the attention alone; add the feed-forward layer (d → ff → d) and the two layer norms.")
    if value == 2 * attention + feed_forward + norms:
        raise Incorrect("the heads do not multiply the count: they share the four d × d projections.")
    raise Incorrect(f"{value:,} is not it. Attention: 4 projections of d × d plus bias; feed-forward: d × ff + ff, then ff × d + d; "
                    "two layer norms of 2·d each.")


q3 = Exercise(
    name="q3",
    question="How many parameters does att.TransformerBlock(d=128, heads=2, ff=512) hold?",
    checker=_check_q3,
    hint_text=("Attention: q, k, v and output projections, each d × d weights + d biases (the heads share them). "
               "Feed-forward: Linear(d, ff) and Linear(ff, d), with biases. Each LayerNorm: a weight and a bias of size d."),
    solution_code=("d, ff = 128, 512\n"
                   "n_block_params = (4 * d * d + 4 * d) + (d * ff + ff) + (ff * d + d) + 2 * (2 * d)"),
    answer_name="n_block_params",
    wrong_answers=["n_block_params = 4 * 128 * 128 + 4 * 128",
                   "n_block_params = (4 * 128 * 128 + 4 * 128) + (128 * 512 + 512) + (512 * 128 + 128)",
                   "n_block_params = 4 * 128 * 128 + 2 * 128 * 512 + 4 * 128",
                   "n_block_params = 2 * (4 * 128 * 128 + 4 * 128) + (128 * 512 + 512) + (512 * 128 + 128) + 4 * 128",
                   "n_block_params = 198272.5"],
)

# ---------------------------------------------------------------- q4: a previous-token score


def _check_q4(fn):
    if not callable(fn):
        raise Incorrect("give a function previous_token_score(attentions).")
    gen = torch.Generator().manual_seed(3)
    attentions = torch.rand(3, 4, 9, 9, generator=gen).softmax(-1)
    got = call(fn, attentions)
    want = offset_attention(attentions, -1)
    if not isinstance(got, torch.Tensor):
        raise Incorrect(f"return a torch tensor; got {type(got).__name__}.")
    if got.shape != want.shape:
        raise Incorrect(f"return one number per head: shape (layers, heads) = {tuple(want.shape)}; yours is {tuple(got.shape)}.")
    if torch.allclose(got, offset_attention(attentions, 1), atol=1e-6):
        raise Incorrect("that is the attention to the *next* token (i → i+1); the previous token of query i is key i − 1.")
    if torch.allclose(got, offset_attention(attentions, 0), atol=1e-6):
        raise Incorrect("that is each token's attention to itself (the diagonal); take the diagonal just below it.")
    if not torch.allclose(got, want, atol=1e-6):
        raise Incorrect("average attentions[..., i, i-1] over the queries i = 1 … L−1 (query 0 has no previous token).")


q4 = Exercise(
    name="q4",
    question=("Write previous_token_score(attentions): for maps of shape (layers, heads, L, L), the mean weight that "
              "each query i (i ≥ 1) gives to key i − 1 — one number per head, shape (layers, heads)."),
    checker=_check_q4,
    hint_text=("`torch.diagonal(attentions, offset=-1, dim1=-2, dim2=-1)` returns the entries [i, i−1] along a new last axis; "
               "average it."),
    solution_code=("import torch\n\ndef previous_token_score(attentions):\n"
                   "    return torch.diagonal(attentions, offset=-1, dim1=-2, dim2=-1).mean(-1)"),
    answer_name="previous_token_score",
    wrong_answers=[
        "import torch\ndef previous_token_score(attentions):\n    return torch.diagonal(attentions, offset=1, dim1=-2, dim2=-1).mean(-1)",
        "import torch\ndef previous_token_score(attentions):\n    return torch.diagonal(attentions, dim1=-2, dim2=-1).mean(-1)",
        "import torch\ndef previous_token_score(attentions):\n    return torch.diagonal(attentions, offset=-1, dim1=-2, dim2=-1).mean()",
    ],
)

# ---------------------------------------------------------------- q5: is this difference real?

Q5_TRANSFORMER = [0.724, 0.757, 0.746, 0.777, 0.737]
Q5_LSTM = [0.712, 0.748, 0.731, 0.769, 0.724]
VERDICTS = ("better", "worse", "no measurable difference")


def _check_q5(answer):
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise Incorrect("give two things: (verdict, p_value).")
    verdict, p_value = answer
    paired = compare(Q5_TRANSFORMER, Q5_LSTM, paired=True)
    welch = compare(Q5_TRANSFORMER, Q5_LSTM, paired=False)
    if not isinstance(verdict, str) or verdict.strip().lower() not in VERDICTS:
        raise Incorrect(f"the verdict is one of {', '.join(repr(v) for v in VERDICTS)}; got {verdict!r}.")
    verdict = verdict.strip().lower()
    p = number(p_value, "give the p-value as a number.")
    if verdict == "worse":
        raise Incorrect("the Transformer's mean is higher, so it cannot be measurably worse.")
    if verdict == "no measurable difference":
        if abs(p - welch.p) <= 0.02:
            raise Incorrect(f"an unpaired test (p = {welch.p:.2f}) drowns the gap in the seed-to-seed spread. But the runs are "
                            "paired — same seed, same data — and the seed moves both models together: look at the five "
                            "differences, seed by seed. Use a paired test.")
        raise Incorrect("look at the five per-seed differences: what sign do they have? Test them with a paired test.")
    if abs(p - paired.p) <= max(0.002, 0.25 * paired.p):
        return (f"{paired}. Every seed favours the Transformer by 0.8 to 1.5 points, although the seeds themselves spread "
                f"over 5 points; an unpaired test would give p = {welch.p:.2f} and miss it.")
    if abs(p - welch.p) <= 0.02:
        raise Incorrect("the verdict is right, but that p-value is from an unpaired test; the runs are paired by seed.")
    raise Incorrect(f"the verdict is right, but p = {p:g} is not the paired t-test's p-value. "
                    "Try stats.compare(transformer, lstm, paired=True).p.")


q5 = Exercise(
    name="q5",
    question=("Per-seed test accuracies: Transformer 0.724 0.757 0.746 0.777 0.737, LSTM 0.712 0.748 0.731 0.769 0.724 "
              "(same seed = same data). Is the Transformer better, worse, or is there no measurable difference? "
              "Give (verdict, p_value)."),
    checker=_check_q5,
    hint_text=("The runs are paired by seed: compare the five differences, not the two clouds of points. "
               "`from pretrain_lessons import stats; stats.compare(t, l, paired=True)` gives the verdict and .p "
               "(or scipy.stats.ttest_rel)."),
    solution_code=("from pretrain_lessons import stats\n\n"
                   "transformer = [0.724, 0.757, 0.746, 0.777, 0.737]\nlstm = [0.712, 0.748, 0.731, 0.769, 0.724]\n"
                   "result = stats.compare(transformer, lstm, paired=True)\n"
                   "verdict, p_value = result.verdict, result.p\nanswer = (verdict, p_value)"),
    answer_name="answer",
    wrong_answers=["answer = ('worse', 0.001)",
                   "from pretrain_lessons import stats\nr = stats.compare([0.724, 0.757, 0.746, 0.777, 0.737], "
                   "[0.712, 0.748, 0.731, 0.769, 0.724], paired=False)\nanswer = (r.verdict, r.p)",
                   "answer = ('no measurable difference', 0.001)",
                   "answer = ('better', 0.42)",
                   "answer = ('better', 0.2)",
                   "answer = 'better'"],
)

# ---------------------------------------------------------------- q6: how precise is one test score?


def _check_q6(answer):
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise Incorrect("give two things: (standard_error, convincing) — a number and True or False.")
    se, convincing = answer
    want = math.sqrt(0.75 * 0.25 / 600)
    value = number(se, "give the standard error as a number.")
    if abs(value - 100 * want) <= 0.05 * 100 * want:
        raise Incorrect("that is in points; give it as a fraction (divide by 100).")
    if abs(value - 0.75 * 0.25 / 600) <= 1e-6:
        raise Incorrect("that is the variance of the accuracy; the standard error is its square root.")
    if abs(value - math.sqrt(0.75 * 0.25)) <= 0.01:
        raise Incorrect("that is the spread of a single coin flip; the accuracy averages 600 of them: divide by √600.")
    if abs(value - want) > 0.05 * want:
        raise Incorrect(f"the standard error of a proportion p over n trials is √(p(1−p)/n); yours, {value:g}, is not that.")
    if not isinstance(convincing, (bool,)) and type(convincing).__name__ != "bool_":
        raise Incorrect("say whether a 2-point gap is convincing with True or False.")
    if bool(convincing):
        raise Incorrect(f"the standard error is right ({100 * want:.1f} points), but the gap between two independent scores has "
                        f"a standard error of √2 × {100 * want:.1f} ≈ {100 * math.sqrt(2) * want:.1f} points: a 2-point gap "
                        "is less than one standard error. Not convincing from one seed each.")
    return (f"{100 * want:.2f} points per score; the difference of two has about {100 * math.sqrt(2) * want:.1f}. A 2-point gap "
            "from one seed each is within the noise, and seed-to-seed variation comes on top: hence several seeds and paired tests.")


q6 = Exercise(
    name="q6",
    question=("One model, one run: 75 % right on n = 600 test sequences. What is the standard error of that accuracy (a "
              "fraction)? Would a 2-point gap between two such single runs be convincing? Give (standard_error, convincing)."),
    checker=_check_q6,
    hint_text=("For n independent trials with success rate p, the proportion has variance p(1 − p)/n. A difference of two "
               "independent scores adds their variances."),
    solution_code=("import math\n\nstandard_error = math.sqrt(0.75 * 0.25 / 600)\n"
                   "convincing = 0.02 > 2 * math.sqrt(2) * standard_error   # False: the gap is under one standard error\n"
                   "answer = (standard_error, convincing)"),
    answer_name="answer",
    wrong_answers=["answer = (1.77, False)", "answer = (0.75 * 0.25 / 600, False)", "answer = (0.433, False)",
                   "import math\nanswer = (math.sqrt(0.75 * 0.25 / 600), True)", "answer = (0.0177, 'no')",
                   "answer = 0.0177"],
)
