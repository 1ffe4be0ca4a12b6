"""Fine-tuning a BERT-style encoder for text classification (微调): loaders, heads, one recipe, frozen features.

  * `text_loader()` turns texts into batches of `input_ids`, `attention_mask` and `labels`, each batch cut to its
    longest text (dynamic padding, 动态填充).
  * The head (分类头): `BertForSequenceClassification` reads the [CLS] vector through a pooler (a tanh layer)
    into a Linear layer; `MeanPoolingClassifier` averages the vectors of the real tokens instead (the pooling
    sentence-embedding checkpoints such as MiniLM-L6 were trained with, and the pooler they never trained).
  * `finetune_classifier()` trains any classifier with the course's loop: AdamW, warm-up (预热) and linear decay,
    clipping, and early stopping on a validation split (验证集) that keeps the best weights.
  * `mean_pooled_features()` / `minilm_features()` embed texts once with a frozen encoder (cached) for a linear
    probe (`probe()`: logistic regression, C chosen on validation).
  * `finetuned_minilm()` returns the folder of the MiniLM classifier lesson 08 compresses ([CLS] head, 4,000
    reviews, one epoch), training it once if it is missing.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch

from . import paths, scale
from .data.loaders import TensorLoader, minilm_dir, rotten_tomatoes
from .device import get_device, seed_everything
from .train import History, _rng_state, _set_rng_state, evaluate, fit

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


def stratified_sample(labels: list[int], n: int, seed: int = 0) -> list[int]:
    """Indices of `n` examples drawn at random with the classes in their overall proportions (proportional
    stratified sampling: 100 of 58 % fresh reviews gives 58 fresh and 42 rotten). Sorted; all indices when n ≥ len."""
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


# The older name, kept for lesson 08: it has always drawn the classes in proportion, not n of each class.
sample_per_class = stratified_sample


# ---------------------------------------------------------------- the head: [CLS] + pooler, or mean pooling


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The average of the token vectors of each text, padding excluded: (batch, length, d) → (batch, d)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


def _mean_pooling_class():
    from torch.nn import functional as F
    from transformers import BertForSequenceClassification, BertModel
    from transformers.modeling_outputs import SequenceClassifierOutput

    class MeanPoolingClassifier(BertForSequenceClassification):
        """BertForSequenceClassification with mean pooling: Linear(dropout(mean of the real tokens' vectors)).

        Same encoder, same `classifier` Linear layer; no pooler. Saved with `pooling: "mean"` in its config;
        load a saved one with `finetune.load_classifier(folder)`.
        """

        def __init__(self, config):
            super().__init__(config)
            config.pooling = "mean"
            self.bert = BertModel(config, add_pooling_layer=False)
            self.post_init()

        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids).last_hidden_state
            logits = self.classifier(self.dropout(mean_pool(hidden, attention_mask)))
            loss = F.cross_entropy(logits.float(), labels) if labels is not None else None
            return SequenceClassifierOutput(loss=loss, logits=logits)

    return MeanPoolingClassifier


_CLASS_CACHE: dict = {}


def mean_pooling_class():
    """The MeanPoolingClassifier class (made on first use, so importing this module does not import transformers)."""
    if "mean" not in _CLASS_CACHE:
        _CLASS_CACHE["mean"] = _mean_pooling_class()
    return _CLASS_CACHE["mean"]


@contextmanager
def _quiet_loading():
    """Hide transformers' report of newly initialised head weights: a new head is what we ask for."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()   # no "Loading weights" bar in stored notebook outputs
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def classifier_from(folder, num_labels: int = 2, pooling: str = "cls", **config):
    """A pretrained encoder (a `from_pretrained` folder) with a new, randomly initialised classification head.

    pooling="cls": `BertForSequenceClassification` ([CLS] → pooler → Linear); "mean": `MeanPoolingClassifier`.
    """
    from transformers import BertForSequenceClassification

    if pooling not in ("cls", "mean"):
        raise ValueError(f"pooling must be 'cls' or 'mean'; got {pooling!r}")
    cls = mean_pooling_class() if pooling == "mean" else BertForSequenceClassification
    with _quiet_loading():
        return cls.from_pretrained(folder, num_labels=num_labels, **config)


def classifier_from_config(config, num_labels: int = 2, pooling: str = "cls"):
    """A classifier with random weights everywhere (training from scratch), for a BertConfig."""
    from transformers import BertForSequenceClassification

    config = copy.deepcopy(config)
    config.num_labels = num_labels
    return (mean_pooling_class() if pooling == "mean" else BertForSequenceClassification)(config)


def load_classifier(folder):
    """Load a saved fine-tuned classifier with the head it was trained with (mean pooling or [CLS])."""
    config = json.loads((Path(folder) / "config.json").read_text())
    return classifier_from(folder, pooling=config.get("pooling", "cls"))


def minilm_classifier(num_labels: int = 2, pooling: str = "cls", **config):
    """MiniLM-L6 with a new, randomly initialised classification head (分类头) of `num_labels` outputs.

    pooling="cls" (the default, `BertForSequenceClassification`) reads [CLS] through MiniLM's pooler, which this
    sentence-embedding checkpoint never trained; pooling="mean" averages the token vectors, as MiniLM was trained.
    """
    return classifier_from(minilm_dir(), num_labels, pooling, **config)


# ---------------------------------------------------------------- training with early stopping


def adamw(model: torch.nn.Module, lr: float, weight_decay: float = 0.01) -> torch.optim.AdamW:
    """The course's AdamW (`train.adamw`: fused kernel, no weight decay on biases and norm layers), decay 0.01."""
    from .train import adamw as course_adamw

    return course_adamw(model, lr, weight_decay)


class StopTraining(Exception):
    """Raised by EarlyStopping inside fit() to end a run whose validation score stopped improving."""


class EarlyStopping:
    """A fit() callback: every `every` steps, score the model on validation texts; keep a copy of the best weights
    (highest validation accuracy, ties broken by the lower loss); stop after `patience` evaluations without
    improvement (None: never stop early, but still keep the best weights)."""

    def __init__(self, tokenizer, texts: list[str], labels: list[int], every: int, patience: int | None = 2, *,
                 max_length: int = 64, precision: str = "fp32", total_steps: int | None = None):
        self.tokenizer, self.texts, self.labels = tokenizer, list(texts), torch.as_tensor(list(labels))
        self.every, self.patience, self.precision, self.max_length = every, patience, precision, max_length
        self.total_steps = total_steps
        self.evals: list[dict] = []
        self.steps: list[dict] = []
        self.best_key, self.best_state, self.best_row, self.bad = None, None, None, 0

    def score(self, model) -> tuple[float, float]:
        """(accuracy, mean cross-entropy) on the validation texts."""
        logits = torch.from_numpy(logits_of(model, self.tokenizer, self.texts, max_length=self.max_length,
                                            precision=self.precision))
        loss = torch.nn.functional.cross_entropy(logits, self.labels).item()
        return float((logits.argmax(1) == self.labels).float().mean()), loss

    def check(self, model, step: int, epoch: int) -> None:
        accuracy, loss = self.score(model)
        model.train()
        row = {"step": step, "epoch": epoch, "val_loss": loss, "val_accuracy": accuracy}
        self.evals.append(row)
        key = (accuracy, -loss)
        if self.best_key is None or key > self.best_key:
            self.best_key, self.best_row, self.bad = key, row, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.bad += 1
        if self.patience is not None and self.bad >= self.patience:
            raise StopTraining

    def __call__(self, info: dict) -> None:
        self.steps.append({k: info[k] for k in ("step", "epoch", "loss", "lr")})
        if info["step"] % self.every == 0 or info["step"] == self.total_steps:
            self.check(info["model"], info["step"], info["epoch"])


def finetune_classifier(model: torch.nn.Module, tokenizer, train_texts: list[str], train_labels: list[int], *,
                        val: tuple[list[str], list[int]] | None = None, lr: float = 2e-5, epochs: int = 3,
                        min_steps: int = 0, batch_size: int = 32, max_length: int = 64, warmup_ratio: float = 0.1,
                        weight_decay: float = 0.01, max_grad_norm: float | None = 1.0, eval_every: int | None = None,
                        patience: int | None = None, precision: str = "fp32", checkpoint: str | Path | None = None,
                        seed: int = 0, progress: bool = True, live_plot: bool = False) -> History:
    """Fine-tune a sequence classifier with AdamW, linear warm-up and decay, and gradient clipping; return the History.

    Trains `epochs` passes over the data (at least `min_steps` optimizer steps). With `val` (texts, labels) the
    model is scored on it every `eval_every` steps (default: once per epoch) and at the end; the weights with the
    best validation accuracy are restored at the end (early stopping, 早停), and with `patience` the run stops
    after that many evaluations without improvement. `history.best` holds the chosen step and its scores.
    """
    seed_everything(seed)
    train = text_loader(tokenizer, train_texts, train_labels, max_length=max_length, batch_size=batch_size,
                        shuffle=True)
    steps = max(epochs * len(train), min_steps)
    num_classes = int(model.config.num_labels) if hasattr(model, "config") else None
    model.to(get_device())
    optimizer = adamw(model, lr, weight_decay)
    common = dict(max_steps=steps, optimizer=optimizer, scheduler="linear", warmup_steps=int(warmup_ratio * steps),
                  max_grad_norm=max_grad_norm, precision=precision, progress=progress, seed=seed)
    if val is None:
        return fit(model, train, num_classes=num_classes, checkpoint=checkpoint, live_plot=live_plot, **common)
    stopper = EarlyStopping(tokenizer, val[0], val[1], eval_every or len(train), patience, max_length=max_length,
                            precision=precision, total_steps=steps)
    start = time.perf_counter()
    try:
        history = fit(model, train, callbacks=(stopper,), **common)
    except StopTraining:
        history = History(steps=stopper.steps, examples=sum(batch_size for _ in stopper.steps))
    history.seconds = time.perf_counter() - start
    history.evals = stopper.evals
    model.load_state_dict(stopper.best_state)
    model.eval()
    history.best = dict(stopper.best_row, steps_run=len(stopper.steps), stopped_early=len(stopper.steps) < steps)
    return history


# ---------------------------------------------------------------- measuring


def _autocast(precision: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" and get_device().type == "cpu" else (
        torch.autocast(get_device().type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext())


@torch.no_grad()
def logits_of(model: torch.nn.Module, tokenizer, texts: list[str], *, max_length: int = 64, batch_size: int = 256,
              precision: str = "fp32") -> np.ndarray:
    """Logits of a classifier for texts, in their order (batched by length, so little padding is computed)."""
    return _by_length(tokenizer, texts, max_length, batch_size,
                      lambda batch: model(**batch).logits, model, precision)


def _by_length(tokenizer, texts, max_length, batch_size, run, model, precision) -> np.ndarray:
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding="max_length", return_tensors="pt")
    lengths = enc["attention_mask"].sum(1)
    order = torch.argsort(lengths, descending=True, stable=True)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outs = []
    for chunk in order.split(batch_size):
        longest = int(lengths[chunk].max())
        batch = {k: enc[k][chunk, :longest].to(device) for k in ("input_ids", "attention_mask")}
        with _autocast(precision):
            outs.append(run(batch).float().cpu())
    model.train(was_training)
    out = torch.empty((len(texts),) + outs[0].shape[1:])
    out[order] = torch.cat(outs)
    return out.numpy()


def predict_proba(model: torch.nn.Module, tokenizer, texts: list[str], *, max_length: int = 64,
                  batch_size: int = 256, precision: str = "fp32") -> np.ndarray:
    """Class probabilities (one row per text) of a sequence classifier."""
    logits = torch.from_numpy(logits_of(model, tokenizer, texts, max_length=max_length, batch_size=batch_size,
                                        precision=precision))
    return torch.softmax(logits, -1).numpy()


def evaluate_classifier(model: torch.nn.Module, tokenizer, texts: list[str], labels: list[int], *,
                        max_length: int = 64, batch_size: int = 256) -> dict:
    """Loss, accuracy, macro-F1 and the confusion matrix of a classifier on labelled texts."""
    loader = text_loader(tokenizer, texts, labels, max_length=max_length, batch_size=batch_size)
    return evaluate(model, loader, num_classes=int(model.config.num_labels), progress=False)


# ---------------------------------------------------------------- frozen features and a linear probe


@torch.no_grad()
def mean_pooled_features(encoder: torch.nn.Module, tokenizer, texts: list[str], *, max_length: int = 64,
                         batch_size: int = 256, precision: str = "fp32", with_cls: bool = False) -> np.ndarray:
    """One vector per text: the frozen encoder's last-layer token vectors, averaged over the real tokens.

    with_cls=True: each row is [mean-pooled vector, the pooler's output for [CLS]] (the input of the [CLS] head)."""
    base = getattr(encoder, "bert", encoder)

    def run(batch):
        out = base(**batch)
        pooled = mean_pool(out.last_hidden_state.float(), batch["attention_mask"])
        return torch.cat([pooled, out.pooler_output.float()], 1) if with_cls else pooled

    return _by_length(tokenizer, texts, max_length, batch_size, run, base, precision)


def minilm_features(texts_by_split: dict[str, list[str]], *, max_length: int = 64, precision: str = "bf16",
                    progress: bool = True, with_cls: bool = False) -> dict[str, np.ndarray]:
    """Mean-pooled MiniLM-L6 vectors (384 numbers) of each split's texts, computed once and cached on disk.

    One pass also stores the [CLS] head's input (the pooler's output for [CLS], 384 more numbers); `with_cls=True`
    returns both, side by side (768 columns: mean-pooled first). The cache (data/checkpoints/<scale>/minilm-features/)
    is keyed by a hash of the texts and the settings, so other texts or settings are embedded afresh, never stale.
    """
    from transformers import AutoModel, AutoTokenizer

    from .bars import bar

    folder = paths.checkpoint_dir("minilm-features")
    settings = {"model": "all-MiniLM-L6-v2", "max_length": max_length, "precision": precision, "pooling": "mean+cls"}
    out, encoder, tokenizer = {}, None, None
    for split in bar(list(texts_by_split), desc="embedding", unit="split", disable=not progress):
        texts = list(texts_by_split[split])
        digest = hashlib.sha256(json.dumps([settings, texts]).encode()).hexdigest()[:16]
        path = folder / f"{split}-{digest}.npy"
        if path.exists():
            both = np.load(path)
        else:
            if encoder is None:
                tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
                with _quiet_loading():
                    encoder = AutoModel.from_pretrained(minilm_dir()).to(get_device()).eval()
            both = mean_pooled_features(encoder, tokenizer, texts, max_length=max_length, precision=precision,
                                        with_cls=True)
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
            np.save(tmp, both)
            os.replace(tmp, path)   # atomic: another process never reads half a file
        out[split] = both if with_cls else both[:, :both.shape[1] // 2]
    return out


PROBE_CS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


def probe(train_x: np.ndarray, train_y, val_x: np.ndarray, val_y, Cs: tuple[float, ...] = PROBE_CS) -> dict:
    """A linear probe: logistic regression on frozen features (standardised), its C chosen on validation.

    Returns the fitted `model` (a scikit-learn pipeline), the chosen `C`, its `val_accuracy` and the `grid`.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    grid, best = [], None
    for C in Cs:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000)).fit(train_x, train_y)
        accuracy = float((model.predict(val_x) == np.asarray(val_y)).mean())
        grid.append({"C": C, "val_accuracy": accuracy})
        if best is None or accuracy > best[0]:
            best = (accuracy, C, model)
    return {"model": best[2], "C": best[1], "val_accuracy": best[0], "grid": grid}


# ---------------------------------------------------------------- the fine-tuned MiniLM, shared with lesson 08


def minilm_recipe() -> dict:
    """The recipe of `finetuned_minilm()` at the scale in force (examples, epochs, learning rate, lengths).

    This is the short recipe lesson 05 used before its label-efficiency experiment ([CLS] head, no early stopping);
    lesson 08 compresses and distils the model it makes. Lesson 05 itself now trains its own runs (label_efficiency).
    """
    return {
        "train_examples": scale.pick(smoke=64, cpu=4000, gpu=None),   # None: the whole training split
        "epochs": scale.pick(smoke=1, cpu=1, gpu=3),
        "lr": scale.pick(smoke=1e-4, cpu=1e-4, gpu=3e-5),
        "eval_examples": scale.pick(smoke=128, cpu=None, gpu=None),   # None: the whole validation and test splits
        "batch_size": 32, "max_length": 64, "warmup_ratio": 0.1, "weight_decay": 0.01, "seed": 0,
    }


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
    """Folder of MiniLM fine-tuned on the movie reviews (save_pretrained, with tokenizer and metrics.json); it loads
    with `BertForSequenceClassification.from_pretrained(folder)` (or `load_classifier(folder)`).

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
        keep = stratified_sample(labels, recipe["train_examples"], seed=recipe["seed"])
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
