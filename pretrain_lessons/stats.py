"""Statistics for honest comparisons: summaries of repeated runs, paired tests, and one-line verdicts.

Two questions come up in every lesson:
  * several runs (seeds, draws of the labelled subset) of one method — what is the mean, and how sure are we?
    `summarize(values)`;
  * two methods — is the difference real or inside the noise? `compare(a, b, ...)` answers with a verdict,
    *better*, *worse* or *no measurable difference*, the effect, its 95 % interval and the p-value.
Two classifiers scored on the same test examples are compared example by example (exact McNemar test, paired
bootstrap interval); repeated runs are compared run by run (paired t-test when the runs are paired, e.g. the same
subset draws, Welch's t-test when they are not).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

VERDICTS = ("better", "worse", "no measurable difference")


def _t_quantile(q: float, df: float) -> float:
    from scipy.stats import t

    return float(t.ppf(q, df))


def _t_two_sided_p(t_value: float, df: float) -> float:
    from scipy.stats import t

    return float(2 * t.sf(abs(t_value), df))


def _vector(values, name: str = "values") -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise ValueError(f"{name} is empty: nothing to summarise.")
    return x


# ---------------------------------------------------------------- repeated runs of one method


@dataclass(frozen=True)
class Summary:
    """Mean, standard deviation and t confidence interval of repeated runs."""

    mean: float
    std: float
    low: float
    high: float
    n: int
    confidence: float = 0.95
    percent: bool = False

    def __str__(self) -> str:
        f = _formatter(self.percent, self.std)
        if self.n < 2:
            return f"{f(self.mean)} (one run: no interval)"
        return (f"{f(self.mean)} ± {f(self.std, unit=False)} sd "
                f"({_percent(self.confidence)} CI {f(self.low, unit=False)} to {f(self.high)}, n = {self.n})")

    __repr__ = __str__


def summarize(values, confidence: float = 0.95, percent: bool = False) -> Summary:
    """Mean, sample standard deviation and t-based confidence interval of the mean (n = 1: no interval)."""
    x = _vector(values)
    n, mean = x.size, float(x.mean())
    if n < 2:
        return Summary(mean, math.nan, math.nan, math.nan, n, confidence, percent)
    std = float(x.std(ddof=1))
    half = _t_quantile((1 + confidence) / 2, n - 1) * std / math.sqrt(n)
    return Summary(mean, std, mean - half, mean + half, n, confidence, percent)


# ---------------------------------------------------------------- two classifiers on the same test examples


def mcnemar(correct_a, correct_b) -> tuple[int, int, float]:
    """Exact two-sided McNemar test: (examples only A gets right, only B gets right, p-value).

    Only the discordant examples carry information; under "no difference" each is equally likely to favour A or
    B, so the count favouring A is Binomial(n_discordant, 1/2).
    """
    a, b = np.asarray(correct_a, dtype=bool).ravel(), np.asarray(correct_b, dtype=bool).ravel()
    if a.shape != b.shape:
        raise ValueError(f"the two classifiers were scored on different numbers of examples ({a.size} vs {b.size}).")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0 or only_a == only_b:
        return only_a, only_b, 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n   # exact, with Python's big integers
    return only_a, only_b, min(1.0, 2 * tail)


def _bootstrap_mean(d: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """Means of `n_resamples` resamples (with replacement) of the per-example differences d."""
    rng = np.random.default_rng(seed)
    values, counts = np.unique(d, return_counts=True)
    if values.size <= 3:
        # Differences of 0/1 outcomes take three values: drawing how many of each is the same bootstrap, far faster.
        draws = rng.multinomial(d.size, counts / d.size, size=n_resamples)
        return draws @ values / d.size
    chunk = max(1, 2_000_000 // d.size)
    means = [d[rng.integers(0, d.size, size=(min(chunk, n_resamples - i), d.size))].mean(axis=1)
             for i in range(0, n_resamples, chunk)]
    return np.concatenate(means)


def paired_bootstrap(correct_a, correct_b, n_resamples: int = 10_000, seed: int = 0,
                     confidence: float = 0.95) -> tuple[float, float, float]:
    """Accuracy difference A − B and its percentile bootstrap interval, resampling the shared test examples."""
    a, b = np.asarray(correct_a, dtype=float).ravel(), np.asarray(correct_b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"the two classifiers were scored on different numbers of examples ({a.size} vs {b.size}).")
    d = a - b
    means = _bootstrap_mean(d, n_resamples, seed)
    tail = (1 - confidence) / 2
    return float(d.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


# ---------------------------------------------------------------- two sets of repeated runs


def paired_t(a, b, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """Paired t-test of a[i] − b[i] (same seeds or draws): (mean difference, interval low, high, p-value)."""
    x, y = _vector(a, "a"), _vector(b, "b")
    if x.size != y.size:
        raise ValueError(f"paired runs need the same number of runs on each side ({x.size} vs {y.size}).")
    if x.size < 2:
        raise ValueError("a paired comparison needs at least 2 runs on each side.")
    d = x - y
    n, mean, sd = d.size, float(d.mean()), float(d.std(ddof=1))
    if sd == 0:
        # Every run differs by exactly the same amount: no spread to weigh the difference against.
        return mean, mean, mean, (1.0 if mean == 0 else 0.0)
    se = sd / math.sqrt(n)
    half = _t_quantile((1 + confidence) / 2, n - 1) * se
    return mean, mean - half, mean + half, _t_two_sided_p(mean / se, n - 1)


def welch_t(a, b, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """Welch's t-test of mean(a) − mean(b) for unpaired runs: (difference, interval low, high, p-value)."""
    x, y = _vector(a, "a"), _vector(b, "b")
    if x.size < 2 or y.size < 2:
        raise ValueError("an unpaired comparison needs at least 2 runs on each side.")
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    diff = float(x.mean() - y.mean())
    if va + vb == 0:
        return diff, diff, diff, (1.0 if diff == 0 else 0.0)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (x.size - 1) + vb ** 2 / (y.size - 1))
    half = _t_quantile((1 + confidence) / 2, df) * se
    return diff, diff - half, diff + half, _t_two_sided_p(diff / se, df)


# ---------------------------------------------------------------- one verdict


@dataclass(frozen=True)
class Comparison:
    """A compared with B: the effect (A − B), its interval, the p-value and the verdict for A."""

    name_a: str
    name_b: str
    mean_a: float
    mean_b: float
    effect: float
    low: float
    high: float
    p: float
    verdict: str
    method: str
    n: int
    percent: bool = False
    confidence: float = 0.95

    @property
    def better(self) -> bool:
        return self.verdict == "better"

    @property
    def worse(self) -> bool:
        return self.verdict == "worse"

    @property
    def tie(self) -> bool:
        return self.verdict == "no measurable difference"

    def __str__(self) -> str:
        f = _formatter(self.percent, (self.high - self.low) / 2 or abs(self.effect))
        diff = f(self.effect, signed=True, points=True)
        interval = f"{f(self.low, signed=True, unit=False)} to {f(self.high, signed=True, points=True)}"
        return (f"{self.name_a} {f(self.mean_a)} vs {self.name_b} {f(self.mean_b)}: {diff} "
                f"({_percent(self.confidence)} CI {interval}), {self.method} {format_p(self.p)} → {self.verdict}")

    __repr__ = __str__


def _percent(confidence: float) -> str:
    return f"{100 * confidence:g} %"


def format_p(p: float) -> str:
    """'p = 0.031', 'p < 0.001'."""
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.2g}" if p < 0.1 else f"p = {p:.2f}"


def _formatter(percent: bool, spread: float):
    """A number formatter: percentages with one decimal; other values to the precision their spread supports."""
    if percent:
        # One decimal of a percentage, two when the spread is below half a point.
        places = 2 if spread is not None and math.isfinite(spread) and 0 < 100 * spread < 0.5 else 1

        def f(v: float, signed: bool = False, unit: bool = True, points: bool = False) -> str:
            if v is None or not math.isfinite(v):
                return "n/a"
            text = f"{100 * v:{'+' if signed else ''}.{places}f}"
            return text + (" points" if points and unit else " %" if unit else "")
        return f
    decimals = None
    if spread is not None and math.isfinite(spread) and spread > 0:
        decimals = max(0, 1 - math.floor(math.log10(spread) + 1e-9))   # two significant digits of the spread

    def f(v: float, signed: bool = False, unit: bool = True, points: bool = False) -> str:  # noqa: ARG001
        if v is None or not math.isfinite(v):
            return "n/a"
        sign = "+" if signed else ""
        return f"{v:{sign}.{decimals}f}" if decimals is not None else f"{v:{sign}.4g}"

    return f


def _verdict(effect: float, p: float, alpha: float, higher_is_better: bool) -> str:
    if not p < alpha or effect == 0:
        return "no measurable difference"
    return "better" if (effect > 0) == higher_is_better else "worse"


def compare(a, b, *, labels=None, paired: bool = True, names: tuple[str, str] = ("A", "B"), alpha: float = 0.05,
            higher_is_better: bool = True, percent: bool | None = None, seed: int = 0,
            confidence: float = 0.95) -> Comparison:
    """Compare A with B and return the verdict for A: 'better', 'worse' or 'no measurable difference'.

    * With `labels`: a and b are two classifiers' predictions on the same test examples (or, without labels,
      two boolean arrays saying which examples each got right). Effect: accuracy(A) − accuracy(B); p from the
      exact McNemar test; interval from a paired bootstrap over the examples.
    * Otherwise: a and b are scores of repeated runs (or per-example values). `paired=True` pairs a[i] with b[i]
      (same seed or subset draw) in a paired t-test; `paired=False` uses Welch's t-test.
    A difference is called real when p < alpha; otherwise it is "no measurable difference".
    """
    name_a, name_b = names
    a_arr, b_arr = np.asarray(a), np.asarray(b)
    if labels is not None or (a_arr.dtype == bool and b_arr.dtype == bool):
        if labels is not None:
            y = np.asarray(labels).ravel()
            a_arr, b_arr = a_arr.ravel() == y, b_arr.ravel() == y
        only_a, only_b, p = mcnemar(a_arr, b_arr)
        effect, low, high = paired_bootstrap(a_arr, b_arr, seed=seed, confidence=confidence)
        return Comparison(name_a, name_b, float(a_arr.mean()), float(b_arr.mean()), effect, low, high, p,
                          _verdict(effect, p, alpha, higher_is_better),
                          f"exact McNemar ({only_a} vs {only_b} discordant of {a_arr.size:,} examples),",
                          int(a_arr.size), True if percent is None else percent, confidence)
    x, y = _vector(a, names[0]), _vector(b, names[1])
    if paired:
        effect, low, high, p = paired_t(x, y, confidence)
        method = f"paired t-test over {x.size} paired runs,"
    else:
        effect, low, high, p = welch_t(x, y, confidence)
        method = f"Welch t-test ({x.size} vs {y.size} runs),"
    return Comparison(name_a, name_b, float(x.mean()), float(y.mean()), effect, low, high, p,
                      _verdict(effect, p, alpha, higher_is_better), method, int(x.size), bool(percent), confidence)
