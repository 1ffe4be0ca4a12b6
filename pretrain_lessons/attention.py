"""Attention from scratch (scaled dot-product, multi-head, masks), per-head attention measures,
and a long-range task on real text that compares an LSTM with a tiny Transformer."""
from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------- attention


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
                                 scaled: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q kᵀ / √d) v for q (…, Lq, d), k (…, Lk, d), v (…, Lk, dv); returns (output (…, Lq, dv), weights (…, Lq, Lk)).

    `mask` is boolean and broadcastable to (…, Lq, Lk): True where a query may attend to a key.
    """
    scores = q @ k.transpose(-2, -1)
    if scaled:
        scores = scores / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def causal_mask(n: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(n, n) boolean mask, True on and below the diagonal: position i may attend to positions 0…i only."""
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """A tokenizer's attention_mask (B, L) of 1 = token, 0 = padding → boolean (B, 1, 1, L), True where keys may be attended."""
    return attention_mask.bool()[:, None, None, :]


class MultiHeadAttention(nn.Module):
    """Multi-head attention: project to h heads of size d/h, attend in each head, concatenate, project back."""

    def __init__(self, d_model: int, num_heads: int, bias: bool = True):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not divisible by num_heads {num_heads}")
        self.d_model, self.num_heads, self.head_dim = d_model, num_heads, d_model // num_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape  # (B, L, d) → (B, h, L, d/h)
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None, value: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, need_weights: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Inputs (B, L, d) (key and value default to query: self-attention); returns (output (B, Lq, d), weights (B, h, Lq, Lk)).

        With need_weights=False the same arithmetic runs in PyTorch's fused kernel (faster, less memory) and
        the weights come back as None.
        """
        key = query if key is None else key
        value = key if value is None else value
        q, k, v = self._split(self.q_proj(query)), self._split(self.k_proj(key)), self._split(self.v_proj(value))
        if need_weights:
            out, weights = scaled_dot_product_attention(q, k, v, mask)
        else:
            out, weights = F.scaled_dot_product_attention(q, k, v, attn_mask=mask), None
        b, _, n, _ = out.shape
        out = out.transpose(1, 2).reshape(b, n, self.d_model)  # concatenate the heads
        return self.out_proj(out), weights

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention) -> "MultiHeadAttention":
        """A copy of an `nn.MultiheadAttention` (same d_model and heads, same weights) as this class."""
        if not mha._qkv_same_embed_dim:
            raise ValueError("only nn.MultiheadAttention with kdim = vdim = embed_dim is supported")
        bias = mha.in_proj_bias is not None
        ours = cls(mha.embed_dim, mha.num_heads, bias=bias)
        with torch.no_grad():
            # nn.MultiheadAttention stacks the three input projections in one (3d, d) matrix: q, then k, then v.
            for proj, w in zip((ours.q_proj, ours.k_proj, ours.v_proj), mha.in_proj_weight.chunk(3)):
                proj.weight.copy_(w)
            if bias:
                for proj, b in zip((ours.q_proj, ours.k_proj, ours.v_proj), mha.in_proj_bias.chunk(3)):
                    proj.bias.copy_(b)
                ours.out_proj.bias.copy_(mha.out_proj.bias)
            ours.out_proj.weight.copy_(mha.out_proj.weight)
        return ours


def softmax_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each attention distribution along the last axis: 0 = one-hot, log L = uniform."""
    return -(weights * weights.clamp_min(1e-12).log()).sum(-1)


# ---------------------------------------------------------------- reading attention maps


def offset_attention(attentions: torch.Tensor, offset: int, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Mean weight each head gives from token i to token i+offset (−1 = previous, +1 = next).

    `attentions` is (layers, heads, L, L) for one sentence; `keep` (L,) marks the query tokens to average
    over (default: every query that has an i+offset). Returns (layers, heads).
    """
    n = attentions.shape[-1]
    rows = torch.arange(n)
    cols = rows + offset
    valid = (cols >= 0) & (cols < n)
    if keep is not None:
        valid &= keep.bool()
    return attentions[..., rows[valid], cols[valid]].mean(-1)


def attention_to(attentions: torch.Tensor, columns: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Mean total weight each head gives to the key positions marked in `columns` (L,) bool; returns (layers, heads)."""
    mass = attentions[..., columns.bool()].sum(-1)  # (layers, heads, L)
    if keep is not None:
        mass = mass[..., keep.bool()]
    return mass.mean(-1)


@dataclass
class BertAttention:
    """One text through a BERT: its tokens, attention maps (layers, heads, L, L) and the hidden states entering each layer."""

    tokens: list[str]
    attentions: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...]


def bert_base(model: nn.Module) -> nn.Module:
    """The BertModel inside a task model (BertForMaskedLM, BertForSequenceClassification…) or the model itself."""
    return getattr(model, "bert", model)


@torch.no_grad()
def bert_attention(model: nn.Module, tokenizer, text: str, max_length: int = 128) -> BertAttention:
    """Run one text through a Hugging Face BERT and collect its attention maps and hidden states."""
    model.eval()
    enc = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_length)
    device = next(model.parameters()).device
    out = bert_base(model)(**{k: v.to(device) for k, v in enc.items()}, output_attentions=True, output_hidden_states=True)
    if not out.attentions:
        raise ValueError("the model returned no attention weights: load it with attn_implementation='eager' "
                         "(the default fused 'sdpa' kernel never forms the weights)")
    return BertAttention(tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist()),
                         torch.stack(out.attentions)[:, 0].float().cpu(),
                         tuple(h[0].float().cpu() for h in out.hidden_states))


def special_positions(tokens: list[str], token: str) -> torch.Tensor:
    """(L,) bool: where `token` (e.g. '[CLS]', '[SEP]') sits."""
    return torch.tensor([t == token for t in tokens])


def head_profile(result: BertAttention) -> dict[str, torch.Tensor]:
    """Five simple measures per head (each (layers, heads)): mean attention to the previous token, the next token,
    the token itself, [CLS] and [SEP], averaged over the sentence's word-piece queries ([CLS]/[SEP] rows excluded)."""
    a, tokens = result.attentions, result.tokens
    cls, sep = special_positions(tokens, "[CLS]"), special_positions(tokens, "[SEP]")
    words_only = ~(cls | sep)
    return {
        "previous token": offset_attention(a, -1, words_only),
        "next token": offset_attention(a, 1, words_only),
        "itself": offset_attention(a, 0, words_only),
        "[CLS]": attention_to(a, cls, words_only),
        "[SEP]": attention_to(a, sep, words_only),
    }


def mean_head_profile(model: nn.Module, tokenizer, texts: list[str], max_length: int = 64) -> dict[str, torch.Tensor]:
    """head_profile averaged over many texts."""
    total: dict[str, torch.Tensor] = {}
    for text in texts:
        for name, value in head_profile(bert_attention(model, tokenizer, text, max_length)).items():
            total[name] = total.get(name, 0) + value / len(texts)
    return total


@torch.no_grad()
def attention_from_scratch(model: nn.Module, result: BertAttention, layer: int) -> torch.Tensor:
    """Recompute one BERT layer's attention weights (heads, L, L) from its input with our own attention function."""
    block = bert_base(model).encoder.layer[layer].attention.self
    h = result.hidden_states[layer].to(next(model.parameters()).device)
    heads = bert_base(model).config.num_attention_heads
    split = lambda x: x.view(x.shape[0], heads, -1).transpose(0, 1)  # (L, d) → (heads, L, d/heads)
    q, k, v = split(block.query(h)), split(block.key(h)), split(block.value(h))
    return scaled_dot_product_attention(q, k, v)[1].float().cpu()


@torch.no_grad()
def norm_weighted_attention(model: nn.Module, result: BertAttention) -> torch.Tensor:
    """‖α_ij · f(x_j)‖ for every layer, head, query i and key j (Kobayashi et al., 2020): the size of what each key
    actually adds to each query's output, where f(x_j) is key j's value vector passed through the output projection."""
    base = bert_base(model)
    heads = base.config.num_attention_heads
    device = next(model.parameters()).device
    maps = []
    for layer, block in enumerate(base.encoder.layer):
        h = result.hidden_states[layer].to(device)
        v = block.attention.self.value(h)                                # (L, d)
        v = v.view(v.shape[0], heads, -1)                                # (L, heads, d/heads)
        w_out = block.attention.output.dense.weight                      # (d, d): columns grouped by head
        w_out = w_out.view(w_out.shape[0], heads, -1)                    # (d, heads, d/heads)
        f = torch.einsum("lhe,dhe->hld", v, w_out)                       # (heads, L, d)
        maps.append(result.attentions[layer].to(device) * f.norm(dim=-1)[:, None, :])
    return torch.stack(maps).float().cpu()


def special_token_shares(model: nn.Module, tokenizer, texts: list[str], max_length: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Per head (layers, heads), averaged over texts and word-piece queries: the share of attention *weight* on [CLS]
    and [SEP], and the share of the norm-weighted contributions ‖α f(x)‖ that they make up."""
    weight_share, norm_share = 0, 0
    for text in texts:
        result = bert_attention(model, tokenizer, text, max_length)
        special = special_positions(result.tokens, "[CLS]") | special_positions(result.tokens, "[SEP]")
        norms = norm_weighted_attention(model, result)
        weight_share = weight_share + result.attentions[..., special].sum(-1)[..., ~special].mean(-1) / len(texts)
        norm_share = norm_share + (norms[..., special].sum(-1) / norms.sum(-1))[..., ~special].mean(-1) / len(texts)
    return weight_share, norm_share


# ---------------------------------------------------------------- a long-range task on real text

WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?")
PAD, UNK = 0, 1
SPLITS = {"train": (0.0, 0.7), "validation": (0.7, 0.8), "test": (0.8, 1.0)}


def words(text: str) -> list[str]:
    """Lower-cased words of a text (letters and inner apostrophes)."""
    return WORD_RE.findall(text.lower())


@dataclass
class LongRangeTask:
    """Which author wrote the hidden passage? A `key_len`-word passage by Austen (label 0) or Melville (label 1) sits
    inside filler words from the other Gutenberg books; the model answers after the last word.

    A sequence of `length` words is `before` filler words, the passage, then `distance` filler words
    (before + key_len + distance = length). The distance, and with it the passage's position, is drawn at random for
    each sequence unless fixed, so a model cannot find the passage by where it sits.

    Every book is split by position (`SPLITS`): its first 70 % of words feed training sequences, the next 10 %
    validation sequences, the last 20 % test sequences, so no validation or test passage was seen in training.
    """

    books: dict[str, list[str]]
    classes: tuple[tuple[str, ...], ...]
    vocab: dict[str, int]
    key_len: int = 16

    def __post_init__(self):
        # Every book as one tensor of word ids, so a sequence is cut out with one gather.
        self._ids = {name: torch.tensor(self.encode(ws), dtype=torch.long) for name, ws in self.books.items()}

    @classmethod
    def from_gutenberg(cls, texts: dict[str, str], vocab_size: int = 6000, key_len: int = 16,
                       classes: tuple[tuple[str, ...], ...] = (("austen-emma.txt", "austen-persuasion.txt", "austen-sense.txt"),
                                                               ("melville-moby_dick.txt",))) -> "LongRangeTask":
        """Tokenise the books and build a word vocabulary from the training parts of all of them."""
        books = {name: words(text) for name, text in texts.items()}
        missing = [b for group in classes for b in group if b not in books]
        if missing:
            raise ValueError(f"books {missing} are not among the texts given ({sorted(books)})")
        counts: Counter = Counter()
        for ws in books.values():
            counts.update(ws[: int(len(ws) * SPLITS["train"][1])])
        vocab = {"<pad>": PAD, "<unk>": UNK}
        for w, _ in counts.most_common(vocab_size - 2):
            vocab[w] = len(vocab)
        return cls(books, classes, vocab, key_len)

    @property
    def distractor_books(self) -> list[str]:
        """The books the filler words come from: every book that belongs to no class."""
        used = {b for group in self.classes for b in group}
        return sorted(b for b in self.books if b not in used)

    def encode(self, ws: list[str]) -> list[int]:
        """Word ids (unknown words → <unk>)."""
        return [self.vocab.get(w, UNK) for w in ws]

    def _starts(self, books: list[str], choice: torch.Tensor, n_words: torch.Tensor, split: str,
                gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """For each row, a random start (in the split's part of the chosen book) of a run of n_words[row] words;
        returns (book index, start)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, not {split!r}")
        share_lo, share_hi = SPLITS[split]
        lo = torch.tensor([int(len(self._ids[b]) * share_lo) for b in books])[choice]
        hi = torch.tensor([int(len(self._ids[b]) * share_hi) for b in books])[choice]
        room = hi - lo - n_words
        if (room < 1).any():
            raise ValueError(f"a book's {split} part is shorter than the {int(n_words.max())} words asked for")
        return choice, lo + (torch.rand(len(choice), generator=gen) * room).long()

    def sample(self, n: int, split: str = "train", seed: int = 0, *, length: int | None = None,
               distance: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """n sequences (n, length) of word ids, their labels (n,) and each passage's distance from the end (n,).

        `distance` fixes how many filler words follow the passage; None draws it uniformly from 0 … length − key_len
        for each sequence. `length` defaults to key_len + distance (then nothing comes before the passage).
        Labels alternate, so the classes are balanced; the order is shuffled.
        """
        if length is None:
            if distance is None:
                raise ValueError("give the sequence length, the distance, or both")
            length = self.key_len + distance
        span = length - self.key_len
        if span < 0 or (distance is not None and not 0 <= distance <= span):
            raise ValueError(f"distance {distance} does not fit a passage of {self.key_len} words into {length} words")
        # a generator of its own for each (seed, split, length, distance): the same call gives the same sequences
        gen = torch.Generator().manual_seed(zlib.crc32(repr((seed, split, length, distance)).encode()))
        labels = torch.arange(n) % len(self.classes)
        after = (torch.full((n,), distance) if distance is not None
                 else torch.randint(0, span + 1, (n,), generator=gen))
        before = span - after
        # the passage: a book of the row's class, then a start in its split
        group_books = [list(group) for group in self.classes]
        flat = [b for group in group_books for b in group]
        offset = torch.tensor([0] + [len(g) for g in group_books]).cumsum(0)[labels]
        sizes = torch.tensor([len(g) for g in group_books])[labels]
        choice = offset + (torch.rand(n, generator=gen) * sizes).long()
        key_book, key_start = self._starts(flat, choice, torch.full((n,), self.key_len), split, gen)
        filler = self.distractor_books
        pre_book, pre_start = self._starts(filler, torch.randint(0, len(filler), (n,), generator=gen), before, split, gen)
        post_book, post_start = self._starts(filler, torch.randint(0, len(filler), (n,), generator=gen), after, split, gen)
        # One long tensor of every book, and each position's index into it.
        names = flat + filler
        all_ids = torch.cat([self._ids[b] for b in names])
        base = torch.tensor([0] + [len(self._ids[b]) for b in names]).cumsum(0)
        key_at = base[key_book] + key_start
        pre_at = base[len(flat) + pre_book] + pre_start
        post_at = base[len(flat) + post_book] + post_start
        j = torch.arange(length)[None, :]
        b, a = before[:, None], (before + self.key_len)[:, None]
        index = torch.where(j < b, pre_at[:, None] + j,
                            torch.where(j < a, key_at[:, None] + j - b, post_at[:, None] + j - a))
        x = all_ids[index]
        order = torch.randperm(n, generator=gen)
        return x[order], labels[order], after[order]

    def make(self, distance: int | None, n: int, split: str = "train", seed: int = 0,
             length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n sequences and their labels (see `sample`); the distances are dropped."""
        x, y, _ = self.sample(n, split, seed, length=length, distance=distance)
        return x, y


def sinusoidal_positions(n: int, d: int) -> torch.Tensor:
    """The fixed sine/cosine position codes of Vaswani et al. (2017), (n, d)."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    table = torch.zeros(n, d)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table


class LSTMClassifier(nn.Module):
    """Reads the words left to right with an LSTM (长短期记忆网络) and classifies from its state after the last word.

    `forget_bias` is added to the forget gate's bias at initialisation (Gers et al., 2000; Jozefowicz et al., 2015):
    with 1 the gate starts at sigmoid(1) ≈ 0.73 instead of 0.5, so the cell state starts out remembering. PyTorch
    keeps two bias vectors per layer (b_ih, b_hh), gates ordered input, forget, cell, output; we set the forget part
    of b_ih to `forget_bias` and of b_hh to 0.
    """

    def __init__(self, vocab_size: int, d: int = 64, hidden: int = 64, num_classes: int = 2, layers: int = 1,
                 forget_bias: float = 1.0):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d, padding_idx=PAD)
        self.lstm = nn.LSTM(d, hidden, num_layers=layers, batch_first=True)
        with torch.no_grad():
            for name, p in self.lstm.named_parameters():
                if name.startswith("bias_"):
                    p[hidden:2 * hidden] = forget_bias if name.startswith("bias_ih") else 0.0
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(self.embed(x))
        return self.head(self.norm(states[:, -1]))


class RNNClassifier(nn.Module):
    """A vanilla (Elman) recurrent network (循环神经网络), h_t = tanh(W x_t + U h_{t−1} + b), read left to right and
    classified from its state after the last word. 150 hidden units give it about the LSTM's parameter count."""

    def __init__(self, vocab_size: int, d: int = 64, hidden: int = 150, num_classes: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d, padding_idx=PAD)
        self.rnn = nn.RNN(d, hidden, nonlinearity="tanh", batch_first=True)
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.rnn(self.embed(x))
        return self.head(self.norm(states[:, -1]))


class TransformerBlock(nn.Module):
    """Pre-norm Transformer block: x + attention(norm(x)), then x + feed-forward(norm(x))."""

    def __init__(self, d: int, heads: int, ff: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = MultiHeadAttention(d, heads)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Linear(ff, d))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, need_weights: bool = False):
        """The block's output (B, L, d), and the attention weights (B, h, L, L) when asked for."""
        a, weights = self.attn(self.norm1(x), mask=mask, need_weights=need_weights)
        x = x + a
        x = x + self.ff(self.norm2(x))
        return (x, weights) if need_weights else x


class TinyTransformerClassifier(nn.Module):
    """Causal Transformer (each word sees only earlier words) that classifies from its output at the last word."""

    def __init__(self, vocab_size: int, d: int = 64, heads: int = 4, ff: int = 128, layers: int = 1,
                 num_classes: int = 2, max_len: int = 2048):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d, padding_idx=PAD)
        self.register_buffer("positions", sinusoidal_positions(max_len, d), persistent=False)
        self.blocks = nn.ModuleList(TransformerBlock(d, heads, ff) for _ in range(layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, num_classes)

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """Logits (B, classes); with return_attention, also each block's weights stacked as (B, layers, h, L, L)."""
        n = x.shape[1]
        h = self.embed(x) + self.positions[:n]
        mask = causal_mask(n, x.device)
        maps = []
        for block in self.blocks:
            if return_attention:
                h, w = block(h, mask, need_weights=True)
                maps.append(w)
            else:
                h = block(h, mask)
        logits = self.head(self.norm(h[:, -1]))
        return (logits, torch.stack(maps, 1)) if return_attention else logits


def count_parameters(model: nn.Module, skip_embeddings: bool = False) -> int:
    """Number of trainable parameters (optionally without the word-embedding table)."""
    return sum(p.numel() for name, p in model.named_parameters()
               if p.requires_grad and not (skip_embeddings and name.startswith("embed.")))


def passage_mask(distances: torch.Tensor, length: int, key_len: int = 16) -> torch.Tensor:
    """(n, length) bool, True on the passage's words, for sequences whose passage is followed by `distances` (n,) words."""
    start = length - key_len - distances
    j = torch.arange(length)[None, :]
    return (j >= start[:, None]) & (j < (start + key_len)[:, None])


# ---------------------------------------------------------------- what attention costs


def block_flops(length: int, d: int, ff: int) -> dict[str, int]:
    """Floating-point operations (a multiply-add counts 2) of one TransformerBlock forward pass on one sequence of
    `length` tokens, by part. The first two grow like L, attention's like L²:

    - projections: q, k, v and the output projection, 4 matrices d × d per token → 2 · 4d² · L
    - feed-forward: d → ff → d per token → 2 · 2·d·ff · L
    - attention: the scores QKᵀ (L × L dot products of length d) and the weighted sum of values (the same) → 2 · 2·L²·d
    Layer norms, softmax, GELU and biases are a few operations per number and left out.
    """
    return {"projections": 2 * 4 * d * d * length, "feed-forward": 2 * 2 * d * ff * length,
            "attention (QKᵀ and weights·V)": 2 * 2 * length * length * d}


def counted_flops(fn) -> int:
    """FLOPs of the matrix products PyTorch runs inside fn(), counted by torch.utils.flop_counter.FlopCounterMode.

    It counts matmul / bmm / linear; it does not see inside fused kernels such as F.scaled_dot_product_attention on
    CPU (it reports 0 for them), so count a model through its eager attention path."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def seconds(fn, repeats: int = 5, warmup: int = 1) -> float:
    """The fastest of `repeats` timed calls of fn() (after `warmup` untimed ones): the least disturbed measurement
    when other programs share the machine."""
    import time

    for _ in range(warmup):
        fn()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
