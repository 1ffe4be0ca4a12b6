"""fit()'s checkpoints: what a checkpoint holds, how it is checked before a run resumes, and how it is read safely.

A checkpoint is one file written atomically (to a temporary file, then renamed), holding only tensors and plain
Python values, so it loads with `torch.load(weights_only=True)`: a planted file cannot run code. It also holds a
fingerprint of the run's settings (model, optimizer and its settings, schedule, batch size, data); a later `fit()`
resumes from it only when its own fingerprint is the same.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

FORMAT = "pretrain-lessons/fit-checkpoint"
VERSION = 2
_SAMPLE = 4096   # values read from each data tensor for the digest: cheap, yet any real change of data shows


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read, or its folder cannot be written: the message says what to do."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint exists but belongs to another run (other model, settings or data, or an older format)."""


# ---------------------------------------------------------------- random state, as tensors and plain values


def rng_state() -> dict:
    """The state of every random number generator (Python, NumPy, torch), in a form weights_only loading accepts."""
    version, internal, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": [version, torch.tensor(internal, dtype=torch.int64), gauss],
             "numpy": [torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what rng_state() returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal.tolist()), gauss))
    keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------- fingerprint of a run's settings

_IMPLEMENTATION = {"params", "foreach", "fused", "capturable", "differentiable", "initial_lr"}


def _plain(value):
    """JSON-comparable form: tuples become lists, tensors and numpy numbers become floats."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))


def _tensors_of(loader) -> list[torch.Tensor]:
    """The tensors behind a loader when they are at hand (TensorLoader, TensorDataset, torchvision datasets)."""
    for holder in (loader, getattr(loader, "dataset", None)):
        tensors = getattr(holder, "tensors", None)
        if tensors:
            return [t for t in tensors if isinstance(t, torch.Tensor)]
        found = [getattr(holder, name, None) for name in ("data", "targets")]
        if all(isinstance(t, torch.Tensor) for t in found):
            return found
    return []


def _digest_value(digest, value) -> None:
    if isinstance(value, torch.Tensor):
        flat = value.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // _SAMPLE)][: _SAMPLE + 1]
        digest.update(f"{tuple(value.shape)} {value.dtype}".encode())
        digest.update(sample.cpu().contiguous().view(torch.uint8).numpy().tobytes())
    elif isinstance(value, Mapping):
        for key in sorted(value):
            digest.update(str(key).encode())
            _digest_value(digest, value[key])
    elif isinstance(value, (list, tuple)):
        for item in value:
            _digest_value(digest, item)
    elif hasattr(value, "tobytes"):          # numpy arrays, PIL images
        digest.update(value.tobytes())
    else:
        digest.update(repr(value).encode())


def data_digest(loader) -> str:
    """A cheap digest of a loader's data: shapes plus a few thousand evenly spaced values of each tensor."""
    digest = hashlib.sha256()
    tensors = _tensors_of(loader)
    dataset = getattr(loader, "dataset", None)
    if tensors:
        _digest_value(digest, tensors)
        return digest.hexdigest()[:16]
    try:
        n = len(dataset)
        for i in sorted({0, n // 2, n - 1}):   # three examples stand for the rest
            _digest_value(digest, dataset[i])
    except (TypeError, NotImplementedError, IndexError, KeyError, ValueError):   # no dataset, or not indexable
        return "unknown"
    return digest.hexdigest()[:16]


def _examples(loader) -> int | None:
    tensors = _tensors_of(loader)
    if tensors:
        return len(tensors[0])
    try:
        return len(loader.dataset)
    except (AttributeError, TypeError, NotImplementedError):
        return None


def fingerprint(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loader, scheduler, **settings) -> dict:
    """What must be the same for a checkpoint to continue this run: model, optimizer and settings, schedule, data."""
    shapes = [(name, list(t.shape)) for name, t in model.state_dict().items()]
    groups = [{k: v for k, v in group.items() if k not in _IMPLEMENTATION} | {"lr": group.get("initial_lr", group["lr"]),
              "n_params": len(group["params"])} for group in optimizer.param_groups]
    if isinstance(scheduler, str):
        schedule = {"kind": scheduler}
    else:
        schedule = {"class": type(scheduler).__name__,
                    **{k: v for k, v in scheduler.state_dict().items() if not k.startswith("_") and k != "last_epoch"}}
    return _plain({
        "model": {"class": type(model).__name__, "tensors": len(shapes),
                  "shapes": hashlib.sha256(json.dumps(shapes).encode()).hexdigest()[:16]},
        "optimizer": {"class": type(optimizer).__name__, "groups": groups},
        "scheduler": schedule,
        "data": {"batches_per_epoch": len(loader), "batch_size": getattr(loader, "batch_size", None),
                 "examples": _examples(loader), "digest": data_digest(loader)},
        "run": settings,
    })


def _flat(tree, prefix: str = "") -> dict:
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{prefix}{key}.").items()}
    if isinstance(tree, list) and tree and isinstance(tree[0], dict):
        return {k: v for i, sub in enumerate(tree) for k, v in _flat(sub, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): tree}


def differences(saved: dict, now: dict) -> list[str]:
    """'key: saved → now' for every setting that differs."""
    a, b = _flat(saved), _flat(now)
    return [f"{key}: {a.get(key, '—')} in the checkpoint, {b.get(key, '—')} now"
            for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


# ---------------------------------------------------------------- reading and writing


def _start_over(path: Path) -> str:
    return f"Delete it to start this run from scratch (rm '{path}'), or pass another checkpoint= path."


def check_writable(path: Path) -> None:
    """Fail before training when the checkpoint's folder cannot be created or written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise CheckpointError(
            f"fit() cannot write its checkpoint {path}: {exc.strerror or exc}. Pass checkpoint= a path in a folder "
            "you can write to (or fix the folder's permissions), or checkpoint=None to train without one.") from None


def load(path: Path, device: torch.device | str | None = None) -> dict | None:
    """The checkpoint at `path` (None if there is none), or a CheckpointError that says what is wrong with the file."""
    if not path.exists():
        return None
    if path.is_dir():
        raise CheckpointError(f"checkpoint={path} is a folder; pass a file path inside it, e.g. {path / 'fit.pt'}.")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = re.search(r"GLOBAL (\S+)", str(exc))
        if unsafe:
            raise CheckpointMismatchError(
                f"{path} holds Python objects ({unsafe.group(1)}) that could run code when loaded, so it was not "
                f"loaded. Checkpoints of older versions of this course look like this too. {_start_over(path)}") from None
        raise CheckpointError(f"{path} cannot be read: it is not a checkpoint (empty, truncated or another kind "
                              f"of file). {_start_over(path)}") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} cannot be read ({type(exc).__name__}): it is empty, truncated or not a "
                              f"checkpoint. {_start_over(path)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        kind = f"a {type(state).__name__}" + (f" with keys {sorted(state)[:4]}" if isinstance(state, dict) else "")
        raise CheckpointError(f"{path} is not a fit() checkpoint (it holds {kind}). {_start_over(path)}")
    if state.get("version") != VERSION:
        raise CheckpointMismatchError(f"{path} was written by another version of this course's fit(). "
                                      f"{_start_over(path)}")
    return state


def check_same_run(path: Path, state: dict, settings: dict) -> None:
    """Refuse a checkpoint whose fingerprint differs from this run's, saying what differs."""
    diff = differences(state["fingerprint"], settings)
    if diff:
        shown = "\n  ".join(diff[:6]) + (f"\n  … and {len(diff) - 6} more" if len(diff) > 6 else "")
        raise CheckpointMismatchError(
            f"{path} was written for a different run (different settings):\n  {shown}\n"
            f"To continue that run, call fit() with its settings. {_start_over(path)}")


def save(path: Path, state: dict) -> None:
    """Write a checkpoint atomically: to a temporary file in the same folder first, then renamed over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")   # per process: two runs never share a half-written file
    torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)
    os.replace(tmp, path)
