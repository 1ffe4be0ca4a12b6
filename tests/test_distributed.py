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


SCRIPT = '''
import sys, torch
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from pretrain_lessons import distributed
from pretrain_lessons.data.loaders import TensorLoader
from pretrain_lessons.train import NonFiniteLossError, fit

mode, out = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
x, y = torch.randn(64, 4), torch.arange(64) % 2
allreduces = []
wrap = distributed.wrap

def counting_wrap(model, device):
    ddp = wrap(model, device)
    def hook(state, bucket):
        allreduces.append(1)
        return default_hooks.allreduce_hook(None, bucket)
    ddp.register_comm_hook(None, hook)
    return ddp

distributed.wrap = counting_wrap
if mode == "nan":
    x[1, 0] = float("nan")      # example 1 goes to process 1: only its loss is NaN
try:
    fit(nn.Linear(4, 2), TensorLoader(x, y, batch_size=16), optimizer=None, lr=0.1, grad_accum_steps=2,
        epochs=1, progress=False)
    message = "finished"
except NonFiniteLossError as exc:
    message = str(exc)
with open(f"{out}.{distributed.rank()}", "w") as fh:
    fh.write(f"{len(allreduces)}\\n{message}")
torch.distributed.destroy_process_group()
'''


def _free_port() -> int:
    import socket

    with socket.socket() as sock:   # other test runs on this machine may hold a fixed port
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(tmp_path, mode):
    script = tmp_path / "ddp_script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PRETRAIN_LESSONS_PROGRESS": "off", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--master_port", str(_free_port()), str(script), mode, str(tmp_path / "out")],
                            capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return [(tmp_path / f"out.{rank}").read_text().split("\n", 1) for rank in (0, 1)]


def test_gradients_are_averaged_once_per_accumulated_step(tmp_path):
    # 4 batches of 16 (8 per process), 2 per step: 2 steps, so 2 all-reduces, not one per micro-batch.
    for count, message in _torchrun(tmp_path, "count"):
        assert message == "finished" and int(count) == 2


def test_nan_on_one_process_stops_every_process_with_the_explanation(tmp_path):
    for count, message in _torchrun(tmp_path, "nan"):
        assert "The loss became nan on process 1 of 2" in message, message
        assert "inputs of this batch contain NaN" in message or "learning rate" in message
