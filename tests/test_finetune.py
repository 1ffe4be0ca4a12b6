"""Fine-tuning helpers: dynamic padding is exact, length grouping covers every example, the recipe trains, the cache works."""
import json

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from pretrain_lessons import finetune
from pretrain_lessons.data.loaders import minilm_dir


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models gain nothing from threads, and on a busy machine thread hand-offs cost more than the work.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(minilm_dir())


def tiny_classifier(num_labels=2, seed=0):
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=num_labels)
    return BertForSequenceClassification(config)


TEXTS = ["good", "a truly wonderful and moving film", "bad", "dull, long and utterly pointless from start to end",
         "fine", "great fun"] * 5


def test_batches_are_cut_to_their_longest_text(tokenizer):
    loader = finetune.text_loader(tokenizer, TEXTS, [1, 1, 0, 0, 1, 1] * 5, max_length=32, batch_size=4)
    for batch in loader:
        assert set(batch) == {"input_ids", "attention_mask", "labels"}
        longest = int(batch["attention_mask"].sum(1).max())
        assert batch["input_ids"].shape == (len(batch["labels"]), longest)
        assert batch["attention_mask"][:, -1].any()          # no column of padding only


def test_dynamic_padding_does_not_change_the_logits(tokenizer):
    model = tiny_classifier().eval()
    enc = tokenizer(TEXTS[:4], padding="max_length", max_length=32, return_tensors="pt")
    trimmed = next(iter(finetune.text_loader(tokenizer, TEXTS[:4], max_length=32, batch_size=4)))
    with torch.no_grad():
        full = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        cut = model(**trimmed).logits
    torch.testing.assert_close(full, cut, atol=1e-5, rtol=1e-5)


def test_group_by_length_visits_every_example_once_and_saves_padding(tokenizer):
    rng = np.random.default_rng(0)
    words = ["word"] * 60
    texts = [" ".join(words[: rng.integers(1, 60)]) for _ in range(400)]
    labels = [i % 2 for i in range(400)]
    torch.manual_seed(0)
    grouped = finetune.text_loader(tokenizer, texts, labels, max_length=64, batch_size=8, shuffle=True)
    plain = finetune.text_loader(tokenizer, texts, labels, max_length=64, batch_size=8, shuffle=True,
                                 group_by_length=False)
    order = grouped._indices()
    assert sorted(order.tolist()) == list(range(400))
    cells = lambda loader: sum(b["input_ids"].numel() for b in loader)  # noqa: E731
    assert cells(grouped) < 0.75 * cells(plain)
    assert sum(len(b["labels"]) for b in grouped) == 400


def test_choose_max_length_covers_the_texts(tokenizer):
    lengths = finetune.token_lengths(tokenizer, TEXTS)
    chosen = finetune.choose_max_length(tokenizer, TEXTS, coverage=1.0, multiple=8)
    assert chosen % 8 == 0 and chosen >= lengths.max() and chosen - 8 < lengths.max()


def test_stratified_sample_keeps_proportions_and_is_repeatable():
    labels = [0] * 70 + [1] * 30
    assert finetune.sample_per_class is finetune.stratified_sample   # the older name, used by lesson 08
    picked = finetune.stratified_sample(labels, 10, seed=3)
    assert len(picked) == 10 and len(set(picked)) == 10
    assert sum(labels[i] for i in picked) == 3
    assert picked == finetune.sample_per_class(labels, 10, seed=3)
    assert picked != finetune.sample_per_class(labels, 10, seed=4)
    assert finetune.sample_per_class(labels, 500) == list(range(100))


def test_adamw_is_fused_and_spares_biases_and_norms_from_weight_decay():
    model = tiny_classifier()
    optimizer = finetune.adamw(model, 1e-3)
    assert optimizer.defaults.get("fused") is True
    decay = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    names = dict(model.named_parameters())
    assert decay[id(names["classifier.weight"])] == 0.01
    assert decay[id(names["classifier.bias"])] == 0.0
    assert decay[id(names["bert.embeddings.LayerNorm.weight"])] == 0.0
    assert len(decay) == len(names)


def test_finetune_classifier_learns_a_toy_task(tokenizer):
    texts = ["good great fine", "great good", "fine good great", "bad awful dull", "awful bad", "dull bad awful"] * 8
    labels = [1, 1, 1, 0, 0, 0] * 8
    model = tiny_classifier()
    history = finetune.finetune_classifier(model, tokenizer, texts, labels, val=(texts[:12], labels[:12]), lr=3e-3,
                                           epochs=10, batch_size=8, max_length=16, progress=False)
    assert history.steps[-1]["loss"] < 0.3
    result = finetune.evaluate_classifier(model, tokenizer, ["good great", "awful dull"], [1, 0], max_length=16)
    assert result["accuracy"] == 1.0 and "macro_f1" in result
    probs = finetune.predict_proba(model, tokenizer, ["good", "bad", "great"], max_length=16)
    assert probs.shape == (3, 2) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_min_steps_lengthens_short_runs(tokenizer):
    history = finetune.finetune_classifier(tiny_classifier(), tokenizer, TEXTS[:6], [1, 1, 0, 0, 1, 1], epochs=1,
                                           min_steps=5, batch_size=4, max_length=16, progress=False)
    assert len(history.steps) == 5


def test_finetuned_minilm_trains_once_then_loads(tmp_path, monkeypatch):
    monkeypatch.setattr(finetune.paths, "checkpoint_dir", lambda name: tmp_path / name)
    (tmp_path / "minilm-rotten-tomatoes").mkdir()
    recipe = dict(finetune.minilm_recipe(), train_examples=24, epochs=1, max_length=16)
    monkeypatch.setattr(finetune, "minilm_recipe", lambda: recipe)
    monkeypatch.setattr(finetune, "minilm_classifier", lambda num_labels=2: tiny_classifier(num_labels))
    folder = finetune.finetuned_minilm(progress=False)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["recipe"] == recipe and metrics["train_examples"] == 24
    assert 0 <= metrics["test_accuracy"] <= 1 and (folder / "config.json").exists()
    assert not (folder / "fit.pt").exists()
    loaded = BertForSequenceClassification.from_pretrained(folder)
    assert loaded.config.id2label[1] == "positive"

    def no_training(*args, **kwargs):
        raise AssertionError("the cached model should have been loaded, not trained again")

    monkeypatch.setattr(finetune, "finetune_classifier", no_training)
    assert finetune.finetuned_minilm(progress=False) == folder


def test_mean_pool_averages_the_real_tokens_only():
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).view(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    expected = torch.stack([hidden[0, :2].mean(0), hidden[1].mean(0)])
    torch.testing.assert_close(finetune.mean_pool(hidden, mask), expected)


def test_mean_pooling_classifier_ignores_padding_and_round_trips(tmp_path, tokenizer):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    model = finetune.classifier_from_config(config, pooling="mean").eval()
    assert not hasattr(model.bert, "pooler") or model.bert.pooler is None
    short = tokenizer(["a fine film"], return_tensors="pt")
    padded = tokenizer(["a fine film"], padding="max_length", max_length=12, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(model(**short).logits, model(**padded).logits, atol=1e-5, rtol=1e-5)
    model.save_pretrained(tmp_path)
    loaded = finetune.load_classifier(tmp_path).eval()
    assert type(loaded).__name__ == "MeanPoolingClassifier"
    with torch.no_grad():
        torch.testing.assert_close(loaded(**short).logits, model(**short).logits)
    cls = finetune.classifier_from_config(config, pooling="cls")
    assert type(cls).__name__ == "BertForSequenceClassification"
    with pytest.raises(ValueError, match="pooling"):
        finetune.classifier_from(tmp_path, pooling="max")


def test_logits_of_keeps_the_order_of_the_texts(tokenizer):
    model = tiny_classifier().eval()
    texts = TEXTS[:6]
    batched = finetune.logits_of(model, tokenizer, texts, max_length=32, batch_size=2)   # sorted by length inside
    with torch.no_grad():
        one_by_one = np.concatenate([model(**tokenizer([t], return_tensors="pt")).logits.numpy() for t in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_early_stopping_restores_the_best_weights_and_stops(tokenizer):
    texts = ["good great fine", "great good", "bad awful dull", "awful bad"] * 6
    labels = [1, 1, 0, 0] * 6
    flipped = [1 - y for y in labels[:8]]   # a validation set that training can only make worse: it must stop
    model = tiny_classifier()
    history = finetune.finetune_classifier(model, tokenizer, texts, labels, val=(texts[:8], flipped), lr=3e-3,
                                           epochs=40, batch_size=8, max_length=16, eval_every=3, patience=2,
                                           progress=False)
    best = history.best
    assert best["val_accuracy"] == max(e["val_accuracy"] for e in history.evals)
    assert best["stopped_early"] and best["steps_run"] < 40 * 3
    assert len(history.evals) - 1 - [e["step"] for e in history.evals].index(best["step"]) <= 2
    restored = finetune.evaluate_classifier(model, tokenizer, texts[:8], flipped, max_length=16)
    assert restored["accuracy"] == best["val_accuracy"]


def test_probe_chooses_c_on_validation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = (x[:, 0] > 0).astype(int)
    result = finetune.probe(x[:100], y[:100], x[100:], y[100:], Cs=(1e-4, 1.0))
    assert result["C"] == 1.0 and result["val_accuracy"] > 0.9
    assert [row["C"] for row in result["grid"]] == [1e-4, 1.0]


def test_minilm_features_are_cached_and_keyed_by_the_texts(tmp_path, monkeypatch):
    monkeypatch.setattr(finetune.paths, "checkpoint_dir", lambda name: tmp_path / name)
    (tmp_path / "minilm-features").mkdir()
    first = finetune.minilm_features({"a": ["a good film", "a bad film"]}, progress=False)["a"]
    assert first.shape == (2, 384) and len(list((tmp_path / "minilm-features").glob("*.npy"))) == 1
    again = finetune.minilm_features({"a": ["a good film", "a bad film"]}, progress=False)["a"]
    np.testing.assert_array_equal(first, again)
    finetune.minilm_features({"a": ["another text"]}, progress=False)
    assert len(list((tmp_path / "minilm-features").glob("*.npy"))) == 2
