"""Cross-entropy written out step by step (lesson 01): softmax, log-softmax, negative log-likelihood, gradient;
and the lesson's toy transfer experiment (pretrain, fine-tune, score on held-out examples).

The formulas are the textbook ones in a few lines each, so that they can be compared with PyTorch's
`F.cross_entropy`; use PyTorch's in real training (it is fused and faster).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


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


def transfer_experiment(draw: int, related: bool = True, n_new: int = 8, pre_steps: int = 100, fine_steps: int = 10,
                        lr: float = 0.5, n_heldout: int = 2000) -> dict:
    """Lesson 01's toy transfer: pretrain a linear classifier on task A, fine-tune on 8 examples of task B; score both
    the fine-tuned model and one trained from scratch on held-out examples of task B.

    Task B's true weights are task A's plus noise (`related=True`) or drawn afresh (`related=False`). Each `draw`
    fixes the tasks, the data and the starting weights. Returns {"fine-tuned"|"scratch": {"heldout_loss",
    "heldout_accuracy", "train_loss"}}.
    """
    import copy

    gen = torch.Generator().manual_seed(draw)
    true_w = torch.randn(5, 3, generator=gen)
    x_pre = torch.randn(64, 5, generator=gen)
    y_pre = (x_pre @ true_w).argmax(1)
    new_w = true_w + 0.5 * torch.randn(5, 3, generator=gen) if related else torch.randn(5, 3, generator=gen)
    x_new = torch.randn(n_new, 5, generator=gen)
    y_new = (x_new @ new_w).argmax(1)
    x_held = torch.randn(n_heldout, 5, generator=gen)
    y_held = (x_held @ new_w).argmax(1)

    def steps(model, x, y, k):
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        for _ in range(k):
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # models of 18 weights: more threads only add overhead, and crawl on a busy machine
    try:
        torch.manual_seed(draw)
        pretrained = torch.nn.Linear(5, 3)
        steps(pretrained, x_pre, y_pre, pre_steps)
        fine_tuned = copy.deepcopy(pretrained)          # θ' starts as a copy of θ
        steps(fine_tuned, x_new, y_new, fine_steps)
        torch.manual_seed(10_000 + draw)
        scratch = torch.nn.Linear(5, 3)
        steps(scratch, x_new, y_new, fine_steps)
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        return {name: {"heldout_loss": F.cross_entropy(m(x_held), y_held).item(),
                       "heldout_accuracy": (m(x_held).argmax(1) == y_held).double().mean().item(),
                       "train_loss": F.cross_entropy(m(x_new), y_new).item()}
                for name, m in (("fine-tuned", fine_tuned), ("scratch", scratch))}
