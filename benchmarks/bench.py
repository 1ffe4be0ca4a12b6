"""Measured comparisons, each a ratio from one run on one machine; writes reports/bench.md.

    python benchmarks/bench.py [--repeats 3] [--only dataloader,overhead,trainer]

1. dataloader — seed 000's MNIST loop (per-item PIL transforms through a DataLoader) vs the course's
   tensor-resident batches: time per epoch, same model / optimizer / batch size, test accuracy of each.
2. overhead  — the course's `fit()` vs a minimal hand-written loop: same model, data, batches, optimizer.
3. trainer   — the course's `fit()` vs `transformers.Trainer` fine-tuning the same MiniLM on the same
   reviews: training samples per second and validation accuracy.
Runs of the two sides alternate, so slow drift of the machine affects both; medians and spread are reported.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pretrain_lessons import paths  # noqa: E402
from pretrain_lessons.data.loaders import TensorLoader, minilm_dir, mnist_tensors, rotten_tomatoes  # noqa: E402
from pretrain_lessons.device import seed_everything  # noqa: E402
from pretrain_lessons.train import evaluate, fit  # noqa: E402


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3g} (min {min(values):.3g}, max {max(values):.3g}, n={len(values)})"


def _mnist_normalised():
    d = mnist_tensors()
    # Seed 000's transform: ToTensor (÷255) then Normalize((0.5,), (0.5,)).
    norm = lambda t: ((t.float() / 255 - 0.5) / 0.5).view(len(t), -1)  # noqa: E731
    return norm(d["train_images"]), d["train_labels"], norm(d["test_images"]), d["test_labels"]


def bench_dataloader(repeats: int) -> dict:
    """Seed 000's per-item DataLoader epoch vs the tensor-resident epoch (SGD 0.01, batch 64, nn.Linear(784, 10))."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    dataset = datasets.MNIST(root=str(paths.data_dir()), train=True, download=True, transform=transform)
    x, y, xt, yt = _mnist_normalised()
    test = TensorLoader(xt, yt, batch_size=1000)
    seed_times, course_times, seed_acc, course_acc = [], [], [], []
    for r in range(repeats):
        seed_everything(r)
        model = nn.Linear(784, 10)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        loader = DataLoader(dataset, batch_size=64, shuffle=True)
        start = time.perf_counter()
        for inputs, labels in loader:  # seed 000's loop, as written
            outputs = model(inputs.view(inputs.size(0), -1))
            loss = nn.functional.cross_entropy(outputs, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seed_times.append(time.perf_counter() - start)
        seed_acc.append(evaluate(model, test, progress=False)["accuracy"])

        seed_everything(r)
        model = nn.Linear(784, 10)
        start = time.perf_counter()
        fit(model, TensorLoader(x, y, batch_size=64, shuffle=True), epochs=1,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.01), progress=False)
        course_times.append(time.perf_counter() - start)
        course_acc.append(evaluate(model, test, progress=False)["accuracy"])
    speedups = [s / c for s, c in zip(seed_times, course_times)]
    return {"seed_epoch_s": seed_times, "course_epoch_s": course_times, "speedup": speedups,
            "seed_accuracy": seed_acc, "course_accuracy": course_acc}


def bench_overhead(repeats: int, epochs: int = 3) -> dict:
    """fit() vs a minimal loop, and vs the minimal loop with fit()'s NaN/inf checks written in: MLP 784-256-10,
    Adam 1e-3, batch 128, same batches in the same order."""
    x, y, _, _ = _mnist_normalised()

    def make():
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))

    def minimal(r: int, checked: bool) -> tuple[float, torch.Tensor]:
        seed_everything(r)
        model = make()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        loader = TensorLoader(x, y, batch_size=128, shuffle=True)
        start = time.perf_counter()
        for _ in range(epochs):
            for inputs, labels in loader:
                loss = nn.functional.cross_entropy(model(inputs), labels)
                optimizer.zero_grad()
                loss.backward()
                if checked:   # what fit() checks before every step: the loss and the gradients' norm are finite
                    norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])
                    if not all(math.isfinite(v) for v in torch.stack([loss.detach(), norm]).tolist()):
                        raise FloatingPointError("non-finite loss or gradients")
                optimizer.step()
        return time.perf_counter() - start, model[0].weight.detach().clone()

    # Warm-up (fit's first call imports what it needs); then more pairs than elsewhere, as a 1 s run is noisy.
    fit(make(), TensorLoader(x, y, batch_size=128), max_steps=1, progress=False)
    raw_times, checked_times, fit_times = [], [], []
    for r in range(3 * repeats):
        seconds, raw_weights = minimal(r, checked=False)
        raw_times.append(seconds)
        checked_times.append(minimal(r, checked=True)[0])
        seed_everything(r)
        model = make()
        start = time.perf_counter()
        fit(model, TensorLoader(x, y, batch_size=128, shuffle=True), epochs=epochs,
            optimizer=torch.optim.Adam(model.parameters(), lr=1e-3), progress=False)
        fit_times.append(time.perf_counter() - start)
        same = torch.allclose(raw_weights, model[0].weight, atol=1e-5)
    steps = epochs * len(TensorLoader(x, y, batch_size=128))
    return {"raw_s": raw_times, "checked_s": checked_times, "fit_s": fit_times, "same_weights": same, "epochs": epochs,
            "overhead": [f / r - 1 for f, r in zip(fit_times, raw_times)],
            "overhead_vs_checked": [f / c - 1 for f, c in zip(fit_times, checked_times)],
            "checks": [c / r - 1 for c, r in zip(checked_times, raw_times)],
            "step_us": [1e6 * r / steps for r in raw_times],
            "extra_us_per_step": [1e6 * (f - r) / steps for f, r in zip(fit_times, raw_times)]}


def bench_trainer(repeats: int, steps: int = 60, batch: int = 16, max_length: int = 64, lr: float = 1e-4) -> dict:
    """fit() vs transformers.Trainer: MiniLM fine-tuned on the same reviews, same hyper-parameters and steps."""
    import transformers
    from transformers import AutoTokenizer, BertForSequenceClassification, Trainer, TrainingArguments

    transformers.logging.set_verbosity_error()
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    texts, labels = rotten_tomatoes("train")
    texts, labels = texts[: steps * batch], labels[: steps * batch]
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    vtexts, vlabels = rotten_tomatoes("validation")
    venc = tokenizer(vtexts, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    val = TensorLoader(venc["input_ids"], venc["attention_mask"], torch.tensor(vlabels),
                       keys=("input_ids", "attention_mask", "labels"), batch_size=128)

    class Reviews(torch.utils.data.Dataset):
        def __len__(self):
            return len(labels)

        def __getitem__(self, i):
            return {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                    "labels": torch.tensor(labels[i])}

    fit_sps, trainer_sps, fit_acc, trainer_acc, loop_sps, loop_acc = [], [], [], [], [], []
    for r in range(repeats):
        seed_everything(r)
        model = BertForSequenceClassification.from_pretrained(minilm_dir(), num_labels=2)
        loader = TensorLoader(enc["input_ids"], enc["attention_mask"], torch.tensor(labels),
                              keys=("input_ids", "attention_mask", "labels"), batch_size=batch, shuffle=True)
        start = time.perf_counter()
        fit(model, loader, max_steps=steps, lr=lr, weight_decay=0.0, scheduler="linear", progress=False)
        fit_sps.append(steps * batch / (time.perf_counter() - start))
        fit_acc.append(evaluate(model, val, progress=False)["accuracy"])

        # The loop given the for-loop AdamW that was fit()'s default before train.adamw: what the fused kernel buys.
        seed_everything(r)
        model = BertForSequenceClassification.from_pretrained(minilm_dir(), num_labels=2)
        loader = TensorLoader(enc["input_ids"], enc["attention_mask"], torch.tensor(labels),
                              keys=("input_ids", "attention_mask", "labels"), batch_size=batch, shuffle=True)
        start = time.perf_counter()
        fit(model, loader, max_steps=steps, scheduler="linear", progress=False,
            optimizer=torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, foreach=False))
        loop_sps.append(steps * batch / (time.perf_counter() - start))
        loop_acc.append(evaluate(model, val, progress=False)["accuracy"])

        seed_everything(r)
        model = BertForSequenceClassification.from_pretrained(minilm_dir(), num_labels=2)
        args = TrainingArguments(output_dir=str(ROOT / "out" / "bench-trainer"), max_steps=steps,
                                 per_device_train_batch_size=batch, learning_rate=lr, weight_decay=0.0,
                                 lr_scheduler_type="linear", logging_steps=10**6, save_strategy="no",
                                 report_to=[], disable_tqdm=True, use_cpu=True, seed=r, dataloader_num_workers=0)
        trainer = Trainer(model=model, args=args, train_dataset=Reviews())
        start = time.perf_counter()
        trainer.train()
        trainer_sps.append(steps * batch / (time.perf_counter() - start))
        trainer_acc.append(evaluate(model, val, progress=False)["accuracy"])
    return {"fit_samples_per_s": fit_sps, "trainer_samples_per_s": trainer_sps,
            "ratio": [f / t for f, t in zip(fit_sps, trainer_sps)], "fit_accuracy": fit_acc, "trainer_accuracy": trainer_acc,
            "fit_forloop_samples_per_s": loop_sps, "fit_forloop_accuracy": loop_acc,
            "forloop_ratio": [f / t for f, t in zip(loop_sps, trainer_sps)]}


def write_markdown(results: dict, out: Path) -> str:
    lines = ["# Benchmarks", "",
             f"`make bench` on {time.strftime('%Y-%m-%d %H:%M')}: {platform.processor() or platform.machine()}, "
             f"{torch.get_num_threads()} torch threads, torch {torch.__version__.split('+')[0]}. "
             "Each figure is a ratio of two measurements taken in the same run, the two sides alternating; "
             "median over repeats (min, max, n).", ""]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > torch.get_num_threads() + 0.75:      # the benchmark's own threads, plus something else running
        lines += [f"**Measured on a shared, busy machine** (load average {load:.1f} on {os.cpu_count()} cores, {torch.get_num_threads()} of it this benchmark's own, when this report "
                  "was written): every figure here is noisy. Regenerate on idle cores for numbers to quote.", ""]
    if "dataloader" in results:
        d = results["dataloader"]
        lines += ["## Seed 000's DataLoader loop vs tensor-resident batches (MNIST, nn.Linear, SGD 0.01, batch 64, 1 epoch)", "",
                  "| | seconds per epoch | test accuracy |", "|---|---|---|",
                  f"| seed 000: per-item transforms in a DataLoader | {_spread(d['seed_epoch_s'])} | {_spread(d['seed_accuracy'])} |",
                  f"| course: tensors in memory, `fit()` | {_spread(d['course_epoch_s'])} | {_spread(d['course_accuracy'])} |",
                  "", f"**Speed-up: {_spread(d['speedup'])}×** (goal ≥ 10×).", ""]
    if "overhead" in results:
        o = results["overhead"]
        lines += ["## The course loop vs a minimal hand-written loop "
                  f"(MLP 784-256-10 on MNIST, Adam, batch 128, {o['epochs']} epochs)", "",
                  "| | seconds |", "|---|---|",
                  f"| minimal loop | {_spread(o['raw_s'])} |",
                  f"| minimal loop with fit()'s checks (loss and gradient norm finite, every step) | {_spread(o['checked_s'])} |",
                  f"| `fit()` | {_spread(o['fit_s'])} |", "",
                  f"**Overhead of `fit()`: {_spread([100 * v for v in o['overhead']])} %** (goal ≤ 5 %), each run "
                  "against the minimal run just before it. Of that, the NaN/inf checks alone cost "
                  f"{_spread([100 * v for v in o['checks']])} %, and fit() against the minimal loop with the same "
                  f"checks: {_spread([100 * v for v in o['overhead_vs_checked']])} %. In time: a step of this model takes "
                  f"{_spread(o['step_us'])} µs and fit() adds {_spread(o['extra_us_per_step'])} µs to it — a fixed "
                  "cost per step, which is a few per cent of a 1 ms step and well under 1 % of a lesson's BERT step "
                  "(tens to hundreds of ms). "
                  + ("The 5 % goal is met. " if statistics.median(o["overhead"]) <= 0.05 else
                     "The 5 % goal is not met on this 1 ms step: most of the gap is the gradient check, a pass over "
                     "every gradient that stops a NaN before it reaches the weights, and it stays on. ")
                  + f"Same final weights: {o['same_weights']}.", ""]
    if "trainer" in results:
        t = results["trainer"]
        lines += ["## The course loop vs `transformers.Trainer` (MiniLM-L6 fine-tuned on movie reviews, batch 16, max length 64)", "",
                  "| | training samples / s | validation accuracy |", "|---|---|---|",
                  f"| `fit()` | {_spread(t['fit_samples_per_s'])} | {_spread(t['fit_accuracy'])} |",
                  f"| `Trainer` | {_spread(t['trainer_samples_per_s'])} | {_spread(t['trainer_accuracy'])} |",
                  f"| `fit()` with torch's for-loop AdamW (its default before) | {_spread(t['fit_forloop_samples_per_s'])} | {_spread(t['fit_forloop_accuracy'])} |", "",
                  f"**Throughput ratio fit / Trainer, both at their defaults: {_spread(t['ratio'])}** (goal ≥ 1, same "
                  f"accuracy); {_spread(t['forloop_ratio'])} with the for-loop AdamW. fit()'s default optimizer is "
                  "`train.adamw`: torch's fused AdamW kernel, as Trainer's default `adamw_torch_fused`, with no weight decay "
                  "on biases and norm layers. Trainer also clips gradients by default (max_grad_norm=1.0); fit() does not "
                  "unless asked, but checks every step's gradients for NaN/inf. After 60 steps accuracy still varies with "
                  "the shuffling seed.", ""]
    text = "\n".join(lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="dataloader,overhead,trainer")
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench.md"))
    args = parser.parse_args(argv)
    benches = {"dataloader": bench_dataloader, "overhead": bench_overhead, "trainer": bench_trainer}
    results = {}
    for name in args.only.split(","):
        start = time.perf_counter()
        results[name] = benches[name](args.repeats)
        print(f"{name}: done in {time.perf_counter() - start:.0f} s", flush=True)
    (ROOT / "reports").mkdir(exist_ok=True)
    (ROOT / "reports" / "bench.json").write_text(json.dumps(results, indent=1))
    print(write_markdown(results, Path(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
