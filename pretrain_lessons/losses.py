"""Cross-entropy written out step by step (lesson 01): softmax, log-softmax, negative log-likelihood, gradient.

These are the textbook formulas in a few lines each, so that they can be compared with PyTorch's
`F.cross_entropy`; use PyTorch's in real training (it is fused and faster).
"""
from __future__ import annotations

import torch


def softmax_naive(logits: torch.Tensor) -> torch.Tensor:
    """exp(z) / Σ exp(z) exactly as written: overflows to inf/nan once a logit exceeds about 88 (float32)."""
    e = torch.exp(logits)
    return e / e.sum(dim=-1, keepdim=True)


def logsumexp(logits: torch.Tensor) -> torch.Tensor:
    """log Σ_j exp(z_j), computed as m + log Σ_j exp(z_j − m) with m = max z, which never overflows."""
    m = logits.max(dim=-1, keepdim=True).values
    return (m + torch.log(torch.exp(logits - m).sum(dim=-1, keepdim=True))).squeeze(-1)


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """log p = z − logsumexp(z), computed as (z − m) − log Σ exp(z − m): stable log-probabilities."""
    shifted = logits - logits.max(dim=-1, keepdim=True).values  # subtract first: keeps small differences exact
    return shifted - torch.log(torch.exp(shifted).sum(dim=-1, keepdim=True))


def softmax(logits: torch.Tensor) -> torch.Tensor:
    """Stable softmax: exp of the stable log-softmax."""
    return torch.exp(log_softmax(logits))


def nll(log_probs: torch.Tensor, labels: torch.Tensor, reduction: str = "mean", ignore_index: int = -100) -> torch.Tensor:
    """Negative log-likelihood −log p(y_i) of the true classes; entries labelled `ignore_index` are left out."""
    log_probs = log_probs.reshape(-1, log_probs.shape[-1])
    labels = labels.reshape(-1)
    keep = labels != ignore_index
    picked = -log_probs[keep].gather(1, labels[keep].unsqueeze(1)).squeeze(1)
    if reduction == "none":
        return picked
    if reduction == "sum":
        return picked.sum()
    if reduction == "mean":
        return picked.mean()
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none'; got {reduction!r}")


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean",
                  ignore_index: int = -100) -> torch.Tensor:
    """L = −1/N Σ log softmax(z_i)[y_i] (mean) or −Σ … (sum): the same number as F.cross_entropy."""
    return nll(log_softmax(logits), labels, reduction, ignore_index)


def cross_entropy_grad(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """∂L/∂z = softmax(z) − one_hot(y), divided by N for the mean: the gradient autograd computes."""
    grad = softmax(logits) - torch.nn.functional.one_hot(labels, logits.shape[-1]).to(logits.dtype)
    return grad / len(labels) if reduction == "mean" else grad
