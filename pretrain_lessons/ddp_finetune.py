"""Fine-tune a BERT-style classifier on the movie reviews with the course's loop, on one process or many.

One process:        python -m pretrain_lessons.ddp_finetune --out runs/ddp1
Two (CPU, gloo):    torchrun --nproc_per_node 2 -m pretrain_lessons.ddp_finetune --out runs/ddp2
  or:               accelerate launch --multi_gpu --num_processes 2 -m pretrain_lessons.ddp_finetune …  (on GPUs)

Each process builds the same model from the same seed, reads its own shard of every batch (so the
`--global-batch` examples of one step are split across processes), and DistributedDataParallel averages
the gradients — so N processes take the same steps as one process with the whole batch, N times faster
when each has its own device. Every rank writes its final weights to OUT/rank<k>.pt for inspection.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from . import distributed
from .data.loaders import TensorLoader, minilm_dir, rotten_tomatoes
from .device import seed_everything
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
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--train-examples", type=int, default=None, help="use only the first N training reviews")
    parser.add_argument("--dropout", type=float, default=0.1, help="0 makes runs with different process counts comparable")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    world = distributed.world_size()
    if args.global_batch % world:
        parser.error(f"--global-batch {args.global_batch} must be divisible by the {world} processes")
    seed_everything(args.seed)
    model = build_model(args.model, args.dropout)
    # The loader holds the whole data set; fit() gives each process its shard of every batch.
    train = review_loader("train", args.global_batch, args.max_length, args.train_examples, shuffle=True)
    start = time.perf_counter()
    optimizer = (torch.optim.SGD(model.parameters(), lr=args.lr) if args.optimizer == "sgd"
                 else torch.optim.AdamW(model.parameters(), lr=args.lr))
    history = fit(model, train, max_steps=args.steps, optimizer=optimizer, scheduler="linear",
                  warmup_steps=max(1, args.steps // 10), progress=distributed.is_main())
    seconds = time.perf_counter() - start
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / f"rank{distributed.rank()}.pt")
    result = {"world_size": world, "steps": args.steps, "global_batch": args.global_batch, "seconds": seconds,
              "final_loss": history.steps[-1]["loss"], "examples_per_s": args.steps * args.global_batch / seconds}
    if distributed.is_main():
        val = review_loader("validation", 256, args.max_length, None, shuffle=False)
        result["val_accuracy"] = evaluate(model, val, progress=False)["accuracy"]
        (out / "result.json").write_text(json.dumps(result, indent=1))
        print(json.dumps(result))
    distributed.barrier()
    if world > 1 and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return result


if __name__ == "__main__":
    main()
