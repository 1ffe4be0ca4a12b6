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
    result = exercise.evaluate(run(exercise, exercise.solution_code))
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
