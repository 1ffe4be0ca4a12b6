"""Lesson 02 widget: train the MNIST linear model briefly with a chosen learning rate and batch size."""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from ..mnist_linear import train_briefly
from ..train import NonFiniteLossError
from . import figure_output

MAX_RUNS = 6   # older runs drop off the plot


def _smoothed(values: list[float], window: int) -> np.ndarray:
    if len(values) < window or window <= 1:
        return np.asarray(values)
    return np.convolve(values, np.ones(window) / window, mode="valid")


def _curves_figure(runs: list[dict]):
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for run in runs:
        values = run["losses"]
        window = max(1, len(values) // 20)
        smooth = _smoothed(values, window)
        ax.plot(range(len(values) - len(smooth) + 1, len(values) + 1), smooth, label=run["label"])
    ax.set(xlabel="optimizer step", ylabel="training loss (nats, smoothed)", title="Learning curves of your runs")
    if runs and max(max(r["losses"]) for r in runs) > 20:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def learning_rate_explorer(data: dict, lr: float = 0.01, batch_size: int = 64, steps: int = 300,
                           initial_steps: int | None = None) -> widgets.VBox:
    """Pick a learning rate, batch size and number of steps, press Train: a fresh model trains and its curve is added.

    The widget shows one run at build time (`initial_steps` of them, default `steps`) so that it renders
    even when the notebook runs without a live kernel.
    """
    lr_slider = widgets.FloatLogSlider(value=lr, base=10, min=-4, max=1, step=0.25, description="learning rate",
                                       readout_format=".4f", continuous_update=False, style={"description_width": "110px"},
                                       layout=widgets.Layout(width="460px"))
    batch = widgets.Dropdown(options=[8, 16, 32, 64, 128, 256, 512, 1024], value=batch_size, description="batch size",
                             style={"description_width": "110px"})
    steps_slider = widgets.IntSlider(value=steps, min=50, max=2000, step=50, description="SGD steps",
                                     continuous_update=False, style={"description_width": "110px"},
                                     layout=widgets.Layout(width="460px"))
    train_button = widgets.Button(description="Train", button_style="primary", icon="play",
                                  tooltip="train a fresh linear model with these settings")
    clear_button = widgets.Button(description="Clear runs", tooltip="forget the curves drawn so far")
    label = widgets.HTML()
    out = widgets.Output()
    runs: list[dict] = []

    def redraw() -> None:
        out.clear_output(wait=True)
        with out:
            figure_output(_curves_figure(runs))

    def train(n_steps: int) -> None:
        settings = f"lr {lr_slider.value:.4g}, batch {batch.value}, {n_steps} steps"
        label.value = f"Training ({settings})…"
        try:
            history, accuracy = train_briefly(data, lr_slider.value, batch.value, n_steps)
        except NonFiniteLossError:
            label.value = f"<b>{settings}: the loss became NaN/inf</b> — the learning rate is far too high."
            return
        losses = [r["loss"] for r in history.steps]
        runs.append({"label": f"{settings}: val acc {100 * accuracy:.1f} %", "losses": losses})
        del runs[:-MAX_RUNS]
        per_second = history.examples / max(history.seconds, 1e-9)
        label.value = (f"<b>{settings}</b> → final training loss {np.mean(losses[-20:]):.3f} nats (mean of last 20 steps), "
                       f"<b>validation accuracy {100 * accuracy:.1f} %</b>, {history.seconds:.1f} s "
                       f"({per_second:,.0f} images/s)")
        redraw()

    def on_train(_=None) -> None:
        train(steps_slider.value)

    def on_clear(_=None) -> None:
        runs.clear()
        label.value = "Runs cleared."
        redraw()

    train_button.on_click(on_train)
    clear_button.on_click(on_clear)
    train(initial_steps if initial_steps is not None else steps)
    help_text = widgets.HTML("Choose a learning rate, a batch size and a number of steps, then press <b>Train</b>: "
                             "a fresh linear model trains with plain SGD and its curve joins the plot, so runs can be "
                             "compared. Try 0.0001, 0.01, 0.5 and 5.")
    box = widgets.VBox([help_text, lr_slider, batch, steps_slider, widgets.HBox([train_button, clear_button]), label, out])
    box.lr, box.batch, box.steps, box.train_button, box.label, box.runs = lr_slider, batch, steps_slider, train_button, label, runs
    return box
