"""What a model costs: parameters, FLOPs, latency, peak memory, size on disk."""
from __future__ import annotations

import contextlib
import io
import os
import statistics
import sys
import time
from collections.abc import Mapping
from typing import Callable

import torch


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(all parameters, trainable parameters)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def _call(model: torch.nn.Module, inputs):
    return model(**inputs) if isinstance(inputs, Mapping) else model(inputs)


def flops(model: torch.nn.Module, inputs) -> int:
    """Floating-point operations of one forward pass (a multiply-add counts 2), by torch.utils.flop_counter."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        _call(model, inputs)
    return counter.get_total_flops()


def latency_ms(model: torch.nn.Module, inputs, repeats: int = 20, warmup: int = 3) -> dict:
    """Forward-pass wall time in milliseconds: median and spread over `repeats` runs after `warmup` runs."""
    model.eval()
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            _call(model, inputs)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000)
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


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
    """Peak memory (MiB) that tensors allocated while `fn` runs occupy at once, from the profiler's memory events (CPU)."""
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted(prof.events(), key=lambda e: e.time_range.start)
    current = peak = 0
    for event in events:
        current += event.self_cpu_memory_usage if event.name != "[memory]" else event.cpu_memory_usage
        peak = max(peak, current)
    return peak / 2**20


def size_on_disk_mb(model: torch.nn.Module) -> float:
    """Size of the model's state dict serialised with torch.save, in MB (10⁶ bytes)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes / 1e6


def cost_row(name: str, model: torch.nn.Module, example_1, example_32, repeats: int = 10) -> dict:
    """One row of the cost table: parameters, FLOPs per example, latency at batch 1 and 32, peak memory at 32."""
    model.eval()
    total, _ = count_parameters(model)
    with torch.no_grad():
        memory = peak_memory_mb(lambda: _call(model, example_32))
    return {
        "model": name,
        "parameters (M)": total / 1e6,
        "GFLOPs / example": flops(model, example_1) / 1e9,
        "latency batch 1 (ms)": latency_ms(model, example_1, repeats=repeats)["median"],
        "latency batch 32 (ms)": latency_ms(model, example_32, repeats=max(3, repeats // 2))["median"],
        "peak activations batch 32 (MiB)": memory,
        "size on disk (MB)": size_on_disk_mb(model),
    }
