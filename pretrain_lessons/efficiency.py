"""What a model costs: parameters, FLOPs (with attention), latency with its spread, peak memory, size on disk.

FLOPs come from `torch.utils.flop_counter.FlopCounterMode`, which counts matrix products and convolutions. It
has no formula for every kernel: on a CPU in torch 2.14 it counts **0** for `scaled_dot_product_attention`, the
fused attention kernel Hugging Face BERT uses by default ("sdpa"). A model built with
`attn_implementation="eager"` computes attention with two plain batched matrix products (QKᵀ and AV), which the
counter sees; `bert_flops()` is the same count from the formula, so the two can be checked against each other.
"""
from __future__ import annotations

import contextlib
import io
import os
import statistics
import sys
import time
from collections.abc import Mapping
from typing import Callable

import numpy as np
import torch


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(all parameters, trainable parameters)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def _call(model: torch.nn.Module, inputs):
    return model(**inputs) if isinstance(inputs, Mapping) else model(inputs)


def flops(model: torch.nn.Module, inputs) -> int:
    """Floating-point operations of one forward pass (a multiply-add counts 2), by torch.utils.flop_counter.

    Counts matrix products and convolutions only (not softmax, GELU, layer norm, additions). A BERT must use
    eager attention for its attention products to be counted (see the module's docstring).
    """
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        _call(model, inputs)
    return counter.get_total_flops()


def training_step_flops(model: torch.nn.Module, batch: Mapping) -> int:
    """FLOPs of one training step's forward and backward pass (the batch must carry labels so `.loss` exists)."""
    from torch.utils.flop_counter import FlopCounterMode

    model.train()
    with FlopCounterMode(display=False) as counter:
        out = model(**batch)
        loss = out["loss"] if isinstance(out, Mapping) else out.loss
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def bert_flops(config, seq_len: int, batch: int = 1, num_labels: int | None = None) -> dict[str, int]:
    """FLOPs of a BERT classifier's forward pass by hand, in the parts that cost arithmetic.

    Per layer and sequence of L tokens with hidden size d and feed-forward size f:
      linear layers  2·L·(4d² + 2·d·f)   (Q, K, V, output projection; the two feed-forward matrices)
      attention      2·L²·d (QKᵀ) + 2·L²·d (A·V) = 4·L²·d, whatever the number of heads
    plus the pooler 2·d² and the classification head 2·d·labels, once per sequence (on the [CLS] vector).
    The embedding lookup is not arithmetic. Linear-layer cost grows like L, attention like L²: per token,
    attention overtakes the linear layers at L = 2d + f.
    """
    d, f, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    labels = num_labels if num_labels is not None else config.num_labels
    linear = n * 2 * seq_len * (4 * d * d + 2 * d * f)
    attention = n * 4 * seq_len * seq_len * d
    head = 2 * d * d + 2 * d * labels
    return {"linear layers": batch * linear, "attention": batch * attention, "pooler + head": batch * head,
            "total": batch * (linear + attention + head)}


def latency_ms(model: torch.nn.Module, inputs, repeats: int = 20, warmup: int = 3) -> dict:
    """Forward-pass wall time in milliseconds over `repeats` runs after `warmup` runs.

    Returns the median, the quartiles (q1, q3: half the runs lie between them), min, max and every time.
    On a shared or busy machine report the median with its spread, never a single run.
    """
    model.eval()
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            _call(model, inputs)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000)
    q1, q3 = np.percentile(times, [25, 75])
    return {"median": statistics.median(times), "q1": float(q1), "q3": float(q3), "min": min(times), "max": max(times),
            "times": times}


def interleaved_ms(calls: Mapping[str, Callable[[], object]], rounds: int = 10, warmup: int = 2) -> dict[str, np.ndarray]:
    """Time several ways of doing the same work fairly on a noisy machine: in every round each call runs once.

    The order inside a round rotates, so no call always goes first; a burst of load from another program then
    slows all of them in the same round, and the per-round ratios (paired measurements) stay meaningful.
    Returns {name: milliseconds per round}. Calls run under torch.inference_mode().
    """
    names = list(calls)
    times = {name: [] for name in names}
    with torch.inference_mode():
        for r in range(warmup + rounds):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                calls[name]()
                if r >= warmup:
                    times[name].append((time.perf_counter() - start) * 1000)
    return {name: np.array(t) for name, t in times.items()}


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the profiler's C++ start/stop log lines (written straight to file descriptor 2) while it runs."""
    try:
        sys.stderr.flush()
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError, AttributeError):   # no real stderr (some embedded interpreters)
        yield
        return
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def peak_memory_mb(fn: Callable[[], object]) -> float:
    """Peak memory (MiB) of the tensors allocated while `fn` runs, from the PyTorch profiler's memory events (CPU).

    A reconstruction, not a reading of the allocator: every operator's own allocations minus its frees are added
    at the moment the operator starts, plus the profiler's stand-alone "[memory]" events (e.g. gradients written
    by autograd), and the running total's maximum is returned. Memory that existed before `fn` (the weights) is
    not counted; on a GPU use torch.cuda.max_memory_allocated() instead.
    """
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted(prof.events(), key=lambda e: e.time_range.start)
    current = peak = 0
    for event in events:
        current += event.self_cpu_memory_usage if event.name != "[memory]" else event.cpu_memory_usage
        peak = max(peak, current)
    return peak / 2**20


def training_memory_mb(model: torch.nn.Module, batch: Mapping, optimizer: torch.optim.Optimizer) -> float:
    """Peak memory (MiB) one training step needs beyond the weights: activations kept for the backward pass,
    gradients of the trainable weights and the optimizer's state (created at its first step)."""
    model.train()

    def step():
        out = model(**batch)
        loss = out["loss"] if isinstance(out, Mapping) else out.loss
        loss.backward()
        optimizer.step()

    peak = peak_memory_mb(step)
    optimizer.zero_grad(set_to_none=True)
    return peak


def size_on_disk_mb(model: torch.nn.Module) -> float:
    """Size of the model's state dict serialised with torch.save, in MB (10⁶ bytes)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes / 1e6


def cost_row(name: str, model: torch.nn.Module, example_1, example_32, repeats: int = 10, warmup: int = 3,
             flop_model: torch.nn.Module | None = None) -> dict:
    """One row of the cost table: parameters, FLOPs per example, latency at batch 1 and 32 (median and quartiles),
    peak memory of the batch-32 forward pass, size on disk.

    `flop_model`: a twin of `model` whose FLOPs the counter can see (e.g. the same BERT with eager attention,
    while `model` is timed with the fused kernel it runs with in practice).
    """
    model.eval()
    total, _ = count_parameters(model)
    with torch.no_grad():
        memory = peak_memory_mb(lambda: _call(model, example_32))
    one = latency_ms(model, example_1, repeats=repeats, warmup=warmup)
    many = latency_ms(model, example_32, repeats=repeats, warmup=warmup)
    return {
        "model": name,
        "parameters (M)": total / 1e6,
        "GFLOPs / example": flops(flop_model if flop_model is not None else model, example_1) / 1e9,
        "latency batch 1 (ms)": one["median"], "batch 1 q1": one["q1"], "batch 1 q3": one["q3"],
        "latency batch 32 (ms)": many["median"], "batch 32 q1": many["q1"], "batch 32 q3": many["q3"],
        "peak memory batch 32 (MiB)": memory,
        "size on disk (MB)": size_on_disk_mb(model),
    }
