"""Device choice, seeding, and the environment report ("doctor")."""
from __future__ import annotations

import os
import platform
import random
import socket
import sys
from importlib import metadata

import numpy as np
import torch


def get_device(prefer: str | None = None) -> torch.device:
    """CUDA if present, then Apple MPS, then CPU; `prefer` (or PRETRAIN_LESSONS_DEVICE) overrides."""
    choice = prefer or os.environ.get("PRETRAIN_LESSONS_DEVICE")
    if choice:
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices); optionally ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)


def is_online(host: str = "huggingface.co", port: int = 443, timeout: float = 2.0) -> bool:
    """Whether the internet beyond the package registries answers (a quick TCP connect)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _memory_gib() -> tuple[float, float]:
    """Total and available RAM in GiB (Linux/macOS; zeros where unknown)."""
    try:
        import psutil

        mem = psutil.virtual_memory()
        return mem.total / 2**30, mem.available / 2**30
    except ImportError:
        try:
            pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
            return pages * size / 2**30, float("nan")
        except (ValueError, OSError, AttributeError):
            return 0.0, 0.0


def doctor(check_online: bool = True) -> dict:
    """Collect what the course needs to know about this machine, as an ordered dict of name → value."""
    from . import scale
    from .data import provision

    device = get_device()
    total, available = _memory_gib()
    report: dict[str, str] = {
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "in Colab": str("google.colab" in sys.modules),
        "CPU cores": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "RAM": f"{total:.1f} GiB total, {available:.1f} GiB available",
        "device": str(device),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(0)
        report["GPU"] = f"{props.name}, {props.total_memory / 2**30:.1f} GiB"
    for package in ("torch", "torchvision", "transformers", "accelerate", "tokenizers", "nltk", "scikit-learn", "ipywidgets"):
        report[package] = _version(package)
    report["scale"] = scale.current()
    rows = provision.status_rows(verify=False)
    ready = [r["asset"] for r in rows if r["state"] == "ok"]
    missing = [r["asset"] for r in rows if r["state"] != "ok"]
    report["data ready"] = ", ".join(ready) or "none"
    report["data missing"] = ", ".join(missing) or "none"
    if missing:
        report["to fetch"] = "python -m pretrain_lessons.data fetch   (or: make data)"
    if check_online:
        report["internet"] = "online" if is_online() else "offline (package registries only): offline sources are used"
    return report


def print_doctor(check_online: bool = True) -> None:
    """Print the doctor's report as an aligned two-column table."""
    report = doctor(check_online=check_online)
    width = max(len(k) for k in report)
    for key, value in report.items():
        print(f"{key:<{width}}  {value}")
