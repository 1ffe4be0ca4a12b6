"""The same fit() under torchrun: two CPU processes (gloo) take the same steps as one process with the whole batch."""
import json
import os
import subprocess
import sys

import pytest
import torch

ARGS = ["--steps", "6", "--global-batch", "16", "--dropout", "0", "--train-examples", "400",
        "--optimizer", "sgd", "--lr", "0.5"]


def _run(cmd, tmp_path):
    env = {**os.environ, "PRETRAIN_LESSONS_PROGRESS": "off", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_two_process_ddp_matches_one_process(tmp_path):
    _run([sys.executable, "-m", "pretrain_lessons.ddp_finetune", "--out", str(tmp_path / "one"), *ARGS], tmp_path)
    _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
          "-m", "pretrain_lessons.ddp_finetune", "--out", str(tmp_path / "two"), *ARGS], tmp_path)
    one = torch.load(tmp_path / "one" / "rank0.pt")
    rank0 = torch.load(tmp_path / "two" / "rank0.pt")
    rank1 = torch.load(tmp_path / "two" / "rank1.pt")
    for name in one:
        assert torch.equal(rank0[name], rank1[name]), f"ranks disagree on {name}"
        assert torch.allclose(rank0[name], one[name], atol=1e-5), f"{name} differs from the 1-process run"
    assert not torch.equal(one["classifier.weight"], torch.zeros_like(one["classifier.weight"]))
    result = json.loads((tmp_path / "two" / "result.json").read_text())
    assert result["world_size"] == 2 and result["steps"] == 6


def test_global_batch_must_split_evenly(tmp_path):
    from pretrain_lessons.data.loaders import TensorLoader

    loader = TensorLoader(torch.arange(10), torch.arange(10), batch_size=5)
    with pytest.raises(ValueError, match="split evenly"):
        loader.shard(0, 2)
    part = TensorLoader(torch.arange(12), torch.arange(12), batch_size=6).shard(1, 2)
    assert [b[0].tolist() for b in part] == [[1, 3, 5], [7, 9, 11]]
