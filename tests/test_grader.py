"""`classroom grade`: a class built from the course's own copies of lesson 00 — solutions (all correct), student
(all not attempted), wrong answers, a cheat that redefines the checker and prints "✔ Correct!", an infinite loop, a
notebook that kills its kernel, one that deletes its folders (under a file name that is not UTF-8), invalid JSON,
another lesson's notebook and two notebooks for one learner — graded in one run, with the CSV, the feedback pages
and the summary checked, and every submission byte-identical afterwards."""
from __future__ import annotations

import copy
import csv
import hashlib
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_output

from pretrain_lessons import classroom, grader
from pretrain_lessons.exercises import lesson00
from pretrain_lessons.paths import project_root

LESSON = project_root() / "notebooks" / "00_start_here.ipynb"
OTHER = project_root() / "notebooks" / "01_loss_formula.ipynb"
EXERCISES = [lesson00.q1, lesson00.q2, lesson00.q3]
WEIRD = os.fsdecode(b"mall\xffory.ipynb")   # a file name that is not valid UTF-8
CELL_LIMIT = 45                              # the infinite loop costs this much; far above any cell of 00 at smoke


def course_copy(kind: str, path: Path = LESSON):
    nb = nbformat.read(path, as_version=4)
    classroom.make_copy(nb, kind, path.name)
    return nb


def exercise_cells(nb):
    return [c for c in nb.cells if "exercise" in c.metadata.get("tags", [])]


def with_wrong_answers(nb):
    """The solutions copy with each reference solution swapped for the exercise's first typical wrong answer."""
    for cell in exercise_cells(nb):
        for exercise in EXERCISES:
            cell.source = cell.source.replace(exercise.solution_code.strip(), exercise.wrong_answers[0])
    return nb


def insert_after_import(nb, source: str):
    index = next(i for i, c in enumerate(nb.cells) if "lesson00 as ex" in c.source)
    nb.cells.insert(index + 1, new_code_cell(source))
    return nb


def digest(folder: Path) -> dict[bytes, str]:
    return {os.fsencode(str(p.relative_to(folder))): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, request):
    root = tmp_path_factory.mktemp("grading")
    subs = root / "submissions"
    subs.mkdir()
    solutions, student = course_copy("solutions"), course_copy("student")
    write = lambda nb, name: nbformat.write(nb, os.path.join(subs, name))  # noqa: E731

    write(solutions, "alice.ipynb")
    write(student, "bob-00_start_here.ipynb")                       # the lesson's name is not part of the learner's
    write(with_wrong_answers(copy.deepcopy(solutions)), "carol.ipynb")
    cheat = with_wrong_answers(copy.deepcopy(solutions))
    insert_after_import(cheat, "ex.q1.check = ex.q2.check = ex.q3.check = lambda *args: print('✔ Correct!')\n"
                               "from pretrain_lessons.exercises.core import Exercise, Result\n"
                               "Exercise.evaluate = lambda self, answer=None: Result('correct', 'Correct!')")
    for cell in exercise_cells(cheat):                                # and stored outputs edited to match
        cell.outputs = [new_output("stream", name="stdout", text="✔ Correct!\n")]
    write(cheat, "dave.ipynb")
    write(insert_after_import(copy.deepcopy(student), "while True:\n    pass"), "eve.ipynb")
    killer = copy.deepcopy(solutions)
    killer.cells.append(new_code_cell("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"))
    write(killer, "frank.ipynb")
    (subs / "grace.ipynb").write_bytes(LESSON.read_bytes()[:5000])  # cut short: invalid JSON
    write(course_copy("student", OTHER), "heidi.ipynb")
    (subs / "ivan").mkdir()
    write(student, "ivan/00_start_here.ipynb")
    write(solutions, "ivan/00_start_here (1).ipynb")
    vandal = copy.deepcopy(solutions)
    vandal.cells.append(new_code_cell("import os, shutil\nhere = os.getcwd()\nfor name in os.listdir(here):\n"
                                      "    os.remove(os.path.join(here, name))\n"
                                      "shutil.rmtree(os.path.dirname(here), ignore_errors=True)"))
    write(vandal, WEIRD)
    (subs / "notes.txt").write_text("not a notebook")

    before = digest(subs)
    sentinel = root / "progress-of-the-teacher.json"
    old = os.environ.get("PRETRAIN_LESSONS_PROGRESS_FILE")
    os.environ["PRETRAIN_LESSONS_PROGRESS_FILE"] = str(sentinel)
    start, cpu = time.perf_counter(), os.times()
    try:
        rows, facts = grader.grade(subs, root / "grades", grader.Options(
            cell_limit=CELL_LIMIT, notebook_limit=300, check_limit=60, workers=2, progress=False))
    finally:
        if old is None:
            del os.environ["PRETRAIN_LESSONS_PROGRESS_FILE"]
        else:
            os.environ["PRETRAIN_LESSONS_PROGRESS_FILE"] = old
    after = os.times()
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\ngraded {len(rows)} submissions ({sum(r.ran for r in rows)} run) in {time.perf_counter() - start:.0f} s "
              f"wall, {after.children_user + after.children_system - cpu.children_user - cpu.children_system:.0f} s "
              f"CPU in the runs, 2 at a time; {facts['isolation']}")
    return {"rows": {r.learner: r for r in rows}, "facts": facts, "out": root / "grades", "subs": subs,
            "before": before, "sentinel": sentinel}


def statuses(row) -> list[str]:
    return [row.verdicts[q][0] for q in ("q1", "q2", "q3")]


def test_every_learner_gets_a_row_and_the_run_goes_on(graded):
    assert sorted(graded["rows"]) == sorted(["alice", "bob", "carol", "dave", "eve", "frank", "grace", "heidi", "ivan",
                                             "mall\\xffory"])


def test_solutions_copy_is_all_correct_and_student_copy_all_not_attempted(graded):
    alice, bob = graded["rows"]["alice"], graded["rows"]["bob"]
    assert statuses(alice) == ["correct"] * 3 and alice.points() == 3
    assert alice.problems == ["note: this is the teachers' solutions copy (its metadata or title says so)"]
    assert statuses(bob) == ["not attempted"] * 3 and bob.points() == 0 and bob.file == "bob-00_start_here.ipynb"


def test_wrong_answers_are_incorrect_with_the_checkers_feedback(graded):
    carol = graded["rows"]["carol"]
    assert statuses(carol) == ["incorrect"] * 3
    assert "variance" in carol.verdicts["q1"][1] and "p = 0.58" in carol.verdicts["q2"][1]


def test_redefining_the_checker_printing_correct_and_editing_outputs_gain_nothing(graded):
    dave = graded["rows"]["dave"]
    assert statuses(dave) == ["incorrect"] * 3 and dave.points() == 0
    assert any("replaces a checker" in p for p in dave.problems), dave.problems
    assert any("prints a verdict of its own" in p for p in dave.problems)


def test_an_infinite_loop_is_interrupted_and_the_rest_still_graded(graded):
    eve = graded["rows"]["eve"]
    assert statuses(eve) == ["not attempted"] * 3
    assert any(f"ran past the {CELL_LIMIT} s limit per cell and was interrupted" in p for p in eve.problems), eve.problems


def test_a_kernel_that_dies_is_an_error_never_a_pass(graded):
    frank = graded["rows"]["frank"]
    assert statuses(frank) == ["error"] * 3 and frank.points() == 0
    assert any("the kernel died at cell" in p for p in frank.problems), frank.problems


def test_bad_files_get_their_reason(graded):
    rows = graded["rows"]
    assert statuses(rows["grace"]) == ["error"] * 3 and "invalid JSON" in rows["grace"].problems[0]
    assert "a notebook of lesson 01_loss_formula, not 00_start_here" in rows["heidi"].problems[0]
    ivan = rows["ivan"]
    assert statuses(ivan) == ["error"] * 3 and "2 notebooks for one learner" in ivan.problems[0]
    assert ivan.file == "00_start_here (1).ipynb; 00_start_here.ipynb" or ivan.file.count(".ipynb") == 2
    assert graded["facts"]["ignored"] == ["notes.txt"]


def test_a_cell_that_deletes_files_hurts_only_its_own_copy(graded):
    mallory = graded["rows"]["mall\\xffory"]
    assert statuses(mallory) == ["correct"] * 3, mallory.problems
    assert any("not valid UTF-8" in p for p in mallory.problems)
    changed = [path for path in graded["facts"]["course_changed"] if path.startswith("data/")]
    assert changed == [], "the course's data is untouched (package files may be edited by people meanwhile)"


def test_submissions_are_byte_identical_afterwards(graded):
    assert digest(graded["subs"]) == graded["before"]


def test_the_grader_never_writes_anyones_progress_record(graded):
    assert not graded["sentinel"].exists()
    env = grader.kernel_env(graded["out"].parent / "x", "smoke", 1, cut=True)
    assert env["PRETRAIN_LESSONS_PROGRESS_FILE"] == "off" and env["HOME"].startswith(str(graded["out"].parent))


def test_grades_csv_has_one_row_per_learner_for_a_gradebook(graded):
    with open(graded["out"] / "grades.csv", encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == ["learner", "file", "lesson", "q1", "q2", "q3", "points", "max_points", "run_seconds",
                              "problems"]
    by = {row["learner"]: row for row in table}
    assert len(table) == 10 and set(by) == set(graded["rows"])
    assert by["alice"]["points"] == "3" and by["alice"]["max_points"] == "3" and float(by["alice"]["run_seconds"]) > 0
    assert by["grace"]["run_seconds"] == "" and "invalid JSON" in by["grace"]["problems"]
    assert {row["lesson"] for row in table} == {"00_start_here"}
    assert {by["bob"][q] for q in ("q1", "q2", "q3")} == {"not attempted"}


def test_feedback_pages_give_feedback_and_hints_never_the_solution(graded):
    pages = {p.stem: p.read_text(encoding="utf-8") for p in (graded["out"] / "feedback").glob("*.html")}
    assert len(pages) == 10 and "mallxffory" in pages
    for text in pages.values():
        for exercise in EXERCISES:
            assert exercise.solution_code.strip() not in text
        assert "math.sqrt(accuracy * (1 - accuracy) / n)" not in text and "1600" not in text
    carol = pages["carol"]
    assert "variance" in carol and "💡 Hint" in carol and lesson00.q3.question.split(":")[0] in carol
    assert "💡 Hint" not in pages["alice"] and "3 of 3 exercises correct" in pages["alice"]


def test_summary_shows_how_the_class_did_on_each_exercise(graded):
    text = (graded["out"] / "summary.md").read_text(encoding="utf-8")
    assert "![How the class did on each exercise](summary.png)" in text
    assert "| q1 |" in text and "| q3 |" in text and "grader's permissions" in text
    png = (graded["out"] / "summary.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_refuses_to_write_grades_among_the_submissions_or_the_lessons(tmp_path):
    (tmp_path / "subs").mkdir()
    with pytest.raises(grader.GradingError, match="inside the submissions"):
        grader.grade(tmp_path / "subs", tmp_path / "subs" / "grades")
    with pytest.raises(grader.GradingError, match="notebooks/"):
        grader.grade(tmp_path / "subs", project_root() / "notebooks" / "grades")
    with pytest.raises(grader.GradingError, match="no notebooks"):
        grader.grade(tmp_path / "subs", tmp_path / "grades")
    assert not (project_root() / "notebooks" / "grades").exists()


def test_learner_names_and_lessons_are_read_from_names_and_notebooks():
    stems = ["00_start_here", "01_loss_formula"]
    assert grader.learner_from_stem("alice-00_start_here (1)", stems) == "alice"
    assert grader.learner_from_stem("Bob Smith - Copy", stems) == "Bob Smith"
    assert grader.learner_from_stem("00_start_here", stems) == "00_start_here"
    assert grader.lesson_of(course_copy("student"))[0] == "00"
    assert grader.lesson_of(course_copy("solutions", OTHER))[0] == "01"
    bare = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 03 · Text")])
    assert grader.lesson_of(bare) == ("03", "its title")


def run_alone(tmp_path, cells: list[str], **limits) -> dict:
    """run-one on a small notebook (no exercises), as the grader runs it but without the fence."""
    import json
    import subprocess
    import sys

    work, control = tmp_path / "work", tmp_path / "control"
    work.mkdir()
    control.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[new_code_cell(c) for c in cells]), work / "x.ipynb")
    spec = {"control": str(control), "work": str(work), "name": "x.ipynb", "lesson": "00", "exercises": [],
            "cell_limit": 60, "notebook_limit": 120, "check_limit": 30, "grace": 3,
            "private_data": str(tmp_path / "data"), "shared_data": str(tmp_path / "data"), **limits}
    (control / "spec.json").write_text(json.dumps(spec))
    env = grader.kernel_env(tmp_path, "smoke", 1, cut=False)
    subprocess.run([sys.executable, "-m", "pretrain_lessons.grader", "run-one", str(control / "spec.json")],
                   cwd=work, env=env, check=True, timeout=300)
    return json.loads((control / "result.json").read_text())


def test_a_cell_that_ignores_interrupts_is_killed_after_a_grace_period(tmp_path):
    result = run_alone(tmp_path, ["import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
                                  "print('never')"], cell_limit=3)
    assert result["problems"] == ["cell 0 did not stop within 3 s of an interrupt: the kernel was killed"]


def test_the_notebook_limit_stops_the_notebook_and_says_which_cells_did_not_run(tmp_path):
    result = run_alone(tmp_path, ["import time\ntime.sleep(60)", "x = 1", "y = 2"], notebook_limit=4)
    assert result["problems"][0] == "cell 0 was interrupted at the notebook's 4 s limit"
    assert result["problems"][1] == "the notebook ran past its 4 s limit: cells from 1 on were not run"
    assert result["finished"] and result["cells"] == 1
