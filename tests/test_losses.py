"""The hand-written cross-entropy agrees with PyTorch's, stays finite for huge logits, and has the right gradient."""
import math

import pytest
import torch
import torch.nn.functional as F

from pretrain_lessons import losses


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(16, 7, generator=g, dtype=torch.float64) * 3, torch.randint(0, 7, (16,), generator=g)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_pytorch(batch, reduction):
    z, y = batch
    torch.testing.assert_close(losses.cross_entropy(z, y, reduction), F.cross_entropy(z, y, reduction=reduction))


def test_sum_is_n_times_mean(batch):
    z, y = batch
    assert losses.cross_entropy(z, y, "sum").item() == pytest.approx(16 * losses.cross_entropy(z, y).item())


def test_naive_softmax_overflows_where_stable_one_does_not():
    z = torch.tensor([[1000.0, 1001.0, 1002.0]])
    assert torch.isnan(losses.softmax_naive(z)).all()
    stable = losses.softmax(z)
    assert torch.isfinite(stable).all()
    torch.testing.assert_close(stable, torch.softmax(z, -1))
    torch.testing.assert_close(losses.log_softmax(z), torch.log_softmax(z, -1))
    torch.testing.assert_close(losses.logsumexp(z), torch.logsumexp(z, -1))


def test_softmax_is_shift_invariant_not_scale_invariant(batch):
    z, _ = batch
    torch.testing.assert_close(losses.softmax(z + 50), losses.softmax(z))
    assert not torch.allclose(losses.softmax(2 * z), losses.softmax(z))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gradient_is_softmax_minus_one_hot(batch, reduction):
    z, y = batch
    z = z.clone().requires_grad_(True)
    F.cross_entropy(z, y, reduction=reduction).backward()
    torch.testing.assert_close(losses.cross_entropy_grad(z.detach(), y, reduction), z.grad)
    torch.testing.assert_close(z.grad.sum(-1), torch.zeros(16, dtype=z.dtype))


def test_ignore_index_averages_over_labelled_positions_only():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, 5, 11, generator=g)
    y = torch.full((2, 5), -100)
    y[0, 1], y[1, 3], y[1, 4] = 4, 0, 10
    expected = -(torch.log_softmax(z[0, 1], -1)[4] + torch.log_softmax(z[1, 3], -1)[0]
                 + torch.log_softmax(z[1, 4], -1)[10]) / 3
    torch.testing.assert_close(losses.cross_entropy(z, y), expected)
    torch.testing.assert_close(F.cross_entropy(z.view(-1, 11), y.view(-1), ignore_index=-100), expected)


def test_uniform_prediction_costs_log_c():
    z = torch.zeros(4, 10)
    assert losses.cross_entropy(z, torch.arange(4)).item() == pytest.approx(math.log(10))


def test_bad_reduction_is_rejected(batch):
    with pytest.raises(ValueError, match="reduction"):
        losses.cross_entropy(*batch, reduction="avg")


def test_transfer_experiment_related_helps_unrelated_hurts():
    from pretrain_lessons import stats
    from pretrain_lessons.losses import transfer_experiment

    related = [transfer_experiment(d) for d in range(20)]             # the lesson's 20 draws
    unrelated = [transfer_experiment(d, related=False) for d in range(20)]
    acc = lambda runs, name: [r[name]["heldout_accuracy"] for r in runs]  # noqa: E731
    assert stats.compare(acc(related, "fine-tuned"), acc(related, "scratch")).verdict == "better"
    assert stats.compare(acc(unrelated, "fine-tuned"), acc(unrelated, "scratch")).verdict == "worse"
    assert transfer_experiment(3) == transfer_experiment(3)   # a draw fixes everything
