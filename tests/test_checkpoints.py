"""fit()'s checkpoints: refused when written for other settings, clear errors for bad files, safe to load."""
import os
import numpy as np
import pytest
import torch
from torch import nn

from pretrain_lessons.checkpoints import CheckpointError
from pretrain_lessons.data.loaders import TensorLoader
from pretrain_lessons.device import seed_everything
from pretrain_lessons.train import CheckpointMismatchError, fit

X, Y = torch.randn(120, 6, generator=torch.Generator().manual_seed(0)), torch.arange(120) % 3


def _run(ckpt, *, lr=1e-3, optimizer=None, weight_decay=0.0, scheduler="linear", batch_size=20, x=X, y=Y,
         epochs=1, steps_taken=None, **kwargs):
    seed_everything(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    if optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    callbacks = (lambda s: steps_taken.append(s["step"]),) if steps_taken is not None else ()
    fit(model, TensorLoader(x, y, batch_size=batch_size, shuffle=True), epochs=epochs, lr=lr, optimizer=optimizer,
        weight_decay=weight_decay, scheduler=scheduler, checkpoint=ckpt, progress=False, callbacks=callbacks, **kwargs)
    return model


def test_checkpoint_loads_with_weights_only(tmp_path):
    _run(tmp_path / "a.pt")
    state = torch.load(tmp_path / "a.pt", weights_only=True)   # no pickled Python objects inside
    assert state["position"]["step"] == 6


@pytest.mark.parametrize("change", [
    {"lr": 0.5},                                  # the review's case: silently resumed at lr 1e-3 before
    {"optimizer": "sgd"},
    {"weight_decay": 0.1},
    {"scheduler": "cosine"},
    {"warmup_steps": 2},
    {"batch_size": 30},
    {"x": X[:100], "y": Y[:100]},                 # a shorter data set
    {"x": X + 1.0},                               # the same length, other values
    {"max_grad_norm": 1.0},
    {"grad_accum_steps": 2},
    {"epochs": 2},
], ids=lambda c: ",".join(c))
def test_a_finished_checkpoint_of_other_settings_is_refused(tmp_path, change):
    ckpt = tmp_path / "run.pt"
    _run(ckpt)
    taken = []
    with pytest.raises(CheckpointMismatchError, match="different settings") as info:
        _run(ckpt, steps_taken=taken, **change)
    assert taken == []
    assert "delete" in str(info.value).lower() and str(ckpt) in str(info.value)


def test_the_same_settings_resume(tmp_path):
    ckpt = tmp_path / "run.pt"
    _run(ckpt)
    taken = []
    _run(ckpt, steps_taken=taken)                 # finished: returns the saved run without a step
    assert taken == []


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", "truncated", b"notes about my run\n", "state_dict"])
def test_unreadable_or_foreign_files_give_one_clear_error_before_training(tmp_path, content):
    ckpt = tmp_path / "run.pt"
    if content == "truncated":
        _run(ckpt)
        data = ckpt.read_bytes()
        ckpt.write_bytes(data[: len(data) // 2])
    elif content == "state_dict":
        torch.save(nn.Linear(6, 3).state_dict(), ckpt)     # somebody else's torch file
    else:
        ckpt.write_bytes(content)
    taken = []
    with pytest.raises(CheckpointError) as info:
        _run(ckpt, steps_taken=taken)
    message = str(info.value)
    assert taken == [] and str(ckpt) in message
    assert "delete it" in message.lower() or "another checkpoint=" in message
    assert len(message.splitlines()) <= 3


def test_a_planted_pickle_does_not_run(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    ckpt = tmp_path / "run.pt"
    with open(ckpt, "wb") as fh:
        torch.save({"format": "pretrain-lessons/fit-checkpoint", "fingerprint": Payload()}, fh)
    with pytest.raises(CheckpointMismatchError, match="could run code"):
        _run(ckpt)
    assert not marker.exists()
    # A checkpoint of the course's older fit(): its numpy random state was a pickled numpy array.
    torch.save({"fingerprint": {"total_steps": 6}, "rng": {"numpy": np.random.get_state()}}, tmp_path / "old.pt")
    with pytest.raises(CheckpointMismatchError):
        _run(tmp_path / "old.pt")


def test_a_checkpoint_folder_that_cannot_be_written_is_refused_before_training(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the checkpoint folder should be")
    taken = []
    with pytest.raises(CheckpointError, match="cannot write") as info:
        _run(blocker / "run.pt", steps_taken=taken)
    assert taken == [] and "checkpoint=" in str(info.value)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write to read-only folders")
def test_a_read_only_checkpoint_folder_is_refused_before_training(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    taken = []
    try:
        with pytest.raises(CheckpointError, match="cannot write"):
            _run(folder / "run.pt", steps_taken=taken)
    finally:
        folder.chmod(0o755)
    assert taken == []
