"""Colab support: the "Open in Colab" badge and the set-up cell, both built from the one repository URL
kept in pyproject.toml ([project.urls] Repository).

`python -m pretrain_lessons.colab sync` rewrites the badge line of each notebook's first cell and its
cell tagged `colab-setup`; `python -m pretrain_lessons.colab check` fails if any is out of date.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from .paths import project_root

BADGE_RE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")
CHECKOUT = "/content/pretrain-lessons"


def repository_url() -> str:
    """The repository URL from pyproject.toml's [project.urls]."""
    import tomllib

    pyproject = project_root() / "pyproject.toml"
    return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["urls"]["Repository"].rstrip("/")


def badge(notebook: str, url: str | None = None) -> str:
    """Markdown for the badge that opens `notebooks/<notebook>` in Colab."""
    url = url or repository_url()
    path = url.split("github.com/", 1)[-1]
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{path}/blob/main/notebooks/{notebook})")


def setup_source(url: str | None = None) -> str:
    """The set-up cell: in Colab it installs the course and fetches the data; anywhere else it does nothing.

    Each step runs until it has succeeded once, so re-running the cell after a failure (a network hiccup) picks up
    where it stopped, and re-running it after success (or after a restart) only re-enters the checkout.
    PRETRAIN_LESSONS_HOME points the package, and the fetch subprocess, at the checkout's data manifest.
    Output is captured and printed because Colab does not show what subprocesses write.
    """
    url = url or repository_url()
    return f'''# Set-up: in Colab this installs the course and fetches its data (a few minutes, once per session);
# in a local JupyterLab it does nothing.
import os, subprocess, sys
if "google.colab" in sys.modules:
    home, ready = "{CHECKOUT}", "{CHECKOUT}/data/.colab-ready"
    os.environ["PRETRAIN_LESSONS_HOME"] = home
    steps = []
    if not os.path.isdir(home):
        steps.append(["git", "clone", "--depth=1", "{url}", home])
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
    os.chdir(home + "/notebooks")'''


def sync(folder: Path | None = None, write: bool = True) -> list[str]:
    """Bring every notebook's badge and set-up cell in line with the repository URL; return the files that differed."""
    import nbformat

    folder = folder or project_root() / "notebooks"
    url = repository_url()
    changed = []
    for path in sorted(folder.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        before = [cell.source for cell in nb.cells]
        first = nb.cells[0]
        wanted = badge(path.name, url)
        text = first.source
        first.source = BADGE_RE.sub(wanted, text) if BADGE_RE.search(text) else text.replace("\n", f"\n\n{wanted}\n", 1)
        for cell in nb.cells:
            if "colab-setup" in cell.get("metadata", {}).get("tags", []):
                cell.source = setup_source(url)
        if [cell.source for cell in nb.cells] != before:
            changed.append(path.name)
            if write:
                nbformat.write(nb, path)
    return changed


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv else "check"
    changed = sync(write=command == "sync")
    if command == "check" and changed:
        print("Out of date (run: python -m pretrain_lessons.colab sync):", ", ".join(changed))
        return 1
    print("\n".join(changed) if changed else "All badges and set-up cells are current.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
