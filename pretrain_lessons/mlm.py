"""Masked-language-model pretraining (掩码语言模型预训练) of a tiny BERT: corpus, tokenizer, blocks, loaders, recipe.

Lesson 04 calls these functions step by step; `pretrained_tiny_bert()` calls the same ones in the same order
(through `pretrain()`), so lessons 05, 07 and 08 get exactly the model lesson 04 trains — and train it
themselves, resumably, when it is missing.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import torch

from . import paths, scale
from .data.loaders import TensorLoader, gutenberg_texts, rotten_tomatoes
from .text import mask_tokens, special_ids_of

NAME = "tiny-bert-mlm"


# ---------------------------------------------------------------- the recipe


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the pretrained model; one per scale (see `recipe()`)."""

    vocab_size: int = 8000          # WordPiece vocabulary trained on the corpus
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 2
    intermediate_size: int = 512
    initializer_range: float = 0.1  # std of the initial weights; BERT's 0.02 was set for width 768 (see lesson 04)
    dropout: float = 0.0            # off while pretraining: a short run on a big corpus does not over-fit
    block_size: int = 64            # tokens per training sequence, [CLS] and [SEP] included
    batch_size: int = 32            # 32 × 64 = 2,048 token positions per step
    steps: int = 3000               # twice the steps of batch 64 for the same compute: it leaves the plateau sooner
    lr: float = 2e-3
    warmup_steps: int = 200
    weight_decay: float = 0.01
    mlm_probability: float = 0.15
    held_out_fraction: float = 0.05  # the last 5 % of every book is never trained on
    max_chars_per_book: int | None = None   # None: whole books
    review_texts: int | None = None         # unlabelled training-split reviews added; 0: none, None: all
    review_repeats: int = 4                 # each review appears this many times per pass (masked afresh each time)
    eval_blocks: int = 256          # held-out blocks used for the curves
    eval_every: int = 250
    seed: int = 0


RECIPE_WHY = {
    "vocab_size": "a WordPiece vocabulary trained on the corpus; small, so the output layer is cheap",
    "hidden_size": "tiny: minutes on a CPU (bert-base: 768)",
    "initializer_range": "BERT's 0.02 was set for width 768; at 128 it leaves attention flat (measured below)",
    "dropout": "off: one pass over a large corpus does not over-fit (ablation below)",
    "num_layers": "bert-base has 12",
    "num_heads": "two heads of 64 dimensions each (bert-base: 12 heads of 64)",
    "intermediate_size": "the feed-forward layer is 4 × the hidden size, BERT's ratio (bert-base: 3,072)",
    "block_size": "most reviews fit in 64 tokens; attention's cost grows with the square of the length",
    "batch_size": "more, smaller steps left the plateau sooner than fewer, larger ones (ablation below)",
    "steps": "optimizer steps; the passes over the training rows are printed below",
    "warmup_steps": "the rate rises from zero first: large early steps on random weights are unstable",
    "weight_decay": "AdamW's decoupled decay (not on biases and norms)",
    "lr": "peak rate after warm-up, then a linear decay to zero",
    "mlm_probability": "BERT's 15 %, with the 80/10/10 mix",
    "held_out_fraction": "the last 5 % of every book is never trained on",
    "review_texts": "None: every training-split review (texts only, no labels)",
    "review_repeats": "each review is masked afresh four times per pass",
    "eval_blocks": "held-out blocks scored during training (all of them are scored at the end)",
    "eval_every": "steps between held-out scores: enough points for the curves, each costs only a pass over eval_blocks",
    "max_chars_per_book": "None: whole books (the smoke scale keeps the first 20,000 characters, to run in seconds)",
    "seed": "fixes the initial weights (seed) and the shuffling and masking (seed + 1): the same model every run",
}


def recipe() -> Recipe:
    """The pretraining recipe for the scale in force."""
    return scale.pick(
        smoke=Recipe(vocab_size=1000, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                     batch_size=16, steps=12, warmup_steps=2, max_chars_per_book=20_000, review_texts=500,
                     review_repeats=1, eval_blocks=16, eval_every=6),
        cpu=Recipe(),
        # Not yet measured on a GPU: a larger model trained longer, same recipe otherwise (the initial weight scale
        # shrinks as 1/√width, as lesson 04 explains).
        gpu=Recipe(hidden_size=256, num_layers=4, num_heads=4, intermediate_size=1024, initializer_range=0.07,
                   batch_size=256, steps=10000, lr=1e-3, warmup_steps=500, eval_blocks=1024, eval_every=500),
    )


def tiny_bert_config(vocab_size: int, hidden_size: int = 128, num_layers: int = 2, num_heads: int = 2,
                     intermediate_size: int = 512, max_position_embeddings: int = 128, pad_token_id: int = 0,
                     initializer_range: float = 0.02, dropout: float = 0.1):
    """The tiny BERT architecture (a `BertConfig`): build it with random weights to train from scratch."""
    from transformers import BertConfig

    return BertConfig(vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers,
                      num_attention_heads=num_heads, intermediate_size=intermediate_size,
                      max_position_embeddings=max_position_embeddings, pad_token_id=pad_token_id,
                      type_vocab_size=2, initializer_range=initializer_range, hidden_dropout_prob=dropout,
                      attention_probs_dropout_prob=dropout)


def config_for(r: Recipe, tokenizer):
    """The BertConfig of a recipe, with the tokenizer's vocabulary size and padding id."""
    return tiny_bert_config(len(tokenizer), r.hidden_size, r.num_layers, r.num_heads, r.intermediate_size,
                            max_position_embeddings=max(128, r.block_size), pad_token_id=tokenizer.pad_token_id,
                            initializer_range=r.initializer_range, dropout=r.dropout)


# ---------------------------------------------------------------- the corpus


def split_book(text: str, held_out_fraction: float) -> tuple[str, str]:
    """(train part, held-out part) of one book: the held-out part is its last fraction, cut at a line break."""
    cut = int(len(text) * (1 - held_out_fraction))
    newline = text.rfind("\n", 0, cut)
    cut = newline if newline > cut * 0.9 else cut
    return text[:cut], text[cut:]


def corpus(r: Recipe | None = None) -> dict[str, list[str]]:
    """Pretraining texts: 'train' (Gutenberg books minus their tails), 'reviews' (training-split review texts,
    no labels) and 'held_out' (the tail of every book: prose the model never trains on)."""
    r = r or recipe()
    train, held_out = [], []
    for _, text in sorted(gutenberg_texts().items()):
        if r.max_chars_per_book:
            text = text[:r.max_chars_per_book]
        head, tail = split_book(text, r.held_out_fraction)
        train.append(head)
        held_out.append(tail)
    reviews: list[str] = []
    if r.review_texts != 0:
        reviews = rotten_tomatoes("train")[0][:r.review_texts]   # texts only: no labels, no validation or test
    return {"train": train, "reviews": reviews, "held_out": held_out}


# ---------------------------------------------------------------- the tokenizer


def train_tokenizer(texts: list[str], vocab_size: int):
    """A lower-casing WordPiece tokenizer (BERT's algorithm) trained on `texts`, as a transformers BertTokenizerFast."""
    from tokenizers import BertWordPieceTokenizer
    from tokenizers.models import WordPiece
    from transformers import BertTokenizerFast

    wordpiece = BertWordPieceTokenizer(lowercase=True, strip_accents=True, clean_text=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    wordpiece.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  special_tokens=specials)
    # The trainer numbers the pieces in a hash order that changes from one process to the next, and with it every
    # embedding row the seeded model draws. Number them in a fixed order instead — the special tokens, then the
    # pieces sorted — so the ids depend only on the pieces found (on the course's corpus the same 8,000 pieces in
    # every run we checked; on a tiny corpus a tie can still swap a piece).
    pieces = sorted(t for t in wordpiece.get_vocab() if t not in specials)
    wordpiece._tokenizer.model = WordPiece({t: i for i, t in enumerate(specials + pieces)}, unk_token="[UNK]")
    tokenizer = BertTokenizerFast(tokenizer_object=wordpiece._tokenizer, unk_token="[UNK]", sep_token="[SEP]",
                                  pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]", do_lower_case=True)
    tokenizer.model_max_length = 512
    return tokenizer


def load_or_train_tokenizer(r: Recipe | None = None, texts: list[str] | None = None, folder: Path | None = None):
    """The recipe's tokenizer: loaded from the checkpoint folder if saved there, else trained and saved there."""
    from transformers import AutoTokenizer

    r = r or recipe()
    folder = folder or checkpoint_folder()
    if (folder / "tokenizer.json").exists() and _saved_recipe(folder) == asdict(r):
        return AutoTokenizer.from_pretrained(folder)
    if texts is None:
        parts = corpus(r)
        texts = parts["train"] + parts["reviews"]
    tokenizer = train_tokenizer(texts, r.vocab_size)
    _start_folder(folder, r)
    tokenizer.save_pretrained(folder)
    return tokenizer


# ---------------------------------------------------------------- blocks and loaders


def make_blocks(tokenizer, texts: list[str], block_size: int) -> torch.Tensor:
    """Cut the concatenated token stream of `texts` into rows of [CLS] + (block_size − 2) tokens + [SEP]."""
    ids = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    stream = torch.tensor([t for doc in ids for t in doc], dtype=torch.long)
    inner = block_size - 2
    n = len(stream) // inner
    body = stream[:n * inner].view(n, inner)
    cls = torch.full((n, 1), tokenizer.cls_token_id, dtype=torch.long)
    sep = torch.full((n, 1), tokenizer.sep_token_id, dtype=torch.long)
    return torch.cat([cls, body, sep], dim=1)


def one_per_row(tokenizer, texts: list[str], block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each text its own row: [CLS] text [SEP], truncated and padded to block_size; (input_ids, attention_mask)."""
    enc = tokenizer(list(texts), truncation=True, max_length=block_size, padding="max_length", return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


class MLMLoader(TensorLoader):
    """Batches of token rows, masked afresh each time they are served (dynamic masking, as in RoBERTa).

    Masks come from torch's global generator, so a seeded run — and a run resumed by fit() — is repeatable.
    Padding (attention mask 0) is a special token and never masked.
    """

    def __init__(self, blocks: torch.Tensor, tokenizer, attention_mask: torch.Tensor | None = None, *,
                 batch_size: int = 32, shuffle: bool = True, mlm_probability: float = 0.15, drop_last: bool = True,
                 rank: int = 0, world_size: int = 1):
        attention_mask = torch.ones_like(blocks) if attention_mask is None else attention_mask
        super().__init__(blocks, attention_mask, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                         rank=rank, world_size=world_size)
        self.tokenizer, self.mlm_probability = tokenizer, mlm_probability
        self.mask_token_id, self.vocab_size = tokenizer.mask_token_id, len(tokenizer)
        self.special_ids = special_ids_of(tokenizer)

    @property
    def labels(self):
        """None: the labels are made by masking each batch (a TensorLoader would serve its second tensor here)."""
        return None

    def __iter__(self):
        for ids, attention_mask in super().__iter__():
            masked, labels = mask_tokens(ids, mlm_probability=self.mlm_probability, mask_token_id=self.mask_token_id,
                                         vocab_size=self.vocab_size, special_ids=self.special_ids)
            yield {"input_ids": masked, "attention_mask": attention_mask, "labels": labels}

    def shard(self, rank: int, world_size: int) -> "MLMLoader":
        """This process's part of every batch (distributed training)."""
        return MLMLoader(self.tensors[0], self.tokenizer, self.tensors[1], batch_size=self.batch_size // world_size,
                         shuffle=self.shuffle, mlm_probability=self.mlm_probability, drop_last=self.drop_last,
                         rank=rank, world_size=world_size)


def fixed_masked_loader(blocks: torch.Tensor, tokenizer, *, batch_size: int = 32, mlm_probability: float = 0.15,
                        seed: int = 1234) -> TensorLoader:
    """Held-out blocks masked once with a fixed seed: every evaluation scores the very same predictions.

    Every position is attended to (an all-ones attention mask): book blocks are full, with no padding."""
    q = questions_of(blocks, tokenizer, mlm_probability, seed)
    return TensorLoader(q.input_ids, q.attention_mask, q.labels, batch_size=batch_size,
                        keys=("input_ids", "attention_mask", "labels"))


@dataclass
class MLMData:
    """What pretraining needs: the tokenizer, the train rows (book blocks, then reviews), held-out blocks, loaders."""

    tokenizer: object
    train_blocks: torch.Tensor       # (rows, block_size) token ids
    held_out_blocks: torch.Tensor
    train_loader: MLMLoader
    held_out_loader: TensorLoader
    train_attention_mask: torch.Tensor | None = None
    n_book_blocks: int = 0


def prepare(r: Recipe | None = None, tokenizer=None, texts: dict | None = None) -> MLMData:
    """Corpus → tokenizer (trained once, then loaded) → rows → loaders, for a recipe.

    Books become contiguous blocks; each review is a row of its own, padded (the shape in which lesson 05 shows a
    review; packing reviews into full blocks would save the padding, not measured here), repeated `review_repeats`
    times.
    """
    r = r or recipe()
    texts = texts or corpus(r)
    tokenizer = tokenizer or load_or_train_tokenizer(r, texts["train"] + texts["reviews"])
    book_blocks = make_blocks(tokenizer, texts["train"], r.block_size)
    rows, masks = [book_blocks], [torch.ones_like(book_blocks)]
    if texts["reviews"]:
        review_ids, review_mask = one_per_row(tokenizer, texts["reviews"], r.block_size)
        rows += [review_ids] * r.review_repeats
        masks += [review_mask] * r.review_repeats
    train_ids, train_mask = torch.cat(rows), torch.cat(masks)
    held_out_blocks = make_blocks(tokenizer, texts["held_out"], r.block_size)
    # An evenly spread, fixed subset of held-out blocks keeps each evaluation quick.
    pick = torch.linspace(0, len(held_out_blocks) - 1, min(r.eval_blocks, len(held_out_blocks))).long()
    return MLMData(tokenizer, train_ids, held_out_blocks,
                   MLMLoader(train_ids, tokenizer, train_mask, batch_size=r.batch_size,
                             mlm_probability=r.mlm_probability),
                   fixed_masked_loader(held_out_blocks[pick], tokenizer, batch_size=128,
                                       mlm_probability=r.mlm_probability),
                   train_mask, len(book_blocks))


# ---------------------------------------------------------------- model, training, saving


@lru_cache(maxsize=1)
def sparse_head_class():
    """BertForMaskedLM with one change: in training, the MLM head scores only the positions that carry a label."""
    import torch.nn.functional as F
    from transformers import BertForMaskedLM
    from transformers.modeling_outputs import MaskedLMOutput

    class SparseHeadMaskedLM(BertForMaskedLM):
        """Same weights, same loss as BertForMaskedLM; the 85 % of positions without a label skip the vocabulary
        projection during training (it is most of a tiny BERT's compute). Evaluation computes every position."""

        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
            if not (self.training and labels is not None):
                return super().forward(input_ids=input_ids, attention_mask=attention_mask,
                                       token_type_ids=token_type_ids, labels=labels, **kwargs)
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids).last_hidden_state
            keep = labels != -100
            logits = self.cls(hidden[keep])
            # logits: (number of labelled positions, vocabulary), not (batch, length, vocabulary)
            return MaskedLMOutput(loss=F.cross_entropy(logits, labels[keep]), logits=logits)

    return SparseHeadMaskedLM


def new_model(r: Recipe, tokenizer):
    """A randomly initialised masked-LM tiny BERT of the recipe's size (seeded: the same weights every time)."""
    torch.manual_seed(r.seed)
    return sparse_head_class()(config_for(r, tokenizer))


def snapshot_steps(r: Recipe | None = None) -> tuple[int, ...]:
    """The steps at which training keeps a copy of the model: the start, a quarter and half way, and the end."""
    r = r or recipe()
    return tuple(sorted({0, r.steps // 4, r.steps // 2, r.steps}))


def snapshot_folder(step: int, folder: Path | None = None, r: Recipe | None = None) -> Path:
    """Where the model after `step` pretraining steps is saved (the finished model: the folder itself)."""
    r = r or recipe()
    folder = folder or checkpoint_folder()
    return folder if step == r.steps else folder / "snapshots" / f"step-{step:05d}"


def snapshots(folder: Path | None = None, r: Recipe | None = None) -> dict[int, Path]:
    """{pretraining steps: folder} of every saved snapshot, the finished model included (for from_pretrained)."""
    r = r or recipe()
    found = {step: snapshot_folder(step, folder, r) for step in snapshot_steps(r)}
    return {step: f for step, f in found.items() if (f / "model.safetensors").exists()}


def _save_for_finetuning(model, tokenizer, folder: Path) -> None:
    """save_pretrained, with BERT's fine-tuning settings in the configuration (see `save`)."""
    model.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["BertForMaskedLM"]       # the standard class loads these weights
    config.update(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, initializer_range=0.02)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    tokenizer.save_pretrained(folder)


def _snapshot(model, tokenizer, step: int, folder: Path, r: Recipe) -> None:
    """Save one snapshot into a temporary folder, then move it in place: a reader never sees half a model."""
    target = snapshot_folder(step, folder, r)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    _save_for_finetuning(model, tokenizer, tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def train(model, data: MLMData, r: Recipe | None = None, *, progress: bool = True, live_plot: bool = False,
          folder: Path | None = None, keep: bool = True):
    """Pretrain with the course's loop; resumable through the checkpoint `fit.pt` in the model's folder.

    With keep=True it also saves snapshots of the model along the way (`snapshot_steps`: lesson 05 fine-tunes them
    to see what more pretraining buys). keep=False trains the same way without a checkpoint, snapshots or held-out
    curve (quick experiments: the recipe ablation).
    """
    from .train import fit

    r = r or recipe()
    folder = folder or checkpoint_folder()
    saving, callbacks = {}, ()
    if keep:
        saving = dict(val_loader=data.held_out_loader, eval_every=r.eval_every, checkpoint=folder / "fit.pt",
                      checkpoint_every=250)
        folder.mkdir(parents=True, exist_ok=True)
        if (folder / "fit.pt").exists() and not (folder / "snapshots").exists():
            print("This checkpoint was trained before snapshots were kept: training again from the start, keeping them.")
            (folder / "fit.pt").unlink()
        if 0 not in snapshots(folder, r):
            # The starting weights are new_model's seeded draw: the same whether this run starts or resumes.
            _snapshot(new_model(r, data.tokenizer), data.tokenizer, 0, folder, r)
        middle = set(snapshot_steps(r)) - {0, r.steps}

        def keep_snapshot(row: dict) -> None:
            if row["step"] in middle:
                _snapshot(row["model"], data.tokenizer, row["step"], folder, r)

        callbacks = (keep_snapshot,)
    torch.manual_seed(r.seed + 1)   # shuffling and masking: the same run every time
    return fit(model, data.train_loader, max_steps=r.steps, lr=r.lr, weight_decay=r.weight_decay, scheduler="linear",
               warmup_steps=r.warmup_steps, max_grad_norm=1.0, progress=progress, live_plot=live_plot,
               callbacks=callbacks, **saving)


def save(model, tokenizer, history, r: Recipe | None = None, folder: Path | None = None,
         data: MLMData | None = None) -> Path:
    """Save model and tokenizer with save_pretrained, plus the recipe and a summary of the run.

    The saved configuration carries BERT's fine-tuning settings, not the pretraining ones: dropout 0.1, and new
    layers (a classifier head, the pooler) drawn with standard deviation 0.02. The recipe's initial scale and
    dropout 0 are for pretraining from scratch (recipe.json keeps them); lesson 05 fine-tunes with dropout, as BERT does.
    """
    r = r or recipe()
    folder = folder or checkpoint_folder()
    _save_for_finetuning(model, tokenizer, folder)
    positions = history.examples * r.block_size   # token positions processed, padding of review rows included
    fill = float(data.train_attention_mask.float().mean()) if data is not None and data.train_attention_mask is not None else 1.0
    tokens = positions * fill                     # real tokens (expected share of non-padding positions)
    summary = {"steps": len(history.steps), "seconds": history.seconds, "token_positions": positions,
               "tokens": round(tokens), "tokens_per_second": tokens / history.seconds if history.seconds else None,
               "final_train_loss": history.steps[-1]["loss"] if history.steps else None,
               "held_out_perplexity": history.last("val_perplexity") if history.evals else None}
    (folder / "summary.json").write_text(json.dumps(summary, indent=1))
    (folder / "recipe.json").write_text(json.dumps(asdict(r), indent=1))
    (folder / "recipe.pending.json").unlink(missing_ok=True)
    return folder


def checkpoint_folder() -> Path:
    """data/checkpoints/<scale>/tiny-bert-mlm/: model, tokenizer, recipe and the resumable training state."""
    return paths.checkpoint_dir(NAME)


def _saved_recipe(folder: Path) -> dict | None:
    for name in ("recipe.json", "recipe.pending.json"):
        if (folder / name).exists():
            return json.loads((folder / name).read_text())
    return None


def _start_folder(folder: Path, r: Recipe) -> None:
    """Empty a folder left by a different recipe, and note the recipe being trained."""
    if _saved_recipe(folder) not in (None, asdict(r)):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "recipe.pending.json").write_text(json.dumps(asdict(r), indent=1))


def is_complete(folder: Path | None = None, r: Recipe | None = None) -> bool:
    """Whether the folder holds a finished model and tokenizer of this recipe."""
    folder = folder or checkpoint_folder()
    r = r or recipe()
    done = (folder / "recipe.json").exists() and json.loads((folder / "recipe.json").read_text()) == asdict(r)
    return (done and (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
            and set(snapshots(folder, r)) == set(snapshot_steps(r)))


def pretrain(r: Recipe | None = None, *, progress: bool = True, live_plot: bool = False):
    """Lesson 04's whole recipe: prepare the data, build the model, train (resumably), save. Returns
    (model, data, history)."""
    r = r or recipe()
    data = prepare(r)
    model = new_model(r, data.tokenizer)
    history = train(model, data, r, progress=progress, live_plot=live_plot)
    save(model, data.tokenizer, history, r, data=data)
    return model, data, history


def pretrained_tiny_bert(progress: bool = True) -> Path:
    """The folder of the MLM-pretrained tiny BERT and its tokenizer (for from_pretrained), trained first if missing."""
    folder = checkpoint_folder()
    if not is_complete(folder):
        print(f"No pretrained tiny BERT at {scale.current()} scale yet: pretraining it with lesson 04's recipe "
              "(resumable; interrupt and re-run to continue).")
        pretrain(progress=progress)
    return folder


def training_summary(folder: Path | None = None) -> dict:
    """The summary saved with the pretrained model (steps, seconds, tokens per second, held-out perplexity)."""
    return json.loads(((folder or checkpoint_folder()) / "summary.json").read_text())


# ---------------------------------------------------------------- an evaluation that cannot be fooled


@dataclass
class Questions:
    """Held-out blocks masked once with a fixed seed, so that every model and baseline answers the same questions."""

    input_ids: torch.Tensor          # what the model sees: 80 % [MASK], 10 % random, 10 % unchanged at chosen positions
    attention_mask: torch.Tensor
    labels: torch.Tensor             # the original token at chosen positions, -100 elsewhere
    mask_token_id: int

    @property
    def kind(self) -> torch.Tensor:
        """Per chosen position: 0 the model sees [MASK], 1 a random token, 2 the answer itself (unchanged)."""
        chosen = self.labels != -100
        seen, truth = self.input_ids[chosen], self.labels[chosen]
        return torch.where(seen == self.mask_token_id, 0, torch.where(seen == truth, 2, 1))

    def __len__(self) -> int:
        return len(self.input_ids)


def questions_of(blocks: torch.Tensor, tokenizer, mlm_probability: float = 0.15, seed: int = 1234,
                 attention_mask: torch.Tensor | None = None) -> Questions:
    """Blocks of token ids, masked BERT's way once with a fixed seed. Padded rows (one review per row) need their
    attention_mask; without one every position is attended to (full book blocks)."""
    masked, labels = mask_tokens(blocks, tokenizer, mlm_probability, generator=torch.Generator().manual_seed(seed))
    mask = torch.ones_like(masked) if attention_mask is None else attention_mask
    return Questions(masked, mask, labels, tokenizer.mask_token_id)


def held_out_questions(data: "MLMData", mlm_probability: float = 0.15, seed: int = 1234) -> Questions:
    """Every held-out block, masked BERT's way once with a fixed seed."""
    return questions_of(data.held_out_blocks, data.tokenizer, mlm_probability, seed)


def eval_questions(data: "MLMData") -> Questions:
    """The questions scored during training (the `eval_blocks` held-out blocks of `data.held_out_loader`), for
    scoring position by position: the same positions, so the same loss as `train.evaluate` on that loader."""
    ids, attention_mask, labels = data.held_out_loader.tensors
    return Questions(ids, attention_mask, labels, data.tokenizer.mask_token_id)


@dataclass
class Scores:
    """Per chosen held-out position: the loss (nats), whether the top guess is right, and what was seen there."""

    loss: torch.Tensor
    correct: torch.Tensor
    kind: torch.Tensor               # 0 [MASK], 1 random token, 2 unchanged
    guess: torch.Tensor | None = None   # the top guess (token id)

    KINDS = ("[MASK]", "random token", "unchanged")

    def only(self, kind: int) -> "Scores":
        keep = self.kind == kind
        return Scores(self.loss[keep], self.correct[keep], self.kind[keep],
                      None if self.guess is None else self.guess[keep])

    @property
    def accuracy(self) -> float:
        return float(self.correct.float().mean())

    @property
    def accuracy_se(self) -> float:
        """Standard error of the accuracy (binomial)."""
        a, n = self.accuracy, len(self.correct)
        return (a * (1 - a) / max(n, 1)) ** 0.5

    @property
    def mean_loss(self) -> float:
        return float(self.loss.double().mean())

    @property
    def loss_se(self) -> float:
        """Standard error of the mean loss over the scored positions (taken as independent draws)."""
        return float(self.loss.double().std() / len(self.loss) ** 0.5)

    @property
    def pseudo_perplexity(self) -> float:
        """exp(mean loss at the scored positions): a masked-token pseudo-perplexity, not a language model's
        perplexity; it depends on the mask rate, the 80/10/10 mix and the tokenizer."""
        import math

        return math.exp(self.mean_loss)

    @property
    def pseudo_perplexity_interval(self) -> tuple[float, float]:
        """95 % interval of the pseudo-perplexity: exp(mean loss ± 1.96 standard errors)."""
        import math

        return math.exp(self.mean_loss - 1.96 * self.loss_se), math.exp(self.mean_loss + 1.96 * self.loss_se)

    def row(self) -> dict:
        low, high = self.pseudo_perplexity_interval
        return {"positions": len(self.loss), "accuracy %": round(100 * self.accuracy, 2),
                "± se": round(100 * self.accuracy_se, 2), "loss (nats)": round(self.mean_loss, 3),
                "loss ± se": round(self.loss_se, 3), "pseudo-perplexity": round(self.pseudo_perplexity, 1),
                "pseudo-perplexity 95 % interval": f"{low:.1f}–{high:.1f}"}


@torch.no_grad()
def score(model, questions: Questions, batch_size: int = 256) -> Scores:
    """Score a masked-language model at every chosen position of the questions."""
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    losses, correct, guesses = [], [], []
    for i in range(0, len(questions), batch_size):
        ids = questions.input_ids[i:i + batch_size].to(device)
        labels = questions.labels[i:i + batch_size].to(device)
        hidden = model.bert(input_ids=ids, attention_mask=questions.attention_mask[i:i + batch_size].to(device))
        keep = labels != -100
        logits = model.cls(hidden.last_hidden_state[keep]).float()
        losses.append(F.cross_entropy(logits, labels[keep], reduction="none").cpu())
        guesses.append(logits.argmax(-1).cpu())
        correct.append(guesses[-1] == labels[keep].cpu())
    model.train(was_training)
    return Scores(torch.cat(losses), torch.cat(correct), questions.kind, torch.cat(guesses))


def baselines(train_rows: torch.Tensor, questions: Questions, tokenizer, interpolation: float = 0.7,
              chunk: int = 1024) -> dict[str, Scores]:
    """Two guesses without a network, scored at the same positions as the model:

    - 'unigram guess': each token's training frequency (add-one smoothed): its top guess is always the commonest token;
    - 'bigram guess': both neighbours, counted in the training rows, p(x | left, right) ∝ p(x | left) · p(right | x),
      each bigram probability interpolated with the unigram; a neighbour that is itself [MASK] tells nothing.
    """
    import numpy as np
    from scipy import sparse

    vocab, special = len(tokenizer), special_ids_of(tokenizer)
    counts = torch.bincount(train_rows.flatten(), minlength=vocab).double().numpy()
    counts[special] = 0
    a, b = train_rows[:, :-1].flatten().numpy(), train_rows[:, 1:].flatten().numpy()
    pairs = sparse.coo_matrix((np.ones(len(a)), (a, b)), shape=(vocab, vocab)).tocsr()
    uni = counts + 1
    uni[special] = 0
    uni /= uni.sum()
    row_total = np.maximum(np.asarray(pairs.sum(1)).ravel(), 1)
    pairs_t = pairs.T.tocsr()
    chosen = questions.labels != -100
    r_, c_ = chosen.nonzero(as_tuple=True)
    truth = questions.labels[chosen].numpy()
    width = questions.input_ids.shape[1]
    left = questions.input_ids[r_, (c_ - 1).clamp(min=0)].numpy()
    right = questions.input_ids[r_, (c_ + 1).clamp(max=width - 1)].numpy()
    lam = interpolation
    uni_loss, uni_correct = -np.log(uni[truth]), truth == uni.argmax()
    bi_loss, bi_correct, bi_guess = [], [], []
    for s in range(0, len(truth), chunk):
        L, R, T = left[s:s + chunk], right[s:s + chunk], truth[s:s + chunk]
        p_left = lam * pairs[L].toarray() / row_total[L][:, None] + (1 - lam) * uni[None]
        p_left[np.isin(L, special)] = uni              # [MASK], [CLS]: no information from that side
        p_right = lam * pairs_t[R].toarray() / row_total[None] + (1 - lam) * uni[R][:, None]   # p(right | x), every x
        p_right[np.isin(R, special)] = 1.0
        p = p_left * p_right
        p[:, special] = 0
        p /= p.sum(1, keepdims=True)
        bi_loss.append(-np.log(np.maximum(p[np.arange(len(T)), T], 1e-30)))
        bi_guess.append(p.argmax(1))
        bi_correct.append(bi_guess[-1] == T)
    kind = questions.kind

    def as_scores(loss, ok, guess):
        return Scores(torch.as_tensor(loss, dtype=torch.float32), torch.as_tensor(ok), kind, torch.as_tensor(guess))

    return {"unigram guess": as_scores(uni_loss, uni_correct, np.full(len(truth), uni.argmax())),
            "bigram guess": as_scores(np.concatenate(bi_loss), np.concatenate(bi_correct), np.concatenate(bi_guess))}


@torch.no_grad()
def context_probe(model, questions: Questions, tokenizer, rows: int = 1024, seed: int = 0) -> dict[str, Scores]:
    """What the model takes from its context, scored at [MASK] positions kept at their index:

    'intact' rows as they are; 'shuffled context' the other ordinary tokens of each row shuffled among themselves
    (the same words, their order gone); 'no context' every other ordinary token replaced by [MASK].
    """
    g = torch.Generator().manual_seed(seed)
    pick = torch.linspace(0, len(questions) - 1, min(rows, len(questions))).long()
    ids, labels = questions.input_ids[pick], questions.labels[pick]
    at_mask = (labels != -100) & (ids == questions.mask_token_id)
    movable = ~at_mask & ~torch.isin(ids, torch.tensor(special_ids_of(tokenizer)))
    shuffled = ids.clone()
    for i in range(len(ids)):
        where = movable[i].nonzero().squeeze(1)
        shuffled[i, where] = ids[i, where[torch.randperm(len(where), generator=g)]]
    blank = torch.where(movable, questions.mask_token_id, ids)
    only_mask = torch.where(at_mask, labels, -100)
    out = {}
    for name, seen in (("intact", ids), ("shuffled context", shuffled), ("no context", blank)):
        out[name] = score(model, Questions(seen, questions.attention_mask[pick], only_mask, questions.mask_token_id))
    return out


# ---------------------------------------------------------------- using the model


@torch.no_grad()
def mask_probabilities(model, tokenizer, text: str) -> torch.Tensor:
    """(number of [MASK]s in `text`, vocabulary): the model's probabilities for each [MASK], in order."""
    model.eval()
    enc = tokenizer(text, return_tensors="pt", truncation=True,
                    max_length=model.config.max_position_embeddings)
    device = next(model.parameters()).device
    logits = model(**{k_: v.to(device) for k_, v in enc.items()}).logits[0]
    where = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero().squeeze(1)
    return logits[where].float().softmax(-1).cpu()


def fill_mask(model, tokenizer, text: str, k: int = 5) -> list[list[tuple[str, float]]]:
    """For each [MASK] in `text`, the k most likely tokens and their probabilities."""
    out = []
    for probs in mask_probabilities(model, tokenizer, text):
        top = probs.topk(k)
        out.append([(tokenizer.convert_ids_to_tokens(int(i)), float(p)) for p, i in zip(top.values, top.indices)])
    return out


def rank_of(model, tokenizer, text: str, word: str) -> list[tuple[int, float]] | None:
    """For each [MASK] in `text`: the rank of `word` among the model's guesses (1 = its top guess) and its
    probability. `word` is a token of the vocabulary (such as '##s') or a word the tokenizer keeps as one piece;
    None otherwise (one [MASK] is one piece)."""
    word, vocab = word.strip(), tokenizer.get_vocab()
    if word in vocab:
        token = vocab[word]
    else:
        pieces = tokenizer.tokenize(word)
        if len(pieces) != 1 or pieces[0] == tokenizer.unk_token:
            return None
        token = tokenizer.convert_tokens_to_ids(pieces[0])
    return [(int((probs > probs[token]).sum()) + 1, float(probs[token]))
            for probs in mask_probabilities(model, tokenizer, text)]


def seed001_pretraining(model, tokenizer, texts: list[str], steps: int, *, batch_size: int = 32, lr: float = 1e-4,
                        max_length: int = 64, seed: int = 0) -> list[float]:
    """Seed 001's pretraining loop as the seed writes it (labels = input_ids, nothing masked, no attention mask,
    Adam at 1e-4), stopped after `steps` steps. Returns the training losses. Shown to teach the bug: do not use."""
    from torch.utils.data import DataLoader, TensorDataset

    input_ids = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=max_length)["input_ids"]
    loader = DataLoader(TensorDataset(input_ids), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    device = next(model.parameters()).device
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses: list[float] = []
    while len(losses) < steps:
        for batch in loader:
            optimizer.zero_grad()
            ids = batch[0].to(device)
            outputs = model(ids, labels=ids)            # the seed's line: every label is the token itself
            outputs.loss.backward()
            optimizer.step()
            losses.append(outputs.loss.item())
            if len(losses) == steps:
                break
    model.eval()
    return losses


def copy_task_damage(model, tokenizer, texts: list[str], questions: Questions, steps: int,
                     sentences: tuple[str, ...] = (), **seed_settings) -> dict:
    """What seed 001's copy task does to a model that already fills in blanks: its [MASK]-only score on the same
    held-out questions and its fill-mask answers, before and after `steps` steps of seed001_pretraining (in place)."""
    before, fill_before = score(model, questions).only(0), [fill_mask(model, tokenizer, s) for s in sentences]
    losses = seed001_pretraining(model, tokenizer, texts, steps, **seed_settings)
    after, fill_after = score(model, questions).only(0), [fill_mask(model, tokenizer, s) for s in sentences]
    return {"before": before, "after": after, "losses": losses, "fill_before": fill_before, "fill_after": fill_after}


def damage_tables(result: dict, **other: "Scores"):
    """Two tables of a copy_task_damage result: [MASK]-only scores before and after (and any `other` scores given
    by name), and each sentence's five top fill-mask answers before and after."""
    import pandas as pd

    scores = pd.DataFrame({"before": result["before"].row(), "after seed 001's loop": result["after"].row(),
                           **{name: s.row() for name, s in other.items()}}).T
    rows = []
    for i, (before, after) in enumerate(zip(result["fill_before"], result["fill_after"])):
        for when, top in (("before", before[0]), ("after", after[0])):
            rows.append({"sentence": i + 1, "": when,
                         **{f"#{k + 1}": f"{tok} ({100 * p:.1f} %)" for k, (tok, p) in enumerate(top)}})
    return scores, pd.DataFrame(rows).set_index(["sentence", ""])


def bert_base_copy_task(texts: list[str], held_out_texts: list[str], sentences: tuple[str, ...], *, steps: int = 20,
                        batch_size: int = 8, rows: int = 64, name: str = "bert-base-uncased") -> dict | None:
    """With internet: seed 001's own setting — `bert-base-uncased` trained on the copy task — scored as in
    copy_task_damage (rows held-out blocks of 64 tokens). Offline it says so and returns None."""
    from transformers import AutoTokenizer, BertForMaskedLM

    from .device import get_device, is_online

    if not is_online():
        print(f"Offline: {name} cannot be downloaded here, so this part is skipped. With internet it runs in a few "
              "minutes on a CPU (seconds on a GPU).")
        return None
    tokenizer = AutoTokenizer.from_pretrained(name)
    model = BertForMaskedLM.from_pretrained(name).to(get_device())
    questions = questions_of(make_blocks(tokenizer, held_out_texts, 64)[:rows], tokenizer)
    return copy_task_damage(model, tokenizer, texts, questions, steps, sentences, batch_size=batch_size)


def parameter_counts(model) -> dict[str, int]:
    """Parameters per part of seed 004's architecture: embedding, encoder, pooling, head (MLM or classifier)."""
    bert = model.bert if hasattr(model, "bert") else model
    parts = {"embedding": bert.embeddings, "encoder": bert.encoder}
    if getattr(bert, "pooler", None) is not None:
        parts["pooling"] = bert.pooler
    counts = {name: sum(p.numel() for p in module.parameters()) for name, module in parts.items()}
    head = [m for n, m in model.named_children() if n in ("cls", "classifier")]
    if head:
        seen = {id(p) for module in parts.values() for p in module.parameters()}
        # The MLM decoder shares its weight with the word embeddings (weight tying): count it once.
        counts["head"] = sum(p.numel() for p in head[0].parameters() if id(p) not in seen)
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts
