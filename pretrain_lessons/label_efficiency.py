"""Lesson 05's label-efficiency experiment: how test accuracy grows with the number of labelled reviews, per model.

One training run is one *job*, a plain dict such as {"model": "MiniLM, fine-tuned", "n": 300, "draw": 1, "lr": 1e-4}:
draw d of a budget n is `stratified_sample(train labels, n, seed=d)`, and the run is seeded with d too, so a job
gives the same result wherever and whenever it runs. `run_job()` runs one; `run_jobs()` runs many, several at a
time in separate processes (one thread each: small models gain little from a second thread, and independent runs
side by side use every core). Each result keeps the run's test *predictions*, so any two runs can be compared
example by example on the same test reviews (stats.compare), not only by their accuracies.

Choices are made on the validation split only: the learning rate of each model (a small grid, run on draw 0 of each
budget; `choose_lr()`), the stopping step (early stopping, 早停), the C of the logistic regressions. The test split
is used only to score the chosen runs.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from . import finetune, scale

BOW = "bag of words"
PROBE = "MiniLM probe (frozen)"
PROBE_CLS = "MiniLM probe on the [CLS] pooler (frozen)"
SCRATCH = "tiny BERT, from scratch"
PRETRAINED = "tiny BERT, pretrained (04)"
MINILM = "MiniLM, fine-tuned"
MINILM_CLS = "MiniLM, fine-tuned, [CLS] head"
MODELS = (BOW, PROBE, SCRATCH, PRETRAINED, MINILM, MINILM_CLS, PROBE_CLS)
TRANSFORMERS = (SCRATCH, PRETRAINED, MINILM, MINILM_CLS)


@dataclass(frozen=True)
class Recipe:
    """How one model is trained at one budget: the learning rates tried, the longest run, when to evaluate."""

    lrs: tuple[float, ...]          # the grid; the winner on validation (draw 0) trains every draw
    epochs: int                     # the longest run (early stopping usually ends it sooner)
    batch_size: int = 32
    evals_per_run: int = 10         # validation scores spread over the longest run
    patience: int = 3               # evaluations without improvement before stopping
    pooling: str = "mean"           # "mean" (average of the token vectors) or "cls" ([CLS] → pooler)
    precision: str = "fp32"
    max_length: int = 64


STOPPING_REVIEWS = 640   # the validation reviews that early stopping and the learning-rate sweeps score


def stopping_split():
    """The first STOPPING_REVIEWS validation reviews: what the fine-tuned runs are scored on while they train (scoring
    all of them every few steps would cost MiniLM more than a small budget's training)."""
    texts, labels = _split("validation")
    return texts[:STOPPING_REVIEWS], labels[:STOPPING_REVIEWS]


def recipe(model: str, n: int, n_all: int) -> Recipe:
    """The training recipe of a fine-tuned model at budget n (n_all: the size of the whole training split)."""
    small = n <= 300
    if model in (SCRATCH, PRETRAINED):
        epochs = {100: 30, 300: 15, 1000: 10, 3000: 3}.get(n, 1 if n >= n_all else 3)
        return Recipe(lrs=scale.pick(smoke=(1e-3,), cpu=(3e-4, 1e-3, 3e-3)), epochs=scale.pick(smoke=1, cpu=epochs),
                      batch_size=16 if small else 32, evals_per_run=scale.pick(smoke=1, cpu=6), patience=2)
    if model in (MINILM, MINILM_CLS):
        epochs = {100: 10, 300: 6, 1000: 3, 3000: 2}.get(n, 1 if n >= n_all else 2)
        return Recipe(lrs=scale.pick(smoke=(1e-4,), cpu=(3e-5, 1e-4, 3e-4)), epochs=scale.pick(smoke=1, cpu=epochs),
                      batch_size=16 if small else 32, evals_per_run=scale.pick(smoke=1, cpu=5 if small else 3),
                      patience=2, precision="bf16", pooling="cls" if model == MINILM_CLS else "mean")
    raise ValueError(f"no fine-tuning recipe for {model!r}; the fine-tuned models are {TRANSFORMERS}")


# ---------------------------------------------------------------- the data every job sees

_DATA: dict = {}


def set_data(splits: dict, tiny_dir=None) -> None:
    """The splits every job uses: {"train": (texts, labels), "validation": …, "test": …}; and the tiny BERT folder."""
    _DATA.clear()
    _DATA.update({k: (list(v[0]), np.asarray(v[1])) for k, v in splits.items()})
    _DATA["tiny_dir"] = None if tiny_dir is None else str(tiny_dir)


def _split(name: str):
    if not _DATA:
        raise RuntimeError("call label_efficiency.set_data(splits, tiny_dir) before running jobs")
    return _DATA[name]


def subset(n: int, draw: int) -> tuple[list[str], np.ndarray]:
    """Draw `draw` of budget n: a stratified sample of the training split (all of it when n ≥ its size)."""
    texts, labels = _split("train")
    keep = finetune.stratified_sample(labels, n, seed=draw)
    return [texts[i] for i in keep], labels[keep]


@lru_cache(maxsize=4)
def _tokenizer(folder: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def _tiny_config():
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(_DATA["tiny_dir"])


def build(model: str, pooling: str = "mean", weights: str | None = None):
    """A fresh classifier and its tokenizer for one of the fine-tuned models (`weights`: another folder of lesson
    04's tiny BERT to start the pretrained one from, e.g. a snapshot from earlier in its pretraining)."""
    from .data.loaders import minilm_dir

    if model in (MINILM, MINILM_CLS):
        return finetune.minilm_classifier(pooling=pooling), _tokenizer(str(minilm_dir()))
    if model not in (SCRATCH, PRETRAINED):
        raise ValueError(f"{model!r} is not fine-tuned; the fine-tuned models are {TRANSFORMERS}")
    if _DATA.get("tiny_dir") is None:
        raise RuntimeError("set_data(..., tiny_dir=pretrained_tiny_bert()) first: the tiny BERTs need its folder")
    tokenizer = _tokenizer(_DATA["tiny_dir"])
    if model == PRETRAINED:
        return finetune.classifier_from(weights or _DATA["tiny_dir"], pooling=pooling), tokenizer
    return finetune.classifier_from_config(_tiny_config(), pooling=pooling), tokenizer   # same shape, random weights


# ---------------------------------------------------------------- seed 001's fine-tuning, its fixes one at a time

ARMS = (
    ("seed 001 as written", dict(mask=False, optimizer="adam", schedule=False, clip=False)),
    ("+ attention mask", dict(mask=True, optimizer="adam", schedule=False, clip=False)),
    ("+ AdamW (weight decay 0.01)", dict(mask=True, optimizer="adamw", schedule=False, clip=False)),
    ("+ warm-up and linear decay", dict(mask=True, optimizer="adamw", schedule=True, clip=False)),
    ("+ gradient clipping at 1.0", dict(mask=True, optimizer="adamw", schedule=True, clip=True)),
    ("+ learning rate chosen on validation", dict(mask=True, optimizer="adamw", schedule=True, clip=True)),
)
SEED_LR, SEED_EPOCHS, SEED_BATCH = 1e-4, 2, 32


def seed001_variant(model, tokenizer, texts, labels, *, mask: bool, optimizer: str, schedule: bool, clip: bool,
                    lr: float = SEED_LR, epochs: int = SEED_EPOCHS, batch_size: int = SEED_BATCH, seed: int = 0):
    """Seed 001's fine-tuning loop (one padded tensor, Adam 1e-4) with its fixes switched on one at a time.

    mask: pass the attention mask; the batches then carry it, each is cut to its longest review and reviews of
    similar length are batched together (the mask makes the padding irrelevant, so this only saves time; nothing
    is truncated). optimizer: "adam" (the seed) or "adamw" (decoupled weight decay 0.01, none on biases and norms).
    schedule: 10 % linear warm-up, then linear decay to 0. clip: gradient norm clipped at 1.0.
    """
    from torch.utils.data import DataLoader, TensorDataset

    from .train import make_scheduler

    torch.manual_seed(seed)
    enc = tokenizer(list(texts), return_tensors="pt", padding=True, truncation=True)   # the seed's one tensor
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if mask:
        loader = finetune.text_loader(tokenizer, texts, y.tolist(), max_length=enc["input_ids"].shape[1],
                                      batch_size=batch_size, shuffle=True)
    else:
        loader = DataLoader(TensorDataset(enc["input_ids"], y), batch_size=batch_size, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=lr) if optimizer == "adam" else finetune.adamw(model, lr, 0.01)
    total = epochs * len(loader)
    scheduler = make_scheduler(opt, "linear" if schedule else "constant", total, int(0.1 * total) if schedule else 0)
    model.train()
    for _ in range(epochs):
        for batch in loader:
            outputs = model(**batch) if mask else model(batch[0], labels=batch[1])
            outputs.loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            scheduler.step()
            opt.zero_grad()
    model.eval()
    return model


@torch.no_grad()
def seed_style_predictions(model, tokenizer, texts, batch_size: int = 256) -> np.ndarray:
    """Predictions made the seed's way: one tensor padded to the longest text, and no attention mask."""
    ids = tokenizer(list(texts), return_tensors="pt", padding=True, truncation=True)["input_ids"]
    model.eval()
    return torch.cat([model(ids[i:i + batch_size]).logits.argmax(-1) for i in range(0, len(ids), batch_size)]).numpy()


def _run_arm(job: dict, texts, labels, test_texts) -> dict:
    from transformers import BertForSequenceClassification

    arm = int(job["arm"])
    settings = ARMS[arm][1]
    with finetune._quiet_loading():
        model = BertForSequenceClassification.from_pretrained(_DATA["tiny_dir"], num_labels=2)
    tokenizer = _tokenizer(_DATA["tiny_dir"])
    seed001_variant(model, tokenizer, texts, labels, lr=float(job.get("lr", SEED_LR)),
                    epochs=int(job.get("epochs", SEED_EPOCHS)), seed=int(job.get("draw", 0)), **settings)
    if settings["mask"]:
        pred = finetune.logits_of(model, tokenizer, test_texts, max_length=128).argmax(1)
    else:
        pred = seed_style_predictions(model, tokenizer, test_texts)
    out = {"test_pred": pred.astype(np.int8), "name": ARMS[arm][0]}
    if job.get("score_validation"):
        val_texts, val_labels = stopping_split()
        out["val_accuracy"] = float((finetune.logits_of(model, tokenizer, val_texts, max_length=128).argmax(1)
                                     == val_labels).mean())
    return out


# ---------------------------------------------------------------- one job


def _bag_of_words(texts, labels, val_texts, val_labels, test_texts, test_labels) -> dict:
    """Lesson 03's bag-of-words baseline with its choices made on validation (text.tuned_bow_baseline)."""
    from . import text

    if hasattr(text, "tuned_bow_baseline"):
        return text.tuned_bow_baseline(texts, labels, val_texts, val_labels, test_texts, test_labels)
    best = None   # an older text.py: the plain baseline, its C chosen on validation here
    for C in (0.1, 0.3, 1.0, 3.0, 10.0):
        result = text.bow_baseline(texts, labels, test_texts, test_labels, C=C)
        val_accuracy = float((result["pipeline"].predict(list(val_texts)) == np.asarray(val_labels)).mean())
        if best is None or val_accuracy > best["val_accuracy"]:
            best = dict(result, val_accuracy=val_accuracy, model="logistic", C=C)
    return best



def run_job(job: dict) -> dict:
    """Run one job and return it with its results: val_accuracy, test_accuracy, test_pred, seconds (and steps)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    model, n, draw = job["model"], int(job["n"]), int(job.get("draw", 0))
    # Seed first, whatever the job: a new head drawn unseeded would depend on what this worker process ran before.
    torch.manual_seed(draw)
    texts, labels = subset(n, draw)
    val_texts, val_labels = _split("validation")
    test_texts, test_labels = _split("test")
    out = dict(job)
    if model == "seed 001 ablation":
        out.update(_run_arm(job, texts, labels, test_texts))
    elif model == BOW:
        result = _bag_of_words(texts, labels, val_texts, val_labels, test_texts, test_labels)
        out.update(val_accuracy=result["val_accuracy"], test_pred=np.asarray(result["predictions"], dtype=np.int8),
                   chosen=f"{result['model']}, C = {result['C']:g}")
        if job.get("keep_model"):
            out["fitted"] = result["pipeline"]
    elif model in (PROBE, PROBE_CLS):
        features = finetune.minilm_features({"train": _split("train")[0], "validation": val_texts, "test": test_texts},
                                            progress=False, with_cls=True)
        half = features["train"].shape[1] // 2           # columns: mean-pooled vector, then the [CLS] pooler's output
        part = slice(0, half) if model == PROBE else slice(half, None)
        features = {k: v[:, part] for k, v in features.items()}
        keep = finetune.stratified_sample(_split("train")[1], n, seed=draw)
        result = finetune.probe(features["train"][keep], labels, features["validation"], val_labels)
        out.update(val_accuracy=result["val_accuracy"],
                   test_pred=result["model"].predict(features["test"]).astype(np.int8), chosen=f"C = {result['C']:g}")
        if job.get("keep_model"):
            out["fitted"] = result["model"]
    else:
        r = job.get("recipe") or recipe(model, n, len(_split("train")[0]))
        lr = float(job["lr"])
        classifier, tokenizer = build(model, job.get("pooling", r.pooling), job.get("weights"))
        steps_per_epoch = -(-len(texts) // r.batch_size)
        every = max(1, round(r.epochs * steps_per_epoch / r.evals_per_run))
        stop_texts, stop_labels = stopping_split()
        history = finetune.finetune_classifier(
            classifier, tokenizer, texts, labels.tolist(), val=(stop_texts, stop_labels.tolist()), lr=lr,
            epochs=r.epochs, batch_size=r.batch_size, max_length=r.max_length, eval_every=every,
            patience=r.patience, precision=r.precision, seed=draw, progress=False)
        pred = finetune.logits_of(classifier, tokenizer, test_texts, max_length=r.max_length,
                                  precision=r.precision).argmax(1)
        if job.get("save_to"):
            _save(classifier, tokenizer, job["save_to"], {k: v for k, v in job.items() if k != "recipe"})
        out.update(val_accuracy=history.best["val_accuracy"], test_pred=pred.astype(np.int8),
                   best_step=history.best["step"], steps_run=history.best["steps_run"],
                   stopped_early=history.best["stopped_early"], val_curve=[(e["step"], e["val_accuracy"])
                                                                           for e in history.evals])
    out["test_accuracy"] = float((out["test_pred"] == test_labels).mean())
    out["seconds"] = time.perf_counter() - start
    out["cpu_seconds"] = time.process_time() - cpu_start   # this process's CPU time (all its threads)
    return out


def _save(model, tokenizer, folder, job: dict) -> None:
    """save_pretrained into a temporary folder, then swap it in: a reader never sees half a model."""
    import json
    import shutil
    from pathlib import Path

    folder = Path(folder)
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "job.json").write_text(json.dumps(job, indent=1, default=str))
    old = folder.with_name(f"{folder.name}.old{os.getpid()}")
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------- many jobs, side by side


def _worker_init(data: dict, env: dict) -> None:
    os.environ.update(env)
    torch.set_num_threads(1)
    # numpy's and scipy's BLAS read their thread count when first loaded, before this runs: two workers would each
    # start a thread per core for the probes and the bag of words, fighting over the cores. One thread each.
    import sklearn.linear_model  # noqa: F401 - loads scipy's BLAS now, so that the limit below reaches it too
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()   # save_pretrained's "Writing model shards" bar would land in the notebook
    _DATA.clear()
    _DATA.update(data)


def default_workers() -> int:
    """One worker per CPU core this process may use (2 on the course's laptop target and on Colab)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, cores)


CACHE_VERSION = 2   # raise when a change to the code changes what a job returns: every cached result is then redone


def _file_digest(path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=8)
def _folder_digest(folder: str) -> str:
    """A fingerprint of a checkpoint folder's weights and configuration (a retrained model gets a new one)."""
    from pathlib import Path

    # summary.json records how long the training took, which differs between runs that give the same weights.
    files = sorted(p for p in Path(folder).iterdir()
                   if p.suffix in (".safetensors", ".json") and p.is_file() and p.name != "summary.json")
    return ",".join(f"{p.name}:{_file_digest(p)[:16]}" for p in files)


def _data_digest() -> str:
    import hashlib
    import json

    if "digest" not in _DATA:
        splits = {k: [v[0], np.asarray(v[1]).tolist()] for k, v in _DATA.items() if k in ("train", "validation", "test")}
        _DATA["digest"] = hashlib.sha256(json.dumps(splits, sort_keys=True).encode()).hexdigest()[:16]
    return _DATA["digest"]


def job_key(job: dict) -> str:
    """The cache key of one job: the job, the recipe in force for it, the data, the tiny BERT's weights, the scale
    and CACHE_VERSION. Anything that changes what the job would return changes the key, so a stale result is never
    served."""
    import dataclasses
    import hashlib
    import json

    # save_to and pretraining_steps say where a result goes and what it is called, not what it is.
    settings = {k: v for k, v in job.items() if k not in ("save_to", "pretraining_steps")}
    if settings.get("weights"):
        settings["weights"] = _folder_digest(settings["weights"])   # the weights, wherever their folder is
    model, n = job["model"], int(job["n"])
    if model in TRANSFORMERS:
        r = job.get("recipe") or recipe(model, n, len(_split("train")[0]))
        settings["recipe"] = dataclasses.asdict(r)
        settings["stopping_reviews"] = STOPPING_REVIEWS
    if model in (SCRATCH, PRETRAINED) or model == "seed 001 ablation":
        settings["tiny"] = _folder_digest(_DATA["tiny_dir"])
    settings.update(version=CACHE_VERSION, scale=scale.current(), data=_data_digest())
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:20]


def results_cache():
    """The folder of cached job results at the scale in force: data/checkpoints/<scale>/label-efficiency-05/."""
    from . import paths

    return paths.checkpoint_dir("label-efficiency-05")


def _cached(folder, job: dict):
    import pickle
    from pathlib import Path

    path = Path(folder) / f"{job_key(job)}.pkl"
    if not path.exists():
        return None
    if job.get("save_to") and not (Path(job["save_to"]) / "job.json").exists():
        return None   # the run also saves its model, and that folder is gone: run it again
    try:
        result = pickle.loads(path.read_bytes())
    except Exception:   # a damaged file: run the job again
        return None
    # The job's labels (not part of its key) come from this job, not from the one that stored the result.
    return dict(result, **{k: v for k, v in job.items() if k in ("save_to", "pretraining_steps")}, cached=True)


def _store(folder, job: dict, result: dict) -> None:
    import pickle
    from pathlib import Path

    path = Path(folder) / f"{job_key(job)}.pkl"
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
    tmp.write_bytes(pickle.dumps(result))
    os.replace(tmp, path)   # atomic: a reader never sees half a file


def expected_cost(job: dict) -> float:
    """A rough guess of a job's run time (relative units): examples seen by the longest run × cost per example."""
    model, n = job["model"], int(job["n"])
    if model in TRANSFORMERS:
        n_all = len(_split("train")[0]) if _DATA else n
        r = job.get("recipe") or recipe(model, n, n_all)
        return r.epochs * min(n, n_all) * (6.0 if model in (MINILM, MINILM_CLS) else 1.0) + 2000
    if model == "seed 001 ablation":
        return 2.0 * n
    return 0.1 * n


_POOL: dict = {}   # the worker processes, kept between run_jobs calls: starting them costs seconds each time


def _pool(workers: int):
    """The pool of `workers` processes for the data in force (a new one when the data or the settings change)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    env = {k: v for k, v in os.environ.items() if k.startswith(("PRETRAIN_LESSONS_", "HF_", "TRANSFORMERS_"))}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    tiny = _DATA.get("tiny_dir")
    weights = _folder_digest(tiny) if tiny and os.path.isdir(tiny) else None   # workers cache its tokenizer
    key = (workers, _data_digest(), tiny, weights, tuple(sorted(env.items())))
    if _POOL.get("key") != key:
        close_pool()
        _POOL.update(key=key, pool=ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                                       initializer=_worker_init, initargs=(dict(_DATA), env)))
    return _POOL["pool"]


def close_pool() -> None:
    """Stop the worker processes of run_jobs (runs still queued are dropped; they start again when next needed)."""
    pool = _POOL.pop("pool", None)
    _POOL.clear()
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def run_jobs(jobs: list[dict], *, workers: int | None = None, progress: bool = True, desc: str = "runs",
             cache=None) -> list[dict]:
    """Run jobs `workers` at a time in separate processes (1 worker: here, one after another); results in job order.

    cache: a folder (e.g. `results_cache()`) where each result is kept under its `job_key`; a job found there is
    not run again (its result gets `cached=True`). None: run everything, keep nothing."""
    from .bars import bar

    workers = default_workers() if workers is None else workers
    all_jobs = list(jobs)
    final: list[dict | None] = [None] * len(all_jobs)
    todo = []
    for i, job in enumerate(all_jobs):
        hit = _cached(cache, job) if cache is not None else None
        if hit is None:
            todo.append(i)
        else:
            final[i] = hit
    jobs = [all_jobs[i] for i in todo]
    results: list[dict | None] = [None] * len(jobs)
    shown = bar(total=len(jobs), desc=desc, unit="run", disable=not progress or not jobs)   # the runs to do now
    if not jobs:
        pass
    elif workers <= 1:   # the only in-process path: a job's thread count (and so its floats) never depends on history
        for i, job in enumerate(jobs):
            results[i] = run_job(job)
            shown.update(1)
    else:
        from concurrent.futures import as_completed

        # Longest first: a long run started last would leave the other cores idle while it finishes.
        longest_first = sorted(range(len(jobs)), key=lambda i: -expected_cost(jobs[i]))
        pool = _pool(workers)
        futures = {pool.submit(run_job, jobs[i]): i for i in longest_first}
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                shown.update(1)
        except BaseException:   # an error or an interrupt: drop the queued runs and this pool (a fresh one next time)
            close_pool()
            raise
    shown.close()
    for i, result in zip(todo, results):
        if cache is not None:
            _store(cache, all_jobs[i], result)
        final[i] = result
    return final


def choose_lr(sweep: list[dict], by: tuple[str, ...] | str = ("model", "n")) -> dict:
    """The learning rate with the best validation accuracy for each (model, budget) of a sweep's results (or for
    each value of the field `by`, or each tuple of the fields `by`)."""
    best: dict = {}
    for r in sweep:
        key = r[by] if isinstance(by, str) else tuple(r[k] for k in by)
        if key not in best or r["val_accuracy"] > best[key]["val_accuracy"]:
            best[key] = r
    return {key: r["lr"] for key, r in best.items()}


def sweep_jobs(sweeps: dict[str, list[int]], n_all: int) -> list[dict]:
    """Draw 0 of each (model, budget) in `sweeps` at every learning rate of its recipe's grid."""
    return [{"model": m, "n": n, "draw": 0, "lr": lr} for m, budgets in sweeps.items() for n in budgets
            for lr in recipe(m, n, n_all).lrs]


def fixed_jobs(budgets: dict[str, list[int]], draws: int, n_all: int, keep_models: bool = True) -> list[dict]:
    """The jobs of models with nothing to sweep (bag of words, probe: their C is chosen inside each run).

    They are deterministic given their labels, so at n ≥ n_all (every draw the same labels) they run once; with
    `keep_models` those runs also return their fitted model (`result["fitted"]`)."""
    return [{"model": m, "n": n, "draw": d, **({"keep_model": True} if keep_models and n >= n_all else {})}
            for m, ns in budgets.items() for n in ns for d in range(1 if n >= n_all else draws)]


def lr_for_budgets(chosen: dict[tuple[str, int], float], budgets: dict[str, list[int]]) -> dict[tuple[str, int], float]:
    """The learning rate of every (model, budget): its own choice where it was swept, else that of the nearest
    swept budget of the same model (nearest on a log scale)."""
    out = {}
    for m, ns in budgets.items():
        swept = sorted(n for (model, n) in chosen if model == m)
        for n in ns:
            nearest = min(swept, key=lambda s: (abs(math.log(s / n)), s)) if swept else None
            if nearest is None:
                raise ValueError(f"no learning rate was chosen for {m!r}: sweep it at one budget at least")
            out[(m, n)] = chosen[(m, nearest)]
    return out


def draw_jobs(budgets: dict[str, list[int]], lrs: dict[tuple[str, int], float], draws: int,
              done: list[dict] = (), save: dict[tuple[str, int, int], str] | None = None,
              draws_for: dict[tuple[str, int], int] | None = None) -> list[dict]:
    """Every draw of every (model, budget) at its learning rate, except the runs already in `done`.

    `save` maps (model, budget, draw) to a folder where that run saves its fine-tuned model (save_pretrained);
    `draws_for` maps (model, budget) to its own number of draws: fewer (one run of a slow model on all labels, where
    every draw has the same labels anyway) or more (where a comparison needs them)."""
    have = {(r["model"], r["n"], r.get("draw", 0), r.get("lr")) for r in done}
    save, draws_for = save or {}, draws_for or {}
    return [{"model": m, "n": n, "draw": d, "lr": lrs[(m, n)],
             **({"save_to": str(save[(m, n, d)])} if (m, n, d) in save else {})}
            for m, ns in budgets.items() for n in ns for d in range(draws_for.get((m, n), draws))
            if (m, n, d, lrs[(m, n)]) not in have]


def snapshot_jobs(snapshots: dict[int, str], n: int, draws: int, lrs: dict[int, float] | None = None) -> list[dict]:
    """Fine-tune each snapshot of lesson 04's pretraining ({steps: folder}) at budget n: with `lrs` None, draw 0
    at every learning rate of the recipe's grid (the sweep); else draws 0..draws-1 at each snapshot's rate.

    The finished model's jobs carry no `weights`: they are the curve's own jobs (and share its cached results)."""
    final = max(snapshots)
    out = []
    for steps, folder in sorted(snapshots.items()):
        where = {} if steps == final else {"weights": str(folder)}
        grid = recipe(PRETRAINED, n, len(_split("train")[0])).lrs if lrs is None else (lrs[steps],)
        for d in (range(1) if lrs is None else range(draws)):
            out += [{"model": PRETRAINED, "n": n, "draw": d, "lr": lr, "pretraining_steps": steps, **where}
                    for lr in grid]
    return out


def chosen_runs(results: list[dict], lrs: dict[tuple[str, int], float]) -> list[dict]:
    """The runs that count: for the fine-tuned models, only those at each (model, budget)'s learning rate (a run
    at a budget that was only swept, not part of the curve, does not count)."""
    return [r for r in results if "lr" not in r or r["model"] not in TRANSFORMERS or lrs.get((r["model"], r["n"])) == r["lr"]]


def paired(curve: dict, a: str, b: str, n: int) -> tuple[list[float], list[float]]:
    """The scores of models a and b at budget n on the draws both have (draw i with draw i)."""
    k = min(len(curve[a][n]), len(curve[b][n]))
    return curve[a][n][:k], curve[b][n][:k]


def by_model(results: list[dict], key: str = "test_accuracy") -> dict[str, dict[int, list[float]]]:
    """{model: {budget: [value of each draw, in draw order]}}, the input of plots.repeated_runs."""
    out: dict = {}
    for r in sorted(results, key=lambda r: (r["n"], r.get("draw", 0))):
        out.setdefault(r["model"], {}).setdefault(r["n"], []).append(r[key])
    return {m: out[m] for m in MODELS if m in out} | {m: v for m, v in out.items() if m not in MODELS}


def predictions(results: list[dict], model: str, n: int) -> list[np.ndarray]:
    """The test predictions of each draw of one model at one budget, in draw order."""
    runs = sorted((r for r in results if r["model"] == model and r["n"] == n), key=lambda r: r.get("draw", 0))
    return [r["test_pred"] for r in runs]


def labels_to_match(results: list[dict], target: float, budgets: list[int]) -> dict[str, int | None]:
    """For each model, the smallest budget whose mean test accuracy reaches `target` (None: no measured budget does)."""
    means = {m: {n: float(np.mean(v)) for n, v in by_n.items()} for m, by_n in by_model(results).items()}
    return {m: next((n for n in sorted(budgets) if n in by_n and by_n[n] >= target), None) for m, by_n in means.items()}
