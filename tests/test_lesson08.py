"""Lesson 08's helpers: the parameter-budget widget counts what add_lora / freeze_all_but_top actually train; the
DDP launcher's commands and timing; the exercise data say what the lesson says about them."""
import copy
import json
import sys

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from pretrain_lessons import ddp_finetune
from pretrain_lessons.compress import add_lora, freeze_all_but_top
from pretrain_lessons.efficiency import count_parameters
from pretrain_lessons.widgets.lesson08 import (budget_table, lora_budget, lora_parameter_count, state_memory_mb,
                                               top_layers_parameter_count)


def tiny_bert(layers=3):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32, num_labels=2)
    return BertForSequenceClassification(config).eval()


@pytest.mark.parametrize("r,targets", [(1, ("query",)), (4, ("query", "value")), (8, ("query", "key", "value", "dense"))])
def test_lora_count_matches_add_lora(r, targets):
    model = tiny_bert()
    predicted = lora_parameter_count(model, r, targets)
    assert count_parameters(model)[1] == count_parameters(model)[0]      # counting changed nothing
    assert count_parameters(add_lora(copy.deepcopy(model), r=r, targets=targets))[1] == predicted


@pytest.mark.parametrize("n", [0, 1, 3])
def test_top_layer_count_matches_freezing(n):
    model = tiny_bert()
    assert count_parameters(freeze_all_but_top(copy.deepcopy(model), n))[1] == top_layers_parameter_count(model, n)


def test_widget_builds_and_updates():
    model = tiny_bert()
    box = lora_budget(model, r=4)
    html_before = box.children[-1].value
    box.children[0].value = 16
    assert box.children[-1].value != html_before and "16" in box.children[-1].value
    table = budget_table(model, 2, ("query",), 1)
    assert "full fine-tuning" in table and "AdamW" in table


def test_state_memory_is_weights_plus_three_copies_of_what_trains():
    assert state_memory_mb(1_000_000, 1_000_000) == pytest.approx(16.0)
    assert state_memory_mb(1_000_000, 0) == pytest.approx(4.0)


def test_commands_read_as_a_reader_would_type_them(tmp_path):
    one = ddp_finetune.command(1, tmp_path / "a", ["--steps", "3"], threads=1)
    two = ddp_finetune.command(2, tmp_path / "b", ["--steps", "3"], threads=1)
    assert one[:3] == [sys.executable, "-m", "pretrain_lessons.ddp_finetune"]
    assert "--nproc_per_node" in two and two[two.index("--nproc_per_node") + 1] == "2"
    assert ddp_finetune.shown(two, tmp_path) == ("torchrun --nproc_per_node 2 -m pretrain_lessons.ddp_finetune "
                                                 "--out runs/b --threads 1 --steps 3")
    assert ddp_finetune.shown(one, tmp_path).startswith("python -m pretrain_lessons.ddp_finetune --out runs/a")


def test_one_process_run_times_after_warmup(tmp_path):
    result = ddp_finetune.launch(1, 1, tmp_path / "one", ["--steps", "8", "--global-batch", "16", "--train-examples",
                                                          "200", "--timing-warmup", "3"])
    saved = json.loads((tmp_path / "one" / "result.json").read_text())
    assert saved["world_size"] == 1 and saved["threads_per_process"] == 1
    assert saved["timed_steps"] == 8 - 1 - 3                # intervals between the step stamps after the warm-up
    assert 0 < saved["timed_seconds"] <= saved["seconds"]
    assert result["examples_per_s"] == pytest.approx(saved["timed_steps"] * 16 / saved["timed_seconds"])
    assert result["command"].startswith("python -m pretrain_lessons.ddp_finetune")


def test_accelerate_launch_runs_the_same_script_on_two_cpu_processes(tmp_path):
    """What lesson 08 says about Accelerate: `accelerate launch --multi_gpu` starts the script on 2 processes (gloo on
    a CPU-only machine), fit() joins them from the environment, and the replicas stay bit-identical."""
    args = ["--steps", "4", "--global-batch", "16", "--train-examples", "200", "--dropout", "0", "--optimizer", "sgd",
            "--lr", "0.5"]
    result = ddp_finetune.launch(2, 1, tmp_path / "acc", args, launcher="accelerate")
    assert result["world_size"] == 2
    assert result["command"].startswith("accelerate launch --multi_gpu --num_processes 2")
    rank0 = torch.load(tmp_path / "acc" / "rank0.pt")
    rank1 = torch.load(tmp_path / "acc" / "rank1.pt")
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)


def test_accelerate_cpu_mode_starts_one_process(tmp_path):
    """Lesson 08 says `accelerate launch --cpu --num_processes 2` starts a single process (accelerate 1.15): if a
    newer Accelerate changes that, this test says the lesson's sentence must change."""
    import os
    import subprocess

    out = tmp_path / "cpu"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "pretrain_lessons.ddp_finetune", "--out", str(out),
           "--steps", "2", "--global-batch", "8", "--train-examples", "64"]
    env = {**os.environ, "PRETRAIN_LESSONS_PROGRESS": "off", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "result.json").read_text())["world_size"] == 1
