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


def _toy_task(key_len=8):
    texts = {
        "austen-emma.txt": " ".join(f"emma{i % 50}" for i in range(3000)),
        "melville-moby_dick.txt": " ".join(f"whale{i % 50}" for i in range(3000)),
        "other.txt": " ".join(f"filler{i % 50}" for i in range(3000)),
        "more.txt": " ".join(f"extra{i % 50}" for i in range(3000)),
    }
    return LongRangeTask.from_gutenberg(texts, vocab_size=300, key_len=key_len,
                                        classes=(("austen-emma.txt",), ("melville-moby_dick.txt",)))


def test_long_range_passages_sit_at_random_places_that_sample_reports():
    from pretrain_lessons.attention import passage_mask

    task = _toy_task()
    inv = {i: w for w, i in task.vocab.items()}
    x, y, dist = task.sample(400, "train", seed=1, length=40)
    assert x.shape == (400, 40) and y.float().mean() == 0.5
    assert dist.min() >= 0 and dist.max() <= 32 and len(set(dist.tolist())) > 20   # spread over 0 … 32
    on = passage_mask(dist, 40, 8)
    assert (on.sum(1) == 8).all()
    for row, label, mask in zip(x[:50], y[:50], on[:50]):
        passage = {inv[int(i)][:4] for i in row[mask]}
        assert passage == ({"emma"} if label == 0 else {"whal"})
        assert {inv[int(i)][:5] for i in row[~mask]} <= {"fille", "extra"}
    # fixed distance: the passage ends exactly `distance` words before the end
    x, y, dist = task.sample(30, "test", seed=2, length=40, distance=5)
    assert (dist == 5).all()
    assert all(inv[int(i)].startswith(("emma", "whale")) for i in x[:, 40 - 5 - 8:40 - 5].flatten())
    # the same call gives the same sequences; another seed or split gives others
    assert torch.equal(task.sample(30, "test", seed=2, length=40, distance=5)[0], x)
    assert not torch.equal(task.sample(30, "test", seed=3, length=40, distance=5)[0], x)
    with pytest.raises(ValueError):
        task.sample(10, "train", length=40, distance=33)
    with pytest.raises(ValueError):
        task.sample(10, "dev", length=40)


def test_long_range_splits_do_not_overlap():
    texts = {f"{b}.txt": " ".join([f"{b}tr"] * 700 + [f"{b}va"] * 100 + [f"{b}te"] * 200) for b in ("a", "b", "c")}
    task = LongRangeTask.from_gutenberg(texts, vocab_size=100, key_len=5, classes=(("a.txt",), ("b.txt",)))
    assert "ava" not in task.vocab and "ate" not in task.vocab        # the vocabulary sees training parts only
    for split in ("validation", "test"):
        x, _, _ = task.sample(50, split, length=20)
        assert set(x.flatten().tolist()) == {1}                        # only held-out words: all <unk>
    x, _, _ = task.sample(50, "train", length=20)
    assert 1 not in set(x.flatten().tolist())


def test_lstm_forget_gate_bias_and_rnn_size():
    from pretrain_lessons.attention import RNNClassifier

    lstm = LSTMClassifier(100, hidden=64, forget_bias=1.0)
    b_ih, b_hh = lstm.lstm.bias_ih_l0.detach(), lstm.lstm.bias_hh_l0.detach()
    assert (b_ih[64:128] == 1).all() and (b_hh[64:128] == 0).all()    # gates: input, forget, cell, output
    assert (b_ih[:64] != 1).any()                                       # the other gates keep their initialisation
    default = LSTMClassifier(100, forget_bias=0.0)
    assert (default.lstm.bias_ih_l0[64:128] == 0).all()
    rnn = RNNClassifier(100)
    x = torch.randint(2, 100, (3, 9))
    assert rnn(x).shape == (3, 2)
    a, b = count_parameters(rnn, skip_embeddings=True), count_parameters(lstm, skip_embeddings=True)
    assert abs(a - b) / b < 0.05


def test_block_flops_formula_equals_the_counter_and_the_fused_kernel_hides_attention():
    from pretrain_lessons.attention import TransformerBlock, block_flops, counted_flops, seconds

    block = TransformerBlock(32, 4, 64).eval()
    for n in (5, 40):
        x = torch.randn(1, n, 32)
        with torch.no_grad():
            eager = counted_flops(lambda: block(x, causal_mask(n), need_weights=True))
            fused = counted_flops(lambda: block(x, causal_mask(n)))
        parts = block_flops(n, 32, 64)
        assert eager == sum(parts.values())
        assert fused == eager - parts["attention (QKᵀ and weights·V)"]    # FlopCounterMode sees no sdpa on CPU
    assert block_flops(256, 64, 128)["attention (QKᵀ and weights·V)"] == (
        block_flops(256, 64, 128)["projections"] + block_flops(256, 64, 128)["feed-forward"])   # the crossover
    assert seconds(lambda: sum(range(100)), repeats=2) > 0


def test_lesson07_judgment_exercises_explain_the_typical_mistakes():
    from pretrain_lessons.exercises import lesson07 as ex

    welch = ex.compare(ex.Q5_TRANSFORMER, ex.Q5_LSTM, paired=False)
    paired = ex.compare(ex.Q5_TRANSFORMER, ex.Q5_LSTM, paired=True)
    assert welch.verdict == "no measurable difference" and paired.verdict == "better"   # pairing is the point
    assert "paired" in ex.q5.evaluate(("no measurable difference", welch.p)).message
    assert "unpaired" in ex.q5.evaluate(("better", welch.p)).message
    assert ex.q5.evaluate(("Better", paired.p)).correct
    assert "points" in ex.q6.evaluate((1.77, False)).message
    assert "square root" in ex.q6.evaluate((0.75 * 0.25 / 600, False)).message
    assert "not convincing" in ex.q6.evaluate((0.0177, True)).message.lower()
    assert "inverted" in ex.q2.evaluate(lambda m: m[:, None, None, :].float() * -1e9).message
    assert "multiply-add" in ex.q1.evaluate(lambda lq, lk, d, dv: lq * lk * (d + dv)).message
