"""Cost measurements: parameter counts, FLOPs and peak memory agree with hand calculations."""
import pytest
import torch
from torch import nn

from pretrain_lessons.efficiency import count_parameters, cost_row, flops, latency_ms, peak_memory_mb, size_on_disk_mb


def test_counts_flops_and_memory_by_hand():
    model = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 10))
    model[2].weight.requires_grad_(False)
    total, trainable = count_parameters(model)
    assert total == 784 * 1024 + 1024 + 1024 * 10 + 10
    assert trainable == total - 1024 * 10
    x = torch.randn(32, 784)
    assert flops(model, x) == 2 * 32 * (784 * 1024 + 1024 * 10)
    # The hidden activation (32×1024 floats) exists twice at once: before and after the ReLU.
    with torch.no_grad():
        peak = peak_memory_mb(lambda: model(x))
    assert peak == pytest.approx(2 * 32 * 1024 * 4 / 2**20, rel=0.05)
    assert size_on_disk_mb(model) == pytest.approx(total * 4 / 1e6, rel=0.01)


def test_latency_and_cost_row():
    model = nn.Linear(8, 2)
    timing = latency_ms(model, torch.randn(1, 8), repeats=5)
    assert 0 < timing["min"] <= timing["median"] <= timing["max"]
    row = cost_row("tiny", model, torch.randn(1, 8), torch.randn(32, 8), repeats=4)
    assert row["parameters (M)"] == pytest.approx(18 / 1e6)
    assert row["GFLOPs / example"] == pytest.approx(2 * 16 / 1e9)


def test_peak_memory_keeps_stderr_working(capfd):
    import sys

    from pretrain_lessons.efficiency import peak_memory_mb

    assert peak_memory_mb(lambda: torch.ones(256, 256) @ torch.ones(256, 256)) > 0
    print("after", file=sys.stderr)
    assert "after" in capfd.readouterr().err
