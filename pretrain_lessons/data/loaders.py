"""Loaders for the provisioned data: tensors in memory, review splits, news articles, prose."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from .. import paths
from .provision import ensure

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


class TensorLoader:
    """Batches served from tensors already in memory: one index per batch instead of one Python call per example.

    Iterates like a DataLoader, yielding `(x, y)` (or a dict for dict-of-tensors data). Shuffling draws a
    permutation from torch's global generator at the start of each pass, so seeding makes runs repeatable.
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int = 64, shuffle: bool = False, drop_last: bool = False,
                 keys: tuple[str, ...] | None = None, rank: int = 0, world_size: int = 1):
        if not tensors:
            raise ValueError("TensorLoader needs at least one tensor")
        n = len(tensors[0])
        if any(len(t) != n for t in tensors):
            raise ValueError(f"all tensors must have the same first dimension; got {[len(t) for t in tensors]}")
        if keys is not None and len(keys) != len(tensors):
            raise ValueError("give one key per tensor")
        self.tensors, self.batch_size, self.shuffle, self.drop_last = tensors, batch_size, shuffle, drop_last
        self.keys, self.rank, self.world_size = keys, rank, world_size

    @property
    def labels(self) -> torch.Tensor | None:
        """The label tensor (the last one, or the one named 'labels'), used by fit() to check classes up front."""
        if self.keys:
            return self.tensors[self.keys.index("labels")] if "labels" in self.keys else None
        return self.tensors[-1] if len(self.tensors) > 1 else None

    def _indices(self) -> torch.Tensor:
        n = len(self.tensors[0])
        order = torch.randperm(n) if self.shuffle else torch.arange(n)
        # Every rank draws the same permutation (same seed) and keeps its own slice of it.
        return order[self.rank::self.world_size]

    def __len__(self) -> int:
        n = len(range(self.rank, len(self.tensors[0]), self.world_size))
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        order = self._indices()
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            if self.drop_last and len(idx) < self.batch_size:
                break
            parts = [t[idx] for t in self.tensors]
            yield dict(zip(self.keys, parts)) if self.keys else tuple(parts)

    def shard(self, rank: int, world_size: int) -> "TensorLoader":
        """This process's part of every batch when `world_size` processes share each batch (distributed training)."""
        if self.batch_size % world_size:
            raise ValueError(f"batch_size {self.batch_size} cannot be split evenly across {world_size} processes")
        return TensorLoader(*self.tensors, batch_size=self.batch_size // world_size, shuffle=self.shuffle,
                            drop_last=self.drop_last, keys=self.keys, rank=rank, world_size=world_size)


def _read_idx(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _idx_tensors(folder: Path) -> dict[str, torch.Tensor]:
    return {
        "train_images": torch.from_numpy(_read_idx(folder / "train-images-idx3-ubyte").copy()),
        "train_labels": torch.from_numpy(_read_idx(folder / "train-labels-idx1-ubyte").astype(np.int64)),
        "test_images": torch.from_numpy(_read_idx(folder / "t10k-images-idx3-ubyte").copy()),
        "test_labels": torch.from_numpy(_read_idx(folder / "t10k-labels-idx1-ubyte").astype(np.int64)),
    }


def mnist_tensors() -> dict[str, torch.Tensor]:
    """MNIST as uint8 image tensors (N, 28, 28) and int64 labels: train (60,000) and test (10,000)."""
    ensure("mnist")
    return _idx_tensors(paths.data_dir() / "MNIST" / "raw")


def fashion_mnist_tensors() -> dict[str, torch.Tensor]:
    """Fashion-MNIST as uint8 image tensors (N, 28, 28) and int64 labels: train (60,000) and test (10,000)."""
    ensure("fashion_mnist")
    return _idx_tensors(paths.data_dir() / "FashionMNIST" / "raw")


def split_train_val(n: int, val_size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of a fixed, seeded train/validation split of n examples."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[val_size:], order[:val_size]


def rotten_tomatoes(split: str = "train") -> tuple[list[str], list[int]]:
    """Review snippets and labels (1 = fresh/positive, 0 = rotten/negative) of one split: train, validation or test."""
    if split not in ("train", "validation", "test"):
        raise ValueError(f"split must be train, validation or test; got {split!r}")
    ensure("rotten_tomatoes")
    with open(paths.data_dir() / "rotten_tomatoes" / f"{split}.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["text"] for r in rows], [int(r["label"]) for r in rows]


BBC_CLASSES = ["business", "entertainment", "politics", "sport", "tech"]


def bbc_news() -> tuple[list[str], list[int]]:
    """All 2,225 BBC News articles and their topic indices (see BBC_CLASSES), in a fixed order."""
    ensure("bbc_news")
    root = paths.data_dir() / "bbc_news"
    texts, labels = [], []
    for label, name in enumerate(BBC_CLASSES):
        for path in sorted((root / name).glob("*.txt")):
            texts.append(path.read_text(encoding="utf-8"))
            labels.append(label)
    return texts, labels


def gutenberg_texts() -> dict[str, str]:
    """The 18 Project Gutenberg books of the NLTK selection, file id → raw text."""
    ensure("nltk_data")
    from nltk.corpus import gutenberg

    return {fid: gutenberg.raw(fid) for fid in gutenberg.fileids()}


def minilm_dir() -> Path:
    """The folder of the provisioned all-MiniLM-L6-v2 checkpoint (for from_pretrained)."""
    ensure("minilm")
    return paths.data_dir() / "models" / "all-MiniLM-L6-v2"


def efficientnet_lite0_weights() -> Path:
    """The provisioned EfficientNet-Lite0 ImageNet state dict."""
    ensure("efficientnet_lite0")
    return paths.data_dir() / "models" / "efficientnet-lite0" / "efficientnet-lite0.pth"
