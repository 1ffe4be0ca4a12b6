"""Teacher copies of the notebooks, made from the one source in notebooks/.

    python -m pretrain_lessons.classroom student   notebooks/ OUT/   # for learners: blanks left, solutions out
    python -m pretrain_lessons.classroom solutions notebooks/ OUT/   # for teachers: every blank filled in
    python -m pretrain_lessons.classroom execute OUT/*.ipynb         # run copies in place, one after the other
    python -m pretrain_lessons.classroom grade SUBMISSIONS/ --out GRADES/   # grade a class (see grader.py)

A student copy keeps the lesson and its outputs, leaves every `____` blank, clears the exercise cells'
outputs, and removes cells tagged `solution` or `test-only` and `ex.qN.solution()` lines (hints stay).
A solutions copy replaces, in each cell that checks an exercise, the learner's attempt (from the first
statement with a `____` blank up to the `ex.qN.check(...)` call) with the exercise's `solution_code`,
keeps the check, clears that cell's outputs, and says at the top that it is a solutions copy.
`--clear-outputs` clears every output, not only the exercises'; `--execute` runs the copies after writing them
(at the scale in force), so that their outputs show the verdicts.

Every notebook is read and checked before any copy is written; a student copy is never made from a solutions copy;
the copies never land in the source folder or in the course's notebooks/ (a link that leads there included).
"""
from __future__ import annotations

import argparse
import ast
import importlib
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .paths import project_root

PACKAGE = "pretrain_lessons.exercises"
EXERCISE_TAG = "exercise"
DROP_TAGS = {"student": {"solution", "test-only"}, "solutions": {"test-only"}}
SOLUTION_LINE = re.compile(r"^\s*#?\s*[\w.]+\.solution\(\s*\)\s*(#.*)?$")
BLANK = "____"
SOLUTIONS_NOTE = ("> **Solutions copy** (for teachers): every exercise cell below holds the reference solution. "
                  "Learners get the student copy, with the blanks left in.")
VERDICT_MARKS = {"✔": "correct", "✘": "incorrect", "…": "not attempted"}
# A checker's verdict as Exercise.check shows it (a claim cell's "✔ holds: …" is not one).
VERDICT_LINE = re.compile(r"^(✔ Correct!|✘ Not yet\.|✘ Your answer raised|… Not attempted yet)")


class ClassroomError(Exception):
    """A notebook the copies cannot be made from, with the reason."""


@dataclass
class Report:
    """What one copy did to one notebook."""

    name: str
    filled: list[str] = field(default_factory=list)   # exercises whose solution was filled in
    removed_cells: int = 0
    removed_lines: int = 0
    exercise_cells: int = 0

    def line(self, kind: str) -> str:
        """One line for the command's output."""
        if kind == "solutions":
            what = f"{len(self.filled)} solutions filled in ({', '.join(self.filled) or 'none'})"
        else:
            what = f"{self.exercise_cells} exercise cells left blank, {self.removed_lines} solution() lines removed"
        return f"{self.name}: {what}, {self.removed_cells} cells removed"


def _parse(source: str) -> ast.Module | None:
    """The cell's syntax tree, with IPython magics and shell lines blanked out; None if it is not Python."""
    masked = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n"))
    try:
        return ast.parse(masked)
    except SyntaxError:
        return None


def exercise_names(nb) -> dict[str, tuple[str, str | None]]:
    """Names the notebook binds to exercise modules or exercises: name → (module, exercise or None)."""
    names: dict[str, tuple[str, str | None]] = {}
    for cell in nb.cells:
        tree = _parse(cell.source) if cell.cell_type == "code" else None
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.ImportFrom) and node.module == PACKAGE:
                for alias in node.names:
                    if alias.name.startswith("lesson"):
                        names[alias.asname or alias.name] = (f"{PACKAGE}.{alias.name}", None)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(f"{PACKAGE}.lesson"):
                for alias in node.names:
                    names[alias.asname or alias.name] = (node.module, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith(f"{PACKAGE}.lesson") and alias.asname:
                        names[alias.asname] = (alias.name, None)
    return names


def checked_exercise(stmt: ast.stmt, names: dict[str, tuple[str, str | None]]) -> tuple[str, str] | None:
    """(module, exercise) if the statement is a call `ex.qN.check(...)` (or `qN.check(...)`), else None."""
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return None
    func = stmt.value.func
    if not (isinstance(func, ast.Attribute) and func.attr == "check"):
        return None
    target = func.value
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
        module, exercise = names.get(target.value.id, (None, "-"))
        return (module, target.attr) if module and exercise is None else None
    if isinstance(target, ast.Name) and target.id in names and names[target.id][1]:
        return names[target.id]
    return None


def count_checks(source: str, names: dict[str, tuple[str, str | None]]) -> int:
    """How many exercise checks a cell makes."""
    tree = _parse(source)
    return sum(checked_exercise(stmt, names) is not None for stmt in tree.body) if tree else 0


def _has_blank(stmt: ast.stmt) -> bool:
    return any(isinstance(node, ast.Name) and node.id == BLANK for node in ast.walk(stmt))


def _defines(stmt: ast.stmt, name: str) -> bool:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return stmt.name == name
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
    return any(isinstance(t, ast.Name) and t.id == name for t in targets)


def _first_line(stmt: ast.stmt) -> int:
    """0-based first line of a statement, decorators included."""
    return min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])]) - 1


def fill_solutions(source: str, names: dict[str, tuple[str, str | None]], where: str = "cell") -> tuple[str, list[str]]:
    """The cell with each learner's attempt replaced by the checked exercise's solution_code; and what was filled."""
    tree = _parse(source)
    if tree is None:
        return source, []
    lines = source.split("\n")
    out: list[str] = []
    filled: list[str] = []
    done = 0          # lines before this index are already in `out`
    attempt: list[ast.stmt] = []
    for stmt in tree.body:
        target = checked_exercise(stmt, names)
        if target is None:
            attempt.append(stmt)
            continue
        module, qname = target
        exercise = getattr(importlib.import_module(module), qname, None)
        if exercise is None:
            raise ClassroomError(f"{where}: {module} has no exercise {qname!r}")
        blanks = [s for s in attempt if _has_blank(s)]
        defining = [s for s in attempt if _defines(s, exercise.answer_name)]
        start = blanks[0] if blanks else (defining[-1] if defining else None)
        if start is None:
            raise ClassroomError(f"{where}: found no attempt for {qname} (no `{BLANK}` and no assignment to "
                                 f"`{exercise.answer_name}`) before its check")
        out += lines[done:_first_line(start)] + exercise.solution_code.strip("\n").split("\n")
        done = stmt.lineno - 1
        attempt = []
        filled.append(f"{module.rsplit('.', 1)[-1]}.{qname}")
    out += lines[done:]
    return "\n".join(out), filled


def strip_solution_lines(source: str) -> tuple[str, int]:
    """The cell without its `ex.qN.solution()` lines (commented out or not); and how many went."""
    lines = source.split("\n")
    kept = [line for line in lines if not SOLUTION_LINE.match(line)]
    return "\n".join(kept), len(lines) - len(kept)


def _clear(cell) -> None:
    cell.outputs = []
    cell.execution_count = None


def copy_kind(nb) -> str | None:
    """'student' or 'solutions' if the notebook is already a teacher copy (by its metadata or its solutions note)."""
    kind = nb.metadata.get("pretrain_lessons", {}).get("copy")
    if kind is None and nb.cells and nb.cells[0].cell_type == "markdown" and SOLUTIONS_NOTE in nb.cells[0].source:
        kind = "solutions"
    return kind


def make_copy(nb, kind: str, name: str = "notebook", clear_outputs: bool = False) -> Report:
    """Turn a notebook (nbformat node, changed in place) into its student or solutions copy."""
    if kind not in DROP_TAGS:
        raise ValueError(f"kind must be 'student' or 'solutions', not {kind!r}")
    if kind == "student" and copy_kind(nb) == "solutions":
        raise ClassroomError(f"{name} is a solutions copy: a student copy made from it would hand out the answers. "
                             "Make student copies from the lessons themselves (notebooks/).")
    names = exercise_names(nb)
    report = Report(name)
    cells = []
    for i, cell in enumerate(nb.cells):
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & DROP_TAGS[kind]:
            report.removed_cells += 1
            continue
        if cell.cell_type == "code":
            checks = count_checks(cell.source, names)
            if kind == "student":
                cell.source, n = strip_solution_lines(cell.source)
                report.removed_lines += n
                if n and not cell.source.strip():
                    report.removed_cells += 1
                    continue
                if checks or EXERCISE_TAG in tags:
                    report.exercise_cells += 1
                    _clear(cell)
            elif checks:
                cell.source, filled = fill_solutions(cell.source, names, where=f"{name}, cell {i}")
                report.filled += filled
                _clear(cell)
        if clear_outputs and cell.cell_type == "code":
            _clear(cell)
        cells.append(cell)
    nb.cells = cells
    if kind == "solutions" and nb.cells and nb.cells[0].cell_type == "markdown":
        nb.cells[0].source = nb.cells[0].source.rstrip("\n") + "\n\n" + SOLUTIONS_NOTE
    lesson = Path(name).stem if re.match(r"\d\d_", Path(name).stem) else None
    nb.metadata["pretrain_lessons"] = {"copy": kind, **({"lesson": lesson} if lesson else {})}
    return report


def write_copies(kind: str, src: Path, out: Path, clear_outputs: bool = False) -> list[Report]:
    """Write the student or solutions copy of every notebook in `src` (a folder or one file) into `out`."""
    import nbformat

    if not src.exists():
        raise ClassroomError(f"{src} does not exist: give the folder of lessons (e.g. notebooks/) or one notebook")
    paths = sorted(src.glob("*.ipynb")) if src.is_dir() else [src]
    if not paths:
        raise ClassroomError(f"no notebooks in {src}")
    source_dir = (src if src.is_dir() else src.parent).resolve()
    target = out.resolve()  # follows links, so a link into the lessons is seen for what it is
    if target == source_dir:
        raise ClassroomError("the output folder must not be the source folder: the copies would overwrite the lessons")
    lessons = (project_root() / "notebooks").resolve()
    if target == lessons or target.is_relative_to(lessons):
        raise ClassroomError(f"the output folder {out} resolves into the course's notebooks/ ({target}): the copies "
                             "would overwrite or sit among the lessons. Choose a folder outside it.")
    copies = []
    for path in paths:  # every notebook read, checked and copied in memory before anything is written
        try:
            nb = nbformat.read(path, as_version=4)
            nbformat.validate(nb)
        except Exception as exc:  # noqa: BLE001 - unreadable JSON, not a notebook, an invalid one
            raise ClassroomError(f"{path.name} is not a readable notebook ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); no copy was written") from None
        report = make_copy(nb, kind, path.name, clear_outputs)
        copies.append((path.name, nb, report))
    out.mkdir(parents=True, exist_ok=True)
    for name, nb, _ in copies:
        nbformat.write(nb, out / name)
    return [report for _, _, report in copies]


def verdicts(nb) -> list[tuple[int, str, str]]:
    """(cell index, status, text) for every checker verdict shown in a notebook's outputs."""
    found = []
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            text = output.get("data", {}).get("text/plain", "") or output.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            for line in text.splitlines():
                if VERDICT_LINE.match(line):
                    found.append((i, VERDICT_MARKS[line[:1]], line))
    return found


def execute(path: Path, timeout: int = 600) -> float:
    """Run a notebook top to bottom in place, in its own folder; return the seconds it took."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        nbformat.write(nb, path)
    return time.perf_counter() - start


@dataclass
class Run:
    """The outcome of executing one notebook in a subprocess."""

    path: Path
    ok: bool
    seconds: float
    output: str


def private_data_dir(folder: Path) -> Path:
    """A data folder that links to the provisioned assets but keeps its own checkpoints and anything else written."""
    from .data.provision import load_manifest
    from .paths import data_dir

    shared = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    # Whole top-level folders (MNIST/, nltk_data/, models/…): NLTK refuses files reached through a link further down.
    tops = {Path(t).parts[0] for asset in load_manifest().values() for t in asset.targets} | {".provenance"}
    for top in sorted(tops):
        if (shared / top).exists() and not (folder / top).exists():
            (folder / top).symlink_to(shared / top, target_is_directory=(shared / top).is_dir())
    return folder


def execute_many(paths: list[Path], workers: int = 1, timeout: int = 600, env: dict[str, str] | None = None,
                 private_data: Path | None = None) -> list[Run]:
    """Execute notebooks in place, each in its own process, `workers` at a time; one Run per notebook, in order.

    Copies of the same notebook (same file name) run one after the other, so that they never write the same
    checkpoint at once. With `private_data`, each notebook gets a data folder of its own there (the assets
    linked, its own checkpoints), so that notebooks running side by side never share what they write. Notebooks
    start in the order given: put the longest first.
    """
    base = {**os.environ, **(env or {})}
    if workers > 1:
        # Kernels running side by side share the cores instead of each starting a thread per core.
        base.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    groups: dict[str, list[Path]] = {}
    for path in paths:
        groups.setdefault(path.name, []).append(path)

    def one(path: Path, env: dict[str, str]) -> Run:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pretrain_lessons.classroom", "execute", "--timeout",
                               str(timeout), str(path)], capture_output=True, text=True, env=env)
        return Run(path, done.returncode == 0, time.perf_counter() - start, (done.stdout + done.stderr)[-6000:])

    def group(name: str) -> list[Run]:
        env = dict(base)
        if private_data is not None:
            env["PRETRAIN_LESSONS_DATA"] = str(private_data_dir(private_data / Path(name).stem))
        return [one(path, env) for path in groups[name]]

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        runs = {run.path: run for result in pool.map(group, list(groups)) for run in result}
    return [runs[path] for path in paths]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pretrain_lessons.classroom", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for kind, text in (("student", "student copies: blanks left, solutions removed"),
                       ("solutions", "solutions copies: every blank filled in")):
        p = sub.add_parser(kind, help=text)
        p.add_argument("src", type=Path, help="folder of notebooks (or one notebook)")
        p.add_argument("out", type=Path, help="folder for the copies (created)")
        p.add_argument("--clear-outputs", action="store_true", help="clear every output (default: only the exercises')")
        p.add_argument("--execute", action="store_true", help="run the copies afterwards (at the scale in force)")
    from . import grader

    grader.add_arguments(sub.add_parser("grade", help="grade a folder of submitted notebooks (see grader.py)",
                                        description=grader.__doc__,
                                        formatter_class=argparse.RawDescriptionHelpFormatter))
    p = sub.add_parser("execute", help="run notebooks top to bottom in place")
    p.add_argument("paths", type=Path, nargs="+")
    p.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    for name, p in sub.choices.items():
        if name == "grade":
            continue
        p.add_argument("--workers", type=int, default=1,
                       help="notebooks run at once (default 1: lessons that share a checkpoint must not train it "
                            "at the same time; more is safe once the shared checkpoints exist)")
    args = parser.parse_args(argv)

    if args.command == "grade":
        return grader.run_command(args)
    if args.command == "execute" and len(args.paths) == 1:
        seconds = execute(args.paths[0], timeout=args.timeout)
        print(f"{args.paths[0].name}: ran in {seconds:.1f} s")
        return 0
    if args.command == "execute":
        paths = args.paths
    else:
        try:
            reports = write_copies(args.command, args.src, args.out, args.clear_outputs)
        except ClassroomError as exc:
            print(f"ERROR: {exc}", file=sys.stderr)
            return 1
        for report in reports:
            print(report.line(args.command))
        print(f"Wrote {len(reports)} {args.command} cop{'y' if len(reports) == 1 else 'ies'} to {args.out}")
        if not args.execute:
            return 0
        paths = [args.out / r.name for r in reports]
    failed = 0
    for run in execute_many(paths, workers=args.workers):
        print(f"{run.path.parent.name}/{run.path.name}: {'ran' if run.ok else 'FAILED'} in {run.seconds:.1f} s")
        if not run.ok:
            failed += 1
            print(run.output, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
