"""The course's training loop: `fit()` trains, `evaluate()` measures, `predict()` collects outputs.

One loop serves every lesson. It takes
  * a plain `nn.Module` with `(inputs, labels)` batches (the loss is `loss_fn(model(inputs), labels)`), or
  * a Hugging Face model with dict batches (`model(**batch).loss`).
Around the four lines that matter — forward, loss, backward, optimizer step — it adds what real training
needs: checks before the first step, device placement, mixed precision, gradient accumulation and
clipping, a learning-rate schedule, a NaN/inf guard, periodic evaluation, progress bars, and atomic
checkpoints so an interrupted run (Ctrl-C, a closed laptop, a Colab disconnect) resumes where it stopped.
"""
from __future__ import annotations

import math
import os
import random
import signal
import threading
import time
from collections.abc import Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from .bars import bar as tqdm

from . import distributed
from .device import get_device
from .metrics import ConfusionMatrix, MeanMetric, perplexity


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite: training stopped before the weights were damaged further."""


class CheckpointMismatchError(RuntimeError):
    """A checkpoint exists but was written for a different model or run length."""


@dataclass
class History:
    """What happened during training: one row per optimizer step, one row per evaluation."""

    steps: list[dict] = field(default_factory=list)   # step, epoch, loss, lr
    evals: list[dict] = field(default_factory=list)   # step, epoch, and val_* metrics
    seconds: float = 0.0                              # training wall time (without evaluation)
    examples: int = 0                                 # examples seen in training

    def last(self, key: str):
        """The latest value of a metric, e.g. history.last('val_accuracy')."""
        for row in reversed(self.evals if key.startswith("val_") else self.steps):
            if key in row:
                return row[key]
        raise KeyError(f"no {key!r} recorded; known: {sorted({k for r in self.steps + self.evals for k in r})}")

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of one metric, for plotting."""
        rows = self.evals if key.startswith("val_") else self.steps
        pairs = [(r["step"], r[key]) for r in rows if key in r]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def epoch_means(self, key: str = "loss") -> list[float]:
        """The mean of a per-step value over each epoch."""
        epochs: dict[int, list[float]] = {}
        for r in self.steps:
            epochs.setdefault(r["epoch"], []).append(r[key])
        return [sum(v) / len(v) for _, v in sorted(epochs.items())]

    def plot(self, **kwargs):
        """Learning curves: training loss per step and every validation metric."""
        from .plots import learning_curves

        return learning_curves(self, **kwargs)

    def state_dict(self) -> dict:
        return {"steps": self.steps, "evals": self.evals, "seconds": self.seconds, "examples": self.examples}


# ---------------------------------------------------------------- batches


def to_device(batch, device: torch.device):
    """Move a batch (tensor, tuple/list or dict of tensors) to the device; non-blocking where memory is pinned."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def batch_size_of(batch) -> int:
    """Number of examples in a batch."""
    first = next(iter(batch.values())) if isinstance(batch, Mapping) else batch[0]
    return len(first)


def forward(model: torch.nn.Module, batch, loss_fn: Callable | None = None):
    """Run the model on one batch; return (loss, logits, labels). The one place that knows both batch styles."""
    if isinstance(batch, Mapping):
        out = model(**batch)
        loss = out["loss"] if isinstance(out, Mapping) else getattr(out, "loss", None)
        logits = out["logits"] if isinstance(out, Mapping) else getattr(out, "logits", None)
        if loss is None and loss_fn is not None and "labels" in batch:
            loss = loss_fn(logits, batch["labels"])
        return loss, logits, batch.get("labels")
    inputs, labels = batch[0], batch[1]
    logits = model(inputs)
    return (loss_fn or F.cross_entropy)(logits, labels), logits, labels


def _n_targets(logits: torch.Tensor | None, labels: torch.Tensor | None, batch) -> int:
    """Weight of a batch's mean loss: number of labelled tokens for token tasks, else number of examples."""
    if labels is not None and logits is not None and labels.dim() == logits.dim() - 1 and labels.dim() > 1:
        return int((labels != -100).sum().item())
    return batch_size_of(batch)


# ---------------------------------------------------------------- checks before the first step


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
def _rng_preserved():
    """Run a block without disturbing any random number generator (so peeking does not change the run)."""
    state = _rng_state()
    try:
        yield
    finally:
        _set_rng_state(state)


def check_inputs(model: torch.nn.Module, loader, device: torch.device, loss_fn=None, name: str = "train_loader") -> None:
    """Fail early, with a plain explanation, on an empty loader, a bad batch format, shapes the model
    cannot take, or labels outside the model's classes."""
    try:
        n_batches = len(loader)
    except TypeError:
        n_batches = None
    if n_batches == 0:
        raise ValueError(f"{name} yields no batches: is the dataset empty, or is batch_size larger than the "
                         f"dataset with drop_last=True?")
    with _rng_preserved():
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


# ---------------------------------------------------------------- learning-rate schedules


def make_scheduler(optimizer: torch.optim.Optimizer, kind: str, total_steps: int, warmup_steps: int = 0):
    """A LambdaLR for 'constant', 'linear' or 'cosine' decay after a linear warm-up."""
    if kind not in ("constant", "linear", "cosine"):
        raise ValueError(f"scheduler must be 'constant', 'linear', 'cosine' or a torch LR scheduler; got {kind!r}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if kind == "constant":
            return 1.0
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return max(0.0, 1 - progress) if kind == "linear" else 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# ---------------------------------------------------------------- checkpoints and random state


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fingerprint(model: torch.nn.Module, total_steps: int) -> dict:
    shapes = [(n, tuple(p.shape)) for n, p in model.state_dict().items()]
    return {"total_steps": total_steps, "n_tensors": len(shapes), "n_values": sum(math.prod(s) for _, s in shapes)}


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint atomically: to a temporary file first, then renamed over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")   # per process: two runs never share a half-written file
    torch.save(state, tmp)
    os.replace(tmp, path)


# ---------------------------------------------------------------- the loop


@contextmanager
def _graceful_interrupt():
    """Turn the first Ctrl-C (or Jupyter's interrupt) into a flag checked after each step; a second one stops at once."""
    flag = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _precision(precision: str, device: torch.device):
    """(autocast dtype or None, whether to use a gradient scaler) for 'fp32', 'bf16', 'fp16' or 'auto'."""
    if precision == "auto":
        if device.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "fp32"
    dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes:
        raise ValueError(f"precision must be fp32, bf16, fp16 or auto; got {precision!r}")
    return dtypes[precision], precision == "fp16" and device.type == "cuda"


def _explain_nonfinite(loss: float, step: int, epoch: int, lr: float, history: History, batch) -> str:
    recent = [r["loss"] for r in history.steps[-5:]]
    trend = f"the last losses were {', '.join(f'{v:.3g}' for v in recent)}" if recent else "it was the very first step"
    inputs_bad = any(isinstance(t, torch.Tensor) and t.is_floating_point() and not torch.isfinite(t).all()
                     for t in (batch.values() if isinstance(batch, Mapping) else batch))
    causes = ["the inputs of this batch contain NaN or inf values — clean the data"] if inputs_bad else []
    causes += [f"the learning rate ({lr:.3g}) is too high — try 10× smaller",
               "gradients explode — pass max_grad_norm=1.0 to clip them",
               "fp16 overflow — use precision='bf16' or 'fp32'"]
    return (f"The loss became {loss} at step {step} (epoch {epoch}); {trend}. Training stopped: one more step would "
            "put NaN into every weight.\nLikely causes:\n  - " + "\n  - ".join(causes) +
            "\nThe weights in memory may already be damaged: re-create the model (or resume from a checkpoint) "
            "before training again.")


def fit(
    model: torch.nn.Module,
    train_loader,
    *,
    val_loader=None,
    epochs: int = 1,
    max_steps: int | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    scheduler: str | torch.optim.lr_scheduler.LRScheduler = "constant",
    warmup_steps: int = 0,
    loss_fn: Callable | None = None,
    grad_accum_steps: int = 1,
    max_grad_norm: float | None = None,
    precision: str = "fp32",
    eval_every: int | None = None,
    num_classes: int | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    live_plot: bool = False,
    callbacks: tuple[Callable[[dict], None], ...] = (),
    seed: int = 0,
) -> History:
    """Train `model` on `train_loader`; return the History.

    Runs `epochs` passes (or exactly `max_steps` optimizer steps). `optimizer` defaults to AdamW(lr,
    weight_decay); `scheduler` is 'constant', 'linear', 'cosine' (after `warmup_steps`) or a torch
    scheduler. Evaluates on `val_loader` every `eval_every` steps and at the end of each epoch. With
    `checkpoint=path`, state is saved every `checkpoint_every` steps, at each epoch end and on
    interrupt, and a later call with the same arguments resumes from it (or returns at once if done).
    """
    device = distributed.setup(torch.device(device) if device else get_device())
    main = distributed.is_main()
    model.to(device)
    train_loader = distributed.shard(train_loader, seed)
    check_inputs(model, train_loader, device, loss_fn, "train_loader")
    if val_loader is not None and main:
        check_inputs(model, val_loader, device, loss_fn, "val_loader")

    steps_per_epoch = math.ceil(len(train_loader) / grad_accum_steps)
    total_steps = max_steps if max_steps is not None else epochs * steps_per_epoch
    if optimizer is None:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    if isinstance(scheduler, str):
        scheduler = make_scheduler(optimizer, scheduler, total_steps, warmup_steps)
    amp_dtype, use_scaler = _precision(precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    ddp_model = distributed.wrap(model, device)

    history = History()
    step, epoch, batches_done = 0, 0, 0
    epoch_rng = None
    path = Path(checkpoint) if checkpoint else None
    fingerprint = _fingerprint(model, total_steps)
    if path is not None and path.exists():
        state = torch.load(path, map_location=device, weights_only=False)
        if state["fingerprint"] != fingerprint:
            raise CheckpointMismatchError(
                f"{path} was written for a different run ({state['fingerprint']}; this run: {fingerprint}). "
                "Delete it to start over, or pass another checkpoint= path.")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        history = History(**state["history"])
        step, epoch, batches_done, epoch_rng = state["step"], state["epoch"], state["batches_done"], state["epoch_rng"]
        _set_rng_state(state["rng"])
        if main:
            done = "finished run" if step >= total_steps else f"step {step} of {total_steps}"
            print(f"Resuming from {path.name}: {done}.")

    def save(position_batches: int) -> None:
        if path is None or not main:
            return
        save_checkpoint(path, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(), "history": history.state_dict(), "step": step, "epoch": epoch,
            "batches_done": position_batches, "epoch_rng": epoch_rng, "rng": _rng_state(), "fingerprint": fingerprint})

    def run_eval() -> None:
        if val_loader is None or not main:
            return
        metrics = evaluate(model, val_loader, device=device, loss_fn=loss_fn, num_classes=num_classes,
                           precision=precision, progress=False)
        history.evals.append({"step": step, "epoch": epoch, **{f"val_{k}": v for k, v in metrics.items()
                                                                if isinstance(v, (int, float))}})
        if plot is not None:
            plot.update(history)

    plot = None
    if live_plot and main:
        from .plots import LivePlot

        plot = LivePlot()
    bar = tqdm(total=total_steps, initial=step, desc="training", unit="step", disable=not (progress and main),
               dynamic_ncols=True)
    smoothed = None
    model.train()
    start = time.perf_counter() - history.seconds
    try:
        with _graceful_interrupt() as interrupt:
            while step < total_steps:
                distributed.set_epoch(train_loader, epoch)
                resuming = epoch_rng is not None and batches_done > 0
                if resuming:
                    # Replay this epoch's shuffle exactly, skip what was done, then restore the saved state.
                    rng_now = _rng_state()
                    _set_rng_state(epoch_rng)
                else:
                    epoch_rng, batches_done = _rng_state(), 0
                iterator = iter(train_loader)
                if resuming:
                    for _ in range(batches_done):
                        next(iterator)
                    _set_rng_state(rng_now)
                optimizer.zero_grad(set_to_none=True)
                micro, summed = 0, 0.0
                for batch in iterator:
                    batch = to_device(batch, device)
                    with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext():
                        loss, logits, labels = forward(ddp_model, batch, loss_fn)
                    if not torch.isfinite(loss):
                        raise NonFiniteLossError(_explain_nonfinite(loss.item(), step, epoch,
                                                                    optimizer.param_groups[0]["lr"], history, batch))
                    scaler.scale(loss / grad_accum_steps).backward()
                    summed += loss.item()
                    micro += 1
                    batches_done += 1
                    history.examples += batch_size_of(batch)
                    last_in_epoch = batches_done == len(train_loader)
                    if micro < grad_accum_steps and not last_in_epoch:
                        continue
                    value, micro, summed = summed / micro, 0, 0.0
                    if max_grad_norm is not None:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad(set_to_none=True)
                    lr_now = optimizer.param_groups[0]["lr"]
                    scheduler.step()
                    step += 1
                    smoothed = value if smoothed is None else 0.9 * smoothed + 0.1 * value
                    history.steps.append({"step": step, "epoch": epoch, "loss": value, "lr": lr_now})
                    bar.update(1)
                    bar.set_postfix(loss=f"{smoothed:.4f}", lr=f"{lr_now:.2e}", epoch=epoch, refresh=False)
                    for callback in callbacks:
                        callback({"step": step, "epoch": epoch, "loss": value, "lr": lr_now, "model": model})
                    if eval_every and step % eval_every == 0 and step < total_steps:
                        history.seconds = time.perf_counter() - start
                        run_eval()
                        start = time.perf_counter() - history.seconds
                        model.train()
                    elif plot is not None and step % max(1, total_steps // 50) == 0:
                        plot.update(history)
                    if checkpoint_every and step % checkpoint_every == 0:
                        history.seconds = time.perf_counter() - start
                        save(batches_done)
                    if interrupt["stop"]:
                        history.seconds = time.perf_counter() - start
                        save(batches_done)
                        where = f"; checkpoint saved to {path}, call fit() again to resume" if path else ""
                        raise KeyboardInterrupt(f"Training interrupted at step {step}{where}.")
                    if step >= total_steps:
                        break
                history.seconds = time.perf_counter() - start
                if batches_done == len(train_loader):
                    epoch += 1
                    epoch_rng, batches_done = None, 0
                    run_eval()
                    start = time.perf_counter() - history.seconds
                    model.train()
                elif step >= total_steps:
                    run_eval()
                save(batches_done)
    finally:
        bar.close()
        if plot is not None:
            plot.close(history)
    model.eval()
    distributed.barrier()
    return history


# ---------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader, *, device: torch.device | str | None = None, loss_fn: Callable | None = None,
             num_classes: int | None = None, precision: str = "fp32", progress: bool = True) -> dict:
    """Loss and accuracy on a loader; per-class scores with `num_classes`; perplexity for token tasks."""
    device = torch.device(device) if device else next(model.parameters()).device
    model.to(device)
    was_training = model.training
    model.eval()
    amp_dtype, _ = _precision(precision, device)
    loss_mean, correct, counted = MeanMetric(), 0, 0
    confusion = ConfusionMatrix(num_classes, device) if num_classes else None
    token_task = False
    for batch in tqdm(loader, desc="evaluating", leave=False, disable=not progress):
        batch = to_device(batch, device)
        with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext():
            loss, logits, labels = forward(model, batch, loss_fn)
        if loss is not None:
            loss_mean.update(loss.item(), _n_targets(logits, labels, batch))
        if logits is None or labels is None:
            continue
        token_task = token_task or labels.dim() > 1
        preds = logits.argmax(-1)
        keep = labels != -100
        correct += int((preds[keep] == labels[keep]).sum().item())
        counted += int(keep.sum().item())
        if confusion is not None:
            confusion.update(preds, labels)
    model.train(was_training)
    result = {"loss": loss_mean.compute(), "accuracy": correct / counted if counted else float("nan")}
    if token_task:
        result["perplexity"] = perplexity(result["loss"])
    if confusion is not None:
        scores = confusion.compute()
        result.update(macro_f1=scores["macro_f1"], confusion=confusion.matrix.cpu(), scores=scores)
    return result


@torch.no_grad()
def predict(model: torch.nn.Module, loader, *, device: torch.device | str | None = None,
            progress: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """All logits (on the CPU) and labels of a loader, in loader order."""
    device = torch.device(device) if device else next(model.parameters()).device
    was_training = model.training
    model.eval()
    outs, labels_all = [], []
    for batch in tqdm(loader, desc="predicting", leave=False, disable=not progress):
        batch = to_device(batch, device)
        if isinstance(batch, Mapping):
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            out = model(**inputs)
            logits = out["logits"] if isinstance(out, Mapping) else out.logits
            labels = batch.get("labels")
        else:
            logits, labels = model(batch[0]), (batch[1] if len(batch) > 1 else None)
        outs.append(logits.float().cpu())
        if labels is not None:
            labels_all.append(labels.cpu())
    model.train(was_training)
    return torch.cat(outs), (torch.cat(labels_all) if labels_all else None)
