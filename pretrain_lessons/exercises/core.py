"""Checked exercises in the style of Kaggle Learn: `q.check(answer)`, `q.hint()`, `q.solution()`.

A notebook cell holds the learner's attempt with the `____` placeholder; the checker answers
"not attempted yet" while the placeholder is still there (never a crash), "correct", or
"not yet" with specific feedback. Each exercise also carries its reference solution as code, which
the tests run through the checker, and which teachers' solution copies fill in.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Callable


class Placeholder:
    """The `____` blank: any operation on it gives the blank back, so unfinished code runs and is reported as such."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "____"

    def _same(self, *args, **kwargs):
        return self

    __call__ = __getattr__ = __getitem__ = _same
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _same
    __pow__ = __rpow__ = __neg__ = __matmul__ = __rmatmul__ = __floordiv__ = __mod__ = _same

    def __bool__(self) -> bool:
        return False

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0

    def __float__(self) -> float:
        return float("nan")

    def __int__(self) -> int:
        return 0

    def __index__(self) -> int:
        return 0


____ = Placeholder()


def contains_placeholder(value: Any, depth: int = 0) -> bool:
    """Whether an answer is, or contains, the `____` blank (in lists, tuples, dicts or a function's return)."""
    if isinstance(value, Placeholder):
        return True
    if depth > 3:
        return False
    if isinstance(value, (list, tuple, set)):
        return any(contains_placeholder(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(contains_placeholder(v, depth + 1) for v in value.values())
    return False


class Incorrect(Exception):
    """Raised by a checker with the feedback the learner sees."""


@dataclass
class Result:
    """The outcome of a check: status is 'correct', 'incorrect' or 'not attempted'."""

    status: str
    message: str

    @property
    def correct(self) -> bool:
        return self.status == "correct"


@dataclass
class Exercise:
    """One checked exercise.

    `checker(answer)` returns None (or a message) when the answer is right and raises `Incorrect` with
    feedback otherwise. `solution_code` is the reference code, run in the notebook's namespace to produce
    `answer_name`; `setup` is code the tests run first to stand in for earlier notebook cells.
    """

    name: str
    question: str
    checker: Callable[[Any], str | None]
    hint_text: str
    solution_code: str
    answer_name: str
    setup: str = ""
    wrong_answers: list[str] = field(default_factory=list)  # expressions the tests expect to be rejected
    last: Result | None = None

    def evaluate(self, answer: Any = ____) -> Result:
        """Check an answer and return the Result (no display)."""
        if contains_placeholder(answer):
            return Result("not attempted", "Not attempted yet: replace ____ with your answer, run the cell, then check again.")
        try:
            note = self.checker(answer)
        except Incorrect as exc:
            return Result("incorrect", f"Not yet. {exc}")
        except NotAttempted:
            return Result("not attempted", "Not attempted yet: the function still returns ____. Fill it in and check again.")
        except Exception as exc:  # noqa: BLE001 - a learner's bug is feedback, not a crash
            return Result("incorrect", f"Your answer raised {type(exc).__name__}: {exc}")
        return Result("correct", f"Correct! {note or ''}".strip())

    def check(self, answer: Any = ____) -> None:
        """Check an answer and show the verdict."""
        self.last = self.evaluate(answer)
        _show(self.last.status, self.last.message)

    def hint(self) -> None:
        """Show a hint."""
        _show("hint", self.hint_text)

    def solution(self) -> None:
        """Show the reference solution."""
        _show("solution", self.solution_code.strip(), code=True)


class NotAttempted(Exception):
    """Raised by a checker when a learner's function still returns the blank."""


def call(fn: Callable, *args, **kwargs):
    """Call a learner's function; a `____` result means the learner has not filled it in yet."""
    result = fn(*args, **kwargs)
    if contains_placeholder(result):
        raise NotAttempted
    return result


_STYLES = {
    "correct": ("#1b7837", "✔"),
    "incorrect": ("#b2182b", "✘"),
    "not attempted": ("#666666", "…"),
    "hint": ("#2166ac", "💡 Hint:"),
    "solution": ("#5e3c99", "Solution:"),
}


def _show(status: str, message: str, code: bool = False) -> None:
    """Show a verdict as coloured HTML in a notebook and as plain text elsewhere."""
    colour, mark = _STYLES[status]
    text = f"{mark} {message}" if not code else f"{mark}\n{message}"
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            body = f"<pre>{html.escape(message)}</pre>" if code else html.escape(message)
            display({"text/html": f'<div style="color:{colour};font-weight:500">{mark} {body}</div>',
                     "text/plain": text}, raw=True)
            return
    except ImportError:
        pass
    print(text)


def number(answer: Any, message: str = "give a number.") -> float:
    """The answer as a float (a number or a 0-dimensional tensor), or Incorrect with `message`."""
    try:
        return float(answer)
    except (TypeError, ValueError):
        raise Incorrect(message) from None


def close(actual: float, expected: float, tol: float = 1e-4, what: str = "value") -> None:
    """Raise Incorrect unless two numbers agree within a tolerance."""
    actual = number(actual, f"expected a number for the {what}, got {type(actual).__name__}")
    if not abs(actual - expected) <= tol * max(1.0, abs(expected)):
        raise Incorrect(f"your {what} is {actual:.6g}; that is not it. Check each step of the calculation.")
