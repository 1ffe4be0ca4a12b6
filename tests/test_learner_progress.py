"""The learner's progress record: each check() notes lesson, exercise, verdict and time in one JSON file (atomic,
locked, never inside a notebook, never breaking a check), and pretrain_lessons.progress() shows it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

import pretrain_lessons
from pretrain_lessons import learner_progress
from pretrain_lessons.exercises import Exercise, Incorrect


def _check_count(answer):
    if answer != 1600:
        raise Incorrect("not that many.")


@pytest.fixture(autouse=True)
def lesson99(monkeypatch):
    """A lesson module with one exercise, registered where the real ones live."""
    import types

    module = types.ModuleType("pretrain_lessons.exercises.lesson99")
    module.q3 = Exercise("q3", "How many?", _check_count, "", "n = 1600", "n")
    module.q1 = Exercise("q1", "Anything?", lambda answer: None, "", "x = 1", "x")
    monkeypatch.setitem(__import__("sys").modules, module.__name__, module)
    return module


@pytest.fixture
def progress_file(tmp_path, monkeypatch):
    path = tmp_path / "home" / "progress.json"
    monkeypatch.setenv(learner_progress.ENV, str(path))
    monkeypatch.setattr(learner_progress, "last_error", None)
    return path


def entries(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))["exercises"]


def test_each_check_records_lesson_exercise_verdict_and_time(progress_file, lesson99, capsys):
    lesson99.q3.check(16)
    lesson99.q3.check(1600)
    lesson99.q3.check(40)
    lesson99.q1.check()
    entry = entries(progress_file)["99/q3"]
    assert entry["lesson"] == "99" and entry["exercise"] == "q3"
    assert entry["verdict"] == "incorrect" and entry["best"] == "correct", "the last verdict and the best one"
    assert entry["checks"] == 3 and entry["attempts"] == 3
    assert datetime.fromisoformat(entry["time"]).tzinfo is not None and "first_correct" in entry
    assert entries(progress_file)["99/q1"] == {**entries(progress_file)["99/q1"], "best": "not attempted",
                                               "attempts": 0, "checks": 1}
    assert "✔ Correct!" in capsys.readouterr().out
    assert sorted(p.name for p in progress_file.parent.iterdir()) == ["progress.json", "progress.json.lock"], \
        "no temporary file is left behind"


def test_exercise_knows_its_lesson(lesson99):
    from pretrain_lessons.exercises import lesson01

    assert lesson99.q3.lesson == "99" and lesson01.q1.lesson == "01"
    assert Exercise("q9", "?", lambda a: None, "", "x = 1", "x").lesson == ""


def test_the_default_file_is_under_the_course_data_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(learner_progress.ENV, raising=False)
    monkeypatch.setenv("PRETRAIN_LESSONS_DATA", str(tmp_path / "data"))
    assert learner_progress.progress_file() == tmp_path / "data" / "progress" / "progress.json"
    assert learner_progress.record("00", "q1", "correct")
    assert entries(tmp_path / "data" / "progress" / "progress.json")["00/q1"]["best"] == "correct"


def test_recording_can_be_turned_off(tmp_path, monkeypatch, lesson99):
    monkeypatch.setenv("PRETRAIN_LESSONS_DATA", str(tmp_path / "data"))
    monkeypatch.setenv(learner_progress.ENV, "off")
    assert learner_progress.progress_file() is None
    assert learner_progress.record("00", "q1", "correct") is False
    lesson99.q3.check(1600)
    assert not (tmp_path / "data" / "progress").exists()
    assert "recording is off" in repr(pretrain_lessons.progress())


def test_an_unwritable_file_never_breaks_a_check_and_the_table_says_why(tmp_path, monkeypatch, capsys, lesson99):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(learner_progress.ENV, str(blocker / "progress.json"))  # its parent is a file: cannot be made
    monkeypatch.setattr(learner_progress, "last_error", None)
    lesson99.q3.check(1600)                                   # no exception
    assert "✔ Correct!" in capsys.readouterr().out
    assert learner_progress.last_error and "could not be recorded" in repr(pretrain_lessons.progress())
    assert learner_progress.record("00", "q3", "definitely") is False and "unknown verdict" in learner_progress.last_error


def test_a_corrupt_file_is_moved_aside_not_lost(progress_file):
    progress_file.parent.mkdir(parents=True)
    progress_file.write_text('{"version": 1, "exercises": {"00/q1": ', encoding="utf-8")  # cut short
    assert learner_progress.load()["exercises"] == {}
    assert "not valid JSON" in repr(pretrain_lessons.progress())
    assert learner_progress.record("00", "q2", "incorrect")
    assert (progress_file.parent / "progress.json.corrupt").read_text().startswith('{"version": 1')
    assert list(entries(progress_file)) == ["00/q2"]


def test_two_notebooks_checking_at_once_lose_no_record(progress_file):
    code = ("from pretrain_lessons import learner_progress as lp\n"
            "for i in range(40):\n    assert lp.record('00', 'q1', 'incorrect')\n")
    procs = [subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy()) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert entries(progress_file)["00/q1"]["checks"] == 80


def test_progress_shows_a_table_with_a_bar_per_lesson(progress_file):
    learner_progress.record("00", "q1", "correct")
    learner_progress.record("00", "q2", "incorrect")
    report = pretrain_lessons.progress()
    lessons = learner_progress.lessons()
    assert [row["lesson"] for row in report.rows] == [title for title, _ in lessons.values()]
    first = report.rows[0]
    assert first["lesson"] == "00 · start here" and first["correct"] == 1 and first["tried"] == 2
    assert first["marks"] == "q1 ✔ q2 ✘ q3 ·"
    text = repr(report)
    assert "00 · start here" in text and "█" in text and f"1 of {report.total} exercises correct" in text
    html = report._repr_html_()
    assert html.count("<tr>") == len(lessons) + 1 and "width:33%" in html and "width:33%;background:#f4a582" in html
    assert str(progress_file) in text, "a file outside the course home is shown with its full path"


def test_the_file_inside_the_course_home_is_shown_relative_to_it(tmp_path, monkeypatch):
    from pretrain_lessons.paths import project_root

    monkeypatch.delenv(learner_progress.ENV, raising=False)
    monkeypatch.delenv("PRETRAIN_LESSONS_DATA", raising=False)
    assert learner_progress._shown(learner_progress.progress_file()) == "data/progress/progress.json"
    assert not str(project_root()) in learner_progress._shown(learner_progress.progress_file())


def test_record_timestamps_are_utc(progress_file):
    when = datetime(2026, 12, 1, 10, 30, tzinfo=timezone.utc)
    learner_progress.record("01", "q2", "correct", when=when)
    assert entries(progress_file)["01/q2"]["time"] == "2026-12-01T10:30:00+00:00"
