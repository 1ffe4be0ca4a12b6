"""Teacher copies: the transformation on a small synthetic notebook, then every real notebook's student copy
(runs, every checker says "not attempted") and solutions copy (runs, every checker says "correct")."""
from __future__ import annotations

import sys
import time
import types
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from pretrain_lessons import classroom
from pretrain_lessons.exercises import Exercise
from pretrain_lessons.paths import project_root

NOTEBOOKS = sorted((project_root() / "notebooks").glob("*.ipynb"))
FAKE = "pretrain_lessons.exercises.lesson99"


@pytest.fixture(autouse=True)
def private_progress(tmp_path, monkeypatch):
    """Checks run by these tests are recorded in a file of their own, never in the course's progress record."""
    monkeypatch.setenv("PRETRAIN_LESSONS_PROGRESS_FILE", str(tmp_path / "progress.json"))


@pytest.fixture
def fake_lesson(monkeypatch):
    """An exercise module with one-line, multi-line and function solutions."""
    module = types.ModuleType(FAKE)
    never = lambda answer: None  # noqa: E731
    module.q1 = Exercise("q1", "?", never, "", "term = '微调'", "term")
    module.q2 = Exercise("q2", "?", never, "", "import math\nprobs = [math.exp(v) for v in logits]", "probs")
    module.q3 = Exercise("q3", "?", never, "", "def double(x):\n    return 2 * x", "double")
    monkeypatch.setitem(sys.modules, FAKE, module)
    return module


def tagged(source: str, *tags: str, outputs: list | None = None):
    cell = new_code_cell(source, metadata={"tags": list(tags)} if tags else {})
    cell.outputs = outputs or []
    return cell


def verdict_output(text: str):
    return new_output("display_data", data={"text/plain": text})


def synthetic():
    return new_notebook(cells=[
        new_markdown_cell("# 99 · A lesson\n\nbadge"),
        tagged("x = 1\nprint(x)", outputs=[new_output("stream", name="stdout", text="1\n")]),
        tagged("%matplotlib inline\nfrom pretrain_lessons.exercises import ____, lesson99 as ex"),
        tagged("assert x == 1  # only for the tests", "test-only"),
        tagged("term = ____\nex.q1.check(term)", "exercise", outputs=[verdict_output("… Not attempted yet")]),
        tagged("# ex.q1.hint()\n# ex.q1.solution()"),
        tagged("logits = [0.0, 1.0]\n# your turn: exponentiate each logit\nprobs = ____\n# then check\n"
               "ex.q2.check(probs)", "exercise"),
        tagged("# ex.q2.solution()"),
        tagged("def double(x):\n    # fill in the body\n    return ____\n\n\nex.q3.check(double)\nprint('after')",
               "exercise"),
        tagged("print('worked solution')", "solution"),
    ])


def test_solutions_copy_fills_each_attempt_and_keeps_the_check(fake_lesson):
    nb = synthetic()
    report = classroom.make_copy(nb, "solutions", "99_x.ipynb")
    assert report.filled == ["lesson99.q1", "lesson99.q2", "lesson99.q3"] and report.removed_cells == 1
    sources = [c.source for c in nb.cells]
    assert "term = '微调'\nex.q1.check(term)" in sources
    assert ("logits = [0.0, 1.0]\n# your turn: exponentiate each logit\n"
            "import math\nprobs = [math.exp(v) for v in logits]\nex.q2.check(probs)") in sources
    assert "def double(x):\n    return 2 * x\nex.q3.check(double)\nprint('after')" in sources
    assert not any("____" in s for s in sources[3:]), "no blank left after the import"
    assert "print('worked solution')" in sources and "assert x == 1  # only for the tests" not in sources
    assert "# ex.q1.hint()\n# ex.q1.solution()" in sources
    assert nb.cells[0].source.endswith(classroom.SOLUTIONS_NOTE)
    exercise_cells = [c for c in nb.cells if "exercise" in c.metadata.get("tags", [])]
    assert all(c.outputs == [] for c in exercise_cells) and nb.cells[1].outputs, "only the exercise outputs go"
    assert nb.metadata["pretrain_lessons"] == {"copy": "solutions", "lesson": "99_x"}


def test_solutions_copy_actually_runs_and_passes(fake_lesson):
    nb = synthetic()
    classroom.make_copy(nb, "solutions")
    namespace: dict = {}
    for cell in nb.cells[1:]:
        if cell.cell_type == "code":
            exec("\n".join(l for l in cell.source.split("\n") if not l.startswith("%")), namespace)
    assert namespace["probs"] == [1.0, pytest.approx(2.718281828)] and namespace["double"](4) == 8
    assert all(q.last.correct for q in (fake_lesson.q1, fake_lesson.q2, fake_lesson.q3))


def test_student_copy_keeps_blanks_and_hints_and_drops_solutions(fake_lesson):
    nb = synthetic()
    report = classroom.make_copy(nb, "student", "99_x.ipynb")
    sources = [c.source for c in nb.cells]
    assert report.exercise_cells == 3 and report.removed_lines == 2
    assert report.removed_cells == 3, "the solution cell, the test-only cell and the cell that held only solution()"
    assert "term = ____\nex.q1.check(term)" in sources and "# ex.q1.hint()" in sources
    assert not any("solution" in s for s in sources)
    assert not any("only for the tests" in s for s in sources)
    assert sum("____" in s for s in sources) == 4
    assert nb.cells[1].outputs, "lesson outputs stay"
    exercise_cells = [c for c in nb.cells if "exercise" in c.metadata.get("tags", [])]
    assert all(c.outputs == [] and c.execution_count is None for c in exercise_cells)
    assert "Solutions copy" not in nb.cells[0].source


def test_direct_import_and_two_checks_in_one_cell(fake_lesson):
    nb = new_notebook(cells=[
        tagged("from pretrain_lessons.exercises.lesson99 import q1, q3 as third"),
        tagged("term = ____\nq1.check(term)\ndouble = ____\nthird.check(double)", "exercise"),
    ])
    report = classroom.make_copy(nb, "solutions")
    assert report.filled == ["lesson99.q1", "lesson99.q3"]
    assert nb.cells[1].source == "term = '微调'\nq1.check(term)\ndef double(x):\n    return 2 * x\nthird.check(double)"


def test_an_attempt_without_a_blank_is_replaced_where_it_defines_the_answer(fake_lesson):
    nb = new_notebook(cells=[
        tagged("import pretrain_lessons.exercises.lesson99 as ex"),
        tagged("other = 3\nterm = 'my guess'\nex.q1.check(term)", "exercise"),
    ])
    classroom.make_copy(nb, "solutions")
    assert nb.cells[1].source == "other = 3\nterm = '微调'\nex.q1.check(term)"


def test_a_check_with_no_attempt_or_an_unknown_exercise_is_an_error(fake_lesson):
    nb = new_notebook(cells=[tagged("from pretrain_lessons.exercises import lesson99 as ex"),
                             tagged("ex.q1.check(something)", "exercise")])
    with pytest.raises(classroom.ClassroomError, match="no attempt for q1"):
        classroom.make_copy(nb, "solutions", "99_x.ipynb")
    nb.cells[1].source = "term = ____\nex.q7.check(term)"
    with pytest.raises(classroom.ClassroomError, match="no exercise 'q7'"):
        classroom.make_copy(nb, "solutions", "99_x.ipynb")


def test_verdicts_are_read_from_outputs():
    nb = new_notebook(cells=[
        tagged("", outputs=[verdict_output("✔ Correct!"), verdict_output("💡 Hint: x")]),
        tagged("", outputs=[verdict_output("… Not attempted yet: …"), verdict_output("✘ Not yet.")]),
        tagged("", outputs=[verdict_output("✔ holds: a claim, not a checker — 0.45"),
                            verdict_output("✘ Your answer raised ValueError: x")]),
    ])
    assert [(i, s) for i, s, _ in classroom.verdicts(nb)] == [(0, "correct"), (1, "not attempted"), (1, "incorrect"),
                                                            (2, "incorrect")]


def test_cli_writes_one_copy_per_notebook_and_refuses_to_overwrite_the_source(fake_lesson, tmp_path, capsys):
    src = tmp_path / "notebooks"
    src.mkdir()
    nbformat.write(synthetic(), src / "99_x.ipynb")
    before = (src / "99_x.ipynb").read_text()
    assert classroom.main(["student", str(src), str(tmp_path / "student")]) == 0
    assert classroom.main(["solutions", str(src), str(tmp_path / "solutions")]) == 0
    out = capsys.readouterr().out
    assert "99_x.ipynb: 3 exercise cells left blank" in out and "3 solutions filled in" in out
    assert (src / "99_x.ipynb").read_text() == before, "the lesson itself is untouched"
    student = nbformat.read(tmp_path / "student" / "99_x.ipynb", as_version=4)
    assert student.metadata["pretrain_lessons"] == {"copy": "student", "lesson": "99_x"}
    assert classroom.main(["student", str(src), str(tmp_path / "blank"), "--clear-outputs"]) == 0
    blank = nbformat.read(tmp_path / "blank" / "99_x.ipynb", as_version=4)
    assert not any(c.get("outputs") for c in blank.cells) and student.cells[1].outputs
    assert classroom.main(["student", str(src), str(src)]) == 1
    assert "must not be the source folder" in capsys.readouterr().err


def test_a_student_copy_is_never_made_from_a_solutions_copy(fake_lesson, tmp_path, capsys):
    src = tmp_path / "notebooks"
    src.mkdir()
    nbformat.write(synthetic(), src / "99_x.ipynb")
    assert classroom.main(["solutions", str(src), str(tmp_path / "answers")]) == 0
    assert classroom.main(["student", str(tmp_path / "answers"), str(tmp_path / "handout")]) == 1
    assert "is a solutions copy" in capsys.readouterr().err and not (tmp_path / "handout").exists()
    answers = nbformat.read(tmp_path / "answers" / "99_x.ipynb", as_version=4)
    answers.metadata.pop("pretrain_lessons")      # metadata stripped by some tool: the note in the title still tells
    with pytest.raises(classroom.ClassroomError, match="solutions copy"):
        classroom.make_copy(answers, "student", "99_x.ipynb")


def test_every_notebook_is_read_and_checked_before_any_copy_is_written(fake_lesson, tmp_path, capsys):
    src = tmp_path / "notebooks"
    src.mkdir()
    nbformat.write(synthetic(), src / "99_a.ipynb")
    (src / "99_b.ipynb").write_text('{"cells": [', encoding="utf-8")   # cut short
    assert classroom.main(["student", str(src), str(tmp_path / "out")]) == 1
    assert "99_b.ipynb is not a readable notebook" in capsys.readouterr().err
    assert not (tmp_path / "out").exists(), "not even the good notebook's copy was written"
    (src / "99_b.ipynb").write_text(nbformat.writes(new_notebook(cells=[
        tagged("from pretrain_lessons.exercises import lesson99 as ex"), tagged("ex.q7.check(x)")])))
    assert classroom.main(["solutions", str(src), str(tmp_path / "out")]) == 1   # 99_b fails while it is copied
    assert not (tmp_path / "out").exists()


def test_a_missing_source_creates_nothing(tmp_path, capsys):
    assert classroom.main(["student", str(tmp_path / "no-such-folder"), str(tmp_path / "out")]) == 1
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_an_output_folder_inside_the_lessons_is_refused_even_through_a_link(fake_lesson, tmp_path, capsys):
    src = tmp_path / "notebooks"
    src.mkdir()
    nbformat.write(synthetic(), src / "99_x.ipynb")
    lessons = project_root() / "notebooks"
    before = sorted(p.name for p in lessons.iterdir())
    link = tmp_path / "innocent-looking"
    link.symlink_to(lessons, target_is_directory=True)
    for out in (lessons, lessons / "handout", link, link / "handout"):
        assert classroom.main(["student", str(src), str(out)]) == 1, out
        assert "resolves into the course's notebooks/" in capsys.readouterr().err
    inner = src / "copies-link"
    inner.symlink_to(src, target_is_directory=True)
    assert classroom.main(["student", str(src), str(inner)]) == 1
    assert "must not be the source folder" in capsys.readouterr().err
    assert sorted(p.name for p in lessons.iterdir()) == before, "nothing was written among the lessons"


def test_private_data_dir_links_the_assets_and_keeps_its_own_checkpoints(tmp_path, monkeypatch):
    from pretrain_lessons import paths
    from pretrain_lessons.data.provision import check, load_manifest

    shared = paths.data_dir()
    folder = classroom.private_data_dir(tmp_path / "data")
    assert classroom.private_data_dir(tmp_path / "data") == folder, "a second call changes nothing"
    assert (folder / "nltk_data").is_symlink() and not (folder / "checkpoints").exists()
    asset = load_manifest()["rotten_tomatoes"]
    assert check(asset, folder) == check(asset, shared)
    monkeypatch.setenv("PRETRAIN_LESSONS_DATA", str(folder))
    assert paths.checkpoint_dir("x").resolve().is_relative_to(folder.resolve())
    assert not (shared / "checkpoints" / "smoke" / "x").exists()


# ---- every real notebook: both copies executed at smoke scale ----
# Two notebooks at a time, each with a data folder of its own (the assets linked, its own checkpoints), so that
# lessons that train the same model never write it at once; a notebook's solutions copy runs after its student
# copy and reuses what that one trained.

@pytest.fixture(scope="module")
def executed(tmp_path_factory, request) -> dict:
    """Both copies of every notebook, written and run: {(kind, name): (Run, executed notebook)}."""
    folder = tmp_path_factory.mktemp("classroom")
    for kind in ("student", "solutions"):
        classroom.write_copies(kind, project_root() / "notebooks", folder / kind)
    # The later lessons cost the most at smoke scale (08's two copies are a third of the whole): started first, they
    # leave the short ones to fill the other worker instead of running alone at the end (measured: 481 s in lesson
    # order).
    paths = [folder / kind / path.name for path in reversed(NOTEBOOKS) for kind in ("student", "solutions")]
    start = time.perf_counter()
    runs = classroom.execute_many(paths, workers=2, private_data=folder / "data",
                                  env={"PRETRAIN_LESSONS_SCALE": "smoke", "PRETRAIN_LESSONS_PROGRESS": "off",
                                       "PRETRAIN_LESSONS_PROGRESS_FILE": "off"})
    lines = [f"teacher copies of {len(NOTEBOOKS)} notebooks run in {time.perf_counter() - start:.0f} s, two at a time:"]
    lines += [f"  {run.path.parent.name:>9} copy of {run.path.name}: {run.seconds:.1f} s" for run in runs]
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():  # the measured cost, shown even when output is captured
        print("\n" + "\n".join(lines))
    return {(run.path.parent.name, run.path.name): (run, nbformat.read(run.path, as_version=4)) for run in runs}


def expected_checks(nb) -> int:
    names = classroom.exercise_names(nb)
    return sum(classroom.count_checks(c.source, names) for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_student_copy_runs_and_every_checker_says_not_attempted(name, executed):
    run, nb = executed["student", name]
    assert run.ok, f"the student copy of {name} crashed:\n{run.output}"
    found = classroom.verdicts(nb)
    assert expected_checks(nb) >= 1, f"{name} has no checked exercise"
    assert len(found) == expected_checks(nb), f"one verdict per check expected, got {found}"
    assert {status for _, status, _ in found} == {"not attempted"}, found


@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_solutions_copy_runs_and_every_checker_passes(name, executed):
    run, nb = executed["solutions", name]
    assert run.ok, f"the solutions copy of {name} crashed:\n{run.output}"
    found = classroom.verdicts(nb)
    assert expected_checks(nb) >= 1 and len(found) == expected_checks(nb), found
    assert {status for _, status, _ in found} == {"correct"}, found
    names = classroom.exercise_names(nb)
    assert not [c.source for c in nb.cells if classroom.count_checks(c.source, names) and "____" in c.source]
