"""Lesson 02 helpers: seed 000's MNIST model, the data as flat tensors, epoch timing, per-epoch learning curves."""
from __future__ import annotations

import time
from typing import Iterable

import matplotlib.pyplot as plt
import torch
from torch import nn

from .data.loaders import TensorLoader, mnist_tensors, split_train_val

SEED_MEAN, SEED_STD = 0.5, 0.5   # seed 000's transforms.Normalize((0.5,), (0.5,)): pixels mapped to [-1, 1]


class SeedModel(nn.Module):
    """Seed 000's model as written: flatten the 28×28 image, one linear layer to 10 logits (softmax regression)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(784, 10)

    def forward(self, x):
        x = x.view(x.size(0), -1)
        x = self.linear(x)
        return x


def normalize(images: torch.Tensor, mean: float = SEED_MEAN, std: float = SEED_STD) -> torch.Tensor:
    """uint8 images (N, 28, 28) → float32 (N, 784), as ToTensor() then Normalize((mean,), (std,)) would make them."""
    return ((images.float() / 255 - mean) / std).reshape(len(images), -1)


def flat_mnist(val_size: int = 5000, seed: int = 0, mean: float = SEED_MEAN, std: float = SEED_STD) -> dict:
    """MNIST as flat normalised tensors with a fixed validation split: x/y_train, x/y_val, x/y_test (and images)."""
    raw = mnist_tensors()
    x, y = normalize(raw["train_images"], mean, std), raw["train_labels"]
    train_idx, val_idx = split_train_val(len(x), val_size, seed)
    return {"x_train": x[train_idx], "y_train": y[train_idx], "x_val": x[val_idx], "y_val": y[val_idx],
            "x_test": normalize(raw["test_images"], mean, std), "y_test": raw["test_labels"],
            "test_images": raw["test_images"]}


def time_training(model: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer,
                  max_steps: int | None = None) -> tuple[float, int]:
    """Seed 000's loop body (forward, loss, zero_grad, backward, step) over a loader; (seconds, steps) taken."""
    criterion = nn.CrossEntropyLoss()
    steps = 0
    start = time.perf_counter()
    for inputs, labels in loader:
        loss = criterion(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
        if max_steps is not None and steps >= max_steps:
            break
    return time.perf_counter() - start, steps


class EpochMetrics:
    """A fit() callback: at the end of each epoch, loss and accuracy on the whole training set (model in eval mode)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, steps_per_epoch: int):
        self.x, self.y, self.steps_per_epoch = x, y, steps_per_epoch
        self.rows: list[dict] = []

    @torch.no_grad()
    def __call__(self, info: dict) -> None:
        if info["step"] % self.steps_per_epoch:
            return
        model = info["model"]
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        logits = torch.cat([model(xb.to(device)).float().cpu() for xb in self.x.split(10_000)])
        model.train(was_training)
        self.rows.append({"epoch": info["step"] // self.steps_per_epoch,
                          "train_loss": nn.functional.cross_entropy(logits, self.y).item(),
                          "train_accuracy": (logits.argmax(1) == self.y).double().mean().item()})


def epoch_table(history, train_rows: list[dict]):
    """One row per epoch: train and validation loss and accuracy (pandas DataFrame)."""
    import pandas as pd

    val = [{"epoch": r["epoch"], "val_loss": r["val_loss"], "val_accuracy": r["val_accuracy"]} for r in history.evals]
    table = pd.DataFrame(train_rows).merge(pd.DataFrame(val), on="epoch")
    return table.set_index("epoch")


def epoch_curves(table, title: str = "Learning curves, one point per epoch"):
    """Train and validation loss (left) and accuracy in % (right) against the epoch."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = table.index
    ax1.plot(epochs, table["train_loss"], "o-", label="train")
    ax1.plot(epochs, table["val_loss"], "s-", label="validation")
    ax1.set(xlabel="epoch", ylabel="cross-entropy loss (nats)", title="Loss")
    ax2.plot(epochs, 100 * table["train_accuracy"], "o-", label="train")
    ax2.plot(epochs, 100 * table["val_accuracy"], "s-", label="validation")
    ax2.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    for ax in (ax1, ax2):
        ax.legend()
        ax.set_xticks(list(epochs))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def train_briefly(data: dict, lr: float, batch_size: int, steps: int, seed: int = 0):
    """A fresh linear model trained `steps` SGD steps; returns (history, validation accuracy). For the widget."""
    from .train import fit

    torch.manual_seed(seed)
    model = nn.Linear(784, 10)
    loader = TensorLoader(data["x_train"], data["y_train"], batch_size=batch_size, shuffle=True)
    history = fit(model, loader, max_steps=steps, optimizer=torch.optim.SGD(model.parameters(), lr=lr),
                  progress=False, device="cpu")
    with torch.no_grad():
        accuracy = (model(data["x_val"]).argmax(1) == data["y_val"]).double().mean().item()
    return history, accuracy
