"""Cost measurements: parameter counts, FLOPs (attention included) and peak memory agree with hand calculations."""
import pytest
import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification

from pretrain_lessons.efficiency import (bert_flops, count_parameters, cost_row, flops, interleaved_ms, latency_ms,
                                         peak_memory_mb, size_on_disk_mb, training_memory_mb, training_step_flops)


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


def small_bert(attn, layers=2, d=32, f=64, positions=64):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=d, num_hidden_layers=layers, num_attention_heads=4,
                        intermediate_size=f, max_position_embeddings=positions, num_labels=2, attn_implementation=attn)
    return BertForSequenceClassification(config).eval()


@pytest.mark.parametrize("length", [8, 48])
def test_eager_bert_flops_match_the_formula_and_sdpa_hides_attention(length):
    ids = torch.randint(1, 100, (3, length))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    eager = small_bert("eager")
    by_hand = bert_flops(eager.config, length, batch=3)
    assert flops(eager, inputs) == by_hand["total"]
    assert by_hand["attention"] == 2 * 3 * 4 * length * length * 32
    # The fused kernel is not counted on a CPU (torch 2.14): the counter sees everything but attention.
    assert flops(small_bert("sdpa"), inputs) == by_hand["total"] - by_hand["attention"]


class WithLoss(nn.Module):
    """A module whose output is a dict with a loss (mean of squares), as training_step_flops/_memory_mb expect."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return {"loss": self.net(x).pow(2).mean()}


def test_training_step_flops_are_about_three_forward_passes():
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64))
    x = torch.randn(16, 64, requires_grad=True)   # input gradient too: backward = 2 × forward exactly
    forward = flops(model, x)
    assert training_step_flops(WithLoss(model), {"x": x}) == 3 * forward


def test_training_memory_counts_gradients_and_adam_state():
    model, x = WithLoss(nn.Linear(1000, 1000, bias=False)), torch.randn(4, 1000)
    weights_mib = 1000 * 1000 * 4 / 2**20
    assert training_memory_mb(model, {"x": x}, torch.optim.SGD(model.parameters(), lr=0.1)) == pytest.approx(weights_mib, rel=0.02)
    adam = training_memory_mb(model, {"x": x}, torch.optim.AdamW(model.parameters(), lr=0.1))
    assert adam == pytest.approx(3 * weights_mib, rel=0.02)         # gradient + two moment estimates
    assert model.net.weight.grad is None                            # left clean


def test_latency_quartiles_and_cost_row():
    model = nn.Linear(8, 2)
    timing = latency_ms(model, torch.randn(1, 8), repeats=7)
    assert 0 < timing["min"] <= timing["q1"] <= timing["median"] <= timing["q3"] <= timing["max"]
    assert len(timing["times"]) == 7
    row = cost_row("tiny", model, torch.randn(1, 8), torch.randn(32, 8), repeats=4)
    assert row["parameters (M)"] == pytest.approx(18 / 1e6)
    assert row["GFLOPs / example"] == pytest.approx(2 * 16 / 1e9)
    assert row["batch 32 q1"] <= row["latency batch 32 (ms)"] <= row["batch 32 q3"]


def test_interleaved_timing_alternates_and_rotates():
    log = []
    calls = {name: (lambda name=name: log.append(name)) for name in ("a", "b", "c")}
    times = interleaved_ms(calls, rounds=4, warmup=1)
    assert {k: len(v) for k, v in times.items()} == {"a": 4, "b": 4, "c": 4}
    rounds = [log[i:i + 3] for i in range(0, len(log), 3)]
    assert all(sorted(r) == ["a", "b", "c"] for r in rounds)       # each round runs each once
    assert [r[0] for r in rounds[:3]] == ["a", "b", "c"]            # who goes first rotates


def test_peak_memory_keeps_stderr_working(capfd):
    import sys

    assert peak_memory_mb(lambda: torch.ones(256, 256) @ torch.ones(256, 256)) > 0
    print("after", file=sys.stderr)
    assert "after" in capfd.readouterr().err
