"""Checks fit() makes before its first step: fail early, with a plain explanation, instead of deep inside training."""
from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager

import torch

from .checkpoints import rng_state, set_rng_state


def _all_labels(loader) -> torch.Tensor | None:
    """Every label of a loader's dataset when cheaply available (TensorLoader, TensorDataset, torchvision)."""
    if getattr(loader, "labels", None) is not None:
        return loader.labels
    dataset = getattr(loader, "dataset", None)
    tensors = getattr(dataset, "tensors", None)
    if tensors is not None and len(tensors) >= 2:
        return tensors[1]
    targets = getattr(dataset, "targets", None)
    if isinstance(targets, torch.Tensor):
        return targets
    if isinstance(targets, list) and targets and isinstance(targets[0], int):
        return torch.tensor(targets)
    return None


@contextmanager
def rng_preserved():
    """Run a block without disturbing any random number generator (so peeking does not change the run)."""
    state = rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


def check_inputs(model: torch.nn.Module, loader, device: torch.device, loss_fn=None, name: str = "train_loader") -> None:
    """Fail early, with a plain explanation, on an empty loader, a bad batch format, shapes the model
    cannot take, or labels outside the model's classes."""
    from .train import forward, to_device

    try:
        n_batches = len(loader)
    except TypeError:
        n_batches = None
    if n_batches == 0:
        raise ValueError(f"{name} yields no batches: is the dataset empty, or is batch_size larger than the "
                         f"dataset with drop_last=True?")
    with rng_preserved():
        try:
            batch = next(iter(loader))
        except StopIteration:
            raise ValueError(f"{name} yields no batches: the dataset is empty.") from None
        if not isinstance(batch, Mapping) and not (isinstance(batch, (list, tuple)) and len(batch) >= 2):
            raise TypeError(f"{name} must yield (inputs, labels) pairs or dicts of tensors (Hugging Face style); "
                            f"it yielded {type(batch).__name__}.")
        if isinstance(batch, Mapping) and "labels" not in batch:
            raise ValueError(f"{name} yields dicts without 'labels' ({sorted(batch)}): the model cannot compute a loss. "
                             "Add labels to the dataset (or use a collator that makes them, such as "
                             "DataCollatorForLanguageModeling).")
        batch = to_device(batch, device)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                if isinstance(batch, Mapping):
                    out = model(**{k: v for k, v in batch.items() if k != "labels"})
                    logits = out["logits"] if isinstance(out, Mapping) else getattr(out, "logits", None)
                    labels = batch["labels"]
                else:
                    logits, labels = model(batch[0]), batch[1]
        except (RuntimeError, ValueError, IndexError, TypeError) as exc:
            shapes = ({k: tuple(v.shape) for k, v in batch.items() if isinstance(v, torch.Tensor)}
                      if isinstance(batch, Mapping) else [tuple(t.shape) for t in batch if isinstance(t, torch.Tensor)])
            raise ValueError(f"The model cannot run on the first batch of {name} (tensor shapes {shapes}):\n  {exc}\n"
                             "Check that the inputs have the shape the model's first layer expects.") from exc
        finally:
            model.train(was_training)
    if isinstance(logits, torch.Tensor) and isinstance(labels, torch.Tensor) and not labels.is_floating_point():
        # Integer labels are class indices: one per example (or per token), each below the number of outputs.
        if labels.shape != logits.shape[:-1]:
            raise ValueError(f"labels of shape {tuple(labels.shape)} do not match model outputs of shape "
                             f"{tuple(logits.shape)}: expected labels of shape {tuple(logits.shape[:-1])}.")
        n_classes = logits.shape[-1]
        everything = _all_labels(loader)
        seen = everything if everything is not None else labels
        valid = seen[seen != -100]
        if valid.numel() and (valid.min() < 0 or valid.max() >= n_classes):
            bad = valid[(valid < 0) | (valid >= n_classes)].unique()[:5].tolist()
            raise ValueError(f"{name} has labels {bad} outside the model's {n_classes} classes (valid: 0..{n_classes - 1}). "
                             "Give the model as many outputs as there are classes, or re-map the labels.")
    model.eval()
    try:
        with torch.no_grad():
            loss = forward(model, batch, loss_fn)[0]
    except (RuntimeError, ValueError, IndexError, TypeError) as exc:
        raise ValueError(f"The loss cannot be computed on the first batch of {name}:\n  {exc}") from exc
    finally:
        model.train(was_training)
    if loss is None:
        raise ValueError(f"The model returned no loss for a batch of {name}; pass labels in the batch or a loss_fn.")
