"""Streaming metrics: accumulate over batches on the device, compute once at the end."""
from __future__ import annotations

import math

import torch


class ConfusionMatrix:
    """A streaming confusion matrix (rows: true class, columns: predicted class) with the scores derived from it."""

    def __init__(self, num_classes: int, device: torch.device | str | None = None):
        self.num_classes = num_classes
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.long, device=device)

    def update(self, preds: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch of predicted and true class indices (any shape; entries with target -100 are ignored)."""
        preds, targets = preds.reshape(-1), targets.reshape(-1).to(preds.device)
        keep = targets != -100
        preds, targets = preds[keep], targets[keep]
        c = self.num_classes
        if targets.numel() and (targets.min() < 0 or targets.max() >= c or preds.min() < 0 or preds.max() >= c):
            raise ValueError(f"class indices must lie in 0..{c - 1}; got targets {targets.min().item()}..{targets.max().item()}, "
                             f"predictions {preds.min().item()}..{preds.max().item()}")
        counts = torch.bincount(targets * c + preds, minlength=c * c)
        self.matrix += counts.view(c, c).to(self.matrix.device)

    def compute(self) -> dict:
        """Accuracy; per-class precision, recall, F1 and support; macro and micro averages (0 where undefined)."""
        m = self.matrix.double()
        tp = m.diag()
        predicted = m.sum(0)
        actual = m.sum(1)
        total = m.sum()
        precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
        recall = torch.where(actual > 0, tp / actual.clamp(min=1), torch.zeros_like(tp))
        denom = precision + recall
        f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), torch.zeros_like(tp))
        accuracy = (tp.sum() / total).item() if total > 0 else 0.0
        return {
            "accuracy": accuracy,
            "precision": precision.cpu().tolist(),
            "recall": recall.cpu().tolist(),
            "f1": f1.cpu().tolist(),
            "support": actual.long().cpu().tolist(),
            "macro_precision": precision.mean().item(),
            "macro_recall": recall.mean().item(),
            "macro_f1": f1.mean().item(),
            # With one label per example, micro precision = micro recall = micro F1 = accuracy.
            "micro_precision": accuracy,
            "micro_recall": accuracy,
            "micro_f1": accuracy,
        }


class MeanMetric:
    """A weighted running mean (e.g. loss weighted by the number of examples or tokens in each batch)."""

    def __init__(self):
        self.total = 0.0
        self.weight = 0.0

    def update(self, value: float, weight: float = 1.0) -> None:
        self.total += float(value) * weight
        self.weight += weight

    def compute(self) -> float:
        return self.total / self.weight if self.weight else float("nan")


class Perplexity(MeanMetric):
    """exp(mean negative log-likelihood per token): the branching factor the model is 'choosing among'."""

    def compute(self) -> float:
        return perplexity(super().compute())


def perplexity(mean_nll: float) -> float:
    """exp(loss), capped so that an untrained model's huge loss prints as inf rather than raising."""
    return math.exp(mean_nll) if mean_nll < 700 else float("inf")


def accuracy(preds: torch.Tensor, targets: torch.Tensor) -> float:
    """Share of predictions equal to the target (targets of -100 ignored)."""
    keep = targets != -100
    return (preds[keep] == targets[keep]).double().mean().item()


def classification_table(scores: dict, class_names: list[str] | None = None):
    """Per-class precision / recall / F1 / support plus macro and micro rows, as a pandas DataFrame."""
    import pandas as pd

    names = class_names or [str(i) for i in range(len(scores["f1"]))]
    rows = {name: [scores["precision"][i], scores["recall"][i], scores["f1"][i], scores["support"][i]]
            for i, name in enumerate(names)}
    total = sum(scores["support"])
    rows["macro avg"] = [scores["macro_precision"], scores["macro_recall"], scores["macro_f1"], total]
    rows["micro avg"] = [scores["micro_precision"], scores["micro_recall"], scores["micro_f1"], total]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["precision", "recall", "f1", "support"])
    table["support"] = table["support"].astype(int)
    return table.round(4)
