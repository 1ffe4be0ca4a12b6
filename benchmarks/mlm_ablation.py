"""Lesson 04's recipe ablation: each arm pretrains a tiny BERT from scratch and is scored the same way.

    python benchmarks/mlm_ablation.py NAME [field=value ...]      e.g.  dropout_only dropout=0.0 initializer_range=0.02

An arm is the cpu-scale recipe (`mlm.recipe()`) with the given fields changed. Each arm trains with the course's loop
(`mlm.train` with keep=False: no checkpoint, evaluation only at the end), then answers the same held-out questions: every third held-out block,
masked once with a fixed seed, scored at the [MASK] positions only, beside the unigram guess on the same positions.
One line of JSON per arm is appended to reports/mlm_ablation.jsonl; lesson 04 shows that file. One thread per arm,
so that two arms can run side by side on two cores (the seconds are measured that way).
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pretrain_lessons import mlm, scale  # noqa: E402

OUT = ROOT / "reports" / "mlm_ablation.jsonl"


def run_arm(name: str, changes: dict) -> dict:
    """Pretrain one arm and score it at held-out [MASK] positions; returns its row."""
    torch.set_num_threads(1)
    r = dataclasses.replace(mlm.recipe(), **changes)
    texts = mlm.corpus(r)
    tokenizer = mlm.train_tokenizer(texts["train"] + texts["reviews"], r.vocab_size)
    data = mlm.prepare(r, tokenizer=tokenizer, texts=texts)
    model = mlm.new_model(r, tokenizer)
    start = time.perf_counter()
    history = mlm.train(model, data, r, progress=False, keep=False)
    seconds = time.perf_counter() - start
    questions = mlm.held_out_questions(data, r.mlm_probability)
    every_third = torch.arange(0, len(questions), 3)
    questions = mlm.Questions(questions.input_ids[every_third], questions.attention_mask[every_third],
                              questions.labels[every_third], questions.mask_token_id)
    at_mask = mlm.score(model, questions).only(0)
    unigram = mlm.baselines(data.train_blocks, questions, tokenizer)["unigram guess"].only(0).accuracy
    top_share = float(torch.bincount(at_mask.guess).max()) / len(at_mask.guess)
    return {"arm": name, "changes": changes, "steps": r.steps, "seconds": round(seconds),
            "mask_accuracy_%": round(100 * at_mask.accuracy, 2), "se_%": round(100 * at_mask.accuracy_se, 2),
            "unigram_%": round(100 * unigram, 2), "mask_loss": round(at_mask.mean_loss, 3),
            "top_guess_share": round(top_share, 3), "final_train_loss": round(history.steps[-1]["loss"], 3),
            "positions": len(at_mask.loss), "scale": scale.current()}


def main(argv: list[str]) -> int:
    name, pairs = argv[0], [a.split("=", 1) for a in argv[1:]]
    types = {f.name: f.type for f in dataclasses.fields(mlm.Recipe)}
    changes = {k: (float(v) if types[k] in ("float", float) else int(v)) for k, v in pairs}
    row = run_arm(name, changes)
    print(json.dumps(row))
    with OUT.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
