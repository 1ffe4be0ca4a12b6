"""Checked exercises: `from pretrain_lessons.exercises import ____, lesson01` then `lesson01.q1.check(answer)`."""
from .core import Exercise, Incorrect, Placeholder, Result, ____, call, close, contains_placeholder, plain

__all__ = ["Exercise", "Incorrect", "Placeholder", "Result", "____", "call", "close", "contains_placeholder", "plain"]
