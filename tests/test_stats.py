"""The statistics room against scipy, on known-significant and known-null cases; claims; the repeated-runs figure."""
from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch
from scipy import stats as sp

from pretrain_lessons import claims, stats
from pretrain_lessons.claims import ClaimFailed, claim


def test_summary_matches_scipy_t_interval():
    values = [0.81, 0.79, 0.84, 0.80, 0.83]
    s = stats.summarize(values)
    low, high = sp.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=sp.sem(values))
    assert s.n == 5 and s.mean == pytest.approx(np.mean(values)) and s.std == pytest.approx(np.std(values, ddof=1))
    assert (s.low, s.high) == (pytest.approx(low), pytest.approx(high))
    assert "n = 5" in str(s)


def test_summary_of_one_run_has_no_interval():
    s = stats.summarize([0.7])
    assert s.n == 1 and math.isnan(s.low) and "no interval" in str(s)
    with pytest.raises(ValueError, match="empty"):
        stats.summarize([])


@pytest.mark.parametrize("only_a, only_b", [(30, 10), (10, 30), (150, 120), (7, 0), (20, 20), (0, 0), (1, 2), (400, 340)])
def test_mcnemar_equals_scipy_exact_binomial(only_a, only_b):
    a = np.r_[np.ones(only_a), np.zeros(only_b), np.ones(50), np.zeros(25)].astype(bool)
    b = np.r_[np.zeros(only_a), np.ones(only_b), np.ones(50), np.zeros(25)].astype(bool)
    got_a, got_b, p = stats.mcnemar(a, b)
    assert (got_a, got_b) == (only_a, only_b)
    n = only_a + only_b
    expected = 1.0 if n == 0 else sp.binomtest(only_a, n, 0.5).pvalue
    assert p == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_mcnemar_known_cases():
    assert stats.mcnemar([True] * 30 + [False] * 10, [False] * 30 + [True] * 10)[2] < 0.01   # 30 vs 10: real
    assert stats.mcnemar([True] * 20 + [False] * 20, [False] * 20 + [True] * 20)[2] == 1.0  # 20 vs 20: null
    with pytest.raises(ValueError, match="different numbers"):
        stats.mcnemar([True, False], [True])


def test_paired_bootstrap_interval_and_seed():
    rng = np.random.default_rng(1)
    a = rng.random(2000) < 0.80
    b = rng.random(2000) < 0.70
    diff, low, high = stats.paired_bootstrap(a, b, seed=0)
    assert diff == pytest.approx(a.mean() - b.mean())
    assert low < diff < high and low > 0          # ten points apart on 2,000 examples: clearly real
    assert stats.paired_bootstrap(a, b, seed=0) == (diff, low, high)   # a fixed seed repeats exactly
    _, low0, high0 = stats.paired_bootstrap(a, a.copy(), seed=0)
    assert low0 == high0 == 0.0


def test_bootstrap_of_continuous_values_matches_normal_theory():
    rng = np.random.default_rng(2)
    x = rng.normal(0.3, 1.0, 4000)
    diff, low, high = stats.paired_bootstrap(x, np.zeros_like(x), seed=0)
    se = x.std(ddof=1) / math.sqrt(x.size)
    assert low == pytest.approx(diff - 1.96 * se, abs=0.2 * se) and high == pytest.approx(diff + 1.96 * se, abs=0.2 * se)


def test_paired_and_welch_t_match_scipy():
    a = [0.62, 0.60, 0.66, 0.63]
    b = [0.58, 0.59, 0.61, 0.57]
    effect, low, high, p = stats.paired_t(a, b)
    ref = sp.ttest_rel(a, b)
    assert p == pytest.approx(ref.pvalue) and effect == pytest.approx(np.mean(np.subtract(a, b)))
    ci = ref.confidence_interval(0.95)
    assert (low, high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    effect, low, high, p = stats.welch_t(a, b + [0.60])
    ref = sp.ttest_ind(a, b + [0.60], equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert p == pytest.approx(ref.pvalue) and (low, high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_paired_t_needs_pairs():
    with pytest.raises(ValueError, match="same number"):
        stats.paired_t([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2"):
        stats.paired_t([1], [2])
    assert stats.paired_t([0.5, 0.6], [0.4, 0.5])[3] == 0.0   # identical differences: no spread at all


def test_compare_predictions_verdicts():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 1500)
    good = np.where(rng.random(1500) < 0.85, y, 1 - y)
    weak = np.where(rng.random(1500) < 0.70, y, 1 - y)
    better = stats.compare(good, weak, labels=y, names=("good", "weak"))
    assert better.verdict == "better" and better.better and better.p < 1e-6 and better.low > 0
    assert stats.compare(weak, good, labels=y).verdict == "worse"
    twin = np.where(rng.random(1500) < 0.85, y, 1 - y)      # same accuracy, different errors
    tie = stats.compare(good, twin, labels=y, names=("good", "twin"))
    assert tie.verdict == "no measurable difference" and tie.tie and tie.low < 0 < tie.high
    line = str(better)
    assert line.startswith("good ") and "points" in line and "McNemar" in line and line.endswith("→ better")
    assert str(stats.compare(good == y, weak == y).verdict) == "better"   # boolean correctness, no labels


def test_compare_runs_paired_unpaired_and_direction():
    pretrained = [0.64, 0.61, 0.66]
    scratch = [0.60, 0.58, 0.63]
    assert stats.compare(pretrained, scratch, paired=True).verdict == "better"        # same draws: consistent gain
    assert stats.compare(pretrained, scratch, paired=False).verdict == "no measurable difference"  # unpaired: noise
    loss = stats.compare([2.1, 2.0, 2.2], [2.6, 2.5, 2.7], higher_is_better=False, names=("model", "unigram"))
    assert loss.verdict == "better" and loss.effect < 0
    assert "paired t-test over 3 paired runs" in str(stats.compare(pretrained, scratch, percent=True))


def test_claim_holds_and_fails_by_scale(monkeypatch, capsys):
    monkeypatch.setenv("PRETRAIN_LESSONS_CLAIMS", "enforce")
    made = claim("accuracy ≥ 92 %", np.float64(0.93) >= 0.92, evidence="93.0 %")
    assert made.holds and "✔" in capsys.readouterr().out
    with pytest.raises(ClaimFailed, match="accuracy ≥ 95 %"):
        claim("accuracy ≥ 95 %", 0.93 >= 0.95)
    monkeypatch.setenv("PRETRAIN_LESSONS_CLAIMS", "report")
    made = claim("accuracy ≥ 95 %", 0.93 >= 0.95)
    assert not made.holds and "not enforced" in capsys.readouterr().out
    monkeypatch.delenv("PRETRAIN_LESSONS_CLAIMS")
    monkeypatch.setenv("PRETRAIN_LESSONS_SCALE", "smoke")
    assert not claims.enforced()
    monkeypatch.setenv("PRETRAIN_LESSONS_SCALE", "cpu")
    assert claims.enforced()


def test_claim_with_a_comparison_and_expectation(monkeypatch):
    monkeypatch.setenv("PRETRAIN_LESSONS_CLAIMS", "enforce")
    tie = stats.compare([0.70, 0.72, 0.69], [0.71, 0.70, 0.70])
    assert claim("no measurable difference", tie, expect="no measurable difference").holds
    with pytest.raises(ClaimFailed):
        claim("A beats B", tie)
    with pytest.raises(ValueError, match="expect"):
        claim("A beats B", tie, expect="wins")
    assert claim("tensor condition", torch.tensor(0.9) > 0.5).holds


def test_claim_refuses_a_number_as_verdict():
    with pytest.raises(TypeError, match="bool"):
        claim("accuracy is high", 0.93)


def test_repeated_runs_draws_every_run_and_no_line_across_a_gap():
    matplotlib.use("Agg")
    results = {"bag of words": {100: [0.58, 0.6, 0.57], 300: [0.62, 0.63, 0.6], 1000: [0.67, 0.68, 0.66]},
               "MiniLM": {100: [0.7, 0.72, 0.69], 1000: [0.8, 0.79, 0.81]}}
    from pretrain_lessons.plots import repeated_runs

    fig = repeated_runs(results, percent=True, logx=True, baselines={"always fresh": 0.578})
    ax = fig.axes[0]
    clouds = [c.get_offsets() for c in ax.collections if len(c.get_offsets()) == 3]
    assert len(clouds) == 5 and sum(map(len, clouds)) == 15   # every run of the 5 measured points is a dot
    segments = [line for line in ax.get_lines() if len(line.get_xdata()) == 2 and line.get_linestyle() == "-"]
    assert len(segments) == 2, "bag of words 100-300-1000 joined; MiniLM 100 and 1000 never joined across 300"
    assert ax.get_ylabel() == "test accuracy (%)"


def test_baselines_close_together_get_labels_that_do_not_overlap():
    matplotlib.use("Agg")
    from pretrain_lessons.plots import repeated_runs

    fig = repeated_runs({"snapshot": {0: [0.56, 0.6, 0.63], 3000: [0.65, 0.66, 0.65]}}, percent=True,
                        baselines={"from scratch": 0.673, "bag of words": 0.672, "always fresh": 0.578})
    anchors = {t.get_text(): t.xy[0] for t in fig.axes[0].texts}
    assert anchors == {"from scratch": 1, "bag of words": 0, "always fresh": 1}
