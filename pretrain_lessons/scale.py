"""The one switch for run size: PRETRAIN_LESSONS_SCALE = smoke | cpu | gpu."""
from __future__ import annotations

import os
from typing import TypeVar

SCALES = ("smoke", "cpu", "gpu")
T = TypeVar("T")


def current() -> str:
    """The scale in force: the environment variable, else `gpu` with CUDA, else `cpu`."""
    value = os.environ.get("PRETRAIN_LESSONS_SCALE", "").strip().lower()
    if value:
        if value not in SCALES:
            raise ValueError(
                f"PRETRAIN_LESSONS_SCALE={value!r} is not one of {', '.join(SCALES)}. "
                "Use smoke (seconds, for tests), cpu (minutes on a laptop) or gpu (larger runs)."
            )
        return value
    try:
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def pick(smoke: T, cpu: T, gpu: T | None = None) -> T:
    """The value for the scale in force, e.g. `steps = pick(smoke=30, cpu=1500, gpu=20000)`."""
    scale = current()
    if scale == "smoke":
        return smoke
    if scale == "gpu" and gpu is not None:
        return gpu
    return cpu


def banner() -> str:
    """One line saying which scale is in force and how to change it."""
    scale = current()
    what = {
        "smoke": "tiny runs that only prove the code works (used by the tests)",
        "cpu": "runs sized for a laptop CPU: minutes per lesson, real results",
        "gpu": "larger runs for a CUDA GPU",
    }[scale]
    return (f"Scale: {scale} — {what}. To change it: %env PRETRAIN_LESSONS_SCALE=smoke|cpu|gpu, then run the notebook "
            "again from the top (no restart needed), or set it before starting Jupyter.")
