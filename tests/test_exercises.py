"""Every exercise: the reference solution passes its checker, the blank is 'not attempted', wrong answers fail."""
import importlib
import pkgutil

import pytest

from pretrain_lessons import exercises
from pretrain_lessons.exercises import Exercise, ____

MODULES = sorted(m.name for m in pkgutil.iter_modules(exercises.__path__) if m.name.startswith("lesson"))
ALL = [(mod, name, obj) for mod in MODULES
       for name, obj in vars(importlib.import_module(f"pretrain_lessons.exercises.{mod}")).items()
       if isinstance(obj, Exercise)]
IDS = [f"{mod}.{name}" for mod, name, _ in ALL]


def run(exercise: Exercise, code: str):
    namespace: dict = {"____": ____}
    exec(exercise.setup, namespace)
    exec(code, namespace)
    return namespace[exercise.answer_name]


@pytest.mark.parametrize("module", MODULES)
def test_each_lesson_has_at_least_three_exercises(module):
    assert sum(1 for mod, _, _ in ALL if mod == module) >= 3


@pytest.mark.parametrize("mod,name,exercise", ALL, ids=IDS)
def test_reference_solution_is_accepted(mod, name, exercise):
    result = exercise.evaluate(reference(exercise))
    assert result.status == "correct", result.message


@pytest.mark.parametrize("mod,name,exercise", ALL, ids=IDS)
def test_blank_is_not_attempted(mod, name, exercise):
    assert exercise.evaluate(____).status == "not attempted"
    assert exercise.evaluate().status == "not attempted"


@pytest.mark.parametrize("mod,name,exercise", ALL, ids=IDS)
def test_typical_wrong_answers_are_rejected_with_feedback(mod, name, exercise):
    assert exercise.wrong_answers, "each exercise lists typical wrong answers"
    for code in exercise.wrong_answers:
        result = exercise.evaluate(run(exercise, code))
        assert result.status == "incorrect", (code, result.message)
        assert len(result.message) > len("Not yet. "), code


def test_placeholder_survives_arithmetic_and_calls():
    value = (____ + 1) * 2
    assert value is ____
    assert ____(3)[0].shape is ____
    assert exercises.contains_placeholder([1, {"a": ____}])


# ---- answers are compared as plain values: no subclass can fool a checker, numpy scalars are welcome ----

def liar(value):
    """A wrong answer of the reference answer's type that claims to equal anything and lies when converted."""
    base = type(value)
    wrong = value + " (wrong)" if base is str else value + 1000
    yes = lambda self, other=None: True  # noqa: E731
    no = lambda self, other=None: False  # noqa: E731
    methods = {"__eq__": yes, "__ne__": no, "__lt__": yes, "__le__": yes, "__gt__": yes, "__ge__": yes,
               "__hash__": lambda self: 0, "__contains__": yes}
    if base is str:
        methods.update({name: (lambda self, *a, _v=value: _v) for name in ("strip", "lower", "casefold", "upper",
                                                                            "lstrip", "rstrip", "__str__")})
    else:
        methods.update({"__sub__": lambda self, other: base(0), "__rsub__": lambda self, other: base(0),
                        "__abs__": lambda self: base(0), "__float__": lambda self, _v=value: float(_v),
                        "__int__": lambda self, _v=value: int(_v), "__index__": lambda self, _v=int(value): _v,
                        "__round__": lambda self, *a, _v=value: _v, "__bool__": yes})
    return type(f"Liar{base.__name__}", (base,), methods)(wrong)


SOLVED: dict[int, object] = {}


def reference(exercise: Exercise):
    """The reference solution's answer, computed once per test session."""
    if id(exercise) not in SOLVED:
        SOLVED[id(exercise)] = run(exercise, exercise.solution_code)
    return SOLVED[id(exercise)]


# Candidates for plain answers: solutions that define no function or class (the others are skipped when run).
PLAIN = [(mod, name, ex) for mod, name, ex in ALL if "def " not in ex.solution_code and "class " not in ex.solution_code]


@pytest.mark.parametrize("mod,name,exercise", PLAIN, ids=[f"{m}.{n}" for m, n, _ in PLAIN])
def test_a_subclass_that_claims_to_equal_everything_is_judged_by_its_real_value(mod, name, exercise):
    answer = reference(exercise)
    if type(answer) not in (int, float, str):
        pytest.skip(f"the answer is a {type(answer).__name__}")
    assert exercise.evaluate(liar(answer)).status == "incorrect"


@pytest.mark.parametrize("mod,name,exercise", PLAIN, ids=[f"{m}.{n}" for m, n, _ in PLAIN])
def test_numpy_scalars_are_accepted_as_the_plain_values_they_hold(mod, name, exercise):
    import numpy as np

    answer = reference(exercise)
    if type(answer) not in (int, float, str):
        pytest.skip(f"the answer is a {type(answer).__name__}")
    as_numpy = {int: np.int64, float: np.float64, str: np.str_}[type(answer)](answer)
    assert exercise.evaluate(as_numpy).status == "correct", exercise.evaluate(as_numpy).message


def test_plain_converts_subclasses_and_numpy_scalars_and_keeps_everything_else():
    import collections

    import numpy as np
    import torch

    from pretrain_lessons.exercises import plain

    for value, expected in [(liar(8), 1008), (liar(0.5), 1000.5), (liar("a"), "a (wrong)"), (np.int64(8), 8),
                            (np.float32(0.5), 0.5), (np.bool_(True), True), (np.str_("x"), "x")]:
        got = plain(value)
        assert type(got) is type(expected) and got == expected, (value, got)
    evil_list = type("EvilList", (list,), {"__eq__": lambda self, other: True})([np.int64(1), liar(2)])
    assert type(plain(evil_list)) is list and plain(evil_list) == [1, 1002]
    assert plain({"a": (np.int64(3), [np.float64(1.5)])}) == {"a": (3, [1.5])}
    Point = collections.namedtuple("Point", "x y")
    assert type(plain(Point(1, 2))) is Point, "a namedtuple keeps its fields"
    tensor = torch.tensor(1.0)
    assert plain(tensor) is tensor and plain(print) is print and plain(True) is True
