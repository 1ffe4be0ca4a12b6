"""Lesson 02 widget: builds with one run drawn, trains on click, and survives a diverging learning rate."""
import matplotlib
import pytest

matplotlib.use("Agg")

from pretrain_lessons.mnist_linear import flat_mnist  # noqa: E402
from pretrain_lessons.widgets.lesson02 import MAX_RUNS, learning_rate_explorer  # noqa: E402


@pytest.fixture(scope="module")
def data():
    d = flat_mnist()
    return {k: v[:3000] if k in ("x_train", "y_train") else v for k, v in d.items()}


def test_explorer_shows_an_initial_run_and_adds_runs_on_click(data):
    box = learning_rate_explorer(data, lr=0.05, batch_size=64, steps=50, initial_steps=30)
    assert len(box.runs) == 1 and "validation accuracy" in box.label.value
    first = box.label.value
    box.lr.value = 0.001
    box.train_button.click()
    assert len(box.runs) == 2 and box.label.value != first and "lr 0.001" in box.label.value
    for _ in range(MAX_RUNS):
        box.train_button.click()
    assert len(box.runs) == MAX_RUNS
