"""The Colab badge and set-up cell: current in every notebook, pinned to the release tag, and the set-up cell runs
the right commands in Colab (with a stand-in `google.colab` module and a recorder instead of subprocess) and nothing
elsewhere; with KEEP_ON_DRIVE the learner's work lands on the (stand-in) Drive and survives a recycled machine."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import nbformat
import pytest

from pretrain_lessons import colab
from pretrain_lessons.paths import project_root

NOTEBOOKS = sorted((project_root() / "notebooks").glob("*.ipynb"))
REAL_RUN = subprocess.run
PROJECT = tomllib.loads((project_root() / "pyproject.toml").read_text(encoding="utf-8"))["project"]
URL = PROJECT["urls"]["Repository"]
TAG = f"v{PROJECT['version']}"


def test_every_notebook_has_the_current_badge_and_setup_cell():
    assert NOTEBOOKS, "no notebooks found"
    assert colab.sync(write=False) == [], "run: python -m pretrain_lessons.colab sync"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_badge_first_and_setup_cell_second(path):
    """The layout; whether badge and set-up cell are current is the sync check above (the one place to fail)."""
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].cell_type == "markdown" and colab.BADGE_RE.search(cells[0].source)
    assert f"/notebooks/{path.name})" in cells[0].source
    setup = [i for i, c in enumerate(cells) if "colab-setup" in c.metadata.get("tags", [])]
    assert setup == [1], "exactly one set-up cell (tag colab-setup), the second cell"
    assert 'if "google.colab" in sys.modules:' in cells[1].source


def test_badge_and_setup_cell_are_built_from_pyproject_url_and_release():
    assert colab.repository_url() == URL.rstrip("/") and colab.release() == TAG
    path = URL.rstrip("/").split("github.com/", 1)[1]
    assert f"colab.research.google.com/github/{path}/blob/{TAG}/notebooks/01_x.ipynb" in colab.badge("01_x.ipynb")
    assert URL.rstrip("/") in colab.setup_source()
    assert "https://example.org/a/b" in colab.setup_source("https://example.org/a/b")
    assert f'"--branch", "{TAG}"' in colab.setup_source(), "the set-up cell installs a tagged release"
    assert "main" not in colab.setup_source() and "/main/" not in colab.badge("x.ipynb"), "never a moving main"
    assert "KEEP_ON_DRIVE = False" in colab.setup_source(), "Drive is a choice, off unless the learner turns it on"


def test_sync_fixes_a_stale_badge_and_setup_cell(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 09 · Title\n\n[![Open In Colab](https://x/b.svg)](https://old/url)\n\ntext"),
        nbformat.v4.new_code_cell("# old set-up", metadata={"tags": ["colab-setup"]}),
        nbformat.v4.new_code_cell("print(1)"),
    ])
    nbformat.write(nb, tmp_path / "09_x.ipynb")
    assert colab.sync(tmp_path, write=False) == ["09_x.ipynb"]
    assert colab.sync(tmp_path) == ["09_x.ipynb"]
    assert colab.sync(tmp_path, write=False) == []
    cells = nbformat.read(tmp_path / "09_x.ipynb", as_version=4).cells
    assert colab.badge("09_x.ipynb") in cells[0].source and "https://old/url" not in cells[0].source
    assert cells[1].source == colab.setup_source() and cells[2].source == "print(1)"


def test_sync_puts_back_a_lost_setup_tag(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 09 · Title\n\n" + colab.badge("09_x.ipynb")),
        nbformat.v4.new_code_cell(colab.setup_source()),                 # current source, tag lost by some tool
        nbformat.v4.new_code_cell("# Set-up: in Colab, said a learner's cell")])
    nbformat.write(nb, tmp_path / "09_x.ipynb")
    assert colab.sync(tmp_path) == ["09_x.ipynb"]
    cells = nbformat.read(tmp_path / "09_x.ipynb", as_version=4).cells
    assert cells[1].metadata["tags"] == ["colab-setup"] and "tags" not in cells[2].metadata
    assert colab.sync(tmp_path, write=False) == []


def test_sync_can_be_limited_to_named_notebooks(tmp_path):
    for name in ("00_a.ipynb", "01_b.ipynb"):
        nbformat.write(nbformat.v4.new_notebook(cells=[
            nbformat.v4.new_markdown_cell("# title\n\n[![Open In Colab](https://x/b.svg)](https://old/url)"),
            nbformat.v4.new_code_cell("# old", metadata={"tags": ["colab-setup"]})]), tmp_path / name)
    assert colab.sync(tmp_path, only=["00_a"]) == ["00_a.ipynb"]
    assert colab.sync(tmp_path, write=False) == ["01_b.ipynb"]


class Recorder:
    """Stands in for subprocess.run: records each command; `git clone` creates the checkout it would create."""

    def __init__(self, fail_on: str | None = None, probe: bool = False):
        self.calls: list[tuple[list[str], str | None]] = []
        self.fail_on, self.probe = fail_on, probe
        self.manifest_seen_by_fetch: str | None = None

    def __call__(self, command, cwd=None, **kwargs):
        self.calls.append((list(command), cwd))
        if command[:2] == ["git", "clone"]:
            checkout = Path(command[-1])
            (checkout / "notebooks").mkdir(parents=True)
            (checkout / "data").mkdir()
            (checkout / "data" / "manifest.json").write_text("{}")
        if self.probe and command[1:] == ["-m", "pretrain_lessons.data", "fetch"]:
            # What the real fetch subprocess would take as its manifest: same environment, same working folder.
            probe = [sys.executable, "-c", "from pretrain_lessons import paths; print(paths.manifest_path())"]
            seen = REAL_RUN(probe, cwd=cwd, capture_output=True, text=True, check=True)
            self.manifest_seen_by_fetch = seen.stdout.strip()
        code = 1 if self.fail_on and self.fail_on in " ".join(command) else 0
        return subprocess.CompletedProcess(command, code, stdout="output of the command\n")


class Drive:
    """Stands in for google.colab.drive: mount() makes the folder a mounted Drive would show."""

    def __init__(self, root: Path):
        self.root, self.mounts = root, []

    def mount(self, where):
        self.mounts.append(where)
        (self.root / "MyDrive").mkdir(parents=True, exist_ok=True)


@pytest.fixture
def cell_env(tmp_path, monkeypatch):
    """Run the set-up cell with a temporary folder standing in for the Colab checkout; undo what it changes."""
    checkout = tmp_path / "checkout"
    drive_root = tmp_path / "drive"
    source = (colab.setup_source().replace(colab.CHECKOUT, str(checkout))
              .replace(colab.DRIVE_FOLDER, str(drive_root / "MyDrive" / "pretrain-lessons"))
              .replace(f'"{colab.DRIVE}"', f'"{drive_root}"'))
    assert colab.CHECKOUT not in source and str(checkout) in source and '"/content' not in source
    monkeypatch.chdir(tmp_path)                       # restores the working folder afterwards
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PRETRAIN_LESSONS_HOME", "-")  # setenv records the original value (even "unset") for undo
    monkeypatch.delenv("PRETRAIN_LESSONS_HOME")
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("PRETRAIN_LESSONS_DATA", raising=False)
    monkeypatch.delenv("PRETRAIN_LESSONS_PROGRESS_FILE", raising=False)
    drive = Drive(drive_root)

    def run_cell(recorder: Recorder, in_colab: bool = True, keep_on_drive: bool = False):
        if in_colab:
            stand_in = types.ModuleType("google.colab")
            stand_in.drive = drive
            monkeypatch.setitem(sys.modules, "google.colab", stand_in)
        monkeypatch.setattr(subprocess, "run", recorder)
        code = source.replace("KEEP_ON_DRIVE = False", "KEEP_ON_DRIVE = True") if keep_on_drive else source
        exec(compile(code, "<colab-setup>", "exec"), {"__name__": "__main__"})

    run_cell.drive = drive
    return checkout, run_cell


def expected_commands(checkout: Path) -> list[list[str]]:
    return [["git", "clone", "--depth=1", "--branch", TAG, URL.rstrip("/"), str(checkout)],
            [sys.executable, "-m", "pip", "install", "--quiet", "-e", str(checkout)],
            [sys.executable, "-m", "pretrain_lessons.data", "fetch"]]


def test_setup_cell_does_nothing_outside_colab(cell_env, tmp_path):
    checkout, run_cell = cell_env
    path_before = list(sys.path)
    recorder = Recorder()
    run_cell(recorder, in_colab=False)
    assert recorder.calls == []
    assert Path.cwd() == tmp_path and sys.path == path_before
    assert "PRETRAIN_LESSONS_HOME" not in os.environ and not checkout.exists()


def test_setup_cell_in_colab_clones_installs_fetches_and_enters_the_checkout(cell_env, capsys):
    checkout, run_cell = cell_env
    recorder = Recorder(probe=True)
    run_cell(recorder)
    assert [command for command, _ in recorder.calls] == expected_commands(checkout)
    assert [cwd for _, cwd in recorder.calls] == [None, str(checkout), str(checkout)]
    assert os.environ["PRETRAIN_LESSONS_HOME"] == str(checkout)
    assert recorder.manifest_seen_by_fetch == str(checkout / "data" / "manifest.json")
    assert sys.path[0] == str(checkout) and Path.cwd() == checkout / "notebooks"
    out = capsys.readouterr().out
    assert "$ python -m pretrain_lessons.data fetch" in out and "output of the command" in out

    again = Recorder()
    run_cell(again)
    assert again.calls == [], "a second run (or a run after a kernel restart) installs nothing again"
    assert sys.path.count(str(checkout)) == 1 and Path.cwd() == checkout / "notebooks"


def test_setup_cell_resumes_after_a_failed_step(cell_env):
    checkout, run_cell = cell_env
    failing = Recorder(fail_on="pretrain_lessons.data fetch")
    with pytest.raises(subprocess.CalledProcessError):
        run_cell(failing)
    assert len(failing.calls) == 3
    retry = Recorder()
    run_cell(retry)
    assert [command for command, _ in retry.calls] == expected_commands(checkout)[1:], "no second clone"
    assert Path.cwd() == checkout / "notebooks"


def test_keep_on_drive_puts_checkpoints_results_and_progress_on_drive_and_survives_a_new_machine(cell_env, tmp_path):
    from pretrain_lessons import learner_progress

    checkout, run_cell = cell_env
    run_cell(Recorder())                       # first without Drive: work is done on the machine
    local = checkout / "data" / "checkpoints" / "cpu" / "mnist"
    local.mkdir(parents=True)
    (local / "model.pt").write_text("weights")
    run_cell(Recorder(), keep_on_drive=True)   # then the learner turns the option on
    kept = tmp_path / "drive" / "MyDrive" / "pretrain-lessons"
    assert run_cell.drive.mounts == [str(tmp_path / "drive")]
    for name in colab.KEPT:
        link = checkout / "data" / name
        assert link.is_symlink() and link.resolve() == (kept / name).resolve(), name
    assert (kept / "checkpoints" / "cpu" / "mnist" / "model.pt").read_text() == "weights", "moved, not lost"
    assert learner_progress.record("00", "q1", "correct")
    assert (kept / "progress" / "progress.json").exists(), "the progress record is written on Drive"

    shutil.rmtree(checkout)                    # Colab recycles the machine: /content is wiped, Drive is not
    again = Recorder()
    run_cell(again, keep_on_drive=True)
    assert [command for command, _ in again.calls] == expected_commands(checkout), "course and data fetched again"
    assert (checkout / "data" / "checkpoints" / "cpu" / "mnist" / "model.pt").read_text() == "weights"
    assert learner_progress.load()["exercises"]["00/q1"]["best"] == "correct"
    run_cell(Recorder(), keep_on_drive=True)   # and a third run changes nothing
    assert sorted(p.name for p in kept.iterdir()) == sorted(colab.KEPT)


def test_keep_on_drive_never_overwrites_what_is_already_on_drive(tmp_path, monkeypatch):
    monkeypatch.setenv("PRETRAIN_LESSONS_DATA", str(tmp_path / "data"))
    drive = tmp_path / "drive"
    (drive / "results").mkdir(parents=True)
    (drive / "results" / "cpu").mkdir()
    (drive / "results" / "cpu" / "02.json").write_text("from drive")
    (tmp_path / "data" / "results" / "cpu").mkdir(parents=True)
    (tmp_path / "data" / "results" / "cpu" / "02.json").write_text("from this machine")
    colab.keep_on_drive(drive)
    assert (drive / "results" / "cpu" / "02.json").read_text() == "from drive"
    assert (tmp_path / "data" / "results.before-drive" / "cpu" / "02.json").read_text() == "from this machine"
    assert colab.keep_on_drive(drive) and (tmp_path / "data" / "results").is_symlink()
