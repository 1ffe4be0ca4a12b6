"""The course report: recorded results, stored timings read back from a notebook, the README table."""
from __future__ import annotations

import json

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from pretrain_lessons import report


def timed_cell(source: str, start: str, end: str, outputs=()):
    cell = new_code_cell(source, metadata={"execution": {"iopub.execute_input": start, "shell.execute_reply": end}})
    cell.outputs = list(outputs)
    return cell


def test_record_merges_and_rounds(tmp_path, monkeypatch):
    monkeypatch.setenv("PRETRAIN_LESSONS_RESULTS", str(tmp_path))
    report.record("99", accuracy=0.912345678, difference=3.14159e-08)
    report.record("99", perplexity=123.456789)
    saved = json.loads((tmp_path / "99.json").read_text())
    assert saved["accuracy"] == 0.91235 and saved["perplexity"] == 123.46 and "scale" in saved
    assert saved["difference"] == 3.1416e-08 and report._format(saved["difference"]) == "3.1e-08"


def test_stored_timing_spans_first_start_to_last_reply(tmp_path):
    nb = new_notebook(cells=[new_markdown_cell("# 99 · Test"),
                             timed_cell("1", "2026-11-30T10:00:00.000Z", "2026-11-30T10:00:05.000Z"),
                             timed_cell("2", "2026-11-30T10:00:05.500Z", "2026-11-30T10:02:30.250Z")])
    path = tmp_path / "99_test.ipynb"
    nbformat.write(nb, path)
    assert report.stored_timing(path) == {"seconds": 150.2, "status": "ok"}
    nb.cells[2].outputs = [new_output("error", ename="ValueError", evalue="x", traceback=[])]
    nbformat.write(nb, path)
    assert report.stored_timing(path)["status"] == "stored error: ValueError"
    nbformat.write(new_notebook(cells=[new_code_cell("1")]), path)
    assert report.stored_timing(path)["status"].startswith("no stored timings")


def test_write_report_marks_lessons_over_their_target(tmp_path, monkeypatch):
    monkeypatch.setenv("PRETRAIN_LESSONS_RESULTS", str(tmp_path))
    report.record("02", test_accuracy=0.925)
    text = report.write_report({"02_mnist_linear": {"seconds": 60.0, "status": "ok"},
                                "04_bert_mlm_pretraining": {"seconds": 900.0, "status": "ok"}}, tmp_path / "course.md")
    assert "| 02_mnist_linear | 1.0 min ✔ | ≤ 3 min | ok | test_accuracy = 0.9250 |" in text
    assert "15.0 min ✘ over" in text


def test_a_lesson_without_a_results_file_keeps_its_previous_row(tmp_path, monkeypatch):
    monkeypatch.setenv("PRETRAIN_LESSONS_RESULTS", str(tmp_path / "results"))
    report.record("02", test_accuracy=0.925)
    out = tmp_path / "course.md"
    out.write_text("| lesson | wall time | target | status | headline results | asserted outcome |\n|---|---|---|---|---|---|\n"
                   "| 01_loss_formula | 0.5 min ✔ | ≤ 3 min | ok | gradient_max_difference = 3.0e-08 | x |\n"
                   "| 02_mnist_linear | 1.0 min ✔ | ≤ 3 min | ok | test_accuracy = 0.9000 | y |\n")
    text = report.write_report({"01_loss_formula": {"seconds": 30.0, "status": "ok"},
                                "02_mnist_linear": {"seconds": 60.0, "status": "ok"},
                                "03_text_preprocessing": {"seconds": 60.0, "status": "ok"}}, out)
    assert "| ok | gradient_max_difference = 3.0e-08 |" in text      # kept: 01 has no results file here
    assert "test_accuracy = 0.9250" in text and "0.9000" not in text  # replaced: 02 recorded anew
    assert "| 03_text_preprocessing | 1.0 min ✔ | ≤ 3 min | ok | — |" in text   # never recorded, never reported
    assert report._previous_cells(tmp_path / "missing.md", 4) == {}
