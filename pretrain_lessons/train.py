"""The course's training loop. Read it top to bottom: `train_step()` first, then `fit()`, which repeats it.

Every training loop repeats one step: forward (the model's outputs), loss, backward (gradients), optimizer step.
`train_step()` is that step, for one batch or for a group of micro-batches whose gradients add up (gradient
accumulation). `fit()` repeats it over a data set and adds what real training needs: device placement, mixed
precision, gradient clipping, a learning-rate schedule, a NaN/inf guard, evaluation, progress bars, and checkpoints
that let an interrupted run (Ctrl-C, a closed laptop, a Colab disconnect) resume where it stopped.
`evaluate()` measures a model, `predict()` collects its outputs. Both kinds of model work:
  * a plain `nn.Module` with `(inputs, labels)` batches (the loss is `loss_fn(model(inputs), labels)`), and
  * a Hugging Face model with dict batches (`model(**batch).loss`).
The checks made before the first step are in `checks.py`; the checkpoint format is in `checkpoints.py`.
"""
from __future__ import annotations

import math
import re
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from . import checkpoints, distributed
from .bars import bar as tqdm
from .checkpoints import CheckpointError, CheckpointMismatchError, rng_state, set_rng_state
from .checks import check_inputs
from .device import get_device, seed_everything
from .metrics import ConfusionMatrix, MeanMetric, perplexity

__all__ = ["train_step", "fit", "evaluate", "predict", "adamw", "make_scheduler", "History", "NonFiniteLossError",
           "CheckpointError", "CheckpointMismatchError", "check_inputs"]
_rng_state, _set_rng_state = rng_state, set_rng_state   # older names, used by finetune.py


class NonFiniteLossError(RuntimeError):
    """The loss or the gradients became NaN or infinite: training stopped before the weights were damaged."""


# ---------------------------------------------------------------- one training step


def train_step(model: torch.nn.Module, micro_batches: list, optimizer: torch.optim.Optimizer, *,
               loss_fn: Callable | None = None, scaler: torch.amp.GradScaler | None = None, precision: str = "fp32",
               max_grad_norm: float | None = None) -> float:
    """One optimizer step on a list of micro-batches (a list of one without accumulation); returns the mean loss."""
    device = _tensors(micro_batches[0])[0].device
    amp_dtype = _precision(precision, device)[0]
    scaler = scaler or _NO_SCALER
    shares = loss_shares(micro_batches)          # each micro-batch's part of the group's examples (or tokens)
    losses = []
    for i, (batch, share) in enumerate(zip(micro_batches, shares)):
        last = i == len(micro_batches) - 1
        with _no_sync(model, not last), _autocast(device, amp_dtype):
            loss = forward(model, batch, loss_fn)[0]                  # forward, loss
            loss = loss if share is None else loss * share
        (scaler.scale(loss) if scaler.is_enabled() else loss).backward()   # backward: gradients add up over the group
        losses.append(loss.detach())
    if scaler.is_enabled():
        scaler.unscale_(optimizer)               # true gradient values (fp16) before they are measured or clipped
    grad_norm = _gradient_norm(optimizer, max_grad_norm)
    value = _finite_or_stop(sum(losses[1:], losses[0]), grad_norm, check_gradients=not scaler.is_enabled())
    scaler.step(optimizer)                       # the update (the fp16 scaler skips it when gradients overflowed)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return value


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


def loss_shares(micro_batches: list) -> list:
    """Weights that make the sum of micro-batch mean losses the mean over every example (or labelled token) of the group.

    A loss is a mean over its batch: over examples, or over the tokens whose label is not -100. Accumulating k
    such means and dividing by k is right only when every micro-batch counts as much; weighting each by its share
    of the group's count is right always (a short last group; 500 masked tokens in one batch and 20 in the next).
    Under DDP the count is over every process, times the number of processes, as DDP averages their gradients.
    """
    if len(micro_batches) == 1 and distributed.processes() == 1:
        return [None]                            # one batch: its mean is the mean, nothing to weight
    counts = torch.stack([_count(batch) for batch in micro_batches]).float()
    return list(counts * distributed.processes() / distributed.sum_across(counts.sum()))


def _count(batch) -> torch.Tensor:
    """What a batch's mean loss is a mean over: labelled tokens (labels != -100) for integer labels, else examples."""
    labels = batch.get("labels") if isinstance(batch, Mapping) else batch[1]
    if isinstance(labels, torch.Tensor) and not labels.is_floating_point():
        return (labels != -100).sum()
    first = labels if isinstance(labels, torch.Tensor) else next(t for t in _tensors(batch))
    return torch.tensor(batch_size_of(batch), device=first.device)


def _no_sync(model: torch.nn.Module, skip: bool):
    """Under DDP, gradients are averaged across processes once per step, not after every micro-batch."""
    return model.no_sync() if skip and hasattr(model, "no_sync") else nullcontext()


def _autocast(device: torch.device, dtype: torch.dtype | None):
    """Mixed precision: run the forward pass in bf16/fp16 where that is safe (autocast's choice), or as it is."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def _gradient_norm(optimizer: torch.optim.Optimizer, max_norm: float | None) -> torch.Tensor:
    """The total norm of the gradients the optimizer will use, after clipping them to `max_norm` when given."""
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if max_norm is not None:
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    return torch.nn.utils.get_total_norm([p.grad for p in params])   # one pass over the gradients


def _finite_or_stop(loss: torch.Tensor, grad_norm: torch.Tensor, check_gradients: bool = True) -> float:
    """The step's loss as a number, or NonFiniteLossError before the optimizer step if it or a gradient is NaN/inf.

    This is the step's one wait for the device (`.tolist()`). Under DDP every process sees every process's values,
    so all of them stop together instead of leaving the others waiting for a step that never comes.
    """
    both = torch.stack([loss.float(), grad_norm.float().to(loss.device)])
    values = [both.tolist()] if distributed.processes() == 1 else distributed.per_process(both).tolist()
    where = lambda rank: f" on process {rank} of {len(values)}" if len(values) > 1 else ""  # noqa: E731
    for rank, (rank_loss, _) in enumerate(values):
        if not math.isfinite(rank_loss):
            raise NonFiniteLossError(f"The loss became {rank_loss}{where(rank)}.")
    for rank, (rank_loss, rank_norm) in enumerate(values):
        if check_gradients and not math.isfinite(rank_norm):
            raise NonFiniteLossError(f"The gradients became {rank_norm} (their norm){where(rank)}, though the loss "
                                     f"({rank_loss:.4g}) is finite.")
    return sum(v[0] for v in values) / len(values)


# ---------------------------------------------------------------- the optimizer and the learning-rate schedule

_NO_DECAY_NAMES = re.compile(r"bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)")
_NORM_LAYERS = (torch.nn.LayerNorm, torch.nn.RMSNorm, torch.nn.GroupNorm, torch.nn.modules.batchnorm._NormBase)


def adamw(model: torch.nn.Module, lr: float = 1e-3, weight_decay: float = 0.0, **kwargs) -> torch.optim.AdamW:
    """AdamW set up as transformers.Trainer does: no weight decay on biases and norm layers; torch's fused kernel."""
    modules = dict(model.named_modules())
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            owner = modules[name.rpartition(".")[0]]
            exempt = isinstance(owner, _NORM_LAYERS) or _NO_DECAY_NAMES.search(name.lower())
            (no_decay if exempt else decay).append(p)
    groups = ([{"params": decay + no_decay}] if weight_decay == 0 else
              [g for g in ({"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0})
               if g["params"]])
    for kernel in ({"fused": True}, {"foreach": True}, {}):   # fastest first; not every device has every kernel
        try:
            return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, **kernel, **kwargs)
        except (RuntimeError, ValueError, TypeError):
            continue
    raise AssertionError("unreachable: plain AdamW always works")


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


# ---------------------------------------------------------------- fit: train_step over a data set


@dataclass
class History:
    """What happened during training: one row per optimizer step, one row per evaluation."""

    steps: list[dict] = field(default_factory=list)   # step, epoch, loss, lr
    evals: list[dict] = field(default_factory=list)   # step, epoch, and val_* metrics
    seconds: float = 0.0                              # training wall time (without evaluation)
    examples: int = 0                                 # examples seen in training (by this process)

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
        """Plain values only, so a checkpoint holding it loads with weights_only=True."""
        plain = lambda rows: [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in rows]  # noqa: E731
        return {"steps": plain(self.steps), "evals": plain(self.evals), "seconds": float(self.seconds),
                "examples": int(self.examples)}


@dataclass
class _Position:
    """Where a run is: what a checkpoint needs, besides the weights, to continue it exactly."""

    step: int = 0                     # optimizer steps taken
    epoch: int = 0                    # epochs completed (rows say `epoch + 1`: the epoch they belong to, from 1)
    batches_done: int = 0             # batches consumed in the current epoch
    epoch_rng: dict | None = None     # random state when the current epoch began, to replay its shuffle


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
    seed: int | None = None,
) -> History:
    """Train `model` on `train_loader`; return the History.

    Runs `epochs` passes (or exactly `max_steps` optimizer steps), each step on `grad_accum_steps` batches.
    `optimizer` defaults to `adamw(model, lr, weight_decay)`; `scheduler` is 'constant', 'linear', 'cosine' (after
    `warmup_steps`) or a torch scheduler. Evaluates on `val_loader` every `eval_every` steps and at the end of each
    epoch. `seed` seeds every random generator first (None: use their state as it is). With `checkpoint=path`,
    state is saved every `checkpoint_every` steps, at each epoch end and on interrupt; a later call with the same
    settings resumes from it (or returns at once if it finished), and one with other settings is refused.
    """
    device = distributed.setup(torch.device(device) if device else get_device())
    main = distributed.is_main()
    model.to(device)
    if seed is not None:
        seed_everything(seed)
    whole_loader, train_loader = train_loader, distributed.shard(train_loader, seed or 0)
    check_inputs(model, train_loader, device, loss_fn, "train_loader")
    if val_loader is not None and main:
        check_inputs(model, val_loader, device, loss_fn, "val_loader")

    total_steps = max_steps if max_steps is not None else epochs * math.ceil(len(train_loader) / grad_accum_steps)
    optimizer = optimizer or adamw(model, lr, weight_decay)
    path = Path(checkpoint) if checkpoint else None
    settings = checkpoints.fingerprint(   # taken before the schedule's first step changes the learning rate
        model, optimizer, whole_loader, scheduler, total_steps=total_steps, warmup_steps=warmup_steps,
        grad_accum_steps=grad_accum_steps, max_grad_norm=max_grad_norm, precision=precision, seed=seed,
        loss_fn=getattr(loss_fn, "__qualname__", type(loss_fn).__name__)) if path else None
    if isinstance(scheduler, str):
        scheduler = make_scheduler(optimizer, scheduler, total_steps, warmup_steps)
    scaler = _grad_scaler(precision, device)
    history, at = History(), _Position()
    if path is not None:
        if main:
            checkpoints.check_writable(path)
        history, at = _resume(path, settings, device, model, optimizer, scheduler, scaler, history, at, total_steps, main)
    ddp_model = distributed.wrap(model, device)
    clock, shown = _Stopwatch(history.seconds), _Progress(total_steps, at.step, progress and main, live_plot and main)

    def save() -> None:
        history.seconds = clock.seconds()
        if path is not None and main:
            _save(path, settings, model, optimizer, scheduler, scaler, history, at)

    def validate() -> None:   # at most once per step, on the main process only
        if val_loader is None or not main or (history.evals and history.evals[-1]["step"] == at.step):
            return
        with clock.paused():
            metrics = evaluate(model, val_loader, device=device, loss_fn=loss_fn, num_classes=num_classes,
                               precision=precision, progress=False)
        history.evals.append({"step": at.step, "epoch": at.epoch + 1,
                              **{f"val_{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}})
        shown.evaluated(history)
        model.train()

    model.train()
    try:
        with _graceful_interrupt() as interrupt:
            while at.step < total_steps:
                distributed.set_epoch(train_loader, at.epoch)
                for group in _micro_batch_groups(train_loader, grad_accum_steps, device, at):
                    lr_now = optimizer.param_groups[0]["lr"]
                    try:
                        loss = train_step(ddp_model, group, optimizer, loss_fn=loss_fn, scaler=scaler,
                                          precision=precision, max_grad_norm=max_grad_norm)
                    except NonFiniteLossError as exc:
                        raise NonFiniteLossError(_explain_nonfinite(str(exc), at, lr_now, history, group)) from None
                    scheduler.step()
                    at.step += 1
                    history.examples += sum(batch_size_of(b) for b in group)
                    row = {"step": at.step, "epoch": at.epoch + 1, "loss": loss, "lr": lr_now}
                    history.steps.append(row)
                    shown.step(history, row)
                    for callback in callbacks:
                        callback({**row, "model": model, "optimizer": optimizer})
                    if eval_every and at.step % eval_every == 0:
                        validate()
                    if checkpoint_every and at.step % checkpoint_every == 0:
                        save()
                    if interrupt["stop"]:
                        save()
                        where = f"; checkpoint saved to {path}, call fit() again to resume" if path else ""
                        raise KeyboardInterrupt(f"Training interrupted at step {at.step}{where}.")
                    if at.step >= total_steps:
                        break
                validate()                                 # at the end of each epoch, and of the run
                if at.batches_done == len(train_loader):   # the epoch is complete
                    at.epoch, at.batches_done, at.epoch_rng = at.epoch + 1, 0, None
                save()
    finally:
        history.seconds = clock.seconds()
        shown.close(history)
    model.eval()
    distributed.barrier()
    return history


# ---------------------------------------------------------------- the pieces fit() is built from


def _micro_batch_groups(loader, size: int, device: torch.device, at: _Position) -> Iterator[list]:
    """The rest of this epoch's batches, on the device, in groups of `size` (the last group may be shorter)."""
    if at.batches_done and at.epoch_rng is not None:
        # Resuming mid-epoch: replay this epoch's shuffle exactly, skip what was done, then restore the saved state.
        now = rng_state()
        set_rng_state(at.epoch_rng)
        batches = iter(loader)
        for _ in range(at.batches_done):
            next(batches)
        set_rng_state(now)
    else:
        at.epoch_rng, at.batches_done = rng_state(), 0
        batches = iter(loader)
    group = []
    for batch in batches:
        group.append(to_device(batch, device))
        if len(group) == size:
            at.batches_done += size
            yield group
            group = []
    if group:
        at.batches_done += len(group)
        yield group


def _resume(path: Path, settings: dict, device, model, optimizer, scheduler, scaler, history: History,
            at: _Position, total_steps: int, main: bool) -> tuple[History, _Position]:
    """Load the checkpoint at `path` into the run's objects if there is one for the same settings."""
    state = checkpoints.load(path, device)
    if state is None:
        return history, at
    checkpoints.check_same_run(path, state, settings)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    at = _Position(**state["position"])
    set_rng_state(state["rng"])
    if main:
        print(f"Resuming from {path.name}: " + ("finished run." if at.step >= total_steps
                                                 else f"step {at.step} of {total_steps}."))
    return History(**state["history"]), at


def _save(path: Path, settings: dict, model, optimizer, scheduler, scaler, history: History, at: _Position) -> None:
    checkpoints.save(path, {
        "fingerprint": settings, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "history": history.state_dict(),
        "position": vars(at), "rng": rng_state()})


class _Stopwatch:
    """Training time without evaluation, continuing from what a resumed run had already spent."""

    def __init__(self, already: float = 0.0):
        self.start = time.perf_counter() - already

    def seconds(self) -> float:
        return time.perf_counter() - self.start

    @contextmanager
    def paused(self):
        began = time.perf_counter()
        try:
            yield
        finally:
            self.start += time.perf_counter() - began


class _Progress:
    """The progress bar (smoothed loss, learning rate, epoch) and, if asked for, the live plot."""

    def __init__(self, total: int, done: int, show: bool, live_plot: bool):
        self.bar = tqdm(total=total, initial=done, desc="training", unit="step", disable=not show, dynamic_ncols=True)
        self.plot, self.smoothed, self.every = None, None, max(1, total // 50)
        if live_plot:
            from .plots import LivePlot

            self.plot = LivePlot()

    def step(self, history: History, row: dict) -> None:
        self.smoothed = row["loss"] if self.smoothed is None else 0.9 * self.smoothed + 0.1 * row["loss"]
        self.bar.update(1)
        if not self.bar.disable:
            self.bar.set_postfix(loss=f"{self.smoothed:.4f}", lr=f"{row['lr']:.2e}", epoch=row["epoch"], refresh=False)
        if self.plot is not None and row["step"] % self.every == 0:
            self.plot.update(history)

    def evaluated(self, history: History) -> None:
        if self.plot is not None:
            self.plot.update(history)

    def close(self, history: History) -> None:
        self.bar.close()
        if self.plot is not None:
            self.plot.close(history)


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
    if precision not in _DTYPES:
        raise ValueError(f"precision must be fp32, bf16, fp16 or auto; got {precision!r}")
    return _DTYPES[precision], precision == "fp16"


_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


_NO_SCALER = torch.amp.GradScaler("cpu", enabled=False)


def _grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """fp16 gradients underflow without loss scaling; bf16 and fp32 need none."""
    if not _precision(precision, device)[1]:
        return torch.amp.GradScaler(device.type, enabled=False)
    try:
        return torch.amp.GradScaler(device.type)
    except (RuntimeError, ValueError):   # a device without a scaler: train unscaled rather than not at all
        return torch.amp.GradScaler(device.type, enabled=False)


def _explain_nonfinite(what: str, at: _Position, lr: float, history: History, group: list) -> str:
    recent = [r["loss"] for r in history.steps[-5:]]
    trend = f"the last losses were {', '.join(f'{v:.3g}' for v in recent)}" if recent else "it was the very first step"
    inputs_bad = any(t.is_floating_point() and not torch.isfinite(t).all() for b in group for t in _tensors(b))
    causes = ["the inputs of this batch contain NaN or inf values — clean the data"] if inputs_bad else []
    causes += [f"the learning rate ({lr:.3g}) is too high — try 10× smaller",
               "gradients explode — pass max_grad_norm=1.0 to clip them",
               "fp16 overflow — use precision='bf16' or 'fp32'"]
    return (f"{what} Step {at.step + 1} (epoch {at.epoch + 1}) was not taken; {trend}. Training stopped: one more step "
            "would put NaN into every weight.\nLikely causes:\n  - " + "\n  - ".join(causes) +
            "\nThe weights are those of the last finite step: resume from a checkpoint, or re-create the model, "
            "after fixing the cause.")


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


def _tensors(batch) -> list[torch.Tensor]:
    return [t for t in (batch.values() if isinstance(batch, Mapping) else batch) if isinstance(t, torch.Tensor)]


def _n_targets(logits: torch.Tensor | None, labels: torch.Tensor | None, batch) -> int:
    """Weight of a batch's mean loss: number of labelled tokens for token tasks, else number of examples."""
    if labels is not None and logits is not None and labels.dim() == logits.dim() - 1 and labels.dim() > 1:
        return int((labels != -100).sum().item())
    return batch_size_of(batch)


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
        with _autocast(device, amp_dtype):
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
