"""Fine-tuning a BERT-style encoder for text classification (微调): tokenised loaders, one recipe, the cached MiniLM classifier.

`text_loader()` turns texts into batches of `input_ids`, `attention_mask` and `labels`, each batch cut to its
longest text (dynamic padding); `finetune_classifier()` trains any `…ForSequenceClassification` model with the
course's loop; `evaluate_classifier()` and `predict_proba()` measure it; `finetuned_minilm()` returns the
folder of MiniLM fine-tuned on the movie reviews (lesson 05's recipe), training it once if it is missing.
"""
from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from . import paths, scale
from .data.loaders import TensorLoader, minilm_dir, rotten_tomatoes
from .device import get_device, seed_everything
from .train import _rng_state, _set_rng_state, evaluate, fit, predict

KEYS = ("input_ids", "attention_mask", "labels")


# ---------------------------------------------------------------- tokenised batches


def token_lengths(tokenizer, texts: list[str]) -> np.ndarray:
    """Number of tokens of each text, [CLS] and [SEP] included."""
    return np.array([len(ids) for ids in tokenizer(list(texts), truncation=False)["input_ids"]])


def choose_max_length(tokenizer, texts: list[str], coverage: float = 0.99, multiple: int = 8) -> int:
    """The smallest multiple of `multiple` tokens that holds `coverage` of the texts whole."""
    needed = float(np.quantile(token_lengths(tokenizer, texts), coverage))
    return int(math.ceil(needed / multiple) * multiple)


class TextLoader(TensorLoader):
    """A TensorLoader of tokenised texts that cuts each batch to its longest text (dynamic padding).

    With `group_by_length`, a shuffled pass puts texts of similar length in the same batch (sorted within
    windows of 50 batches, then the batches shuffled), so little compute is spent on padding.
    """

    def __init__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None, *,
                 batch_size: int = 32, shuffle: bool = False, group_by_length: bool = False, drop_last: bool = False,
                 rank: int = 0, world_size: int = 1):
        tensors = (input_ids, attention_mask) + ((labels,) if labels is not None else ())
        super().__init__(*tensors, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                         keys=KEYS[:len(tensors)], rank=rank, world_size=world_size)
        self.group_by_length = group_by_length
        self.lengths = attention_mask.sum(1)

    def _indices(self) -> torch.Tensor:
        if not (self.shuffle and self.group_by_length):
            return super()._indices()
        order = torch.randperm(len(self.lengths))
        window = self.batch_size * self.world_size * 50
        chunks = [c[torch.argsort(self.lengths[c], descending=True, stable=True)] for c in order.split(window)]
        batches = torch.cat(chunks).split(self.batch_size * self.world_size)
        order = torch.cat([batches[i] for i in torch.randperm(len(batches))])
        return order[self.rank::self.world_size]

    def __iter__(self):
        for batch in super().__iter__():
            longest = int(batch["attention_mask"].sum(1).max())
            yield {k: (v[:, :longest] if k != "labels" else v) for k, v in batch.items()}

    def shard(self, rank: int, world_size: int) -> "TextLoader":
        """The loader for one of several processes (used by distributed training)."""
        labels = self.tensors[2] if len(self.tensors) > 2 else None
        return TextLoader(self.tensors[0], self.tensors[1], labels, batch_size=self.batch_size, shuffle=self.shuffle,
                          group_by_length=self.group_by_length, drop_last=self.drop_last, rank=rank,
                          world_size=world_size)


def text_loader(tokenizer, texts: list[str], labels: list[int] | None = None, *, max_length: int = 64,
                batch_size: int = 32, shuffle: bool = False, group_by_length: bool | None = None) -> TextLoader:
    """Tokenise texts (truncated to `max_length` tokens) into a TextLoader of input_ids / attention_mask / labels."""
    enc = tokenizer(list(texts), padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    y = torch.tensor(list(labels), dtype=torch.long) if labels is not None else None
    return TextLoader(enc["input_ids"], enc["attention_mask"], y, batch_size=batch_size, shuffle=shuffle,
                      group_by_length=shuffle if group_by_length is None else group_by_length)


def sample_per_class(labels: list[int], n: int, seed: int = 0) -> list[int]:
    """Indices of `n` examples drawn at random with the classes in their overall proportions (stratified)."""
    labels_np = np.asarray(labels)
    if n >= len(labels_np):
        return list(range(len(labels_np)))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels_np, return_counts=True)
    quota = np.floor(counts / counts.sum() * n).astype(int)
    for i in np.argsort(-(counts / counts.sum() * n - quota))[: n - quota.sum()]:
        quota[i] += 1   # largest remainders get the examples left over
    picked = [rng.choice(np.flatnonzero(labels_np == c), size=q, replace=False) for c, q in zip(classes, quota)]
    return sorted(int(i) for i in np.concatenate(picked))


# ---------------------------------------------------------------- training and measuring


def adamw(model: torch.nn.Module, lr: float, weight_decay: float = 0.01) -> torch.optim.AdamW:
    """AdamW, fused into one kernel where torch supports it (on a CPU ~7× faster per step than the default)."""
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def finetune_classifier(model: torch.nn.Module, tokenizer, train_texts: list[str], train_labels: list[int], *,
                        val: tuple[list[str], list[int]] | None = None, lr: float = 2e-5, epochs: int = 3,
                        min_steps: int = 0, batch_size: int = 32, max_length: int = 64, warmup_ratio: float = 0.1,
                        weight_decay: float = 0.01, max_grad_norm: float | None = 1.0, eval_every: int | None = None,
                        checkpoint: str | Path | None = None, seed: int = 0, progress: bool = True,
                        live_plot: bool = False):
    """Fine-tune a sequence classifier with AdamW, linear warm-up and decay, and gradient clipping; return the History.

    Trains `epochs` passes over the data, or at least `min_steps` optimizer steps when the data set is small
    (100 examples are only 4 batches: a few epochs would barely move the weights).
    """
    seed_everything(seed)
    train = text_loader(tokenizer, train_texts, train_labels, max_length=max_length, batch_size=batch_size,
                        shuffle=True)
    val_loader = (text_loader(tokenizer, val[0], val[1], max_length=max_length, batch_size=128)
                  if val is not None else None)
    steps = max(epochs * len(train), min_steps)
    num_classes = int(model.config.num_labels) if hasattr(model, "config") else None
    model.to(get_device())
    return fit(model, train, val_loader=val_loader, max_steps=steps, optimizer=adamw(model, lr, weight_decay),
               scheduler="linear", warmup_steps=int(warmup_ratio * steps), max_grad_norm=max_grad_norm,
               eval_every=eval_every, num_classes=num_classes, checkpoint=checkpoint, progress=progress,
               live_plot=live_plot, seed=seed)


def evaluate_classifier(model: torch.nn.Module, tokenizer, texts: list[str], labels: list[int], *,
                        max_length: int = 64, batch_size: int = 128) -> dict:
    """Loss, accuracy, macro-F1 and the confusion matrix of a classifier on labelled texts."""
    loader = text_loader(tokenizer, texts, labels, max_length=max_length, batch_size=batch_size)
    return evaluate(model, loader, num_classes=int(model.config.num_labels), progress=False)


def predict_proba(model: torch.nn.Module, tokenizer, texts: list[str], *, max_length: int = 64,
                  batch_size: int = 128) -> np.ndarray:
    """Class probabilities (one row per text) of a sequence classifier."""
    loader = text_loader(tokenizer, texts, max_length=max_length, batch_size=batch_size)
    logits, _ = predict(model, loader)
    return torch.softmax(logits, -1).numpy()


# ---------------------------------------------------------------- the fine-tuned MiniLM, shared with lesson 08


def minilm_recipe() -> dict:
    """Lesson 05's MiniLM fine-tuning recipe at the scale in force (examples, epochs, learning rate, lengths)."""
    return {
        "train_examples": scale.pick(smoke=64, cpu=4000, gpu=None),   # None: the whole training split
        "epochs": scale.pick(smoke=1, cpu=1, gpu=3),
        "lr": scale.pick(smoke=1e-4, cpu=1e-4, gpu=3e-5),
        "eval_examples": scale.pick(smoke=128, cpu=None, gpu=None),   # None: the whole validation and test splits
        "batch_size": 32, "max_length": 64, "warmup_ratio": 0.1, "weight_decay": 0.01, "seed": 0,
    }


def minilm_classifier(num_labels: int = 2, **config):
    """MiniLM-L6 with a new, randomly initialised classification head (分类头) of `num_labels` outputs."""
    from transformers import BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()   # the "classifier.* newly initialized" report is expected here
    try:
        return BertForSequenceClassification.from_pretrained(minilm_dir(), num_labels=num_labels, **config)
    finally:
        hf_logging.set_verbosity(verbosity)


def _model_part(recipe: dict) -> dict:
    """The entries of a recipe that decide the weights (how many reviews it is scored on does not)."""
    return {k: v for k, v in recipe.items() if k != "eval_examples"}


@contextmanager
def _own_random_stream(seed: int):
    """Seed a block for repeatability without changing the random state of the code around it."""
    state = _rng_state()
    seed_everything(seed)
    try:
        yield
    finally:
        _set_rng_state(state)


def finetuned_minilm(progress: bool = True) -> Path:
    """Folder of MiniLM fine-tuned on the movie reviews (save_pretrained, with tokenizer and metrics.json).

    Trained once with `minilm_recipe()` if missing (resumable: an interrupted run continues from its
    checkpoint); `metrics.json` records the recipe, validation/test accuracy and the training time.
    """
    from transformers import AutoTokenizer

    folder = paths.checkpoint_dir("minilm-rotten-tomatoes")
    recipe = minilm_recipe()
    info = folder / "metrics.json"
    if info.exists() and (folder / "config.json").exists():
        saved = json.loads(info.read_text())
        if _model_part(saved.get("recipe", {})) == _model_part(recipe):
            return folder
    started = folder / "recipe.json"
    if started.exists() and _model_part(json.loads(started.read_text())) != _model_part(recipe):
        (folder / "fit.pt").unlink(missing_ok=True)   # a run of another recipe cannot be resumed
    started.write_text(json.dumps(recipe))
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    texts, labels = rotten_tomatoes("train")
    if recipe["train_examples"] is not None:
        keep = sample_per_class(labels, recipe["train_examples"], seed=recipe["seed"])
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    with _own_random_stream(recipe["seed"]):
        model = minilm_classifier(num_labels=2)
        start = time.perf_counter()
        history = finetune_classifier(
            model, tokenizer, texts, labels, lr=recipe["lr"], epochs=recipe["epochs"],
            batch_size=recipe["batch_size"], max_length=recipe["max_length"], warmup_ratio=recipe["warmup_ratio"],
            weight_decay=recipe["weight_decay"], checkpoint=folder / "fit.pt", seed=recipe["seed"], progress=progress)
        wall = time.perf_counter() - start
    model.config.id2label, model.config.label2id = {0: "negative", 1: "positive"}, {"negative": 0, "positive": 1}
    metrics = {"recipe": recipe, "train_examples": len(texts), "train_seconds": history.seconds,
               "wall_seconds": wall, "examples_per_second": history.examples / max(history.seconds, 1e-9),
               "device": str(get_device())}
    for split in ("validation", "test"):
        split_texts, split_labels = rotten_tomatoes(split)
        split_texts, split_labels = split_texts[:recipe["eval_examples"]], split_labels[:recipe["eval_examples"]]
        result = evaluate_classifier(model, tokenizer, split_texts, split_labels, max_length=recipe["max_length"])
        metrics[f"{split}_accuracy"], metrics[f"{split}_macro_f1"] = result["accuracy"], result["macro_f1"]
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    info.write_text(json.dumps(metrics, indent=1))
    (folder / "fit.pt").unlink(missing_ok=True)
    return folder
