"""Headline results of each lesson, and the course report that `make course` writes.

A lesson calls `record("02", test_accuracy=0.925, ...)` once its results are known; the values land in
`<results folder>/<lesson>.json` (PRETRAIN_LESSONS_RESULTS, else data/results/<scale>/). `make course` runs
every notebook, times it, and writes `reports/course.md` from those files next to the design's targets.
`--from-notebooks` writes the same report from the committed notebooks instead (their stored per-cell timings)
and refreshes the lesson table in README.md, without running anything.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path

from . import paths, scale

# Targets from the issues and the design: minutes at cpu scale on 2 cores, and the asserted outcomes.
TARGETS = {
    "00": {"minutes": 3, "outcome": "doctor, data status, progress record"},
    "01": {"minutes": 3, "outcome": "hand-computed loss and gradient = PyTorch's within 1e-6; head start judged on held-out data"},
    "02": {"minutes": 3, "outcome": "test accuracy ≥ 92.0 %; recipe chosen on validation beats the seed's 10 epochs"},
    "03": {"minutes": 3, "outcome": "bag-of-words baseline tuned on validation (the bar for 05)"},
    "04": {"minutes": 10, "outcome": "[MASK]-only accuracy ≥ unigram baseline + 5 points"},
    "05": {"minutes": 15, "outcome": "pretrained > scratch at 300 and 1,000 labels; MiniLM ≥ bag of words + 8 at 100/300; ≥ 82 % with all"},
    "06": {"minutes": 15, "outcome": "positive-transfer pair beats every control at the smallest budget"},
    "07": {"minutes": 15, "outcome": "own attention = nn.MultiheadAttention within 1e-5; fair long-range comparison"},
    "08": {"minutes": 15, "outcome": "cost measured with attention; int8, distillation, LoRA judged against noise"},
}


def results_dir() -> Path:
    """Where lessons record their headline results."""
    env = os.environ.get("PRETRAIN_LESSONS_RESULTS")
    path = Path(env) if env else paths.data_dir() / "results" / scale.current()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _plain(value):
    """JSON-friendly numbers (tensors and numpy scalars become floats), rounded for reading."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        return float(f"{value:.5g}")   # five significant digits: keeps 3e-08 as well as 0.91235
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def record(lesson: str, **results) -> None:
    """Save a lesson's headline results (merged with what it recorded before in this scale), and how many of the
    claims checked so far in this kernel hold."""
    from .claims import MADE

    path = results_dir() / f"{lesson}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update({k: _plain(v) for k, v in results.items()})
    if MADE:
        data["claims_holding"] = f"{sum(c.holds for c in MADE)} of {len(MADE)}"
    data["scale"] = scale.current()
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False))


def recorded(lesson: str) -> dict:
    """The headline results a lesson recorded at the scale in force (without the scale itself)."""
    path = results_dir() / f"{lesson}.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results.pop("scale", None)
    return results


def _format(value) -> str:
    if isinstance(value, float):
        if 0 < abs(value) < 1e-3:
            return f"{value:.1e}"
        if 0 < abs(value) <= 1 and value != 1:
            return f"{value:.4f}"
        return f"{value:,.2f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_format(v)}" for k, v in value.items())
    return str(value)


def run_notebooks(notebooks: list[Path], out_dir: Path, timeout: int = 3600) -> dict[str, dict]:
    """Execute each notebook into out_dir (outputs kept there, sources untouched); return name → timing/status."""
    import nbformat
    from nbclient import NotebookClient

    out_dir.mkdir(parents=True, exist_ok=True)
    timings = {}
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        start = time.perf_counter()
        status = "ok"
        try:
            client.execute()
        except Exception as exc:  # noqa: BLE001 - the report says which lesson failed and why
            status = f"failed: {type(exc).__name__}: {str(exc).splitlines()[-1] if str(exc) else ''}"[:300]
        seconds = time.perf_counter() - start
        nbformat.write(nb, out_dir / path.name)
        timings[path.stem] = {"seconds": round(seconds, 1), "status": status}
        print(f"{path.name:<45} {seconds:7.1f} s  {status}", flush=True)
    return timings


def stored_timing(path: Path) -> dict:
    """Wall time of a notebook's last top-to-bottom run, from the execution times nbclient stores per cell."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    stamps = [c.get("metadata", {}).get("execution", {}) for c in nb["cells"] if c["cell_type"] == "code"]
    starts = [s["iopub.execute_input"] for s in stamps if "iopub.execute_input" in s]
    ends = [s["shell.execute_reply"] for s in stamps if "shell.execute_reply" in s]
    if not starts or not ends:
        return {"seconds": float("nan"), "status": "no stored timings: execute it top to bottom"}
    parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    return {"seconds": round((parse(max(ends)) - parse(min(starts))).total_seconds(), 1),
            "status": "ok" if not errors else f"stored error: {errors[0].get('ename')}"}


def _previous_cells(table: Path, column: int) -> dict[str, str]:
    """The cell in `column` of each lesson's row of a Markdown table written before (README.md, course.md)."""
    if not table.exists():
        return {}
    cells = {}
    for line in table.read_text(encoding="utf-8").splitlines():
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if len(parts) > column and parts[0][:1] in "[0123456789":
            stem = parts[0].lstrip("[").split("]", 1)[0]
            if stem[:2].isdigit():
                cells[stem] = parts[column]
    return cells


def readme_table(timings: dict[str, dict], readme: Path) -> None:
    """Replace the lesson table in README.md (between its marker comments) with measured times and results.

    A lesson whose results file is missing (a fresh checkout that has not run it) keeps the results its row showed."""
    rows = ["| notebook | what it does | cpu-scale run | headline results (from the stored run) |", "|---|---|---|---|"]
    before = _previous_cells(readme, 3)
    for stem, info in sorted(timings.items()):
        nb = json.loads((paths.project_root() / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))
        title = "".join(nb["cells"][0]["source"]).splitlines()[0].lstrip("# ").split("·", 1)[-1].strip()
        results = recorded(stem[:2])
        scalars = [(k, v) for k, v in results.items() if not isinstance(v, (dict, list, tuple))]   # tables stay in course.md
        shown = "; ".join(f"{k.replace('_', ' ')} {_format(v)}" for k, v in scalars[:4]) or before.get(stem, "—")
        rows.append(f"| [{stem}](notebooks/{stem}.ipynb) | {title} | {info['seconds'] / 60:.1f} min | {shown} |")
    start, end = "<!-- lessons:start -->", "<!-- lessons:end -->"
    text = readme.read_text(encoding="utf-8")
    if start not in text or end not in text:
        raise SystemExit(f"README.md has no {start} … {end} markers around the lesson table")
    head, rest = text.split(start, 1)
    readme.write_text(head + start + "\n" + "\n".join(rows) + "\n" + end + rest.split(end, 1)[1], encoding="utf-8")


def write_report(timings: dict[str, dict], out: Path, source: str = "run") -> str:
    """The Markdown course report: per lesson, wall time against target and the recorded results (a lesson with no
    results file keeps the results the report at `out` showed for it)."""
    before = _previous_cells(out, 4)
    lines = [f"# Course report ({scale.current()} scale)", "",
             f"Generated by `{'python -m pretrain_lessons.report --from-notebooks' if source == 'stored' else 'make course'}` on {time.strftime('%Y-%m-%d %H:%M')}, "
             f"{os.cpu_count()} CPU cores. Wall time per notebook, executed top to bottom in a fresh kernel"
             f"{' (read from the committed notebooks: first cell start to last cell end)' if source == 'stored' else ''}.", "",
             "| lesson | wall time | target | status | headline results | asserted outcome |", "|---|---|---|---|---|---|"]
    for stem, info in sorted(timings.items()):
        lesson = stem[:2]
        target = TARGETS.get(lesson, {})
        results = recorded(lesson)
        shown = "; ".join(f"{k} = {_format(v)}" for k, v in results.items()) or before.get(stem, "—")
        minutes = info["seconds"] / 60
        limit = target.get("minutes")
        within = "" if limit is None else (" ✔" if minutes <= limit else " ✘ over")
        lines.append(f"| {stem} | {minutes:.1f} min{within} | ≤ {limit} min | {info['status']} | {shown} | "
                     f"{target.get('outcome', '')} |")
    total = sum(i["seconds"] for i in timings.values()) / 60
    lines += ["", f"Total: {total:.1f} minutes."]
    text = "\n".join(lines) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pretrain_lessons.report", description="Run the course and write reports/course.md")
    parser.add_argument("--notebooks", default=str(paths.project_root() / "notebooks"))
    parser.add_argument("--out", default=str(paths.project_root() / "out" / "course"))
    parser.add_argument("--report", default=str(paths.project_root() / "reports" / "course.md"))
    parser.add_argument("--from-notebooks", action="store_true",
                        help="run nothing: report the committed notebooks' stored timings and recorded results, update README.md")
    parser.add_argument("only", nargs="*", help="lesson numbers to run (default: all)")
    args = parser.parse_args(argv)
    notebooks = sorted(Path(args.notebooks).glob("[0-9][0-9]_*.ipynb"))
    if args.only:
        notebooks = [n for n in notebooks if n.name[:2] in args.only]
    if args.from_notebooks:
        timings = {n.stem: stored_timing(n) for n in notebooks}
        print(write_report(timings, Path(args.report), source="stored"))
        readme_table(timings, paths.project_root() / "README.md")
        return 0 if all(t["status"] == "ok" for t in timings.values()) else 1
    os.environ.setdefault("PRETRAIN_LESSONS_RESULTS", str(Path(args.out) / "results"))
    timings = run_notebooks(notebooks, Path(args.out))
    (Path(args.out) / "timings.json").write_text(json.dumps(timings, indent=1))
    print(write_report(timings, Path(args.report)))
    return 0 if all(t["status"] == "ok" for t in timings.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
