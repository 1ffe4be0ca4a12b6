"""Grade a class: `python -m pretrain_lessons.classroom grade SUBMISSIONS/ --out GRADES/` (or `make grade`).

Each submitted notebook runs top to bottom in a fresh kernel, in a temporary folder of its own, at the scale asked
for (default smoke), with a time limit per cell and per notebook, several notebooks at once. After the learner's
cells have run, the grader takes each exercise's verdict itself: in the same kernel it imports the course's checker
modules afresh and evaluates the learner's answer variable (`term`, `n_test`, …) with them. A notebook that redefines
`q1.check`, prints "✔ Correct!" or edits its stored outputs gains nothing: stored outputs are never read.

Written to GRADES/: grades.csv (one row per learner: lesson, each exercise correct / incorrect / not attempted /
error, points, run time, problems), feedback/<learner>.html (the checker's feedback and the hint, never the
reference solution) and summary.md with summary.png (how the class did on each exercise).

A submission that cannot be graded (invalid JSON, another lesson's notebook, a kernel that dies, a notebook that
runs past its limit, two notebooks for one learner…) gets its row and its reason; the run goes on. Submissions are
only ever read. The learners' code runs with the grader's permissions: see `isolation()` for what is fenced off.
"""
from __future__ import annotations

import argparse
import csv
import html
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .paths import PACKAGE_DIR, data_dir, project_root

STATUSES = ("correct", "incorrect", "not attempted", "error")
LIMITS = {  # seconds per cell, per notebook: long enough for the training cells at each scale
    "smoke": (300, 900),
    "cpu": (1800, 3600),
    "gpu": (3600, 7200),
}
CHECK_LIMIT = 120        # seconds for the grader's own check of one exercise
GRACE = 20               # seconds a kernel gets to stop after an interrupt before it is killed
MAX_BYTES = 50_000_000   # a bigger "notebook" is not read
SECRET_ENV = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_KEY|ACCESS_KEY|PRIVATE_KEY", re.I)
COPY_SUFFIX = re.compile(r"(\s*\(\d+\)|\s*-\s*copy(\s*\d+)?|\s+copy(\s*\d+)?)$", re.I)
SUSPICIOUS = [  # (pattern in a learner's code, what the teacher is told); the verdicts are the grader's anyway
    (re.compile(r"\.(check|evaluate|checker)\s*=(?!=)"), "replaces a checker"),
    (re.compile(r"\bbuiltins\b|__builtins__"), "touches Python's builtins"),
    (re.compile(r"sys\.modules|importlib"), "changes the import system"),
    (re.compile(r"✔|Correct!"), "prints a verdict of its own"),
]


class GradingError(Exception):
    """The grading run cannot start (no submissions, a bad output folder, an unknown lesson)."""


# ---------------------------------------------------------------- the course's lessons and exercises

class Lesson:
    """One lesson notebook of the course; its checked exercises are read (and their checkers imported) on first use."""

    def __init__(self, path: Path):
        self.path, self.stem, self.number = path, path.stem, path.stem[:2]
        self._exercises: list[tuple[str, object]] | None = None

    @property
    def exercises(self) -> list[tuple[str, object]]:
        """(q1, Exercise) for each exercise the lesson checks, in the order it checks them."""
        if self._exercises is None:
            import importlib

            import nbformat

            from . import classroom

            nb = nbformat.read(self.path, as_version=4)
            names = classroom.exercise_names(nb)
            order: list[tuple[str, str]] = []
            for cell in nb.cells:
                tree = classroom._parse(cell.source) if cell.cell_type == "code" else None
                for stmt in tree.body if tree else ():
                    target = classroom.checked_exercise(stmt, names)
                    if target and target not in order:
                        order.append(target)
            self._exercises = [(q, getattr(importlib.import_module(module), q)) for module, q in order]
        return self._exercises


def course_lessons() -> dict[str, Lesson]:
    """Every lesson notebook of the course, by number ('00': 00_start_here)."""
    return {path.stem[:2]: Lesson(path) for path in sorted((project_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))}


def lesson_of(nb) -> tuple[str | None, str]:
    """The lesson number a submitted notebook belongs to, and how that was decided ('' when it could not be)."""
    from . import classroom

    numbers = sorted({module.rsplit("lesson", 1)[-1] for module, _ in classroom.exercise_names(nb).values()})
    if len(numbers) == 1:
        return numbers[0], "its exercise imports"
    if len(numbers) > 1:
        return None, f"it imports the exercises of several lessons ({', '.join(numbers)})"
    stem = str(nb.metadata.get("pretrain_lessons", {}).get("lesson", ""))
    if re.match(r"\d\d", stem):
        return stem[:2], "its metadata"
    first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    match = re.match(r"\s*#\s*(\d\d)\b", first)
    if match:
        return match.group(1), "its title"
    return None, "it imports no lesson's exercises and has no lesson title"


# ---------------------------------------------------------------- finding the submissions

def shown(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 (kept by the file system as surrogates) shown as \\xNN."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def valid_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def learner_from_stem(stem: str, lesson_stems: list[str]) -> str:
    """`alice-00_start_here (1)` → `alice`: the lesson's name and a browser's copy marker taken off."""
    name = COPY_SUFFIX.sub("", stem).strip()
    for lesson in lesson_stems:
        name = re.sub(re.escape(lesson), "", name, flags=re.I)
    name = name.strip(" _-.")
    return name or COPY_SUFFIX.sub("", stem).strip() or stem


@dataclass
class Submission:
    learner: str                 # as shown in the CSV (non-UTF-8 bytes as \xNN)
    files: list[Path]            # every notebook attributed to this learner (graded only when there is one)
    problems: list[str] = field(default_factory=list)
    slug: str = ""               # file name of the learner's feedback page

    @property
    def shown_files(self) -> str:
        return "; ".join(shown(f.name) for f in self.files)


def find_submissions(folder: Path, lesson_stems: list[str]) -> tuple[list[Submission], list[str]]:
    """The learners and their notebooks: one notebook per learner at the top (`alice.ipynb`) or a folder per
    learner (`alice/…ipynb`); also the files that were ignored (not notebooks)."""
    by_learner: dict[str, Submission] = {}
    ignored: list[str] = []
    for path in sorted(folder.rglob("*"), key=lambda p: os.fsencode(str(p))):
        rel = path.relative_to(folder)
        if any(part.startswith(".") or part == "__MACOSX" for part in rel.parts):
            continue
        if path.is_dir() and not path.is_symlink():
            continue
        if path.suffix.lower() != ".ipynb":
            ignored.append(shown(str(rel)))
            continue
        learner = rel.parts[0] if len(rel.parts) > 1 else learner_from_stem(path.stem, lesson_stems)
        key = shown(learner).casefold()
        sub = by_learner.setdefault(key, Submission(shown(learner), []))
        sub.files.append(path)
        for part in rel.parts:
            if not valid_utf8(part):
                sub.problems.append(f"the name “{shown(part)}” is not valid UTF-8 (shown with \\x escapes)")
    subs = list(by_learner.values())
    slugs: set[str] = set()
    for sub in subs:
        base = re.sub(r"[^\w.-]+", "_", sub.learner.replace("\\x", "x"), flags=re.UNICODE).strip("._") or "learner"
        slug, n = base[:80], 2
        while slug.casefold() in slugs:
            slug, n = f"{base[:80]}-{n}", n + 1
        slugs.add(slug.casefold())
        sub.slug = slug
        if len(sub.files) > 1:
            sub.problems.append(f"{len(sub.files)} notebooks for one learner ({sub.shown_files}): none graded; "
                                "keep one and grade again")
    return subs, ignored


def read_submission(path: Path) -> tuple[object | None, bytes | None, str | None]:
    """(notebook, its bytes, None) or (None, None, why it cannot be graded). Only reads the file."""
    import nbformat

    if path.is_symlink():
        return None, None, "a link, not a file: submit the notebook itself"
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            return None, None, f"the file is {size / 1e6:.0f} MB; a notebook over {MAX_BYTES // 1_000_000} MB is not graded"
        raw = path.read_bytes()
    except OSError as exc:
        return None, None, f"the file cannot be read ({exc.strerror or exc})"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, None, f"not a notebook: the file is not UTF-8 text (byte {exc.start})"
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return None, None, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg} (a damaged or unfinished file?)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a missing cell id is not the learner's fault
            nb = nbformat.reads(text, as_version=4)
            nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 - any reason it is not a notebook
        first = str(exc).strip().split("\n")[0][:200]
        return None, None, f"valid JSON but not a Jupyter notebook ({first})"
    return nb, raw, None


def course_sources(lesson: Lesson) -> set[str]:
    """The code cells of the lesson as the course ships them (original and both copies): not the learner's own."""
    import copy

    import nbformat

    from . import classroom

    nb = nbformat.read(project_root() / "notebooks" / f"{lesson.stem}.ipynb", as_version=4)
    sources = {c.source.strip() for c in nb.cells if c.cell_type == "code"}
    for kind in ("student", "solutions"):
        twin = copy.deepcopy(nb)
        classroom.make_copy(twin, kind, f"{lesson.stem}.ipynb")
        sources |= {c.source.strip() for c in twin.cells if c.cell_type == "code"}
    return sources


def suspicious(nb, known: set[str] = frozenset()) -> list[str]:
    """Cells of a learner's own code that try to fool a checker (reported to the teacher; they change no verdict)."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or cell.source.strip() in known:
            continue
        what = [what for pattern, what in SUSPICIOUS if pattern.search(cell.source)]
        if what:
            found.append(f"cell {i} {' and '.join(what)} (only the grader's own verdicts count)")
    return found


# ---------------------------------------------------------------- isolation

@dataclass
class Isolation:
    prefix: list[str]            # command prefix that runs a process inside the namespaces ([] when none)
    read_only: list[Path]        # folders mounted read-only inside them
    description: str             # one sentence for the summary and the README
    namespaces: bool = False


def isolation(protect: list[Path], temp_root: Path, allow: bool = True) -> Isolation:
    """The strongest fence this system allows around a learner's kernel.

    With Linux namespaces (`unshare`, as root or with user namespaces): no network at all (a new network namespace),
    the course, the data, the submissions and the grades mounted read-only, and every process of the run killed with
    it (a PID namespace). Without them: only the temporary working folder and a private data folder.
    """
    base = "each notebook runs in a temporary folder of its own, with its own HOME and a private data folder"
    unshare = shutil.which("unshare")
    if not allow:
        return Isolation([], [], base + "; namespaces turned off (--no-sandbox): the network is NOT cut and the course "
                                        "files, the data included, are writable")
    if unshare is None or sys.platform != "linux":
        return Isolation([], [], base + "; the network is NOT cut and the course files are writable "
                                        "(no `unshare` on this system): grade untrusted work in a container or VM")
    roots = []
    for path in sorted({p.resolve() for p in protect if p.exists()}, key=lambda p: len(p.parts)):
        if temp_root.resolve().is_relative_to(path):
            continue  # the run's own temporary folder lives inside: leave it writable
        if not any(path.is_relative_to(r) for r in roots):
            roots.append(path)
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    prefix = [unshare, "--mount", "--net", "--pid", "--fork", "--kill-child", *user]
    mounts = " && ".join(f"mount --bind -o ro {_q(p)} {_q(p)}" for p in roots)
    ok = False
    if roots:  # the mounts work and really are read-only: a file cannot be made inside them
        check = _q(roots[0] / ".grader-probe")
        probe = [*prefix, "sh", "-c", f"{mounts} && if touch {check} 2>/dev/null; then rm -f {check}; exit 1; fi"]
        try:
            ok = subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
    if ok:
        folders = ", ".join(_home_relative(p) for p in roots)
        return Isolation(prefix + ["sh", "-c", mounts + ' && exec "$@"', "grader"], roots,
                         base + f"; no network (a network namespace of its own); read-only: {folders}; "
                                "all its processes are killed with it (a PID namespace)", True)
    prefix = [unshare, "--net", "--pid", "--fork", "--kill-child", *user]
    try:
        ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if ok:
        return Isolation(prefix, [], base + "; no network (a network namespace of its own); the course files stay "
                                            "writable (read-only mounts are not allowed here)", True)
    return Isolation([], [], base + "; the network is NOT cut and the course files are writable (`unshare` is not "
                                    "allowed here): grade untrusted work in a container or VM")


def _q(path: Path | str) -> str:
    import shlex

    return shlex.quote(str(path))


def _home_relative(path: Path) -> str:
    try:
        return str(path.relative_to(project_root())) or "the course folder"
    except ValueError:
        return str(path)


def private_data(folder: Path, shared: Path) -> Path:
    """A data folder for one run: the provisioned assets linked in, everything the run writes (checkpoints, results)
    its own. Inside the read-only mount, writes and deletions through the links fail; without it they would reach
    the course's data, which is why the summary says so and the run compares the data before and after.
    (Not hard links: NLTK refuses to open a file with more than one link, and rightly so.)
    """
    from .data.provision import load_manifest

    folder.mkdir(parents=True, exist_ok=True)
    tops = {Path(t).parts[0] for asset in load_manifest().values() for t in asset.targets} | {".provenance"}
    for top in sorted(tops):
        source, target = shared / top, folder / top
        if source.exists() and not target.exists():
            target.symlink_to(source, target_is_directory=source.is_dir())
    return folder


def snapshot(paths: list[Path]) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file under the given folders: a cheap way to see whether a run changed them."""
    found = {}
    for root in paths:
        for path in root.rglob("*") if root.is_dir() else [root]:
            if path.is_file() and "__pycache__" not in path.parts:
                stat = path.stat()
                found[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return found


def kernel_env(run: Path, scale: str, threads: int, cut: bool) -> dict[str, str]:
    """The environment of one run: the grader's, minus its secrets, pointed at the run's own folders."""
    env = {k: v for k, v in os.environ.items() if not SECRET_ENV.search(k)}
    home = run / "home"
    env.update({
        "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "XDG_CONFIG_HOME": str(home / ".config"),
        "IPYTHONDIR": str(home / ".ipython"), "JUPYTER_RUNTIME_DIR": str(run / "control" / "runtime"),
        "MPLCONFIGDIR": str(run.parent / "matplotlib"),
        "PRETRAIN_LESSONS_HOME": str(project_root()),
        "PRETRAIN_LESSONS_DATA": str(run / "data"),
        "PRETRAIN_LESSONS_RESULTS": str(run / "results"),
        "PRETRAIN_LESSONS_SCALE": scale,
        "PRETRAIN_LESSONS_PROGRESS": "off",
        "PRETRAIN_LESSONS_PROGRESS_FILE": "off",   # the learner's checks never touch anyone's progress record
        "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": os.pathsep.join([str(PACKAGE_DIR.parent)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]),
    })
    if not cut:  # best effort without a network namespace: libraries that honour proxies reach nothing
        for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
            env[key] = "http://127.0.0.1:9"
    for folder in (home, run / "control" / "runtime"):
        folder.mkdir(parents=True, exist_ok=True)
    return env


# ---------------------------------------------------------------- one run (inside the fence): `run-one SPEC`

def grading_source(lesson: str, exercise: str, answer_name: str, out: str, nonce: str) -> str:
    """The code the grader runs in the learner's kernel for one exercise, after the learner's cells.

    It drops every module of pretrain_lessons.exercises from sys.modules and imports the lesson's checker anew, so a
    patched `q1.check`, `Exercise.evaluate` or `core` is not the one that judges; then it evaluates the learner's
    variable and appends the verdict, with a nonce the learner's code could not know, to a file.
    """
    function = f"_grade_{nonce}"
    return f'''def {function}():
    import importlib, json, os, sys
    for name in [m for m in list(sys.modules) if m == "pretrain_lessons.exercises" or m.startswith("pretrain_lessons.exercises.")]:
        del sys.modules[name]
    exercise = getattr(importlib.import_module("pretrain_lessons.exercises.lesson{lesson}"), {exercise!r})
    from IPython import get_ipython
    namespace = get_ipython().user_ns
    if {answer_name!r} in namespace:
        result = exercise.evaluate(namespace[{answer_name!r}])
        status, message = result.status, result.message
    else:
        status, message = "not attempted", "There is no variable `{answer_name}` in the notebook: the cell that sets it was removed or renamed."
    os.makedirs(os.path.dirname({out!r}), exist_ok=True)   # the notebook may have deleted its folders
    with open({out!r}, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({{"nonce": {nonce!r}, "exercise": {exercise!r}, "status": status, "message": message}}) + "\\n")
try:
    {function}()
finally:
    del {function}
'''


class Watchdog(threading.Thread):
    """Interrupts a cell that runs past its limit, kills a kernel that does not stop, and ends the notebook at its
    time limit. Works on the kernel's process group, so the kernel's own children go too."""

    def __init__(self, deadline: float, grace: float = GRACE):
        super().__init__(daemon=True)
        self.deadline, self.grace = deadline, grace
        self.pid: int | None = None
        self.cell: tuple[int, float, float, bool] | None = None   # (index, started, limit, is_learner_cell)
        self.interrupted: dict[int, str] = {}
        self.killed: str | None = None
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.5):
            if self.pid is None or self.cell is None:
                continue
            index, started, limit, learner = self.cell
            now = time.monotonic()
            over_notebook = learner and now > self.deadline
            if index not in self.interrupted and (now - started > limit or over_notebook):
                self.interrupted[index] = "notebook" if over_notebook and now - started <= limit else "cell"
                self.interrupted_at = now
                self._signal(signal.SIGINT)
            elif index in self.interrupted and now - self.interrupted_at > self.grace and self.killed is None:
                self.killed = (f"cell {index} did not stop within {self.grace:g} s of an interrupt: the kernel was "
                               "killed")
                self._signal(signal.SIGKILL, group=True)

    def _signal(self, sig, group: bool = False):
        try:
            os.killpg(self.pid, sig) if group else os.kill(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def run_one(spec_path: Path) -> int:
    """Execute one learner's notebook copy and take its verdicts; write control/result.json."""
    import nbformat
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    control = Path(spec["control"])
    work = Path(spec["work"])
    nonce = secrets.token_hex(8)
    verdict_file = control / f"verdicts-{nonce}.jsonl"
    result = {"verdicts": {}, "problems": [], "cells": 0, "finished": False}
    start = time.monotonic()
    watchdog = Watchdog(start + spec["notebook_limit"], spec.get("grace", GRACE))
    nb = nbformat.read(work / spec["name"], as_version=4)
    code_cells = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
    socket = str(control / "runtime" / "kernel")
    km = AsyncKernelManager(kernel_name="python3", transport="ipc" if len(socket) < 90 else "tcp",
                       ip=socket if len(socket) < 90 else "127.0.0.1")
    client = NotebookClient(nb, km=km, timeout=None, allow_errors=True, startup_timeout=120,
                            resources={"metadata": {"path": str(work)}})
    dead = None
    place = "while the kernel started"
    try:
        with client.setup_kernel():
            watchdog.pid = km.provisioner.process.pid if km.provisioner else None
            (control / "kernel.pid").write_text(str(watchdog.pid))
            watchdog.start()
            for index, cell in code_cells:
                if time.monotonic() > watchdog.deadline:
                    result["problems"].append(f"the notebook ran past its {spec['notebook_limit']} s limit: cells "
                                              f"from {index} on were not run")
                    break
                watchdog.cell = (index, time.monotonic(), spec["cell_limit"], True)
                place = f"at cell {index}"
                try:
                    client.execute_cell(cell, index)
                finally:
                    watchdog.cell = None
                result["cells"] += 1
                why = watchdog.interrupted.get(index)
                if why == "cell":
                    result["problems"].append(f"cell {index} ran past the {spec['cell_limit']} s limit per cell "
                                              "and was interrupted")
                elif why == "notebook":
                    result["problems"].append(f"cell {index} was interrupted at the notebook's {spec['notebook_limit']} s limit")
                else:
                    errors = [o for o in cell.outputs if o.get("output_type") == "error"]
                    if errors:
                        value = str(errors[0].get("evalue", "")).strip().split("\n")[0][:160]
                        result["problems"].append(f"cell {index} raised {errors[0].get('ename', 'an error')}"
                                                  f"{': ' + value if value else ''}")
            try:  # the checkers read the course's data: put back the links in case the notebook deleted them
                private_data(Path(spec["private_data"]), Path(spec["shared_data"]))
            except OSError:
                pass
            for number, (qname, answer_name) in enumerate(spec["exercises"]):
                cell = nbformat.v4.new_code_cell(grading_source(spec["lesson"], qname, answer_name, str(verdict_file), nonce))
                nb.cells.append(cell)
                index = len(nb.cells) - 1
                watchdog.cell = (index, time.monotonic(), spec["check_limit"], False)
                place = f"during the grader's check of {qname}"
                try:
                    client.execute_cell(cell, index, store_history=False)
                finally:
                    watchdog.cell = None
                if watchdog.interrupted.get(index):
                    result["verdicts"][qname] = ("error", f"the check did not finish within {spec['check_limit']} s "
                                                 "(does your function loop forever?)")
                else:
                    errors = [o for o in cell.outputs if o.get("output_type") == "error"]
                    if errors:
                        result["verdicts"][qname] = ("error", f"the check was stopped by {errors[0].get('ename')}: "
                                                     f"{str(errors[0].get('evalue', ''))[:160]}")
            result["finished"] = True
    except DeadKernelError:
        dead = watchdog.killed or (f"the kernel died {place} (it crashed, ran out of memory, or the notebook's code "
                                   "ended it)")
    except Exception as exc:  # noqa: BLE001 - a kernel that will not start is a row in the CSV, not a crash
        dead = f"the notebook could not be run ({place}): {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        watchdog.stop.set()
    if dead:
        result["problems"].append(dead)
    if verdict_file.exists():
        for line in verdict_file.read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            if item.get("nonce") == nonce and item.get("status") in STATUSES:
                result["verdicts"].setdefault(item["exercise"], (item["status"], str(item.get("message", ""))))
    result["seconds"] = time.monotonic() - start
    control.mkdir(parents=True, exist_ok=True)
    (control / "result.json").write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    return 0


# ---------------------------------------------------------------- the class

@dataclass
class Graded:
    learner: str
    file: str
    slug: str
    lesson: str = ""
    verdicts: dict[str, tuple[str, str]] = field(default_factory=dict)   # q1 → (status, feedback)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    ran: bool = False

    def points(self) -> int:
        return sum(status == "correct" for status, _ in self.verdicts.values())


@dataclass
class Options:
    scale: str = "smoke"
    cell_limit: int | None = None
    notebook_limit: int | None = None
    check_limit: int = CHECK_LIMIT
    workers: int | None = None
    lesson: str | None = None
    sandbox: bool = True
    keep: bool = False
    progress: bool = True


def _kill_run(proc: subprocess.Popen, control: Path, fence: Isolation) -> None:
    """Kill a run that overran: its process group (with a PID namespace, that ends every process inside it) and,
    without namespaces, its kernel, once /proc confirms the process is this run's kernel."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    pid = None if fence.namespaces else _read_pid(control / "kernel.pid")
    try:
        mine = pid and str(control) in Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")
    except OSError:
        mine = False
    if mine:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


def grade_run(sub: Submission, nb_bytes: bytes, lesson: Lesson, run: Path, options: Options, fence: Isolation,
              threads: int) -> Graded:
    """Run one learner's notebook in its own folder (inside the fence) and collect its verdicts."""
    graded = Graded(sub.learner, sub.shown_files, sub.slug, lesson.stem, problems=list(sub.problems))
    work, control = run / "work", run / "control"
    work.mkdir(parents=True)
    control.mkdir(parents=True)
    (work / f"{lesson.stem}.ipynb").write_bytes(nb_bytes)
    private_data(run / "data", data_dir())
    cell_limit, notebook_limit = LIMITS.get(options.scale, LIMITS["cpu"])
    spec = {"control": str(control), "work": str(work), "name": f"{lesson.stem}.ipynb", "lesson": lesson.number,
            "exercises": [(q, ex.answer_name) for q, ex in lesson.exercises],
            "cell_limit": options.cell_limit or cell_limit, "notebook_limit": options.notebook_limit or notebook_limit,
            "check_limit": options.check_limit, "private_data": str(run / "data"), "shared_data": str(data_dir())}
    (control / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    env = kernel_env(run, options.scale, threads, cut=fence.namespaces)
    command = [*fence.prefix, sys.executable, "-m", "pretrain_lessons.grader", "run-one", str(control / "spec.json")]
    hard_limit = spec["notebook_limit"] + len(lesson.exercises) * (options.check_limit + GRACE) + 2 * GRACE + 120
    start = time.monotonic()
    proc = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=hard_limit)
    except subprocess.TimeoutExpired:
        _kill_run(proc, control, fence)
        output, _ = proc.communicate()
        graded.problems.append(f"the run did not end within {hard_limit} s and was killed")
    finally:
        _kill_run(proc, control, fence)  # nothing of the run outlives it
    graded.seconds = time.monotonic() - start
    graded.ran = True
    try:
        result = json.loads((control / "result.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        tail = output.decode("utf-8", "replace").strip().splitlines()[-3:] if output else []
        result = {"verdicts": {}, "problems": ["the grader's run of this notebook failed" +
                                               (": " + " | ".join(tail)[-300:] if tail else "")]}
    graded.problems += result.get("problems", [])
    for q, _ in lesson.exercises:
        status, message = result.get("verdicts", {}).get(q, ("error", "not graded: the notebook stopped before "
                                                                       "the grader could check this exercise"))
        graded.verdicts[q] = (status, message)
    return graded


def unrun(sub: Submission, lesson: Lesson | None, why: str | list[str], file: str | None = None) -> Graded:
    graded = Graded(sub.learner, file or sub.shown_files, sub.slug, lesson.stem if lesson else "",
                    problems=list(sub.problems) + ([why] if isinstance(why, str) else why))
    for q, _ in lesson.exercises if lesson else ():
        graded.verdicts[q] = ("error", "not graded: " + graded.problems[-1])
    return graded


def choose_lesson(candidates: list[str | None], lessons: dict[str, Lesson], asked: str | None) -> Lesson:
    if asked:
        number = asked[:2]
        if number not in lessons:
            raise GradingError(f"--lesson {asked}: the course has no such lesson (it has {', '.join(lessons)})")
        return lessons[number]
    counts = {n: candidates.count(n) for n in set(candidates) if n in lessons}
    if not counts:
        raise GradingError("no submission is a notebook of this course's lessons; say which with --lesson NN")
    best = max(counts.values())
    top = sorted(n for n, c in counts.items() if c == best)
    if len(top) > 1:
        raise GradingError(f"as many submissions belong to lesson {' as to '.join(top)}: say which with --lesson NN")
    return lessons[top[0]]


def grade(submissions: Path, out: Path, options: Options | None = None) -> tuple[list[Graded], dict]:
    """Grade every notebook in `submissions` into `out`; return the rows and the facts for the summary."""
    from . import classroom

    options = options or Options()
    submissions = Path(submissions)
    out = Path(out)
    if not submissions.is_dir():
        raise GradingError(f"{submissions} is not a folder of submitted notebooks")
    if out.resolve() == submissions.resolve() or out.resolve().is_relative_to(submissions.resolve()):
        raise GradingError("the grades folder must not be inside the submissions folder (submissions are only read)")
    notebooks_dir = (project_root() / "notebooks").resolve()
    if out.resolve().is_relative_to(notebooks_dir):
        raise GradingError(f"the grades folder must not be inside the course's notebooks/ ({out} resolves into it)")
    if options.scale not in LIMITS:
        raise GradingError(f"--scale {options.scale}: choose smoke, cpu or gpu")
    started = time.monotonic()
    lessons = course_lessons()
    subs, ignored = find_submissions(submissions, [lesson.stem for lesson in lessons.values()])
    if not subs:
        raise GradingError(f"no notebooks (*.ipynb) in {submissions}")

    read: dict[int, tuple[object, bytes]] = {}
    rows: dict[int, Graded] = {}
    numbers: dict[int, tuple[str | None, str]] = {}
    for i, sub in enumerate(subs):
        if len(sub.files) == 1:
            nb, raw, why = read_submission(sub.files[0])
            if why:
                rows[i] = unrun(sub, None, why)
            else:
                read[i] = (nb, raw)
                numbers[i] = lesson_of(nb)
    lesson = choose_lesson([n for n, _ in numbers.values()], lessons, options.lesson)
    for i, sub in enumerate(subs):
        if i in rows:
            rows[i] = unrun(sub, lesson, rows[i].problems[-1])
        elif len(sub.files) > 1:
            rows[i] = unrun(sub, lesson, [])
        elif numbers[i][0] != lesson.number:
            number, how = numbers[i]
            why = (f"a notebook of lesson {lessons[number].stem}, not {lesson.stem} (from {how}): not graded"
                   if number in lessons else f"not a notebook of lesson {lesson.stem}: {how}")
            rows[i] = unrun(sub, lesson, why)
    to_run = [i for i in range(len(subs)) if i not in rows]

    out.mkdir(parents=True, exist_ok=True)
    temp_root = Path(tempfile.mkdtemp(prefix="pl-grade-"))
    fence = isolation([project_root(), data_dir(), PACKAGE_DIR.parent, submissions, out], temp_root, options.sandbox)
    workers = max(1, min(options.workers or (os.cpu_count() or 1), len(to_run) or 1))
    threads = max(1, (os.cpu_count() or 1) // workers)
    _seed_matplotlib_cache(temp_root / "matplotlib")
    from .data.provision import load_manifest

    tops = {Path(t).parts[0] for asset in load_manifest().values() for t in asset.targets}
    watched = [p for p in [PACKAGE_DIR, *(data_dir() / top for top in sorted(tops))] if p.exists()]
    before = snapshot(watched)
    course_changed: list[str] = []
    try:
        from .bars import bar

        progress = bar(total=len(to_run), desc=f"Grading {lesson.stem}", unit="notebook",
                       disable=not options.progress or not to_run)
        known = course_sources(lesson)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {}
            for i in to_run:
                if classroom.copy_kind(read[i][0]) == "solutions":
                    subs[i].problems.append("note: this is the teachers' solutions copy (its metadata or title says so)")
                for problem in suspicious(read[i][0], known):
                    subs[i].problems.append(f"note: {problem}")
                futures[pool.submit(grade_run, subs[i], read[i][1], lesson, temp_root / f"{i:04d}", options,
                                    fence, threads)] = i
            for future in as_completed(futures):
                i = futures[future]
                try:
                    rows[i] = future.result()
                except Exception as exc:  # noqa: BLE001 - one broken run never stops the class
                    rows[i] = unrun(subs[i], lesson, f"the grader failed on this notebook: {type(exc).__name__}: {exc}")
                if not options.keep:
                    shutil.rmtree(temp_root / f"{i:04d}", ignore_errors=True)
                progress.set_postfix_str(subs[i].learner[:20], refresh=False)
                progress.update(1)
        progress.close()
    finally:
        if not options.keep:
            shutil.rmtree(temp_root, ignore_errors=True)
    after = snapshot(watched)
    changed = sorted(set(before) ^ set(after) | {k for k in before.keys() & after.keys() if before[k] != after[k]})
    if changed:
        course_changed = [_home_relative(Path(p)) for p in changed]
    facts = {"lesson": lesson, "scale": options.scale, "workers": workers, "threads": threads,
             "seconds": time.monotonic() - started, "isolation": fence.description, "ignored": ignored,
             "course_changed": course_changed, "cell_limit": options.cell_limit or LIMITS[options.scale][0],
             "notebook_limit": options.notebook_limit or LIMITS[options.scale][1],
             "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "submissions": str(submissions)}
    graded = [rows[i] for i in range(len(subs))]
    write_grades(graded, lesson, out, facts)
    return graded, facts


def _seed_matplotlib_cache(folder: Path) -> None:
    """Give the runs matplotlib's font list, so each kernel does not rebuild it (seconds each)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import matplotlib

        for path in Path(matplotlib.get_cachedir()).glob("fontlist-*.json"):
            shutil.copy2(path, folder / path.name)
    except Exception:  # noqa: BLE001 - only a speed-up
        pass


# ---------------------------------------------------------------- what the teacher gets

def write_grades(graded: list[Graded], lesson: Lesson, out: Path, facts: dict) -> None:
    names = [q for q, _ in lesson.exercises]
    with open(out / "grades.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["learner", "file", "lesson", *names, "points", "max_points", "run_seconds", "problems"])
        for row in graded:
            writer.writerow([row.learner, row.file, row.lesson, *(row.verdicts.get(q, ("error", ""))[0] for q in names),
                             row.points(), len(names), f"{row.seconds:.1f}" if row.ran else "",
                             " | ".join(row.problems)])
    feedback = out / "feedback"
    feedback.mkdir(exist_ok=True)
    for row in graded:
        (feedback / f"{row.slug}.html").write_text(feedback_page(row, lesson, facts), encoding="utf-8")
    summary_figure(graded, lesson, out / "summary.png")
    (out / "summary.md").write_text(summary_text(graded, lesson, facts), encoding="utf-8")


STATUS_STYLE = {"correct": ("✔", "#1b7837"), "incorrect": ("✘", "#b2182b"), "not attempted": ("…", "#666666"),
                "error": ("⚠", "#e08214")}


def feedback_page(row: Graded, lesson: Lesson, facts: dict) -> str:
    """One learner's feedback: for each exercise the question, the verdict, the checker's words and the hint —
    never the reference solution."""
    e = html.escape
    parts = [f"<!doctype html><meta charset='utf-8'><title>{e(lesson.stem)} · {e(row.learner)}</title>",
             "<body style='font-family:sans-serif;max-width:50em;margin:2em auto;line-height:1.45'>",
             f"<h1>{e(lesson.stem)}: feedback for {e(row.learner)}</h1>",
             f"<p><b>{row.points()} of {len(lesson.exercises)} exercises correct.</b> File: <code>{e(row.file)}</code>. "
             f"Graded {e(facts['when'])} at <code>{e(facts['scale'])}</code> scale"
             + (f", run time {row.seconds:.0f} s" if row.ran else "") + ".</p>"]
    if row.problems:
        parts.append("<h2>Problems</h2><ul>" + "".join(f"<li>{e(p)}</li>" for p in row.problems) + "</ul>")
    for q, exercise in lesson.exercises:
        status, message = row.verdicts.get(q, ("error", ""))
        mark, colour = STATUS_STYLE[status]
        parts.append(f"<h2>{e(q)} · <span style='color:{colour}'>{mark} {e(status)}</span></h2>"
                     f"<p><i>{e(exercise.question)}</i></p><p style='color:{colour}'>{e(message)}</p>")
        if status != "correct":
            parts.append(f"<p>💡 Hint: {e(exercise.hint_text)}</p>")
    parts.append("<p style='color:#666'>Your notebook was run again from the top by the grader; the verdicts are "
                 "the checkers' own, not the outputs saved in your file.</p></body>")
    return "\n".join(parts)


def summary_figure(graded: list[Graded], lesson: Lesson, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = [q for q, _ in lesson.exercises]
    counts = {s: [sum(r.verdicts.get(q, ("error",))[0] == s for r in graded) for q in names] for s in STATUSES}
    fig, ax = plt.subplots(figsize=(7.5, 0.6 * len(names) + 1.6), dpi=110)
    left = [0] * len(names)
    for status in STATUSES:
        ax.barh(names, counts[status], left=left, color=STATUS_STYLE[status][1], label=status)
        for y, (x0, n) in enumerate(zip(left, counts[status])):
            if n:
                ax.text(x0 + n / 2, y, str(n), ha="center", va="center", color="white", fontsize=10)
        left = [a + b for a, b in zip(left, counts[status])]
    ax.invert_yaxis()
    ax.set_xlabel("learners")
    ax.set_xlim(0, max(1, len(graded)))
    ax.set_title(f"{lesson.stem}: how {len(graded)} learners did on each exercise")
    ax.legend(ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.25 if len(names) < 4 else -0.15), frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def summary_text(graded: list[Graded], lesson: Lesson, facts: dict) -> str:
    names = [q for q, _ in lesson.exercises]
    points = [r.points() for r in graded]
    times = [r.seconds for r in graded if r.ran]
    lines = [f"# Grades: {lesson.stem}", "",
             f"{len(graded)} learners, graded {facts['when']} at `{facts['scale']}` scale, {facts['workers']} notebooks "
             f"at a time, in {facts['seconds']:.0f} s"
             + (f" (each notebook: median {statistics.median(times):.0f} s, longest {max(times):.0f} s)" if times else "")
             + f". Limits: {facts['cell_limit']} s per cell, {facts['notebook_limit']} s per notebook.", "",
             f"Points: mean {statistics.mean(points):.2f} of {len(names)}, median {statistics.median(points):g}; "
             f"{sum(p == len(names) for p in points)} learners have every exercise right.", "",
             "![How the class did on each exercise](summary.png)", "",
             "| exercise | question | " + " | ".join(STATUSES) + " |", "|---|---|" + "---:|" * len(STATUSES)]
    for q, exercise in lesson.exercises:
        counts = [sum(r.verdicts.get(q, ("error",))[0] == s for r in graded) for s in STATUSES]
        question = exercise.question.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {q} | {question[:90]}{'…' if len(question) > 90 else ''} | " + " | ".join(map(str, counts)) + " |")
    troubled = [r for r in graded if r.problems]
    lines += ["", f"## Problems ({len(troubled)} learners)", ""]
    lines += [f"- **{r.learner}** (`{r.file}`): " + "; ".join(r.problems) for r in troubled] or ["None."]
    if facts["ignored"]:
        lines += ["", "Ignored (not notebooks): " + ", ".join(f"`{f}`" for f in facts["ignored"])]
    lines += ["", "## How the notebooks were run", "",
              f"Learners' code runs with the grader's permissions. Isolation in force: {facts['isolation']}. "
              "Each verdict is the grader's: after the learner's cells, it imports the course's checkers afresh in the "
              "kernel and evaluates each answer variable; stored outputs are never read."]
    if facts["course_changed"]:
        shown_files = ", ".join(f"`{p}`" for p in facts["course_changed"][:10])
        lines += ["", f"**Warning:** files of the course changed during the run ({shown_files}"
                      f"{' …' if len(facts['course_changed']) > 10 else ''}). A learner's code may have written them; "
                      "check them (e.g. `git status`, `python -m pretrain_lessons.data status`) before trusting these grades."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- command line

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submissions", type=Path, help="folder of submitted notebooks (one per learner, or a folder per learner)")
    parser.add_argument("--out", type=Path, required=True, help="folder for grades.csv, feedback/ and summary.md")
    parser.add_argument("--scale", default="smoke", choices=sorted(LIMITS), help="run size (default smoke)")
    parser.add_argument("--lesson", help="the lesson graded, e.g. 03 (default: the lesson most submissions belong to)")
    parser.add_argument("--workers", type=int, help="notebooks run at once (default: one per CPU core)")
    parser.add_argument("--cell-timeout", type=int, help="seconds per cell (default: 300 smoke, 1800 cpu, 3600 gpu)")
    parser.add_argument("--notebook-timeout", type=int, help="seconds per notebook (default: 900 smoke, 3600 cpu, 7200 gpu)")
    parser.add_argument("--check-timeout", type=int, default=CHECK_LIMIT, help="seconds for the check of one exercise")
    parser.add_argument("--no-sandbox", action="store_true", help="do not use Linux namespaces even where they work")
    parser.add_argument("--keep", action="store_true", help="keep each run's temporary folder (for debugging)")


def run_command(args: argparse.Namespace) -> int:
    options = Options(scale=args.scale, cell_limit=args.cell_timeout, notebook_limit=args.notebook_timeout,
                      check_limit=args.check_timeout, workers=args.workers, lesson=args.lesson,
                      sandbox=not args.no_sandbox, keep=args.keep)
    try:
        graded, facts = grade(args.submissions, args.out, options)
    except GradingError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    n = len(facts["lesson"].exercises)
    print(f"Graded {len(graded)} learners of {facts['lesson'].stem} in {facts['seconds']:.0f} s "
          f"({facts['workers']} at a time, scale {facts['scale']}).")
    for row in graded:
        print(f"  {row.learner:<24} {row.points()}/{n}" + (f"  ({'; '.join(row.problems)[:110]})" if row.problems else ""))
    print(f"Isolation: {facts['isolation']}.")
    print(f"Wrote {args.out / 'grades.csv'}, {args.out / 'feedback'}/ and {args.out / 'summary.md'}.")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["run-one"] and len(argv) == 2:
        return run_one(Path(argv[1]))
    parser = argparse.ArgumentParser(prog="python -m pretrain_lessons.classroom grade", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
