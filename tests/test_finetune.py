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


def test_sample_per_class_keeps_proportions_and_is_repeatable():
    labels = [0] * 70 + [1] * 30
    picked = finetune.sample_per_class(labels, 10, seed=3)
    assert len(picked) == 10 and len(set(picked)) == 10
    assert sum(labels[i] for i in picked) == 3
    assert picked == finetune.sample_per_class(labels, 10, seed=3)
    assert picked != finetune.sample_per_class(labels, 10, seed=4)
    assert finetune.sample_per_class(labels, 500) == list(range(100))


def test_adamw_is_fused_on_cpu():
    assert finetune.adamw(tiny_classifier(), 1e-3).defaults.get("fused") is True


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
