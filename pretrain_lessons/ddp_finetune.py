"""Fine-tune a BERT-style classifier on the movie reviews with the course's loop, on one process or many.

One process:        python -m pretrain_lessons.ddp_finetune --out runs/ddp1
Two (CPU, gloo):    torchrun --nproc_per_node 2 -m pretrain_lessons.ddp_finetune --out runs/ddp2
On GPUs:            torchrun --nproc_per_node 4 -m pretrain_lessons.ddp_finetune --out runs/ddp4 --model minilm

Each process builds the same model from the same seed, reads its own shard of every batch (so the
`--global-batch` examples of one step are split across processes), and DistributedDataParallel averages
the gradients — so N processes take the same steps as one process with the whole batch. Every rank writes
its final weights to OUT/rank<k>.pt for inspection; rank 0 writes OUT/result.json.

What the script reads from the launcher: only the environment variables RANK, WORLD_SIZE and LOCAL_RANK (and
MASTER_ADDR / MASTER_PORT, read by torch.distributed when the process group starts). `accelerate launch` sets
the same variables, so it can start this script too, but the settings saved by `accelerate config` (mixed
precision, gradient accumulation, …) are *not* read: pass them as arguments (`--precision bf16`).

Timing: the process group is started, and every rank has reached a barrier, before the clock starts; the first
`--timing-warmup` steps (first-call allocations, DDP's bucket set-up) are left out, and throughput is measured
over the remaining steps from per-step timestamps.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch

from . import distributed
from .data.loaders import TensorLoader, minilm_dir, rotten_tomatoes
from .device import get_device, seed_everything
from .train import evaluate, fit


def build_model(kind: str, dropout: float):
    """The classifier: MiniLM (pretrained) or a tiny BERT from scratch with the same vocabulary."""
    from transformers import BertConfig, BertForSequenceClassification

    if kind == "minilm":
        return BertForSequenceClassification.from_pretrained(minilm_dir(), num_labels=2, hidden_dropout_prob=dropout,
                                                             attention_probs_dropout_prob=dropout)
    config = BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=128, num_labels=2,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return BertForSequenceClassification(config)


def review_loader(split: str, batch_size: int, max_length: int, limit: int | None, shuffle: bool) -> TensorLoader:
    """Tokenised reviews of one split as a TensorLoader of input_ids / attention_mask / labels."""
    from transformers import AutoTokenizer

    texts, labels = rotten_tomatoes(split)
    if limit:
        texts, labels = texts[:limit], labels[:limit]
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    return TensorLoader(enc["input_ids"], enc["attention_mask"], torch.tensor(labels),
                        keys=("input_ids", "attention_mask", "labels"), batch_size=batch_size, shuffle=shuffle)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for weights and metrics")
    parser.add_argument("--model", choices=["tiny", "minilm"], default="tiny")
    parser.add_argument("--global-batch", type=int, default=32, help="examples per optimizer step, over all processes")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw",
                        help="sgd makes 1- and N-process runs agree to rounding (Adam magnifies tiny differences)")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16", "auto"], default="fp32")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--train-examples", type=int, default=None, help="use only the first N training reviews")
    parser.add_argument("--dropout", type=float, default=0.1, help="0 makes runs with different process counts comparable")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per process (torch.set_num_threads)")
    parser.add_argument("--timing-warmup", type=int, default=None,
                        help="steps left out of the throughput (default: a tenth of --steps)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    world = distributed.world_size()
    if args.global_batch % world:
        parser.error(f"--global-batch {args.global_batch} must be divisible by the {world} processes")
    t_start = time.perf_counter()
    device = distributed.setup(get_device())      # joins the process group; fit() finds it already started
    distributed.barrier()
    init_seconds = time.perf_counter() - t_start
    seed_everything(args.seed)
    model = build_model(args.model, args.dropout)
    # The loader holds the whole data set; fit() gives each process its shard of every batch.
    train = review_loader("train", args.global_batch, args.max_length, args.train_examples, shuffle=True)
    optimizer = (torch.optim.SGD(model.parameters(), lr=args.lr) if args.optimizer == "sgd"
                 else torch.optim.AdamW(model.parameters(), lr=args.lr))
    stamps: list[float] = []
    distributed.barrier()
    start = time.perf_counter()
    history = fit(model, train, max_steps=args.steps, optimizer=optimizer, scheduler="linear", device=device,
                  warmup_steps=max(1, args.steps // 10), precision=args.precision, progress=distributed.is_main(),
                  callbacks=(lambda info: stamps.append(time.perf_counter()),))
    seconds = time.perf_counter() - start
    skip = min(args.timing_warmup if args.timing_warmup is not None else args.steps // 10, len(stamps) - 2)
    skip = max(skip, 0)
    timed_steps = len(stamps) - 1 - skip
    timed_seconds = stamps[-1] - stamps[skip] if timed_steps > 0 else seconds
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / f"rank{distributed.rank()}.pt")
    result = {"world_size": world, "threads_per_process": torch.get_num_threads(), "steps": args.steps,
              "global_batch": args.global_batch, "init_seconds": init_seconds, "seconds": seconds,
              "timed_steps": timed_steps, "timed_seconds": timed_seconds,
              "examples_per_s": max(timed_steps, 1) * args.global_batch / timed_seconds,
              "final_loss": history.steps[-1]["loss"]}
    if distributed.is_main():
        val = review_loader("validation", 256, args.max_length, None, shuffle=False)
        result["val_accuracy"] = evaluate(model, val, progress=False)["accuracy"]
        (out / "result.json").write_text(json.dumps(result, indent=1))
        print(json.dumps(result))
    distributed.barrier()
    if world > 1 and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return result


# ---------------------------------------------------------------- launching from a notebook


def free_port() -> str:
    """A free TCP port on this machine for the process group's rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def command(processes: int, out: str | Path, args: list[str], threads: int, launcher: str = "torchrun") -> list[str]:
    """The command line that runs this script on `processes` processes (torchrun, or `accelerate launch`, for more
    than one). Accelerate's --multi_gpu mode is its torchrun-based launcher: on a machine without GPUs the script
    then runs on CPU processes with gloo (accelerate's --cpu mode starts a single process)."""
    module = ["-m", "pretrain_lessons.ddp_finetune", "--out", str(out), "--threads", str(threads), *args]
    if processes == 1:
        return [sys.executable, *module]
    if launcher == "accelerate":
        return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "--main_process_port", free_port(), *module]
    if launcher != "torchrun":
        raise ValueError(f"launcher must be 'torchrun' or 'accelerate'; got {launcher!r}")
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
            "--master_port", free_port(), *module]


def shown(cmd: list[str], folder: Path) -> str:
    """A command as a reader would type it (torchrun / python, runs/ instead of the temporary folder)."""
    text = " ".join(cmd).replace(str(folder), "runs").replace(f"{sys.executable} -m torch.distributed.run", "torchrun")
    text = text.replace(f"{sys.executable} -m accelerate.commands.launch", "accelerate launch")
    text = text.replace(sys.executable, "python")
    parts = text.split()
    for flag in ("--master_port", "--main_process_port"):   # a random free port: not part of the lesson
        if flag in parts:
            i = parts.index(flag)
            del parts[i:i + 2]
    return " ".join(parts)


def launch(processes: int, threads: int, out: Path, args: list[str], timeout: int = 900, launcher: str = "torchrun") -> dict:
    """Run the script as a separate program (1 process, or `processes` under torchrun) and return rank 0's result.

    Each process gets `threads` CPU threads (OMP_NUM_THREADS and --threads), so runs can be compared by cores used.
    """
    out = Path(out)
    cmd = command(processes, out, args, threads, launcher)
    env = {**os.environ, "PRETRAIN_LESSONS_PROGRESS": "off", "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"{shown(cmd, out.parent)} failed:\n{done.stderr[-3000:]}")
    result = json.loads((out / "result.json").read_text())
    result["wall seconds (with start-up)"] = time.perf_counter() - t0
    result["command"] = shown(cmd, out.parent)
    return result


def scaling_runs(setups: dict[str, tuple[int, int]], args: list[str], folder: Path,
                 concurrent: bool | None = None) -> dict[str, dict]:
    """Launch the script once per setup {name: (processes, threads per process)}, one after the other.

    With `concurrent=True` (default: at smoke scale, where only correctness is tested) they start at once to save
    time — their timings then mean nothing, because they compete for the same cores.
    """
    from . import scale

    folder = Path(folder)
    concurrent = scale.current() == "smoke" if concurrent is None else concurrent
    jobs = {name: (processes, threads, folder / name) for name, (processes, threads) in setups.items()}
    for name, (processes, threads, out) in jobs.items():
        print("$", shown(command(processes, out, args, threads), folder), flush=True)
    if concurrent:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(jobs)) as pool:
            futures = {name: pool.submit(launch, p, t, o, args) for name, (p, t, o) in jobs.items()}
            return {name: f.result() for name, f in futures.items()}
    return {name: launch(p, t, o, args) for name, (p, t, o) in jobs.items()}


if __name__ == "__main__":
    main()
