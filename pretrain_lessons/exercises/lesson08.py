"""Exercises of 08_efficiency_and_compression: attention FLOPs, a 6·N·D estimate, is a difference real,
designing a fair timing, and freezing a model."""
from __future__ import annotations

import numpy as np
import torch

from .core import Exercise, Incorrect, call, number

# ---------------------------------------------------------------- q1: attention FLOPs by hand

D1, L1, HEADS1 = 512, 300, 8


def _check_q1(answer):
    got = number(answer, "give the number of FLOPs (an int or a float).")
    want = 4 * L1 * L1 * D1
    wrong = {
        2 * L1 * L1 * D1: ("that is one of the two products (or both counted in multiply-adds). QKᵀ and A·V each take "
                           "L·L·d multiply-adds, and a multiply-add is 2 FLOPs."),
        L1 * L1 * D1: "that is the multiply-adds of one product; there are two products and a multiply-add is 2 FLOPs.",
        4 * L1 * L1 * D1 // HEADS1: ("that is one head. Each of the 8 heads works on d/8 = 64 dimensions, so the heads "
                                     "together do exactly the work of one head of width d: the head count cancels."),
        4 * L1 * L1 * D1 * HEADS1: ("the heads do not multiply the work: each head has only d/heads dimensions, so "
                                    "8 heads × (d/8) = d. Count as if there were one head of width d."),
        2 * L1 * 4 * D1 * D1: "that is the Q, K, V and output projections (grows like L·d²), not the attention products (L²·d).",
    }
    if got in wrong:
        raise Incorrect(wrong[got])
    if got != want:
        raise Incorrect(f"{got:,.0f} is not it. QKᵀ is an (L × d)·(d × L) product: L·L·d multiply-adds; A·V is "
                        "(L × L)·(L × d): another L·L·d. Then count 2 FLOPs per multiply-add.")


q1 = Exercise(
    name="q1",
    question=(f"One BERT layer with hidden size d = {D1} and {HEADS1} attention heads reads a sequence of L = {L1} "
              "tokens. How many FLOPs do its two attention products, QKᵀ and A·V, take together (a multiply-add "
              "counts 2 FLOPs, as torch.utils.flop_counter counts them)?"),
    checker=_check_q1,
    hint_text=("QKᵀ: every one of the L×L scores is a dot product of length d. A·V: every one of the L×d outputs is a "
               "weighted sum over L values. Split into heads, each has d/heads dimensions — does the total change?"),
    solution_code=f"attention_flops = 2 * 2 * {L1} * {L1} * {D1}   # two products, L·L·d multiply-adds each, 2 FLOPs each",
    answer_name="attention_flops",
    wrong_answers=[f"attention_flops = 2 * {L1} * {L1} * {D1}", f"attention_flops = 4 * {L1} * {L1} * {D1} // {HEADS1}",
                   f"attention_flops = 4 * {L1} * {L1} * {D1} * {HEADS1}", f"attention_flops = 8 * {L1} * {D1} * {D1}",
                   f"attention_flops = {L1} * {L1}"],
)

# ---------------------------------------------------------------- q2: the 6·N·D rule on a real budget

N2, D2, FLOPS2 = 110e6, 3.3e9, 100e12   # weights, training tokens, sustained FLOP/s


def _check_q2(answer):
    got = number(answer, "give the number of hours (a float).")
    seconds = 6 * N2 * D2 / FLOPS2
    want = seconds / 3600
    if abs(got - want) <= 0.01 * want:
        return None
    if abs(got - seconds) <= 0.01 * seconds:
        raise Incorrect("that is in seconds; the question asks for hours (÷ 3600).")
    if abs(got - want / 3) <= 0.01 * want / 3:
        raise Incorrect("2·N·D is the forward pass only; training also runs the backward pass (about twice the "
                        "forward), so use 6·N·D.")
    if abs(got - want / 6) <= 0.01 * want / 6:
        raise Incorrect("N·D counts one multiply per weight per token; use 6·N·D FLOPs for a training step's "
                        "forward (2) and backward (4) pass.")
    if abs(got - want * 60) <= 0.01 * want * 60:
        raise Incorrect("that is in minutes; the question asks for hours.")
    raise Incorrect(f"{got:.4g} h is not it. Total FLOPs = 6 × N × D; divide by the FLOP/s the GPU sustains to get "
                    "seconds, then by 3600.")


q2 = Exercise(
    name="q2",
    question=("A BERT-base-sized model has N = 110 million weights and is pretrained on D = 3.3 billion tokens (one "
              "pass over BERT's corpus). With the 6·N·D rule, how many hours does that take on a GPU that sustains "
              "100 TFLOP/s (10¹⁴ FLOP/s)?"),
    checker=_check_q2,
    hint_text="6 × 110e6 × 3.3e9 FLOPs, divided by 1e14 FLOP/s, gives seconds.",
    solution_code="hours = 6 * 110e6 * 3.3e9 / 100e12 / 3600",
    answer_name="hours",
    wrong_answers=["hours = 6 * 110e6 * 3.3e9 / 100e12", "hours = 2 * 110e6 * 3.3e9 / 100e12 / 3600",
                   "hours = 110e6 * 3.3e9 / 100e12 / 3600", "hours = 6 * 110e6 * 3.3e9 / 100e12 / 60"],
)

# ---------------------------------------------------------------- q3: is this difference real?

# Test accuracy (%) of two fine-tuning recipes, the same 6 seeds for both (seed k: same head initialisation and
# same order of the training examples), on the same test reviews.
recipe_a = np.array([78.1, 75.2, 79.4, 76.0, 78.8, 77.5])
recipe_b = np.array([75.0, 76.7, 76.6, 76.9, 76.4, 77.7])


def _paired_p() -> float:
    from scipy import stats

    return float(stats.ttest_rel(recipe_a, recipe_b).pvalue)


def _welch_p() -> float:
    from scipy import stats

    return float(stats.ttest_ind(recipe_a, recipe_b, equal_var=False).pvalue)


VERDICTS = ("better", "worse", "no measurable difference")


def _check_q3(answer):
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise Incorrect("give a pair: (p_value, verdict), e.g. (0.03, 'better').")
    p, verdict = answer
    p = number(p, "the first item should be the p-value (a number between 0 and 1).")
    if not isinstance(verdict, str) or verdict.strip().lower() not in VERDICTS:
        raise Incorrect(f"the verdict should be one of {', '.join(repr(v) for v in VERDICTS)}.")
    verdict = verdict.strip().lower()
    paired, welch = _paired_p(), _welch_p()
    if abs(p - welch) < 5e-3 and abs(p - paired) >= 5e-3:
        raise Incorrect("that p-value treats the two lists as independent runs (Welch's test). Seed k of A and seed k "
                        "of B share the initialisation and the data order: compare them pair by pair (paired=True).")
    if abs(p - paired) >= 5e-3:
        raise Incorrect(f"p = {p:.3g} is not the paired t-test's p-value on these 12 numbers. Use "
                        "stats.compare(recipe_a, recipe_b, paired=True) and read its .p.")
    right = "no measurable difference" if paired >= 0.05 else ("better" if recipe_a.mean() > recipe_b.mean() else "worse")
    if verdict != right:
        if verdict == "better":
            raise Incorrect(f"A's mean is {recipe_a.mean() - recipe_b.mean():+.1f} points higher, but with p = "
                            f"{paired:.2f} a difference this size turns up often by chance: A wins on some seeds and "
                            "loses on others. Judge by the test, not by the means.")
        raise Incorrect(f"with p = {paired:.2f} (≥ 0.05) the data cannot tell the recipes apart.")
    return (f"p = {paired:.2f}: A is ahead by {recipe_a.mean() - recipe_b.mean():+.1f} points on average but loses on "
            f"{int((recipe_a < recipe_b).sum())} of the 6 seeds. To find out, run more seeds (or test on more reviews).")


q3 = Exercise(
    name="q3",
    question=("Is it real? `ex.recipe_a` and `ex.recipe_b` hold the test accuracy (%) of two fine-tuning recipes over the "
              "same 6 seeds (seed k of both shares its initialisation and data order). Recipe A's mean is higher. "
              "Compare them with the right test and give (p_value, verdict), the verdict being 'better', 'worse' or "
              "'no measurable difference' for A against B at the 5 % level."),
    checker=_check_q3,
    hint_text=("The runs are paired by seed: `c = stats.compare(ex.recipe_a, ex.recipe_b, paired=True)`, then look at "
               "`c.p` and `c.verdict`. Look at the six differences a − b too."),
    solution_code=("from pretrain_lessons import stats\n"
                   "c = stats.compare(ex.recipe_a, ex.recipe_b, paired=True)\n"
                   "answer = (c.p, c.verdict)"),
    answer_name="answer",
    setup="from pretrain_lessons.exercises import lesson08 as ex",
    wrong_answers=["answer = (0.01, 'better')",
                   "from scipy import stats as s\nanswer = (s.ttest_ind(ex.recipe_a, ex.recipe_b, equal_var=False).pvalue, "
                   "'no measurable difference')",
                   "from scipy import stats as s\nanswer = (s.ttest_rel(ex.recipe_a, ex.recipe_b).pvalue, 'better')",
                   "answer = 'better'"],
)

# ---------------------------------------------------------------- q4: design a fair timing


class _Recorder:
    """Stand-ins for two models: they log the order in which they are called."""

    def __init__(self):
        self.log: list[str] = []

    def make(self, name):
        def run():
            self.log.append(name)
            return sum(range(200))   # a little work, so the time is not zero
        return run


def _check_q4(fn):
    if not callable(fn):
        raise Incorrect("give a function interleaved(calls, rounds) returning {name: [milliseconds, …]}.")
    rec = _Recorder()
    calls = {"fp32": rec.make("fp32"), "int8": rec.make("int8")}
    out = call(fn, calls, 6)
    if not isinstance(out, dict) or set(out) != set(calls):
        raise Incorrect("return a dict with one entry per name in `calls`: {'fp32': [...], 'int8': [...]}.")
    for name, times in out.items():
        try:
            times = [float(t) for t in times]
        except TypeError:
            raise Incorrect(f"out[{name!r}] should be a list of times, one per round, not a single number.") from None
        if len(times) != 6:
            raise Incorrect(f"with rounds = 6, out[{name!r}] should hold 6 times (one per round); it holds {len(times)}.")
        if any(t < 0 for t in times):
            raise Incorrect("a time cannot be negative: time.perf_counter() after the call minus before it.")
    if rec.log.count("fp32") < 6 or rec.log.count("int8") < 6:
        raise Incorrect("call each model once per round (6 rounds: at least 6 calls each).")
    first_int8 = rec.log.index("int8")
    if rec.log[:first_int8].count("fp32") >= 6 or rec.log[:rec.log.index("fp32")].count("int8") >= 6:
        raise Incorrect("all runs of one model happen before any run of the other. If another program loads the "
                        "machine during the first block, that model looks slower for a reason that has nothing to do "
                        "with it. Alternate: in each round run every model once.")
    timed = rec.log[-12:]
    for r in range(6):
        if sorted(timed[2 * r:2 * r + 2]) != ["fp32", "int8"]:
            raise Incorrect("in each round, run every model exactly once (fp32, int8, then the next round).")
    return "each round sees the same machine load for both models, so the per-round ratios are a paired measurement."


q4 = Exercise(
    name="q4",
    question=("Design a fair timing. On a machine other programs also use, write interleaved(calls, rounds): `calls` is "
              "a dict {name: function without arguments}; run every function once per round, for `rounds` rounds, "
              "and return {name: [milliseconds of each round]}. The order of the work matters, not only the clock."),
    checker=_check_q4,
    hint_text=("Loop over rounds on the outside and over the functions on the inside; time each call with "
               "time.perf_counter() before and after. A refinement: rotate which function goes first in each round."),
    solution_code=("import time\n\ndef interleaved(calls, rounds):\n"
                   "    times = {name: [] for name in calls}\n"
                   "    for _ in range(rounds):\n"
                   "        for name, run in calls.items():\n"
                   "            start = time.perf_counter()\n"
                   "            run()\n"
                   "            times[name].append((time.perf_counter() - start) * 1000)\n"
                   "    return times"),
    answer_name="interleaved",
    wrong_answers=[
        ("import time\ndef interleaved(calls, rounds):\n    times = {}\n    for name, run in calls.items():\n"
         "        times[name] = []\n        for _ in range(rounds):\n            start = time.perf_counter()\n"
         "            run()\n            times[name].append((time.perf_counter() - start) * 1000)\n    return times"),
        ("import time\ndef interleaved(calls, rounds):\n    times = {}\n    for name, run in calls.items():\n"
         "        start = time.perf_counter()\n        run()\n        times[name] = (time.perf_counter() - start) * 1000\n"
         "    return times"),
        ("import time\ndef interleaved(calls, rounds):\n    return {name: [] for name in calls}"),
    ],
)

# ---------------------------------------------------------------- q5: change a training set-up


def _small_bert():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, num_labels=3)
    return BertForSequenceClassification(config)


def _check_q5(fn):
    if not callable(fn):
        raise Incorrect("give a function head_only(model) that freezes every weight except the classification head.")
    model = _small_bert()
    returned = call(fn, model)
    if returned is not None and returned is not model:
        model = returned
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    head = {"classifier.weight", "classifier.bias"}
    if trainable == {n for n, _ in model.named_parameters()}:
        raise Incorrect("every parameter is still trainable: set requires_grad = False on the encoder's parameters.")
    if not trainable:
        raise Incorrect("now nothing trains at all: the classifier's weight and bias must keep requires_grad = True.")
    if trainable - head:
        extra = sorted(trainable - head)
        raise Incorrect(f"these should be frozen too: {', '.join(extra[:3])}{' …' if len(extra) > 3 else ''}.")
    if head - trainable:
        raise Incorrect(f"the head must stay trainable; frozen by mistake: {', '.join(sorted(head - trainable))}.")


q5 = Exercise(
    name="q5",
    question=("Change a training set-up: write head_only(model) that freezes a BertForSequenceClassification except its "
              "classification head (model.classifier), so an optimizer built afterwards trains only the head."),
    checker=_check_q5,
    hint_text=("Loop over `model.named_parameters()` and set `p.requires_grad = name.startswith('classifier')`. "
               "(`compress.freeze_all_but_top(model, 0)` also keeps the pooler trainable — not what is asked here.)"),
    solution_code=("def head_only(model):\n"
                   "    for name, p in model.named_parameters():\n"
                   "        p.requires_grad = name.startswith('classifier')\n"
                   "    return model"),
    answer_name="head_only",
    wrong_answers=[
        "def head_only(model):\n    return model",
        "def head_only(model):\n    for p in model.parameters():\n        p.requires_grad = False\n    return model",
        "def head_only(model):\n    for p in model.bert.encoder.parameters():\n        p.requires_grad = False\n    return model",
        "from pretrain_lessons.compress import freeze_all_but_top\ndef head_only(model):\n    return freeze_all_but_top(model, 0)",
    ],
)
