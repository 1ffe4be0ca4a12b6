"""Lesson 06 figures and widget: accuracy vs label budget per transfer method, and sample predictions."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from . import figure_output

MARKERS = ["o", "s", "D", "^", "v", "P", "X"]


def budget_curves(results: dict, highlight: tuple[str, int] | None = None, ax=None, chance: float | None = 0.1):
    """Test accuracy (%) vs labelled examples per class (log axis), one curve per method; optionally ring one point.

    `results[method][budget]` is a dict with at least 'accuracy' (a fraction).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.8))
    for i, (method, by_budget) in enumerate(results.items()):
        budgets = sorted(by_budget)
        accs = [100 * by_budget[b]["accuracy"] for b in budgets]
        ax.plot(budgets, accs, marker=MARKERS[i % len(MARKERS)], color=f"C{i}", label=method)
    if highlight is not None and highlight[1] in results.get(highlight[0], {}):
        method, budget = highlight
        acc = 100 * results[method][budget]["accuracy"]
        ax.plot([budget], [acc], "o", ms=16, mfc="none", mec="black", mew=2)
        ax.annotate(f"{acc:.1f} %", (budget, acc), textcoords="offset points", xytext=(10, -16), fontsize=9)
    if chance is not None:
        ax.axhline(100 * chance, color="grey", ls=":", lw=1, label="chance")
    ax.set_xscale("log")
    all_budgets = sorted({b for by_budget in results.values() for b in by_budget})
    ax.set_xticks(all_budgets, [str(b) for b in all_budgets])
    ax.minorticks_off()
    ax.set(xlabel="labelled training images per class (log scale)", ylabel="test accuracy (%)",
           title="Fashion-MNIST: what transfer buys at each label budget")
    ax.legend(fontsize=8, loc="lower right")
    return ax.figure


def prediction_grid(images, predictions: dict[str, np.ndarray], truth, class_names: list[str], size: float = 1.05):
    """Rows of the same test images, one row per model: each title is the predicted class, green if right, red if wrong."""
    images, truth = np.asarray(images), np.asarray(truth)
    n = len(images)
    fig, axes = plt.subplots(len(predictions), n, figsize=(n * size + 1.6, len(predictions) * (size + 0.35)), squeeze=False)
    for row, (name, preds) in zip(axes, predictions.items()):
        for j, ax in enumerate(row):
            ax.imshow(images[j], cmap="gray_r")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            ok = preds[j] == truth[j]
            ax.set_title(class_names[preds[j]], fontsize=7, color="tab:green" if ok else "tab:red")
        row[0].set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle("Predicted class (green: right, red: wrong); true classes: "
                 + ", ".join(class_names[t] for t in truth), fontsize=8)
    fig.tight_layout()
    return fig


def transfer_explorer(results: dict, images, sample_truth, class_names: list[str]):
    """Pick a method and a label budget: its point on the curves is ringed and its predictions on sample images shown.

    `results[method][budget]['sample_predictions']` holds the predicted classes of `images` (computed beforehand;
    nothing is trained here).
    """
    import ipywidgets as widgets

    methods = list(results)
    budgets = sorted({b for by_budget in results.values() for b in by_budget})
    method = widgets.Dropdown(options=methods, value=methods[0], description="method")
    budget = widgets.SelectionSlider(options=budgets, value=budgets[0], description="labels/class")
    out = widgets.Output()

    def draw(*_):
        out.clear_output(wait=True)
        with out:
            entry = results[method.value].get(budget.value)
            fig = plt.figure(figsize=(9, 5.4))
            grid = fig.add_gridspec(2, 8, height_ratios=[2.4, 1])
            budget_curves(results, (method.value, budget.value), ax=fig.add_subplot(grid[0, :]))
            if entry is None:
                fig.text(0.5, 0.15, f"{method.value} was not run with {budget.value} labels per class",
                         ha="center")
            else:
                preds = np.asarray(entry["sample_predictions"])
                for j in range(min(8, len(images))):
                    ax = fig.add_subplot(grid[1, j])
                    ax.imshow(np.asarray(images[j]), cmap="gray_r")
                    ax.set_axis_off()
                    ok = preds[j] == sample_truth[j]
                    ax.set_title(f"{class_names[preds[j]]}\n(true: {class_names[sample_truth[j]]})",
                                 fontsize=7, color="tab:green" if ok else "tab:red")
            fig.tight_layout()
            figure_output(fig)

    method.observe(draw, names="value")
    budget.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([method, budget]), out])
