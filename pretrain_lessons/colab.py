"""Colab support: the "Open in Colab" badge and the set-up cell, both built from pyproject.toml: the repository
URL ([project.urls] Repository) and the release, the tag `v<version>` of [project] version. Badge and set-up cell
point at that tag, never at a moving `main`, so a notebook opened in Colab runs the package it was tested with.

`python -m pretrain_lessons.colab sync` rewrites the badge line of each notebook's first cell and its
cell tagged `colab-setup`; `python -m pretrain_lessons.colab check` fails if any is out of date.

What survives in Colab: a disconnect that keeps the machine keeps everything; when Colab recycles the machine,
everything under /content goes (the checkout, the data, checkpoints, results, progress). With `KEEP_ON_DRIVE = True`
in the set-up cell, `keep_on_drive()` puts the checkpoints, the results and the progress record on the learner's
Google Drive, so only the course and its data (fetched again in a few minutes) are lost.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from .paths import project_root

BADGE_RE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")
CHECKOUT = "/content/pretrain-lessons"
DRIVE = "/content/drive"
DRIVE_FOLDER = "/content/drive/MyDrive/pretrain-lessons"
KEPT = ("checkpoints", "results", "progress")  # the learner's own work, under the data folder


def _project() -> dict:
    import tomllib

    pyproject = project_root() / "pyproject.toml"
    return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]


def repository_url() -> str:
    """The repository URL from pyproject.toml's [project.urls]."""
    return _project()["urls"]["Repository"].rstrip("/")


def release() -> str:
    """The git tag of this version, `v` + pyproject's [project] version: what Colab installs."""
    return f"v{_project()['version']}"


def badge(notebook: str, url: str | None = None, ref: str | None = None) -> str:
    """Markdown for the badge that opens `notebooks/<notebook>` of this release in Colab."""
    url = url or repository_url()
    path = url.split("github.com/", 1)[-1]
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{path}/blob/{ref or release()}/notebooks/{notebook})")


def setup_source(url: str | None = None, ref: str | None = None) -> str:
    """The set-up cell: in Colab it installs the course's release and fetches the data; anywhere else it does nothing.

    Each step runs until it has succeeded once, so re-running the cell after a failure (a network hiccup) picks up
    where it stopped, and re-running it after success (or after a restart) only re-enters the checkout.
    PRETRAIN_LESSONS_HOME points the package, and the fetch subprocess, at the checkout's data manifest.
    Output is captured and printed because Colab does not show what subprocesses write.
    With KEEP_ON_DRIVE = True it mounts Google Drive and keeps the learner's work there (`keep_on_drive`).
    """
    url, ref = url or repository_url(), ref or release()
    return f'''# Set-up: in Colab this installs the course ({ref}) and fetches its data (a few minutes, once per machine);
# in a local JupyterLab it does nothing. When Colab recycles the machine, everything under /content is wiped;
# KEEP_ON_DRIVE = True keeps your checkpoints, results and exercise progress in My Drive/pretrain-lessons instead
# (Colab asks once for access to your Drive), so a new machine picks up where you stopped.
KEEP_ON_DRIVE = False
import os, subprocess, sys
if "google.colab" in sys.modules:
    home, ready = "{CHECKOUT}", "{CHECKOUT}/data/.colab-ready"
    os.environ["PRETRAIN_LESSONS_HOME"] = home
    steps = []
    if not os.path.isdir(home):
        steps.append(["git", "clone", "--depth=1", "--branch", "{ref}", "{url}", home])
    if not os.path.exists(ready):
        steps += [[sys.executable, "-m", "pip", "install", "--quiet", "-e", home],
                  [sys.executable, "-m", "pretrain_lessons.data", "fetch"]]
    for command in steps:
        print("$", " ".join(command).replace(sys.executable, "python"), flush=True)
        done = subprocess.run(command, cwd=home if os.path.isdir(home) else None, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        print(done.stdout[-3000:])
        done.check_returncode()
    if steps:
        open(ready, "w").close()
    if home not in sys.path:
        sys.path.insert(0, home)
    os.chdir(home + "/notebooks")
    if KEEP_ON_DRIVE:
        from google.colab import drive
        drive.mount("{DRIVE}")
        from pretrain_lessons.colab import keep_on_drive
        keep_on_drive("{DRIVE_FOLDER}")'''


def keep_on_drive(folder: str | Path = DRIVE_FOLDER) -> list[str]:
    """Keep the learner's work (data/checkpoints, data/results, data/progress) in `folder` on Google Drive.

    Each of the three becomes a link into `folder`; what is already on the machine moves there first (anything whose
    name is already taken on Drive stays in data/<name>.before-drive/, nothing is deleted). Safe to call again: links
    that are in place are left alone. Returns (and prints) one line per folder.
    """
    import shutil

    from .paths import data_dir

    folder = Path(folder)
    lines = []
    for name in KEPT:
        local, remote = data_dir() / name, folder / name
        remote.mkdir(parents=True, exist_ok=True)
        if local.is_symlink() and local.resolve() == remote.resolve():
            lines.append(f"{name}: kept on Drive ({remote})")
            continue
        if local.is_symlink():
            local.unlink()
        elif local.exists():
            aside = local.with_name(f"{name}.before-drive")
            for item in sorted(local.iterdir()):
                if (remote / item.name).exists():
                    aside.mkdir(exist_ok=True)
                    shutil.move(str(item), str(aside / item.name))
                else:
                    shutil.move(str(item), str(remote / item.name))
            local.rmdir()
        local.symlink_to(remote, target_is_directory=True)
        lines.append(f"{name}: kept on Drive ({remote})")
    print("\n".join(lines))
    return lines


def sync(folder: Path | None = None, write: bool = True, only: list[str] | None = None) -> list[str]:
    """Bring every notebook's badge and set-up cell (or only those named) in line with pyproject.toml's repository
    URL and release; return the files that differed."""
    import nbformat

    folder = folder or project_root() / "notebooks"
    url, ref = repository_url(), release()
    changed = []
    for path in sorted(folder.glob("*.ipynb")):
        if only and path.name not in only and path.stem not in only:
            continue
        nb = nbformat.read(path, as_version=4)
        before = [cell.source for cell in nb.cells]
        had_tag = any("colab-setup" in c.get("metadata", {}).get("tags", []) for c in nb.cells)
        first = nb.cells[0]
        wanted = badge(path.name, url, ref)
        text = first.source
        first.source = BADGE_RE.sub(wanted, text) if BADGE_RE.search(text) else text.replace("\n", f"\n\n{wanted}\n", 1)
        for index, cell in enumerate(nb.cells):
            tags = cell.get("metadata", {}).get("tags", [])
            if "colab-setup" in tags or (index == 1 and cell.cell_type == "code"
                                         and cell.source.startswith("# Set-up: in Colab")):
                if "colab-setup" not in tags:  # a tool that rewrote the notebook dropped the tag: put it back
                    cell.setdefault("metadata", {})["tags"] = [*tags, "colab-setup"]
                cell.source = setup_source(url, ref)
        if [cell.source for cell in nb.cells] != before or any(
                "colab-setup" in c.get("metadata", {}).get("tags", []) for c in nb.cells) != had_tag:
            changed.append(path.name)
            if write:
                nbformat.write(nb, path)
    return changed


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv else "check"
    changed = sync(write=command == "sync", only=argv[1:] or None)
    if command == "check" and changed:
        print("Out of date (run: python -m pretrain_lessons.colab sync):", ", ".join(changed))
        return 1
    print("\n".join(changed) if changed else "All badges and set-up cells are current.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
