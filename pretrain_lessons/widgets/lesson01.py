"""Lesson 01 widgets: drag a probability or three logits and watch the cross-entropy loss."""
from __future__ import annotations

import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

from ..losses import log_softmax
from . import figure_output


def loss_of_probability(p: float) -> float:
    """−log p in nats: the loss of one example whose true class gets probability p."""
    return -math.log(p)


def _probability_figure(p: float):
    grid = np.linspace(0.005, 1.0, 400)
    fig, ax = plt.subplots(figsize=(5.6, 3.2))
    ax.plot(grid, -np.log(grid), color="tab:blue", label="loss = −log p")
    ax.plot([p], [loss_of_probability(p)], "o", color="tab:red", markersize=9, label=f"p = {p:.2f}")
    ax.vlines(p, 0, loss_of_probability(p), colors="tab:red", linestyles=":")
    ax.set(xlabel="p(y | x): probability given to the true class", ylabel="loss (nats)", xlim=(0, 1.02), ylim=(0, 5.5),
           title="Cross-entropy of one example")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def _probability_text(p: float) -> str:
    loss = loss_of_probability(p)
    return (f"<b>p(y|x) = {p:.2f}</b> → loss −log p = <b>{loss:.3f} nats</b> "
            f"(perplexity e<sup>loss</sup> = 1/p = {math.exp(loss):.2f})")


def probability_slider(p: float = 0.5) -> widgets.VBox:
    """A slider for p(y|x) with the −log p curve and a label giving the loss."""
    slider = widgets.FloatSlider(value=p, min=0.01, max=1.0, step=0.01, description="p(y|x)", readout_format=".2f",
                                 continuous_update=False, layout=widgets.Layout(width="420px"),
                                 tooltip="probability the model gives to the true class")
    label = widgets.HTML(_probability_text(p))
    out = widgets.Output()

    def redraw(change=None) -> None:
        label.value = _probability_text(slider.value)
        out.clear_output(wait=True)
        with out:
            figure_output(_probability_figure(slider.value))

    slider.observe(redraw, names="value")
    redraw()
    help_text = widgets.HTML("Drag the slider: the probability the model gives to the <i>true</i> class. "
                             "The loss is small when p is near 1 and grows without bound as p → 0.")
    box = widgets.VBox([help_text, slider, label, out])
    box.slider, box.label, box.out = slider, label, out  # handles for tests and for learners who want to poke
    return box


def softmax_and_loss(logits: list[float], true_class: int) -> tuple[list[float], float]:
    """Softmax probabilities of some logits and the cross-entropy for the true class."""
    logp = log_softmax(torch.tensor(logits, dtype=torch.float64))
    return logp.exp().tolist(), float(-logp[true_class])


def _logits_figure(probs: list[float], true_class: int, names: list[str]):
    fig, ax = plt.subplots(figsize=(5.6, 3.2))
    colours = ["tab:green" if i == true_class else "tab:gray" for i in range(len(probs))]
    bars = ax.bar(names, probs, color=colours)
    for bar, p in zip(bars, probs):
        ax.text(bar.get_x() + bar.get_width() / 2, p + 0.02, f"{p:.3f}", ha="center", fontsize=9)
    ax.set(ylim=(0, 1.12), ylabel="softmax probability", xlabel="class (green: the true class)",
           title="softmax(logits)")
    fig.tight_layout()
    return fig


def _logits_text(logits: list[float], probs: list[float], true_class: int, loss: float) -> str:
    zs = ", ".join(f"{z:+.1f}" for z in logits)
    return (f"logits ({zs}) → p(true class {true_class}) = <b>{probs[true_class]:.3f}</b> → "
            f"cross-entropy loss = <b>{loss:.3f} nats</b>")


def logit_sliders(logits: tuple[float, float, float] = (2.0, 1.0, 0.1), true_class: int = 0) -> widgets.VBox:
    """Three logit sliders, a shift added to all of them, a temperature dividing all of them, and a true-class choice,
    with the softmax bars and the loss of (z + shift) / temperature."""
    names = ["class 0", "class 1", "class 2"]
    layout = widgets.Layout(width="420px")
    sliders = [widgets.FloatSlider(value=z, min=-6.0, max=6.0, step=0.1, description=f"logit z{i}",
                                   continuous_update=False, readout_format="+.1f", layout=layout)
               for i, z in enumerate(logits)]
    shift = widgets.FloatSlider(value=0.0, min=-10.0, max=10.0, step=0.5, description="add to all",
                                continuous_update=False, readout_format="+.1f", layout=layout)
    temperature = widgets.FloatLogSlider(value=1.0, base=10, min=-1, max=1, step=0.05, description="temperature T",
                                         continuous_update=False, readout_format=".2f", layout=layout)
    choice = widgets.ToggleButtons(options=[(n, i) for i, n in enumerate(names)], value=true_class,
                                   description="true class", style={"button_width": "80px"})
    label = widgets.HTML()
    out = widgets.Output()

    def redraw(change=None) -> None:
        zs = [(s.value + shift.value) / temperature.value for s in sliders]
        probs, loss = softmax_and_loss(zs, choice.value)
        label.value = _logits_text(zs, probs, choice.value, loss)
        out.clear_output(wait=True)
        with out:
            figure_output(_logits_figure(probs, choice.value, names))

    for w in (*sliders, shift, temperature, choice):
        w.observe(redraw, names="value")
    redraw()
    help_text = widgets.HTML("Move the logits (the model's raw scores) and pick the true class. Raise the true "
                             "class's logit and the loss falls; raise another class's and it grows. <i>add to all</i> "
                             "shifts every logit by the same amount; <i>temperature</i> divides them all by T.")
    box = widgets.VBox([help_text, *sliders, shift, temperature, choice, label, out])
    box.sliders, box.shift, box.temperature, box.choice, box.label, box.out = (sliders, shift, temperature, choice,
                                                                             label, out)
    return box
