"""Figures: live learning curves, confusion matrices, image grids, weight templates, attention maps."""
from __future__ import annotations

import time

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

# Small, crisp figures keep the committed notebooks light (each ≤ 2 MB).
matplotlib.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "figure.figsize": (6.4, 3.6),
                            "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False})


def in_notebook() -> bool:
    """Whether we run inside a Jupyter kernel (JupyterLab, Colab, VS Code), where displays can update in place."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        return shell is not None and "IPKernelApp" in shell.config
    except ImportError:
        return False


def _smooth(values: list[float], window: int) -> np.ndarray:
    if window <= 1 or len(values) < window:
        return np.asarray(values, dtype=float)
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def learning_curves(history, title: str = "Learning curves", metric: str | None = None):
    """Training loss per step (raw and smoothed) with validation loss, and a validation metric beside it."""
    steps, losses = history.series("loss")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    ax = axes[0]
    if steps:
        ax.plot(steps, losses, color="tab:blue", alpha=0.25, lw=0.8, label="train (per step)")
        window = max(1, len(losses) // 30)
        smooth = _smooth(losses, window)
        ax.plot(steps[len(steps) - len(smooth):], smooth, color="tab:blue", lw=1.8, label=f"train (mean of {window})")
    vsteps, vloss = history.series("val_loss")
    if vsteps:
        ax.plot(vsteps, vloss, "o-", color="tab:orange", label="validation")
    ax.set(xlabel="optimizer step", ylabel="loss (nats)", title="Loss")
    if len(losses) > 1 and max(losses) / max(min(losses), 1e-8) > 50:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax = axes[1]
    keys = {k for row in history.evals for k in row if k.startswith("val_") and k != "val_loss"}
    metric = metric or next((k for k in ("val_accuracy", "val_perplexity", "val_macro_f1") if k in keys), None)
    if metric:
        msteps, values = history.series(metric)
        scale = 100 if "accuracy" in metric or "f1" in metric else 1
        unit = " (%)" if scale == 100 else ""
        ax.plot(msteps, [v * scale for v in values], "o-", color="tab:green")
        ax.set(xlabel="optimizer step", ylabel=metric.replace("val_", "validation ") + unit, title=metric.replace("val_", "Validation "))
    else:
        ax.text(0.5, 0.5, "no validation set", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


class LivePlot:
    """Learning curves that redraw in place during training in a notebook; one final figure everywhere else."""

    def __init__(self, min_interval_s: float = 2.0):
        self.handle = None
        self.live = in_notebook()
        self.min_interval_s = min_interval_s
        self._last = 0.0

    def update(self, history, force: bool = False) -> None:
        if not self.live or not history.steps:
            return
        now = time.perf_counter()
        if not force and now - self._last < self.min_interval_s:
            return
        self._last = now
        from IPython.display import display

        fig = learning_curves(history)
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)

    def close(self, history) -> None:
        """Draw the final state (replacing the live figure in a notebook)."""
        if self.live:
            self._last = 0.0
            self.update(history, force=True)
        else:
            learning_curves(history)


def confusion_matrix(matrix, class_names: list[str] | None = None, normalize: bool = False, title: str = "Confusion matrix",
                     errors_only: bool = False):
    """Heat map of a confusion matrix: rows are true classes, columns predicted; counts (or row shares) written in.

    `errors_only=True` blanks the diagonal, so the colours show the mistakes instead of being swamped by the hits.
    """
    m = np.asarray(matrix, dtype=float)
    shown = m / m.sum(1, keepdims=True).clip(min=1) if normalize else m.copy()
    if errors_only:
        np.fill_diagonal(shown, 0)
    n = len(m)
    names = class_names or [str(i) for i in range(n)]
    size = max(3.6, 0.45 * n + 1.5)
    fig, ax = plt.subplots(figsize=(size + 0.8, size))
    image = ax.imshow(shown, cmap="Blues")
    ax.grid(False)
    ax.set_xticks(range(n), names, rotation=45 if max(len(s) for s in names) > 2 else 0, ha="right" if max(len(s) for s in names) > 2 else "center")
    ax.set_yticks(range(n), names)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    for i in range(n):
        for j in range(n):
            if errors_only and i == j:
                continue
            text = f"{shown[i, j]:.2f}" if normalize else f"{int(m[i, j])}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if shown[i, j] > shown.max() * 0.6 else "black")
    label = "share of true class" if normalize else "number of examples"
    fig.colorbar(image, ax=ax, fraction=0.046, label=label + (" (diagonal left out)" if errors_only else ""))
    fig.tight_layout()
    return fig


def image_grid(images, titles: list[str] | None = None, ncols: int = 8, cmap: str = "gray", title: str | None = None,
               size: float = 1.3):
    """A grid of small images (N, H, W) or (N, C, H, W) with an optional caption under each."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images.transpose(0, 2, 3, 1)
        if images.shape[-1] == 1:
            images = images[..., 0]
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * (size + 0.45)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            img = images[i]
            if img.ndim == 3:
                img = (img - img.min()) / max(img.max() - img.min(), 1e-8)
            ax.imshow(img, cmap=None if img.ndim == 3 else cmap)
            if titles:
                ax.set_title(titles[i], fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def weight_templates(weight, class_names: list[str] | None = None, shape: tuple[int, int] = (28, 28),
                     title: str = "What each class's weights look for", ncols: int = 5, size: float = 2.1,
                     clip_quantile: float = 1.0):
    """Each row of a linear layer's weight matrix shown as an image: red pixels raise the class score, blue lower it.

    `clip_quantile=0.99` sets the colour scale at the 99th percentile of |w|, so a few extreme pixels do not wash
    out all the others.
    """
    w = np.asarray(weight, dtype=float)
    limit = np.quantile(np.abs(w), clip_quantile)
    names = class_names or [str(i) for i in range(len(w))]
    nrows = -(-len(w) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size + 1.0, nrows * (size + 0.3)), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, row, name in zip(axes.flat, w, names):
        image = ax.imshow(row.reshape(shape), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(name, fontsize=10)
    clipped = f", clipped at ±{limit:.2f}" if clip_quantile < 1 else ""
    fig.colorbar(image, ax=axes, fraction=0.03, label=f"weight (red: ink here raises the score{clipped})")
    fig.suptitle(title)
    return fig


def attention_heatmap(weights, tokens: list[str], title: str = "Attention", ax=None):
    """Attention weights (query rows × key columns) with token labels."""
    w = np.asarray(weights, dtype=float)
    if ax is None:
        size = max(3.5, 0.32 * len(tokens) + 1.5)
        fig, ax = plt.subplots(figsize=(size + 0.6, size))
    else:
        fig = ax.figure
    image = ax.imshow(w, cmap="viridis", vmin=0, vmax=max(w.max(), 1e-8))
    ax.grid(False)
    ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=8)
    ax.set_yticks(range(len(tokens)), tokens, fontsize=8)
    ax.set(xlabel="attended-to token (key)", ylabel="attending token (query)", title=title)
    fig.colorbar(image, ax=ax, fraction=0.046, label="attention weight")
    return fig


def repeated_runs(results: dict, *, grid=None, xlabel: str = "labelled examples", ylabel: str = "test accuracy",
                  percent: bool = False, logx: bool = False, baselines: dict | None = None, title: str | None = None,
                  xticklabels: dict | None = None, confidence: float = 0.95, ax=None, figsize=(8, 4.8)):
    """Repeated runs per setting: every run a dot, the mean with its confidence interval.

    `results` = {method: {x: [score of each run]}}, e.g. {"bag of words": {100: [0.58, 0.61, 0.57], ...}}.
    Only measured points are drawn: a line joins two means only when both are measured at adjacent points of
    `grid` (all x values by default), never across a setting that was not run.
    """
    from .stats import summarize

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    factor = 100 if percent else 1
    xs = sorted(set(grid) if grid is not None else {x for by_x in results.values() for x in by_x})
    m = len(results)
    for i, (name, by_x) in enumerate(results.items()):
        colour = f"C{i}"
        offset = i - (m - 1) / 2   # side by side: methods measured at the same x stay readable
        position = {x: (x * 1.05 ** offset if logx else x + 0.08 * offset * _spacing(xs)) for x in by_x}
        means = {}
        for x, values in sorted(by_x.items()):
            values = np.asarray(values, dtype=float) * factor
            beside = position[x] * 0.97 if logx else position[x] - 0.04 * _spacing(xs)   # dots just left of the mean
            ax.scatter(np.full(values.size, beside), values, s=18, color=colour, alpha=0.55, lw=0, zorder=2)
            s = summarize(values, confidence)
            means[x] = s.mean
            error = None if s.n < 2 else [[s.mean - s.low], [s.high - s.mean]]
            ax.errorbar(position[x], s.mean, yerr=error, fmt="o", color=colour, ms=6, capsize=4, lw=1.6, zorder=3,
                        label=name if x == min(by_x) else None)
        for left, right in zip(xs, xs[1:]):
            if left in means and right in means:
                ax.plot([position[left], position[right]], [means[left], means[right]], color=colour, lw=1.2,
                        alpha=0.8, zorder=1)
    for value in (baselines or {}).values():
        ax.axhline(value * factor, color="0.45", ls=(0, (4, 3)), lw=1, zorder=0)
    low, high = ax.get_ylim()
    right_side = []   # the heights of the labels written at the right end so far
    for label, value in sorted((baselines or {}).items(), key=lambda kv: -kv[1]):
        y = value * factor
        # Two baselines a few percent of the axis apart would print their labels on top of each other: the second
        # goes to the left end of its line.
        right = all(abs(y - other) > 0.04 * (high - low) for other in right_side)
        if right:
            right_side.append(y)
        ax.annotate(label, (1 if right else 0, y), xycoords=("axes fraction", "data"), xytext=(-4 if right else 4, 3),
                    textcoords="offset points", ha="right" if right else "left", fontsize=8, color="0.35")
    if logx:
        ax.set_xscale("log")
    ax.set_xticks(xs, [(xticklabels or {}).get(x, f"{x:,}") for x in xs])
    ax.minorticks_off()
    ax.set(xlabel=xlabel, ylabel=ylabel + (" (%)" if percent else ""),
           title=title or f"Every run a dot; mean with its {100 * confidence:g} % interval")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def _spacing(xs: list) -> float:
    """The smallest gap between settings: side-by-side offsets are a fraction of it on a linear axis."""
    return float(min(np.diff(xs))) if len(xs) > 1 else 1.0
