"""Exercises of 00_start_here: how much a measurement on a test set can tell (noise, evidence, test-set size).

The notebook scores a nearest-template classifier on MNIST (the mean training image of each digit; an image gets the
label of the closest mean) and shows how its accuracy moves from one draw of 100 test images to the next. These
checkers rebuild the same numbers from the data, so they judge against the evidence the learner saw.
"""
from __future__ import annotations

import math
from functools import lru_cache

from .core import Exercise, Incorrect, call, number

DRAW_SEED = 1          # the seed of the draw of 100 test images the notebook compares A and B on
DRAW_SIZE = 100
SMALL_TRAIN = 2000     # classifier B builds its templates from the first 2,000 training images only
VERDICTS = ("better", "worse", "no measurable difference")


@lru_cache(maxsize=1)
def template_predictions():
    """Test labels and the predictions of A (templates from all 60,000 training images) and B (first 2,000)."""
    import torch

    from ..data.loaders import mnist_tensors

    mnist = mnist_tensors()
    train = mnist["train_images"].reshape(-1, 784).float() / 255
    test = mnist["test_images"].reshape(-1, 784).float() / 255
    labels = mnist["train_labels"]

    def templates(images, targets):
        return torch.stack([images[targets == digit].mean(0) for digit in range(10)])

    a = torch.cdist(test, templates(train, labels)).argmin(1).numpy()
    b = torch.cdist(test, templates(train[:SMALL_TRAIN], labels[:SMALL_TRAIN])).argmin(1).numpy()
    return mnist["test_labels"].numpy(), a, b


def draw(seed: int = DRAW_SEED, size: int = DRAW_SIZE):
    """The indices of one draw of test images, as the notebook makes it."""
    import numpy as np

    return np.random.default_rng(seed).choice(10_000, size=size, replace=False)


def _check_q1(answer):
    if not callable(answer):
        raise Incorrect("define a function standard_error(accuracy, n).")
    cases = [(0.5, 100, 0.05), (0.82, 100, math.sqrt(0.82 * 0.18 / 100)), (0.9, 2500, 0.006), (0.99, 10_000, None)]
    for accuracy, n, expected in cases:
        expected = math.sqrt(accuracy * (1 - accuracy) / n) if expected is None else expected
        got = number(call(answer, accuracy, n), f"standard_error({accuracy}, {n}) should return a number.")
        if math.isclose(got, accuracy * (1 - accuracy) / n, rel_tol=1e-6):
            raise Incorrect(f"standard_error({accuracy}, {n}) returned {got:.6g}: that is the variance p(1 − p)/n; "
                            "the standard error is its square root.")
        if not math.isclose(got, expected, rel_tol=1e-3):
            raise Incorrect(f"standard_error({accuracy}, {n}) returned {got:.6g}, but one draw of {n} images "
                            f"with accuracy {accuracy} spreads by about {expected:.4g}. Use sqrt(p·(1 − p)/n).")
    return "A test set of 100 images measures an accuracy near 82 % only to about ±4 points (one standard error)."


q1 = Exercise(
    name="q1",
    question="Write standard_error(accuracy, n): how much an accuracy measured on n test images moves from one draw "
             "of n images to the next (one standard deviation).",
    checker=_check_q1,
    hint_text="Each test image is a coin flip that comes up 'right' with probability p: the fraction right over n "
              "images has variance p·(1 − p)/n. The standard error is the square root of that.",
    solution_code="import math\n\n\ndef standard_error(accuracy, n):\n    return math.sqrt(accuracy * (1 - accuracy) / n)",
    answer_name="standard_error",
    wrong_answers=["def standard_error(accuracy, n):\n    return accuracy * (1 - accuracy) / n",
                   "def standard_error(accuracy, n):\n    return (accuracy / n) ** 0.5",
                   "standard_error = 0.038"],
)


def _check_q2(answer):
    from .. import stats

    if not isinstance(answer, str) or answer.strip().lower() not in VERDICTS:
        raise Incorrect('answer with one of "better", "worse" or "no measurable difference".')
    labels, a, b = template_predictions()
    idx = draw()
    evidence = stats.compare(a[idx], b[idx], labels=labels[idx], names=("A", "B"))
    full = stats.compare(a, b, labels=labels, names=("A", "B"))
    only_a, only_b, _ = stats.mcnemar(a[idx] == labels[idx], b[idx] == labels[idx])
    given = answer.strip().lower()
    if given != evidence.verdict:
        if evidence.verdict == "no measurable difference":
            raise Incorrect(f"A is {100 * evidence.effect:+.0f} points ahead on these {idx.size} images, but that "
                            f"comes from only {only_a + only_b} images on which the two disagree ({only_a} go A's "
                            f"way, {only_b} B's), and one draw of {idx.size} moves by about ±4 points on its own: the "
                            f"paired test gives p = {evidence.p:.2f}. These images cannot tell A from B.")
        raise Incorrect(f"on these images the paired test says {evidence.verdict} (p = {evidence.p:.3f}).")
    return (f"On all 10,000 test images the paired test does see it: {full}. The difference is real, but a test "
            f"set of {idx.size} images was too small to show it.")


q2 = Exercise(
    name="q2",
    question="On one draw of 100 test images, classifier A (templates from all 60,000 training images) scores a few "
             "points more than classifier B (templates from the first 2,000). What does this evidence say about A "
             "compared with B: better, worse, or no measurable difference?",
    checker=_check_q2,
    hint_text="Compare the 3-point gap with how much one draw of 100 images moves on its own (your standard_error, "
              "or the width of the orange histogram), or run stats.compare(pred_a[idx], pred_b[idx], "
              "labels=labels[idx]) on the two classifiers' predictions for the same images.",
    solution_code='verdict = "no measurable difference"',
    answer_name="verdict",
    wrong_answers=['verdict = "better"', 'verdict = "worse"', 'verdict = "yes"', "verdict = True"],
)


def _check_q3(answer):
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        raise Incorrect("give a number of test images (a whole number).")
    if isinstance(answer, float) and not answer.is_integer():
        raise Incorrect(f"{answer} is not a whole number of images.")
    n = int(answer)
    needed = round(0.8 * 0.2 / 0.01 ** 2)  # 1,600 (round, not ceil: 0.16 / 0.0001 is 1600.0000000000002 in floats)
    if n <= 0:
        raise Incorrect("a test set needs at least one image.")
    if n < needed:
        error = math.sqrt(0.8 * 0.2 / n)
        hint = " (did you forget to square 0.01?)" if n == round(0.8 * 0.2 / 0.01) else ""
        raise Incorrect(f"with {n:,} images the standard error is {100 * error:.3f} points, more than 1{hint}.")
    if n > round(1.1 * needed):
        raise Incorrect(f"{n:,} images would do, but far fewer are enough: solve sqrt(0.8 · 0.2 / n) ≤ 0.01 for n.")
    return (f"{needed:,} images give a standard error of 1 point. To tell apart two classifiers 2 points apart you "
            "want their difference to be several standard errors: paired tests on the same images help, and so do "
            "more images.")


q3 = Exercise(
    name="q3",
    question="Design a measurement: how many test images do you need so that the standard error of an accuracy near "
             "80 % is at most 1 percentage point (0.01)?",
    checker=_check_q3,
    hint_text="Set sqrt(p·(1 − p)/n) = 0.01 with p = 0.8 and solve for n: n = p·(1 − p)/0.01².",
    solution_code="n_test = 1600",
    answer_name="n_test",
    wrong_answers=["n_test = 16", "n_test = 40", "n_test = 1599", "n_test = 10_000", "n_test = '1600'"],
)
