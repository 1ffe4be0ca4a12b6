"""Lesson 02 helpers: seed 000's MNIST model, the data as flat tensors, epoch timing, per-epoch learning curves."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
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


# ---------------------------------------------------------------- many recipes and seeds at once, by hand


@dataclass(frozen=True)
class Recipe:
    """One way to train softmax regression with SGD: learning rate, momentum, and a constant or cosine schedule."""

    lr: float
    momentum: float = 0.0
    schedule: str = "constant"   # "constant", or "cosine": decay from lr to 0 over the run

    def __str__(self) -> str:
        parts = [f"lr {self.lr:g}"] + ([f"momentum {self.momentum:g}"] if self.momentum else [])
        return ", ".join(parts + [self.schedule])


def linear_init(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The starting weights (784, 10) and bias (10,) of nn.Linear(784, 10) created after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    layer = nn.Linear(784, 10)
    return layer.weight.detach().T.clone(), layer.bias.detach().clone()


def softmax_regression_grads(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor):
    """Gradients of the mean cross-entropy of softmax(x @ w + b), by lesson 01's formula: Xᵀ(softmax − one_hot)/N.

    Works for one model (x: N×784, w: 784×10) and for a stack of models (x: M×N×784, w: M×784×10, b: M×1×10).
    """
    error = torch.softmax(x @ w + b, dim=-1)
    error.scatter_add_(-1, y.unsqueeze(-1), -torch.ones_like(y, dtype=error.dtype).unsqueeze(-1))   # − one_hot
    error /= x.shape[-2]
    return x.transpose(-1, -2) @ error, error.sum(-2, keepdim=error.dim() == 3)


def epoch_orders(n: int, seeds: list[int], epochs: int) -> list[torch.Tensor]:
    """For each epoch, one shuffle of n examples per seed (seeds × n): the same seed gives the same batches."""
    generators = [torch.Generator().manual_seed(1000 + s) for s in seeds]
    return [torch.stack([torch.randperm(n, generator=g) for g in generators]) for _ in range(epochs)]


def train_many(x: torch.Tensor, y: torch.Tensor, recipes: list[Recipe], seeds: list[int], epochs: int,
               batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor, list[tuple[Recipe, int]]]:
    """Train one softmax regression per (recipe, seed), all at once, with the hand-derived gradient and no autograd.

    Each seed fixes the starting weights and the order of the batches, shared by every recipe — so two recipes
    differ only in the recipe (a paired comparison). The recipes of one seed see the same batch, so their logits
    come from one matrix product. Returns weights (M, 784, 10), biases (M, 1, 10) and the (recipe, seed) of each model.
    """
    S, R, C = len(seeds), len(recipes), 10
    inits = [linear_init(s) for s in seeds]
    w = torch.stack([wi for wi, _ in inits]).unsqueeze(2).repeat(1, 1, R, 1)          # (S, 784, R, C)
    b = torch.stack([bi for _, bi in inits]).view(S, 1, 1, C).repeat(1, 1, R, 1)       # (S, 1, R, C)
    shape = (1, 1, R, 1)
    lr = torch.tensor([r.lr for r in recipes]).view(shape)
    momentum = torch.tensor([r.momentum for r in recipes]).view(shape)
    cosine = torch.tensor([r.schedule == "cosine" for r in recipes]).view(shape)
    velocity_w, velocity_b = torch.zeros_like(w), torch.zeros_like(b)
    n = len(x)
    total = epochs * -(-n // batch_size)
    step = 0
    for order in epoch_orders(n, seeds, epochs):
        for start in range(0, n, batch_size):
            idx = order[:, start:start + batch_size]
            xb, yb = x[idx], y[idx]                                                      # (S, B, 784), (S, B)
            logits = (xb @ w.flatten(2)).view(S, -1, R, C) + b
            error = torch.softmax(logits, dim=-1)                                        # softmax − one_hot, / B
            error.scatter_add_(-1, yb.view(S, -1, 1, 1).expand(-1, -1, R, 1), -torch.ones(1, 1, 1, 1).expand(S, xb.shape[1], R, 1))
            error /= xb.shape[1]
            grad_w = (xb.transpose(1, 2) @ error.flatten(2)).view_as(w)
            grad_b = error.sum(1, keepdim=True)
            factor = torch.where(cosine, 0.5 * (1 + math.cos(math.pi * step / total)), 1.0)
            velocity_w = momentum * velocity_w + grad_w                                  # torch.optim.SGD's momentum
            velocity_b = momentum * velocity_b + grad_b
            w -= lr * factor * velocity_w
            b -= lr * factor * velocity_b
            step += 1
    runs = [(r, s) for r in recipes for s in seeds]
    weights = torch.stack([w[seeds.index(s), :, recipes.index(r)] for r, s in runs])
    biases = torch.stack([b[seeds.index(s), :, recipes.index(r)] for r, s in runs])
    return weights, biases, runs


def sgd_with_autograd(x: torch.Tensor, y: torch.Tensor, recipe: Recipe, seed: int, epochs: int,
                      batch_size: int = 64) -> nn.Linear:
    """The same training as one model of train_many, written the usual way: nn.Linear, autograd, torch.optim.SGD."""
    model = nn.Linear(784, 10)
    w, b = linear_init(seed)
    with torch.no_grad():
        model.weight.copy_(w.T)
        model.bias.copy_(b)
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum)
    total = epochs * -(-len(x) // batch_size)
    cosine = recipe.schedule == "cosine"
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)) if cosine else 1.0)
    for order in epoch_orders(len(x), [seed], epochs):
        for start in range(0, len(x), batch_size):
            idx = order[0, start:start + batch_size]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model


@torch.no_grad()
def accuracies(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Accuracy of each stacked model (M, 784, 10) on (x, y)."""
    return torch.stack([((x @ wi + bi).argmax(1) == y).double().mean() for wi, bi in zip(w, b)])
