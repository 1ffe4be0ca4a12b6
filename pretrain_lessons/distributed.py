"""Data parallelism with torch.distributed: one process per device, launched by torchrun or accelerate launch.

`fit()` calls these so that the same loop runs on one device or many: each process holds a replica of
the model (DistributedDataParallel averages gradients across processes), and each reads its own shard
of every batch (a DistributedSampler, or a sharded TensorLoader).
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler


def world_size() -> int:
    """Number of processes launched (1 when run normally)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's index among them (0 when run normally)."""
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Whether this process should print, plot and write checkpoints."""
    return rank() == 0


def setup(device: torch.device) -> torch.device:
    """Join the process group (gloo on CPU, nccl on CUDA) and return this process's device."""
    if world_size() == 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Wrap the model in DistributedDataParallel when several processes run."""
    if world_size() == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model inside a DistributedDataParallel wrapper (or the model itself)."""
    return getattr(model, "module", model)


def shard(loader, seed: int = 0):
    """This process's share of a loader: the loader's batch size is the global batch, split across processes."""
    if world_size() == 1:
        return loader
    if hasattr(loader, "shard"):
        return loader.shard(rank(), world_size())
    if not isinstance(loader, DataLoader):
        raise TypeError("Under torchrun, fit() needs a DataLoader or a TensorLoader to shard the data across processes.")
    if loader.batch_size % world_size():
        raise ValueError(f"batch_size {loader.batch_size} cannot be split evenly across {world_size()} processes")
    sampler = DistributedSampler(loader.dataset, num_replicas=world_size(), rank=rank(),
                                 shuffle=isinstance(loader.sampler, RandomSampler), seed=seed, drop_last=loader.drop_last)
    return DataLoader(loader.dataset, batch_size=loader.batch_size // world_size(), sampler=sampler,
                      num_workers=loader.num_workers,
                      collate_fn=loader.collate_fn, pin_memory=loader.pin_memory, drop_last=loader.drop_last)


def set_epoch(loader, epoch: int) -> None:
    """Tell a DistributedSampler which epoch it is, so each epoch is shuffled differently."""
    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, DistributedSampler):
        sampler.set_epoch(epoch)


def processes() -> int:
    """How many processes train together right now: the world size once the process group has started, else 1."""
    return world_size() if world_size() > 1 and dist.is_initialized() else 1


def sum_across(t: torch.Tensor) -> torch.Tensor:
    """The sum of a tensor over every process (the tensor itself when run normally)."""
    if world_size() == 1 or not dist.is_initialized():
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t


def per_process(t: torch.Tensor) -> torch.Tensor:
    """Every process's value of a small tensor, stacked: shape (world_size, *t.shape), the same on every process."""
    if world_size() == 1 or not dist.is_initialized():
        return t.unsqueeze(0)
    out = torch.zeros((world_size(), *t.shape), dtype=t.dtype, device=t.device)
    out[rank()] = t
    dist.all_reduce(out)   # a sum in which each slot has one non-zero term: a NaN stays in its own slot
    return out


def barrier() -> None:
    """Wait for every process (no-op when run normally)."""
    if world_size() > 1 and dist.is_initialized():
        dist.barrier()
