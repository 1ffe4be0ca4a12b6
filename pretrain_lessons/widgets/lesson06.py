"""Lesson 06 widget: a live linear probe on cached features, one draw of the labelled subset at a time."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from . import figure_output


class ProbeSpread:
    """Validation accuracy of a linear probe for every (target, feature set, budget, draw), computed on demand and
    remembered (each probe takes a fraction of a second on cached features).

    `features[target][name]` = {'pool': …, 'val': …}; `tasks[target]` = (pool_labels, val_labels, class_names).
    """

    def __init__(self, features: dict, tasks: dict, weight_decay: float = 1e-2):
        self.features, self.tasks, self.weight_decay = features, tasks, weight_decay
        self.memo: dict = {}

    def run(self, target: str, name: str, k: int, draw: int) -> tuple[float, torch.Tensor]:
        """(validation accuracy, predicted classes) of the probe trained on draw `draw` of k labels per class."""
        key = (target, name, k, draw)
        if key not in self.memo:
            from ..vision import balanced_subset, probe_predictions

            pool_labels, val_labels, class_names = self.tasks[target]
            feats = self.features[target][name]
            chosen = balanced_subset(pool_labels, k, seed=draw)
            predicted = probe_predictions(feats["pool"][chosen], pool_labels[chosen], feats["val"], len(class_names),
                                          self.weight_decay)
            self.memo[key] = ((predicted == val_labels).float().mean().item(), predicted)
        return self.memo[key]

    def spread(self, target: str, name: str, k: int, n_draws: int) -> np.ndarray:
        """Validation accuracies of the first `n_draws` draws."""
        return np.array([self.run(target, name, k, d)[0] for d in range(n_draws)])


def draw_figure(spread: ProbeSpread, target: str, name: str, k: int, draw: int, n_draws: int):
    """Left: every draw's validation accuracy (the current one ringed) with the mean and its 95 % interval.
    Right: the current draw's confusion matrix."""
    from ..stats import summarize

    values = 100 * spread.spread(target, name, k, n_draws)
    accuracy, predicted = spread.run(target, name, k, draw)
    _, val_labels, class_names = spread.tasks[target]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4.0), gridspec_kw={"width_ratios": [1.25, 1]})
    left.scatter(np.arange(len(values)), values, color="C0", s=28, zorder=2, label="one draw each")
    left.scatter([draw], [values[draw]], s=180, facecolors="none", edgecolors="black", linewidths=2, zorder=3,
                 label=f"draw {draw}: {values[draw]:.1f} %")
    s = summarize(values)
    left.axhline(s.mean, color="C1", lw=2, label=f"mean {s.mean:.1f} %")
    left.axhspan(s.low, s.high, color="C1", alpha=0.2, label=f"95 % interval {s.low:.1f}–{s.high:.1f} %")
    left.set(xlabel="draw of the labelled subset", ylabel="validation accuracy (%)", xticks=range(len(values)),
             title=f"{name}, {k} labels per class: {len(values)} draws", ylim=(max(0, values.min() - 8), min(100, values.max() + 8)))
    left.tick_params(axis="x", labelsize=7)
    left.legend(fontsize=8, loc="lower right")
    n = len(class_names)
    matrix = torch.zeros(n, n)
    for t, p in zip(val_labels.tolist(), predicted.tolist()):
        matrix[t, p] += 1
    matrix = matrix / matrix.sum(1, keepdim=True).clamp(min=1)
    right.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    right.set(xticks=range(n), yticks=range(n), xlabel="predicted class", ylabel="true class",
              title=f"draw {draw}: where its {accuracy:.1%} comes from")
    right.set_xticklabels([c[:7] for c in class_names], rotation=60, fontsize=7)
    right.set_yticklabels([c[:10] for c in class_names], fontsize=7)
    fig.tight_layout()
    return fig


def live_probe(features: dict, tasks: dict, budgets=(1, 2, 5, 10, 20, 50), n_draws: int = 20):
    """Pick a target, a feature set, a budget and a draw: a probe is trained live on the cached features and its
    validation accuracy shown beside every other draw's, with the confusion matrix of the current draw."""
    import ipywidgets as widgets

    spread = ProbeSpread(features, tasks)
    smallest_class = min(int(torch.bincount(pool_labels).min()) for pool_labels, _, _ in tasks.values())
    budgets = [b for b in budgets if b <= smallest_class] or [smallest_class]
    first = list(features)[0]
    target = widgets.Dropdown(options=list(features), value=first, description="target")
    name = widgets.Dropdown(options=list(features[first]), description="features",
                            layout=widgets.Layout(width="360px"))
    budget = widgets.SelectionSlider(options=list(budgets), value=2 if 2 in budgets else budgets[0],
                                     description="labels/class")
    draw = widgets.IntSlider(value=0, min=0, max=n_draws - 1, description="draw")
    out = widgets.Output()

    def redraw(*_):
        out.clear_output(wait=True)
        with out:
            figure_output(draw_figure(spread, target.value, name.value, budget.value, draw.value, n_draws))

    def new_target(change):
        name.options = list(features[change["new"]])
        redraw()

    target.observe(new_target, names="value")
    for control in (name, budget, draw):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([target, name]), widgets.HBox([budget, draw]), out])
