"""Where the course keeps its data, checkpoints and outputs."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The checkout that holds `data/` and `notebooks/` (PRETRAIN_LESSONS_HOME overrides)."""
    env = os.environ.get("PRETRAIN_LESSONS_HOME")
    if env:
        return Path(env).expanduser().resolve()
    candidate = PACKAGE_DIR.parent
    if (candidate / "pyproject.toml").exists():
        return candidate
    return Path.cwd()


def data_dir() -> Path:
    """The data folder (PRETRAIN_LESSONS_DATA overrides); created on first use where it can be."""
    env = os.environ.get("PRETRAIN_LESSONS_DATA")
    path = Path(env).expanduser().resolve() if env else project_root() / "data"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass   # unwritable: whatever needs to write there (provisioning, checkpoints) says so, with the fix
    return path


def manifest_path() -> Path:
    """The manifest that pins every asset's sources and checksums."""
    in_checkout = project_root() / "data" / "manifest.json"
    return in_checkout if in_checkout.exists() else data_dir() / "manifest.json"


def checkpoint_dir(name: str) -> Path:
    """A folder for one lesson's checkpoints, separate per scale so smoke runs never feed cpu runs."""
    from . import scale

    path = data_dir() / "checkpoints" / scale.current() / name
    path.mkdir(parents=True, exist_ok=True)
    return path
