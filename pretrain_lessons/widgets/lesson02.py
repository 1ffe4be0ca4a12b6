"""Lesson 02 widget: train the MNIST linear model briefly with a chosen learning rate and batch size."""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from ..mnist_linear import train_briefly
from ..plots import _smooth
from ..train import NonFiniteLossError
from . import figure_output

MAX_RUNS = 6   # older runs drop off the plot
LEARNING_RATES = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 0.5, 1.0, 2.0, 5.0)


def _curves_figure(runs: list[dict], title: str = "Learning curves of your runs"):
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for run in runs:
        values = run["losses"]
        window = max(1, len(values) // 20)
        smooth = _smooth(values, window)
        seen = (np.arange(len(values) - len(smooth), len(values)) + 1) * run["batch_size"]
        ax.plot(seen, smooth, label=run["label"])
    ax.set(xlabel="training images seen", ylabel="training loss (nats, smoothed)", title=title)
    if runs and max(max(r["losses"]) for r in runs) > 20:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _run(data: dict, lr: float, batch_size: int, images: int) -> dict:
    """One short run: its per-step losses and validation accuracy, or why it failed."""
    steps = max(1, images // batch_size)
    settings = f"lr {lr:g}, batch {batch_size}, {steps} steps"
    try:
        history, accuracy = train_briefly(data, lr, batch_size, steps)
    except NonFiniteLossError:
        return {"settings": settings, "failed": True}
    losses = [r["loss"] for r in history.steps]
    return {"settings": settings, "failed": False, "losses": losses, "accuracy": accuracy, "batch_size": batch_size,
            "seconds": history.seconds, "examples": history.examples,
            "label": f"{settings}: val acc {100 * accuracy:.1f} %"}


def compare_learning_rates(data: dict, lrs=(0.0001, 0.01, 0.5, 5.0), images: int = 19_200, batch_size: int = 64):
    """One short plain-SGD run per learning rate on the same data budget: (figure of the curves, table of results)."""
    import pandas as pd

    runs = [_run(data, lr, batch_size, images) for lr in lrs]
    table = pd.DataFrame([{"learning rate": lr, "first loss": r["losses"][0] if not r["failed"] else float("nan"),
                           "final loss (mean of last 20 steps)": np.mean(r["losses"][-20:]) if not r["failed"] else float("inf"),
                           "validation accuracy": r["accuracy"] if not r["failed"] else float("nan")}
                          for lr, r in zip(lrs, runs)]).set_index("learning rate")
    fig = _curves_figure([r for r in runs if not r["failed"]],
                         title=f"Plain SGD, batch {batch_size}, the same {images:,} images for each rate")
    return fig, table


def learning_rate_explorer(data: dict, lr: float = 0.01, batch_size: int = 64, images: int = 19_200,
                           initial_images: int | None = None) -> widgets.VBox:
    """Pick a learning rate, batch size and number of images to learn from, press Train: the curve is added.

    The budget is counted in images seen, not steps, so that two batch sizes are compared on the same data.
    The widget shows one run at build time so that it renders even when the notebook runs without a live kernel.
    """
    style = {"description_width": "150px"}
    lr_slider = widgets.SelectionSlider(options=LEARNING_RATES, value=min(LEARNING_RATES, key=lambda v: abs(v - lr)),
                                        description="learning rate", continuous_update=False, style=style,
                                        layout=widgets.Layout(width="480px"))
    batch = widgets.Dropdown(options=[8, 16, 32, 64, 128, 256, 512, 1024], value=batch_size, description="batch size",
                             style=style)
    images_slider = widgets.IntSlider(value=images, min=3_200, max=128_000, step=3_200,
                                      description="training images seen", continuous_update=False, style=style,
                                      layout=widgets.Layout(width="480px"))
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

    def train(n_images: int) -> None:
        label.value = f"Training (lr {lr_slider.value:g}, batch {batch.value})…"
        run = _run(data, lr_slider.value, batch.value, n_images)
        if run["failed"]:
            label.value = f"<b>{run['settings']}: the loss became NaN/inf</b> — the learning rate is far too high."
            return
        runs.append(run)
        del runs[:-MAX_RUNS]
        per_second = run["examples"] / max(run["seconds"], 1e-9)
        label.value = (f"<b>{run['settings']}</b> → final training loss {np.mean(run['losses'][-20:]):.3f} nats "
                       f"(mean of the last 20 steps), <b>validation accuracy {100 * run['accuracy']:.1f} %</b>, "
                       f"{run['seconds']:.1f} s ({per_second:,.0f} images/s)")
        redraw()

    train_button.on_click(lambda _=None: train(images_slider.value))

    def on_clear(_=None) -> None:
        runs.clear()
        label.value = "Runs cleared."
        redraw()

    clear_button.on_click(on_clear)
    train(initial_images if initial_images is not None else images)
    help_text = widgets.HTML("Choose a learning rate, a batch size and how many training images to learn from, then "
                             "press <b>Train</b>: a fresh linear model trains with plain SGD and its curve joins the "
                             "plot. The budget is in images, so a larger batch takes fewer, smoother steps over the same "
                             "data.")
    box = widgets.VBox([help_text, lr_slider, batch, images_slider, widgets.HBox([train_button, clear_button]), label, out])
    box.lr, box.batch, box.images, box.train_button, box.label, box.runs = (lr_slider, batch, images_slider, train_button,
                                                                           label, runs)
    return box
