"""Checked exercises in the style of Kaggle Learn: `q.check(answer)`, `q.hint()`, `q.solution()`.

A notebook cell holds the learner's attempt with the `____` placeholder; the checker answers
"not attempted yet" while the placeholder is still there (never a crash), "correct", or
"not yet" with specific feedback. Each exercise also carries its reference solution as code, which
the tests run through the checker, and which teachers' solution copies fill in.
"""
from __future__ import annotations

import collections
import html
import sys
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


def is_placeholder(value: Any) -> bool:
    """Whether a value is the `____` blank, also one made by an earlier import of this module (the grader reloads it)."""
    kind = type(value)
    return isinstance(value, Placeholder) or (kind.__name__ == "Placeholder" and kind.__module__ == __name__)


def contains_placeholder(value: Any, depth: int = 0) -> bool:
    """Whether an answer is, or contains, the `____` blank (in lists, tuples, dicts or a function's return)."""
    if is_placeholder(value):
        return True
    if depth > 3:
        return False
    if isinstance(value, (list, tuple, set)):
        return any(contains_placeholder(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(contains_placeholder(v, depth + 1) for v in value.values())
    return False


def plain(value: Any, depth: int = 0) -> Any:
    """The answer as plain Python values before any checker compares it.

    int, float and str subclasses become exact int, float and str (so a subclass whose `==` is always true, or
    whose `__float__` lies, is compared by its real value); numpy scalars become Python scalars (`np.int64(8)` is
    the int 8); lists, tuples and dicts are rebuilt with their items converted, and a subclass of one of them that
    brings its own `==` becomes the plain container. Anything else (tensors, arrays, functions, models) is returned
    as it is.
    """
    if isinstance(value, bool):  # bool cannot be subclassed; True stays True (checkers reject it as a number)
        return bool(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.generic):
        return plain(numpy.asarray(value).item(), depth)
    if depth >= 4 or not isinstance(value, (list, tuple, dict)):
        return value
    if type(value) not in (list, tuple, dict) and type(value).__eq__ in _CONTAINER_EQ:
        return value  # a namedtuple, an OrderedDict or a model output: kept, its attributes are part of the answer
    if isinstance(value, list):
        return [plain(v, depth + 1) for v in list.__iter__(value)]
    if isinstance(value, tuple):
        return tuple(plain(v, depth + 1) for v in tuple.__iter__(value))
    return {plain(k, depth + 1): plain(v, depth + 1) for k, v in dict.items(value)}


_CONTAINER_EQ = (list.__eq__, tuple.__eq__, dict.__eq__, collections.OrderedDict.__eq__)


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
            note = self.checker(plain(answer))
        except Incorrect as exc:
            return Result("incorrect", f"Not yet. {exc}")
        except NotAttempted:
            return Result("not attempted", "Not attempted yet: the function still returns ____. Fill it in and check again.")
        except Exception as exc:  # noqa: BLE001 - a learner's bug is feedback, not a crash
            return Result("incorrect", f"Your answer raised {type(exc).__name__}: {exc}")
        return Result("correct", f"Correct! {note or ''}".strip())

    def check(self, answer: Any = ____) -> None:
        """Check an answer, show the verdict and note it in your progress record (`pretrain_lessons.progress()`)."""
        self.last = self.evaluate(answer)
        _show(self.last.status, self.last.message)
        _record(self, self.last.status)

    @property
    def lesson(self) -> str:
        """The lesson this exercise belongs to ('00' for exercises.lesson00), or '' if it is in no lesson module."""
        prefix = "pretrain_lessons.exercises.lesson"
        for name, module in list(sys.modules.items()):
            if name.startswith(prefix) and getattr(module, self.name, None) is self:
                return name[len(prefix):]
        return ""

    def hint(self) -> None:
        """Show a hint."""
        _show("hint", self.hint_text)

    def solution(self) -> None:
        """Show the reference solution."""
        _show("solution", self.solution_code.strip(), code=True)


class NotAttempted(Exception):
    """Raised by a checker when a learner's function still returns the blank."""


def call(fn: Callable, *args, **kwargs):
    """Call a learner's function; a `____` result means the learner has not filled it in yet. Returns plain values."""
    result = fn(*args, **kwargs)
    if contains_placeholder(result):
        raise NotAttempted
    return plain(result)


def _record(exercise: Exercise, status: str) -> None:
    """Note a verdict in the learner's progress file; a progress file that cannot be written never breaks a check."""
    try:
        from ..learner_progress import record

        record(exercise.lesson, exercise.name, status)
    except Exception:  # noqa: BLE001 - the record is a convenience, the verdict is what matters
        pass


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
