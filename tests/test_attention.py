"""Attention from scratch: parity with PyTorch's implementations, masks, head measures, the long-range task."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pretrain_lessons.attention import (
    LongRangeTask, LSTMClassifier, MultiHeadAttention, TinyTransformerClassifier, attention_to, causal_mask,
    count_parameters, offset_attention, padding_mask, scaled_dot_product_attention, sinusoidal_positions,
    softmax_entropy, words,
)


def test_scaled_dot_product_attention_matches_torch_with_and_without_masks():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 4)
    out, w = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 5))
    keep = torch.tensor([[1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1]])
    out, w = scaled_dot_product_attention(q, k, v, padding_mask(keep))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=padding_mask(keep)), atol=1e-5, rtol=1e-5)
    assert w[0, :, :, 4:].abs().max() == 0  # padded keys get exactly zero weight


def test_causal_mask_blocks_the_future():
    m = causal_mask(4)
    assert m.dtype == torch.bool and m[2, :3].all() and not m[2, 3] and m.sum() == 10
    torch.manual_seed(1)
    q = k = v = torch.randn(1, 4, 6)
    out, w = scaled_dot_product_attention(q, k, v, m)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-5)
    assert w[0].triu(1).abs().max() == 0
    # Changing a later token does not change an earlier output.
    v2 = v.clone()
    v2[0, 3] += 10
    out2, _ = scaled_dot_product_attention(q, k, v2, m)
    assert torch.allclose(out[0, :3], out2[0, :3])


def test_scaling_keeps_score_variance_near_one():
    torch.manual_seed(0)
    d = 256
    q, k = torch.randn(2000, d), torch.randn(2000, d)
    raw = (q * k).sum(-1)
    assert 0.8 * d < raw.var() < 1.2 * d
    assert 0.8 < (raw / math.sqrt(d)).var() < 1.2


@pytest.mark.parametrize("bias", [True, False])
def test_multi_head_attention_equals_torch_with_copied_weights(bias):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(32, 4, batch_first=True, bias=bias).eval()
    ours = MultiHeadAttention.from_torch(mha).eval()
    x = torch.randn(3, 9, 32)
    key_padding = torch.zeros(3, 9, dtype=torch.bool)
    key_padding[0, 6:] = True   # nn.MultiheadAttention: True = ignore this key
    key_padding[1, 8:] = True
    ref, ref_w = mha(x, x, x, key_padding_mask=key_padding, average_attn_weights=False)
    out, w = ours(x, mask=padding_mask(~key_padding))
    assert (out - ref).abs().max() < 1e-5
    assert (w - ref_w).abs().max() < 1e-5
    # The same with a causal mask (nn.MultiheadAttention: True = blocked).
    ref, _ = mha(x, x, x, attn_mask=~causal_mask(9))
    out, _ = ours(x, mask=causal_mask(9))
    assert (out - ref).abs().max() < 1e-5


def test_multi_head_attention_rejects_bad_head_count():
    with pytest.raises(ValueError):
        MultiHeadAttention(30, 4)


def test_softmax_entropy_limits():
    assert softmax_entropy(torch.tensor([1.0, 0, 0])).item() == pytest.approx(0, abs=1e-6)
    assert softmax_entropy(torch.full((8,), 1 / 8)).item() == pytest.approx(math.log(8))


def test_head_measures_on_a_known_pattern():
    n = 5
    prev = torch.zeros(n, n)
    prev[0, 0] = 1
    prev[torch.arange(1, n), torch.arange(n - 1)] = 1  # every token looks at the one before it
    attn = torch.stack([torch.stack([prev, torch.eye(n)])])  # (1 layer, 2 heads, n, n)
    scores = offset_attention(attn, -1)
    assert scores.shape == (1, 2)
    assert scores[0, 0] == 1 and scores[0, 1] == 0
    assert offset_attention(attn, 0)[0, 1] == 1
    first = torch.zeros(n, dtype=torch.bool)
    first[0] = True
    torch.testing.assert_close(attention_to(attn, first), torch.tensor([[2 / n, 1 / n]]))


def test_long_range_task_sequences_are_split_balanced_and_deterministic():
    texts = {
        "austen-emma.txt": " ".join(f"emma{i % 50}" for i in range(2000)),
        "melville-moby_dick.txt": " ".join(f"whale{i % 50}" for i in range(2000)),
        "other.txt": " ".join(f"filler{i % 50}" for i in range(2000)),
    }
    task = LongRangeTask.from_gutenberg(texts, vocab_size=200, key_len=8,
                                        classes=(("austen-emma.txt",), ("melville-moby_dick.txt",)))
    assert task.distractor_books == ["other.txt"]
    x, y = task.make(20, 40, "train", seed=3)
    assert x.shape == (40, 28) and y.float().mean() == 0.5
    x2, y2 = task.make(20, 40, "train", seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    inv = {i: w for w, i in task.vocab.items()}
    for row, label in zip(x, y):
        key = {inv[int(i)][:4] for i in row[:8]}
        assert key == ({"emma"} if label == 0 else {"whal"})
        assert {inv[int(i)][:6] for i in row[8:]} == {"filler"}
    assert words("Don't STOP, Emma!") == ["don't", "stop", "emma"]


def test_long_range_test_passages_come_from_the_held_out_part():
    texts = {f"{b}.txt": " ".join([f"{b}train"] * 800 + [f"{b}test"] * 200) for b in ("a", "b", "c")}
    task = LongRangeTask.from_gutenberg(texts, vocab_size=100, key_len=5, classes=(("a.txt",), ("b.txt",)))
    assert {"atrain", "btrain", "ctrain"} <= set(task.vocab) and "atest" not in task.vocab
    xtest, _ = task.make(10, 30, "test")
    assert set(xtest.flatten().tolist()) == {1}  # only held-out words: all <unk>
    xtrain, _ = task.make(10, 30, "train")
    assert 1 not in set(xtrain.flatten().tolist())


def test_classifiers_shapes_parameter_parity_and_causality():
    torch.manual_seed(0)
    lstm, tf = LSTMClassifier(100), TinyTransformerClassifier(100)
    x = torch.randint(2, 100, (4, 12))
    assert lstm(x).shape == tf(x).shape == (4, 2)
    a, b = count_parameters(lstm, skip_embeddings=True), count_parameters(tf, skip_embeddings=True)
    assert abs(a - b) / a < 0.05
    assert count_parameters(lstm) - a == 100 * 64
    # The Transformer's answer at the last word changes when an early word changes (it can see it).
    x2 = x.clone()
    x2[:, 0] = (x2[:, 0] + 1) % 100
    assert not torch.allclose(tf(x), tf(x2))


def test_sinusoidal_positions():
    p = sinusoidal_positions(10, 8)
    assert p.shape == (10, 8) and p[0, 0] == 0 and p[0, 1] == 1 and p.abs().max() <= 1


def _tiny_random_bert():
    from transformers import AutoTokenizer, BertConfig, BertModel

    from pretrain_lessons.data.loaders import minilm_dir

    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, attn_implementation="eager")
    return BertModel(config).eval(), tokenizer


def test_bert_helpers_reproduce_the_model_attention_and_measure_heads():
    from pretrain_lessons.attention import (attention_from_scratch, bert_attention, head_profile,
                                            norm_weighted_attention, special_token_shares)

    model, tokenizer = _tiny_random_bert()
    result = bert_attention(model, tokenizer, "the cat sat on the mat.")
    assert result.tokens[0] == "[CLS]" and result.tokens[-1] == "[SEP]"
    n = len(result.tokens)
    assert result.attentions.shape == (2, 2, n, n) and len(result.hidden_states) == 3
    for layer in range(2):
        assert (attention_from_scratch(model, result, layer) - result.attentions[layer]).abs().max() < 1e-5
    profile = head_profile(result)
    assert set(profile) == {"previous token", "next token", "itself", "[CLS]", "[SEP]"}
    assert all(v.shape == (2, 2) and (v >= 0).all() and (v <= 1 + 1e-6).all() for v in profile.values())
    norms = norm_weighted_attention(model, result)
    assert norms.shape == result.attentions.shape and (norms >= 0).all()
    weight_share, norm_share = special_token_shares(model, tokenizer, ["one text", "and another, longer text"])
    assert weight_share.shape == norm_share.shape == (2, 2)
    assert ((weight_share > 0) & (weight_share < 1) & (norm_share > 0) & (norm_share < 1)).all()


def test_bert_attention_explains_the_sdpa_pitfall():
    from transformers import BertModel

    from pretrain_lessons.attention import bert_attention

    model, tokenizer = _tiny_random_bert()
    sdpa = BertModel(model.config.__class__(**{**model.config.to_dict(), "attn_implementation": "sdpa"})).eval()
    sdpa.config._attn_implementation = "sdpa"
    with pytest.raises(ValueError, match="eager"):
        bert_attention(sdpa, tokenizer, "a test")


def test_attention_explorer_renders_and_redraws(monkeypatch):
    pytest.importorskip("ipywidgets")
    from pretrain_lessons.widgets import lesson07

    drawn = []
    monkeypatch.setattr(lesson07, "figure_output", lambda fig: drawn.append(fig.axes[0].get_title()))
    model, tokenizer = _tiny_random_bert()
    ui = lesson07.attention_explorer({"tiny": (model, tokenizer)}, "a short test sentence")
    assert ui.controls["layer"].max == 1 and ui.controls["head"].max == 1
    assert len(drawn) == 1 and drawn[0].startswith("tiny · layer 0 · head 0")
    ui.controls["head"].value = 1
    ui.controls["sentence"].value = "another one"
    assert len(drawn) == 3 and drawn[-1].startswith("tiny · layer 0 · head 1")


def test_norm_weighted_attention_matches_a_direct_computation():
    from pretrain_lessons.attention import bert_attention, norm_weighted_attention

    model, tokenizer = _tiny_random_bert()
    result = bert_attention(model, tokenizer, "attention is not explanation")
    norms = norm_weighted_attention(model, result)
    layer, head, dh = 1, 1, 8
    block = model.encoder.layer[layer].attention
    with torch.no_grad():
        v = block.self.value(result.hidden_states[layer])[:, head * dh:(head + 1) * dh]       # (L, dh)
        f = v @ block.output.dense.weight[:, head * dh:(head + 1) * dh].T                   # (L, d)
    want = result.attentions[layer, head] * f.norm(dim=-1)[None, :]
    torch.testing.assert_close(norms[layer, head], want, atol=1e-5, rtol=1e-4)


def test_fused_path_gives_the_same_outputs():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2)
    x = torch.randn(2, 6, 16)
    for mask in (None, causal_mask(6), padding_mask(torch.tensor([[1] * 6, [1] * 3 + [0] * 3]))):
        slow, w = mha(x, mask=mask)
        fast, none = mha(x, mask=mask, need_weights=False)
        assert none is None and w.shape == (2, 2, 6, 6)
        assert (slow - fast).abs().max() < 1e-5
    model = TinyTransformerClassifier(50, layers=2)
    ids = torch.randint(2, 50, (3, 7))
    logits, maps = model(ids, return_attention=True)
    assert maps.shape == (3, 2, 4, 7, 7)
    assert (logits - model(ids)).abs().max() < 1e-5
