"""Lesson 02 widget: builds with one run drawn, trains on click at equal data budgets, survives a diverging rate."""
import matplotlib
import pytest

matplotlib.use("Agg")

from pretrain_lessons.mnist_linear import flat_mnist  # noqa: E402
from pretrain_lessons.widgets.lesson02 import MAX_RUNS, compare_learning_rates, learning_rate_explorer  # noqa: E402


@pytest.fixture(scope="module")
def data():
    d = flat_mnist()
    return {k: v[:3000] if k in ("x_train", "y_train") else v for k, v in d.items()}


def test_explorer_shows_an_initial_run_and_adds_runs_on_click(data):
    box = learning_rate_explorer(data, lr=0.03, batch_size=64, images=3200, initial_images=1920)
    assert len(box.runs) == 1 and "validation accuracy" in box.label.value and "30 steps" in box.label.value
    first = box.label.value
    box.lr.value = 0.001
    box.batch.value = 128
    box.images.value = 3200
    box.train_button.click()
    assert len(box.runs) == 2 and box.label.value != first and "lr 0.001, batch 128, 25 steps" in box.label.value
    for _ in range(MAX_RUNS):
        box.train_button.click()
    assert len(box.runs) == MAX_RUNS


def test_the_slider_reaches_the_rates_the_lesson_names():
    from pretrain_lessons.widgets.lesson02 import LEARNING_RATES

    assert {0.0001, 0.01, 0.5, 5.0} <= set(LEARNING_RATES)


def test_static_comparison_draws_one_curve_per_rate(data):
    fig, table = compare_learning_rates(data, lrs=(0.0001, 0.01, 0.5), images=1920)
    assert len(fig.axes[0].get_lines()) == 3 and fig.axes[0].get_xlabel() == "training images seen"
    assert list(table.index) == [0.0001, 0.01, 0.5]
    assert table.loc[0.01, "final loss (mean of last 20 steps)"] < table.loc[0.0001, "final loss (mean of last 20 steps)"]
