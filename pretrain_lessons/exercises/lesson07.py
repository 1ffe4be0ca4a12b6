"""Exercises of 07_attention_inside_bert: attention weights, padding masks, parameter counts, reading heads."""
from __future__ import annotations

import math

import torch

from ..attention import offset_attention
from .core import Exercise, Incorrect, call


def _reference_weights(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1)


def _check_q1(fn):
    if not callable(fn):
        raise Incorrect("give a function attention_weights(q, k) that returns a tensor.")
    gen = torch.Generator().manual_seed(7)
    for shape_q, shape_k in [((5, 16), (5, 16)), ((2, 3, 4, 64), (2, 3, 6, 64))]:
        q, k = torch.randn(*shape_q, generator=gen), torch.randn(*shape_k, generator=gen)
        got = call(fn, q, k)
        want = _reference_weights(q, k)
        if not isinstance(got, torch.Tensor):
            raise Incorrect(f"return a torch tensor; got {type(got).__name__}.")
        if got.shape != want.shape:
            raise Incorrect(f"for q {tuple(q.shape)} and k {tuple(k.shape)} the weights have shape {tuple(want.shape)} "
                            f"(one row per query, one column per key); yours has {tuple(got.shape)}. Transpose only k's last two axes.")
        if not torch.allclose(got.sum(-1), torch.ones(want.shape[:-1]), atol=1e-4):
            raise Incorrect("each query's weights should sum to 1 over the keys: take the softmax over the last axis (dim=-1).")
        if torch.allclose(got, (q @ k.transpose(-2, -1)).softmax(-1), atol=1e-5):
            raise Incorrect("you forgot the scaling: divide the scores by √d (d = q.shape[-1]) before the softmax.")
        if torch.allclose(got, (q @ k.transpose(-2, -1) / q.shape[-1]).softmax(-1), atol=1e-5):
            raise Incorrect("divide by the square root of d, not by d itself.")
        if not torch.allclose(got, want, atol=1e-5):
            raise Incorrect("the values differ from softmax(q kᵀ / √d) along the last axis.")


q1 = Exercise(
    name="q1",
    question="Write attention_weights(q, k): the weights softmax(q kᵀ / √d) for q (…, Lq, d) and k (…, Lk, d).",
    checker=_check_q1,
    hint_text="`q @ k.transpose(-2, -1)` gives the (…, Lq, Lk) scores; divide by `math.sqrt(q.shape[-1])`; `.softmax(-1)`.",
    solution_code=("import math\n\ndef attention_weights(q, k):\n"
                   "    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])\n"
                   "    return scores.softmax(dim=-1)"),
    answer_name="attention_weights",
    wrong_answers=[
        "def attention_weights(q, k):\n    return (q @ k.transpose(-2, -1)).softmax(-1)",
        "def attention_weights(q, k):\n    return (q @ k.transpose(-2, -1) / q.shape[-1]).softmax(-1)",
        "import math\ndef attention_weights(q, k):\n    return (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-2)",
        "def attention_weights(q, k):\n    return 'weights'",
    ],
)


def _check_q2(fn):
    if not callable(fn):
        raise Incorrect("give a function to_key_padding_mask(attention_mask).")
    attention_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    got = call(fn, attention_mask)
    want = attention_mask == 0
    if not isinstance(got, torch.Tensor):
        raise Incorrect(f"return a torch tensor; got {type(got).__name__}.")
    if got.shape != want.shape:
        raise Incorrect(f"keep the shape (batch, length) = {tuple(want.shape)}; yours is {tuple(got.shape)}.")
    if got.dtype != torch.bool:
        raise Incorrect(f"nn.MultiheadAttention wants a boolean mask; yours has dtype {got.dtype} (compare with == 0).")
    if torch.equal(got, ~want):
        raise Incorrect("that is inverted: in key_padding_mask, True means *ignore this key* — True must sit on the padding.")
    if not torch.equal(got, want):
        raise Incorrect("True exactly where attention_mask is 0 (padding), False on real tokens.")


q2 = Exercise(
    name="q2",
    question=("A tokenizer's attention_mask has 1 for real tokens and 0 for padding. Write to_key_padding_mask(attention_mask) "
              "that returns the key_padding_mask nn.MultiheadAttention expects."),
    checker=_check_q2,
    hint_text="nn.MultiheadAttention's key_padding_mask is boolean, and True marks the keys to *ignore*.",
    solution_code="def to_key_padding_mask(attention_mask):\n    return attention_mask == 0",
    answer_name="to_key_padding_mask",
    wrong_answers=[
        "def to_key_padding_mask(attention_mask):\n    return attention_mask.bool()",
        "def to_key_padding_mask(attention_mask):\n    return 1 - attention_mask",
        "def to_key_padding_mask(attention_mask):\n    return (attention_mask == 0)[:, None, None, :]",
    ],
)


def _check_q3(answer):
    d = 384
    if not isinstance(answer, int) or isinstance(answer, bool):
        raise Incorrect("give a whole number (an int).")
    if answer == 4 * d * d:
        raise Incorrect("that counts the four weight matrices; each of the four projections also has a bias of size d.")
    if answer == 3 * d * d + 3 * d:
        raise Incorrect("that is the input projection (q, k, v) only; add the output projection (d × d weights + d biases).")
    if answer == 12 * (4 * d * d + 4 * d) or answer == 4 * (d // 12) ** 2 * 12 + 4 * d:
        raise Incorrect("the heads do not multiply the count: the 12 heads share the d × d matrices, each taking d/12 of the columns.")
    if answer != 4 * d * d + 4 * d:
        raise Incorrect(f"{answer:,} is not it. Count q, k, v and output projections: each a d × d matrix plus a bias of d.")


q3 = Exercise(
    name="q3",
    question=("MiniLM's self-attention has d_model = 384 and 12 heads. How many parameters does "
              "nn.MultiheadAttention(384, 12) hold? Work it out, then check with sum(p.numel() for p in …parameters())."),
    checker=_check_q3,
    hint_text="Four projections (q, k, v, output), each d × d weights plus d biases. The number of heads does not change it.",
    solution_code="d = 384\nn_params = 4 * d * d + 4 * d",
    answer_name="n_params",
    wrong_answers=["n_params = 4 * 384 * 384", "n_params = 3 * 384 * 384 + 3 * 384",
                   "n_params = 12 * (4 * 384 * 384 + 4 * 384)", "n_params = 591360.0"],
)


def _check_q4(fn):
    if not callable(fn):
        raise Incorrect("give a function previous_token_score(attentions).")
    gen = torch.Generator().manual_seed(3)
    attentions = torch.rand(3, 4, 9, 9, generator=gen).softmax(-1)
    got = call(fn, attentions)
    want = offset_attention(attentions, -1)
    if not isinstance(got, torch.Tensor):
        raise Incorrect(f"return a torch tensor; got {type(got).__name__}.")
    if got.shape != want.shape:
        raise Incorrect(f"return one number per head: shape (layers, heads) = {tuple(want.shape)}; yours is {tuple(got.shape)}.")
    if torch.allclose(got, offset_attention(attentions, 1), atol=1e-6):
        raise Incorrect("that is the attention to the *next* token (i → i+1); the previous token of query i is key i − 1.")
    if torch.allclose(got, offset_attention(attentions, 0), atol=1e-6):
        raise Incorrect("that is each token's attention to itself (the diagonal); take the diagonal just below it.")
    if not torch.allclose(got, want, atol=1e-6):
        raise Incorrect("average attentions[..., i, i-1] over the queries i = 1 … L−1 (query 0 has no previous token).")


q4 = Exercise(
    name="q4",
    question=("Write previous_token_score(attentions): for maps of shape (layers, heads, L, L), the mean weight that "
              "each query i (i ≥ 1) gives to key i − 1 — one number per head, shape (layers, heads)."),
    checker=_check_q4,
    hint_text=("`torch.diagonal(attentions, offset=-1, dim1=-2, dim2=-1)` returns the entries [i, i−1] along a new last axis; "
               "average it."),
    solution_code=("import torch\n\ndef previous_token_score(attentions):\n"
                   "    return torch.diagonal(attentions, offset=-1, dim1=-2, dim2=-1).mean(-1)"),
    answer_name="previous_token_score",
    wrong_answers=[
        "import torch\ndef previous_token_score(attentions):\n    return torch.diagonal(attentions, offset=1, dim1=-2, dim2=-1).mean(-1)",
        "import torch\ndef previous_token_score(attentions):\n    return torch.diagonal(attentions, dim1=-2, dim2=-1).mean(-1)",
        "import torch\ndef previous_token_score(attentions):\n    return torch.diagonal(attentions, offset=-1, dim1=-2, dim2=-1).mean()",
    ],
)
