"""Your progress through the course: every `q.check(answer)` notes the lesson, the exercise, the verdict and the
time in one small JSON file, and `pretrain_lessons.progress()` shows it as a table with a bar per lesson.

The file lives under the course home, `data/progress/progress.json` (next to the checkpoints and results, so the
Colab Drive option keeps it too), never inside a notebook. PRETRAIN_LESSONS_PROGRESS_FILE moves it elsewhere, or
turns recording off with `off` (the grader and the tests do that). Writes are atomic (a temporary file renamed over
the old one, under a lock where the system has one), and a file that cannot be written never breaks a check: the
table then says why nothing was recorded.
"""
from __future__ import annotations

import html
import json
import os
import secrets
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

ENV = "PRETRAIN_LESSONS_PROGRESS_FILE"
VERSION = 1
RANK = {"not attempted": 0, "incorrect": 1, "correct": 2}
MARKS = {"correct": "✔", "incorrect": "✘", "not attempted": "…", None: "·"}
last_error: str | None = None  # why the last record could not be written, if it could not


def progress_file() -> Path | None:
    """Where verdicts are recorded, or None when recording is off (PRETRAIN_LESSONS_PROGRESS_FILE=off)."""
    value = os.environ.get(ENV, "").strip()
    if value.lower() in {"off", "0", "false", "no", "none"}:
        return None
    if value:
        return Path(value).expanduser()
    from .paths import data_dir

    return data_dir() / "progress" / "progress.json"


def load(path: Path | None = None) -> dict:
    """The recorded progress: {"version": 1, "exercises": {"00/q1": {...}}}; empty when there is no file yet.

    A file that is not valid JSON (cut short by a full disk, edited by hand) reads as empty; the next record moves
    it aside as `progress.json.corrupt` rather than losing it silently.
    """
    path = path or progress_file()
    empty = {"version": VERSION, "exercises": {}}
    if path is None or not path.exists():
        return empty
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {**empty, "corrupt": True}
    if not isinstance(data, dict) or not isinstance(data.get("exercises"), dict):
        return {**empty, "corrupt": True}
    return data


@contextmanager
def _locked(path: Path):
    """Hold an exclusive lock next to the file while it is read and rewritten (two notebooks open at once)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; the atomic rename still keeps the file whole
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomic(path: Path, data: dict) -> None:
    """Write a temporary file next to the record, then rename it over the record: a reader sees old or new, whole."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as out:  # "x": a new file, with the usual permissions (umask)
            json.dump(data, out, ensure_ascii=False, indent=1, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record(lesson: str, exercise: str, verdict: str, when: datetime | None = None) -> bool:
    """Note one verdict; True if it was written. Never raises: a failure is kept in `last_error` instead."""
    global last_error
    try:
        path = progress_file()
        if path is None or not lesson:
            return False
        if verdict not in RANK:
            raise ValueError(f"unknown verdict {verdict!r}")
        path = path.resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        stamp = (when or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="seconds")
        with _locked(path):
            data = load(path)
            if data.pop("corrupt", False):
                os.replace(path, path.with_name(path.name + ".corrupt"))
            entry = data["exercises"].setdefault(f"{lesson}/{exercise}", {
                "lesson": lesson, "exercise": exercise, "best": verdict, "checks": 0, "attempts": 0})
            entry["checks"] += 1
            entry["attempts"] += verdict != "not attempted"
            entry.update(verdict=verdict, time=stamp)
            if RANK[verdict] > RANK[entry["best"]]:
                entry["best"] = verdict
            if verdict == "correct":
                entry.setdefault("first_correct", stamp)
            data["version"] = VERSION
            _write_atomic(path, data)
        last_error = None
        return True
    except Exception as exc:  # noqa: BLE001 - a read-only home or a full disk must not break the learner's check
        last_error = f"{type(exc).__name__}: {exc}"
        return False


def lessons() -> dict[str, tuple[str, list[str]]]:
    """Every lesson with exercises: {"00": ("00 · start here", ["q1", "q2", …])}, from the exercise modules."""
    import importlib
    import pkgutil

    from . import exercises
    from .exercises.core import Exercise
    from .paths import project_root

    stems = {p.stem[:2]: p.stem for p in (project_root() / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    found = {}
    for info in sorted(pkgutil.iter_modules(exercises.__path__), key=lambda m: m.name):
        if not info.name.startswith("lesson"):
            continue
        number = info.name[len("lesson"):]
        module = importlib.import_module(f"{exercises.__name__}.{info.name}")
        names = [name for name, value in vars(module).items() if isinstance(value, Exercise)]
        stem = stems.get(number, f"{number}_lesson")
        found[number] = (f"{number} · {stem[3:].replace('_', ' ')}", names)
    return found


class Progress:
    """What `pretrain_lessons.progress()` returns: shown as a table with a bar per lesson (HTML in JupyterLab and
    Colab, text elsewhere); `.rows` holds the numbers."""

    def __init__(self, data: dict, catalogue: dict[str, tuple[str, list[str]]], where: str, note: str = ""):
        self.where, self.note = where, note
        done = data.get("exercises", {})
        self.rows = []
        for number, (title, names) in catalogue.items():
            entries = {name: done.get(f"{number}/{name}") for name in names}
            best = {name: (entry or {}).get("best") for name, entry in entries.items()}
            times = [entry["time"] for entry in entries.values() if entry and entry.get("time")]
            self.rows.append({
                "lesson": title, "exercises": len(names),
                "correct": sum(b == "correct" for b in best.values()),
                "tried": sum(b in ("correct", "incorrect") for b in best.values()),
                "marks": " ".join(f"{name} {MARKS[b]}" for name, b in best.items()),
                "last": max(times)[:16].replace("T", " ") if times else "",
            })

    @property
    def correct(self) -> int:
        return sum(row["correct"] for row in self.rows)

    @property
    def total(self) -> int:
        return sum(row["exercises"] for row in self.rows)

    def __repr__(self) -> str:
        lines = [f"Your progress: {self.correct} of {self.total} exercises correct (✔ correct, ✘ not yet, "
                 "… not attempted, · not checked yet)"]
        for row in self.rows:
            filled = round(10 * row["correct"] / row["exercises"]) if row["exercises"] else 0
            lines.append(f"  {row['lesson']:<36} {'█' * filled}{'░' * (10 - filled)} {row['correct']}/{row['exercises']}"
                         f"  {row['marks']}  {row['last']}".rstrip())
        lines.append(f"Recorded in {self.where}.{(' ' + self.note) if self.note else ''}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        body = []
        for row in self.rows:
            share = 100 * row["correct"] / row["exercises"] if row["exercises"] else 0
            tried = 100 * (row["tried"] - row["correct"]) / row["exercises"] if row["exercises"] else 0
            bar = ('<div style="width:160px;height:12px;background:#eee;display:flex">'
                   f'<div style="width:{share:.0f}%;background:#1b7837"></div>'
                   f'<div style="width:{tried:.0f}%;background:#f4a582"></div></div>')
            body.append(f"<tr><td style='text-align:left'>{html.escape(row['lesson'])}</td><td>{bar}</td>"
                        f"<td>{row['correct']} / {row['exercises']}</td>"
                        f"<td style='text-align:left'>{html.escape(row['marks'])}</td>"
                        f"<td>{html.escape(row['last'])}</td></tr>")
        note = f" {html.escape(self.note)}" if self.note else ""
        return (f"<p><b>Your progress: {self.correct} of {self.total} exercises correct</b> "
                "(green: correct; orange: tried, not yet correct; ✔ correct, ✘ not yet, … not attempted, "
                "· not checked yet)</p>"
                "<table><tr><th style='text-align:left'>lesson</th><th>progress</th><th>correct</th>"
                "<th style='text-align:left'>exercises</th><th>last check (UTC)</th></tr>"
                + "".join(body) + f"</table><p style='color:#666'>Recorded in <code>{html.escape(self.where)}</code>."
                f"{note}</p>")


def _shown(path: Path | None) -> str:
    """The file's location for display: relative to the course home when it is inside it."""
    if path is None:
        return "nowhere: recording is off (PRETRAIN_LESSONS_PROGRESS_FILE=off)"
    from .paths import project_root

    try:
        return str(path.resolve().relative_to(project_root()))
    except ValueError:
        return str(path)


def progress() -> Progress:
    """Your progress through the course: a table with a bar per lesson (run it as the last line of a cell)."""
    path = progress_file()
    data = load(path) if path else {"exercises": {}}
    notes = []
    if data.get("corrupt"):
        notes.append("The file was not valid JSON and reads as empty; the next check moves it aside.")
    if last_error:
        notes.append(f"The last check could not be recorded ({last_error}).")
    return Progress(data, lessons(), _shown(path), " ".join(notes))
