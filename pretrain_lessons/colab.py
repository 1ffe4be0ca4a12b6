"""Colab support: the "Open in Colab" badge and the set-up cell, both built from the one repository URL
kept in pyproject.toml ([project.urls] Repository).

`python -m pretrain_lessons.colab sync` rewrites the badge line of each notebook's first cell and its
cell tagged `colab-setup`; `python -m pretrain_lessons.colab check` fails if any is out of date.
"""
from __future__ import annotations

import json
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
    """The set-up cell: in Colab it installs the course and fetches the data; anywhere else it does nothing."""
    url = url or repository_url()
    return f'''# Set-up: in Colab this installs the course and fetches its data; in a local JupyterLab it does nothing.
import os, subprocess, sys
if "google.colab" in sys.modules and not os.path.isdir("{CHECKOUT}"):
    for command in (["git", "clone", "--depth=1", "{url}", "{CHECKOUT}"],
                    [sys.executable, "-m", "pip", "install", "--quiet", "-e", "{CHECKOUT}"],
                    [sys.executable, "-m", "pretrain_lessons.data", "fetch"]):
        subprocess.run(command, check=True, cwd="{CHECKOUT}" if os.path.isdir("{CHECKOUT}") else None)
if "google.colab" in sys.modules:
    sys.path.insert(0, "{CHECKOUT}")
    os.chdir("{CHECKOUT}/notebooks")'''


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def sync(folder: Path | None = None, write: bool = True) -> list[str]:
    """Bring every notebook's badge and set-up cell in line with the repository URL; return the files that differed."""
    folder = folder or project_root() / "notebooks"
    url = repository_url()
    changed = []
    for path in sorted(folder.glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        before = json.dumps(nb, sort_keys=True)
        first = nb["cells"][0]
        text = _source(first)
        wanted = badge(path.name, url)
        text = BADGE_RE.sub(wanted, text) if BADGE_RE.search(text) else text.replace("\n", f"\n\n{wanted}\n", 1)
        first["source"] = text
        for cell in nb["cells"]:
            if "colab-setup" in cell.get("metadata", {}).get("tags", []):
                cell["source"] = setup_source(url)
        if json.dumps(nb, sort_keys=True) != before:
            changed.append(path.name)
            if write:
                path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
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
