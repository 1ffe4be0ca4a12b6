"""Lesson 04 widget: the fill-mask explorer shows top guesses, the rank of an expected word, and switches models."""
import pytest
import torch

from pretrain_lessons import mlm
from pretrain_lessons.widgets.lesson04 import fill_mask_explorer, fill_mask_html

TEXTS = ["The cat sat on the mat. The dog sat on the log. " * 30,
         "It was the best of times, it was the worst of times. " * 30]
RECIPE = mlm.Recipe(vocab_size=200, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, block_size=32,
                    batch_size=8, steps=10, warmup_steps=2, eval_blocks=4, eval_every=5)


@pytest.fixture(scope="module")
def tokenizer():
    return mlm.train_tokenizer(TEXTS, vocab_size=200)


def test_rank_of_agrees_with_the_top_guesses(tokenizer):
    model = mlm.new_model(RECIPE, tokenizer)
    sentence = "the cat sat on the [MASK] ."
    (top,) = mlm.fill_mask(model, tokenizer, sentence, k=3)
    best, p_best = top[0]
    assert mlm.rank_of(model, tokenizer, sentence, best) == [(1, pytest.approx(p_best))]
    (rank, p), = mlm.rank_of(model, tokenizer, sentence, top[2][0])
    assert rank == 3 and p == pytest.approx(top[2][1])
    assert mlm.rank_of(model, tokenizer, sentence, "zebra") is None          # not one piece of this vocabulary


def test_explorer_shows_the_expected_word_and_switches_models(tokenizer, tmp_path):
    model = mlm.new_model(RECIPE, tokenizer)
    other = mlm.new_model(RECIPE, tokenizer)
    with torch.no_grad():
        other.cls.predictions.bias[tokenizer.convert_tokens_to_ids("mat")] += 50.0   # this one always says "mat"
    other.save_pretrained(tmp_path / "other")
    panel = fill_mask_explorer({"first": model, "saved": tmp_path / "other"}, tokenizer, "the cat sat on the [MASK] .",
                               expected="mat")
    assert "'mat': rank" in panel.view.value
    first = panel.view.value
    panel.menu.value = "saved"                                                 # loaded from its folder on first choice
    assert panel.view.value != first and "'mat': rank 1 of" in panel.view.value
    panel.expected.value = "zebra"
    assert "not one token of this vocabulary" in panel.view.value
    panel.sentence.value = "no mask here"
    assert "Put at least one [MASK]" in panel.view.value


def test_one_model_needs_no_menu(tokenizer):
    model = mlm.new_model(RECIPE, tokenizer)
    panel = fill_mask_explorer(model, tokenizer, "the [MASK] sat .")
    assert panel.menu not in panel.children and "[MASK] 1" in panel.view.value
    assert "rank" not in fill_mask_html(model, tokenizer, "the [MASK] sat .")
