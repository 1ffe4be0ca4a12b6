"""Lesson 01 widgets build, and moving a control changes the loss they show."""
import math

import matplotlib
import pytest

matplotlib.use("Agg")

from pretrain_lessons.widgets.lesson01 import logit_sliders, probability_slider, softmax_and_loss  # noqa: E402


def test_probability_slider_label_follows_the_slider():
    box = probability_slider(0.5)
    assert f"{math.log(2):.3f}" in box.label.value
    box.slider.value = 0.1
    assert f"{-math.log(0.1):.3f}" in box.label.value
    assert "0.10" in box.label.value


def test_logit_sliders_show_softmax_and_loss():
    box = logit_sliders((2.0, 1.0, 0.1), true_class=0)
    before = box.label.value
    assert "0.417" in before           # −log softmax([2, 1, 0.1])[0]
    box.sliders[0].value = -2.0
    assert box.label.value != before
    box.choice.value = 1
    probs, loss = softmax_and_loss([-2.0, 1.0, 0.1], 1)
    assert f"{loss:.3f}" in box.label.value


def test_softmax_and_loss_values():
    probs, loss = softmax_and_loss([0.0, 0.0, 0.0], 2)
    assert probs == pytest.approx([1 / 3] * 3)
    assert loss == pytest.approx(math.log(3))


def test_shifting_all_logits_changes_nothing_and_temperature_does():
    box = logit_sliders((2.0, 1.0, 0.1), true_class=0)
    loss = box.label.value.split("loss = <b>")[1]
    box.shift.value = 7.5
    assert box.label.value.split("loss = <b>")[1] == loss          # the same loss after adding 7.5 to every logit
    box.temperature.value = 0.5                                     # z / 0.5: sharper softmax, lower loss here
    _, sharper = softmax_and_loss([(z + 7.5) / 0.5 for z in (2.0, 1.0, 0.1)], 0)
    assert f"{sharper:.3f}" in box.label.value and box.label.value.split("loss = <b>")[1] != loss
