"""Tests of pretrain_lessons.mlm: corpus split, blocks, dynamic and fixed masking, a tiny training run, saving."""
import dataclasses
import json
import shutil

import pytest
import torch

from pretrain_lessons import mlm

TEXTS = ["The cat sat on the mat. The dog sat on the log. " * 30,
         "It was the best of times, it was the worst of times. " * 30,
         "A good film is not a boring film; a bad film is not a fun film. " * 30]
RECIPE = mlm.Recipe(vocab_size=200, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, block_size=32,
                    batch_size=8, steps=40, lr=3e-3, warmup_steps=4, eval_blocks=8, eval_every=20)


@pytest.fixture(scope="module")
def tokenizer():
    return mlm.train_tokenizer(TEXTS, vocab_size=200)


def test_split_book_keeps_every_character_and_holds_out_the_tail():
    book = "\n".join(f"line {i} of the book" for i in range(1000))
    head, tail = mlm.split_book(book, 0.05)
    assert head + tail == book
    assert 0.04 < len(tail) / len(book) < 0.07
    assert tail.startswith("\n")


def test_tokenizer_has_bert_special_tokens(tokenizer):
    for token in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"):
        assert tokenizer.convert_tokens_to_ids(token) != tokenizer.unk_token_id or token == "[UNK]"
    assert tokenizer.pad_token_id == 0
    ids = tokenizer("The cat sat")["input_ids"]
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    assert tokenizer.tokenize("THE CAT") == ["the", "cat"]       # lower-casing


def test_make_blocks(tokenizer):
    blocks = mlm.make_blocks(tokenizer, TEXTS, block_size=32)
    assert blocks.shape[1] == 32 and len(blocks) > 10
    assert (blocks[:, 0] == tokenizer.cls_token_id).all() and (blocks[:, -1] == tokenizer.sep_token_id).all()
    stream = tokenizer(TEXTS[0], add_special_tokens=False)["input_ids"]
    assert blocks[0, 1:-1].tolist() == stream[:30]


def test_mlm_loader_masks_afresh_and_repeatably(tokenizer):
    blocks = mlm.make_blocks(tokenizer, TEXTS, block_size=32)
    loader = mlm.MLMLoader(blocks, tokenizer, batch_size=8, shuffle=False)
    torch.manual_seed(0)
    first = next(iter(loader))
    second = next(iter(loader))
    torch.manual_seed(0)
    again = next(iter(loader))
    assert set(first) == {"input_ids", "attention_mask", "labels"}
    assert not torch.equal(first["labels"], second["labels"])          # dynamic masking
    assert torch.equal(first["input_ids"], again["input_ids"])          # repeatable under a seed
    assert (first["labels"][:, 0] == -100).all() and (first["labels"][:, -1] == -100).all()
    chosen = first["labels"] != -100
    assert 0.05 < chosen.float().mean() < 0.3


def test_fixed_masked_loader_is_the_same_every_pass(tokenizer):
    blocks = mlm.make_blocks(tokenizer, TEXTS, block_size=32)
    loader = mlm.fixed_masked_loader(blocks, tokenizer, batch_size=4)
    a, b = next(iter(loader)), next(iter(loader))
    assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["labels"], b["labels"])


def test_tiny_pretraining_lowers_held_out_perplexity_and_saves(tokenizer, tmp_path):
    from transformers import AutoTokenizer, BertForMaskedLM, BertForSequenceClassification

    from pretrain_lessons.train import evaluate

    blocks = mlm.make_blocks(tokenizer, TEXTS, block_size=32)
    data = mlm.MLMData(tokenizer, blocks[:-8], blocks[-8:],
                       mlm.MLMLoader(blocks[:-8], tokenizer, batch_size=8),
                       mlm.fixed_masked_loader(blocks[-8:], tokenizer, batch_size=8))
    model = mlm.new_model(RECIPE, tokenizer)
    again = mlm.new_model(RECIPE, tokenizer)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters()))   # seeded init
    before = evaluate(model, data.held_out_loader, progress=False)["perplexity"]
    history = mlm.train(model, data, RECIPE, progress=False, folder=tmp_path)
    after = history.last("val_perplexity")
    assert after < before / 2, (before, after)
    mlm.save(model, tokenizer, history, RECIPE, folder=tmp_path)
    assert mlm.is_complete(tmp_path, RECIPE)
    assert not mlm.is_complete(tmp_path, dataclasses.replace(RECIPE, steps=41))
    summary = mlm.training_summary(tmp_path)
    assert summary["steps"] == 40 and summary["tokens_per_second"] > 0
    # Snapshots along the way: the seeded starting weights, a quarter and half way, and the finished model.
    kept = mlm.snapshots(tmp_path, RECIPE)
    assert list(kept) == [0, 10, 20, 40] and kept[40] == tmp_path
    start = BertForMaskedLM.from_pretrained(kept[0]).bert.embeddings.word_embeddings.weight
    half = BertForMaskedLM.from_pretrained(kept[20]).bert.embeddings.word_embeddings.weight
    assert torch.equal(start, again.bert.embeddings.word_embeddings.weight)
    assert not torch.equal(half, start) and not torch.equal(half, model.bert.embeddings.word_embeddings.weight)
    assert json.loads((kept[20] / "config.json").read_text())["hidden_dropout_prob"] == 0.1
    shutil.rmtree(tmp_path / "snapshots")        # a finished run from before snapshots were kept
    assert not mlm.is_complete(tmp_path, RECIPE)
    retrained = mlm.new_model(RECIPE, tokenizer)
    mlm.train(retrained, data, RECIPE, progress=False, folder=tmp_path)    # trains again (fit.pt is set aside)
    assert list(mlm.snapshots(tmp_path, RECIPE)) == [0, 10, 20, 40]
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), retrained.parameters()))   # the same run
    loaded = BertForMaskedLM.from_pretrained(tmp_path)
    batch = next(iter(data.held_out_loader))
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(**batch).logits, loaded(**batch).logits, atol=1e-5)
    classifier = BertForSequenceClassification.from_pretrained(tmp_path, num_labels=2)
    assert torch.equal(classifier.bert.embeddings.word_embeddings.weight, model.bert.embeddings.word_embeddings.weight)
    # Fine-tuning gets BERT's settings (dropout 0.1, a new head drawn with std 0.02), whatever pretraining used.
    assert classifier.config.hidden_dropout_prob == 0.1 and classifier.config.initializer_range == 0.02
    assert float(classifier.classifier.weight.std()) < 0.03
    assert AutoTokenizer.from_pretrained(tmp_path).tokenize("the cat") == tokenizer.tokenize("the cat")
    top = mlm.fill_mask(loaded, tokenizer, "the cat sat on the [MASK] .")
    assert len(top) == 1 and len(top[0]) == 5
    probs = [p for _, p in top[0]]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6


def test_parameter_counts_add_up(tokenizer):
    from transformers import BertForSequenceClassification

    model = mlm.new_model(RECIPE, tokenizer)
    counts = mlm.parameter_counts(model)
    assert counts["embedding"] + counts["encoder"] + counts["head"] == counts["total"]
    classifier = BertForSequenceClassification(mlm.config_for(RECIPE, tokenizer))
    c = mlm.parameter_counts(classifier)
    assert c["embedding"] + c["encoder"] + c["pooling"] + c["head"] == c["total"]
    assert c["head"] == 2 * 32 + 2 and c["pooling"] == 32 * 32 + 32


def test_recipes_are_sane():
    r = mlm.recipe()
    assert r.hidden_size % r.num_heads == 0 and 0 < r.mlm_probability < 1
    config = mlm.tiny_bert_config(1000)
    assert config.vocab_size == 1000 and config.num_hidden_layers == 2
    assert set(mlm.RECIPE_WHY) == {f.name for f in dataclasses.fields(mlm.Recipe)}, "every recipe field has a reason"


def test_recipe_sets_initial_weight_scale_and_dropout(tokenizer):
    wide = mlm.new_model(dataclasses.replace(RECIPE, initializer_range=0.1, dropout=0.0), tokenizer)
    narrow = mlm.new_model(dataclasses.replace(RECIPE, initializer_range=0.02, dropout=0.1), tokenizer)
    std = lambda m: float(m.bert.encoder.layer[0].attention.self.query.weight.std())  # noqa: E731
    assert 0.08 < std(wide) < 0.12 and 0.015 < std(narrow) < 0.025
    assert wide.config.hidden_dropout_prob == wide.config.attention_probs_dropout_prob == 0.0
    assert narrow.config.hidden_dropout_prob == 0.1


def test_sparse_head_gives_the_same_loss_and_gradients_as_bert_for_masked_lm(tokenizer):
    from transformers import BertForMaskedLM

    model = mlm.new_model(RECIPE, tokenizer)
    plain = BertForMaskedLM(model.config)
    plain.load_state_dict(model.state_dict())
    blocks = mlm.make_blocks(tokenizer, TEXTS, block_size=32)[:4]
    torch.manual_seed(0)
    batch = next(iter(mlm.MLMLoader(blocks, tokenizer, batch_size=4, shuffle=False)))
    for m in (model, plain):
        m.train()
        for module in m.modules():          # no dropout, so both see the same computation
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    a, b = model(**batch), plain(**batch)
    assert a.logits.shape == (int((batch['labels'] != -100).sum()), len(tokenizer))
    assert torch.allclose(a.loss, b.loss, atol=1e-5)
    a.loss.backward()
    b.loss.backward()
    ga = dict(model.named_parameters())["bert.encoder.layer.0.attention.self.query.weight"].grad
    gb = dict(plain.named_parameters())["bert.encoder.layer.0.attention.self.query.weight"].grad
    assert torch.allclose(ga, gb, atol=1e-6)
    model.eval()
    assert model(**batch).logits.shape == (4, 32, len(tokenizer))     # evaluation scores every position


def test_reviews_are_one_row_each_and_padding_is_never_masked(tokenizer):
    ids, mask = mlm.one_per_row(tokenizer, ["the cat sat", "a good film is not a boring film"], block_size=16)
    assert ids.shape == mask.shape == (2, 16)
    assert ids[0, 0] == tokenizer.cls_token_id and (ids[0, mask[0] == 0] == tokenizer.pad_token_id).all()
    loader = mlm.MLMLoader(ids.repeat(50, 1), tokenizer, mask.repeat(50, 1), batch_size=100, shuffle=False,
                           mlm_probability=0.5)
    torch.manual_seed(0)
    batch = next(iter(loader))
    assert torch.equal(batch["attention_mask"], mask.repeat(50, 1))
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()
    assert (batch["labels"][batch["attention_mask"] == 1] != -100).any()


def _questions(tokenizer, rows: torch.Tensor, seed: int = 0) -> "mlm.Questions":
    data = mlm.MLMData(tokenizer, rows, rows, None, None)
    return mlm.held_out_questions(data, 0.3, seed=seed)


def test_scores_split_by_what_the_model_saw(tokenizer):
    rows = mlm.make_blocks(tokenizer, ["the cat sat on the mat and the dog ran to the park . " * 40], 32)
    q = _questions(tokenizer, rows)
    kind = q.kind
    assert len(kind) == int((q.labels != -100).sum())
    assert 0.7 < float((kind == 0).float().mean()) < 0.9          # about 80 % [MASK]
    assert int((kind == 2).sum()) > 0 and int((kind == 1).sum()) > 0

    class Copier(torch.nn.Module):   # a masked LM that always predicts the token it is shown
        def __init__(self, vocab):
            super().__init__()
            self.vocab, self.w = vocab, torch.nn.Parameter(torch.zeros(1))
            self.bert = lambda input_ids, attention_mask: type("O", (), {"last_hidden_state": input_ids})
            self.cls = lambda seen: torch.nn.functional.one_hot(seen, vocab).float() * 10

    s = mlm.score(Copier(len(tokenizer)), q)
    assert s.only(2).accuracy == 1.0                              # it copies the unchanged ones...
    assert s.only(0).accuracy == 0.0                              # ...and knows nothing at [MASK]
    assert len(s.only(0).loss) + len(s.only(1).loss) + len(s.only(2).loss) == len(s.loss)


def test_bigram_guess_reads_the_neighbours_and_unigram_does_not(tokenizer):
    rows = mlm.make_blocks(tokenizer, ["the cat sat on the mat and the dog ran to the park . " * 60], 32)
    q = _questions(tokenizer, rows, seed=1)
    guesses = mlm.baselines(rows, q, tokenizer)
    uni, bi = guesses["unigram guess"].only(0), guesses["bigram guess"].only(0)
    assert torch.all(uni.guess == uni.guess[0])                   # always the commonest token
    assert bi.accuracy > uni.accuracy + 0.3                       # a fixed sentence: the neighbours give it away
    assert torch.isfinite(guesses["bigram guess"].loss).all()


def test_context_probe_keeps_masks_in_place_and_shuffles_only_the_context(tokenizer):
    rows = mlm.make_blocks(tokenizer, ["the cat sat on the mat and the dog ran to the park . " * 40], 32)
    q = _questions(tokenizer, rows)
    seen = []

    class Recorder(torch.nn.Module):
        def __init__(self, vocab):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.bert = lambda input_ids, attention_mask: seen.append(input_ids.clone()) or type("O", (), {"last_hidden_state": input_ids})
            self.cls = lambda x: torch.nn.functional.one_hot(x, vocab).float()

    probe = mlm.context_probe(Recorder(len(tokenizer)), q, tokenizer, rows=8)
    intact, shuffled, blank = seen
    is_mask = intact == tokenizer.mask_token_id
    assert bool((shuffled == tokenizer.mask_token_id)[is_mask].all())                 # every [MASK] kept at its index
    assert torch.equal(torch.sort(shuffled, 1).values, torch.sort(intact, 1).values)   # same tokens per row
    assert not torch.equal(shuffled, intact)                                         # in another order
    special = torch.tensor(tokenizer.all_special_ids)
    assert torch.all((blank == tokenizer.mask_token_id) | torch.isin(blank, special))
    assert set(probe) == {"intact", "shuffled context", "no context"}


def test_seed001_loop_is_a_copy_task_and_damage_is_measured_on_the_same_questions(tokenizer):
    blocks = mlm.make_blocks(tokenizer, TEXTS, block_size=32)
    questions = mlm.questions_of(blocks[-8:], tokenizer)
    again = mlm.questions_of(blocks[-8:], tokenizer)
    assert torch.equal(questions.input_ids, again.input_ids)            # fixed seed: the same questions each time
    model = mlm.new_model(RECIPE, tokenizer)
    sentences = ("the cat sat on the [MASK] .",)
    result = mlm.copy_task_damage(model, tokenizer, TEXTS * 4, questions, 30, sentences, batch_size=4, lr=3e-3)
    assert len(result["losses"]) == 30 and result["losses"][-1] < result["losses"][0] / 2   # copying is easy
    assert len(result["before"].loss) == len(result["after"].loss) == int((questions.kind == 0).sum())
    assert not model.training
    scores, fills = mlm.damage_tables(result, unigram=result["before"])
    assert list(scores.index) == ["before", "after seed 001's loop", "unigram"]
    assert fills.shape == (2, 5)


def test_bert_base_copy_task_says_it_is_skipped_offline(monkeypatch, capsys):
    from pretrain_lessons import device

    monkeypatch.setattr(device, "is_online", lambda *a, **k: False)
    assert mlm.bert_base_copy_task(TEXTS, TEXTS, ("a [MASK] .",)) is None
    assert "Offline" in capsys.readouterr().out


def test_tokenizer_numbers_its_pieces_in_a_fixed_order(tokenizer):
    # The trainer's own numbering follows a hash order that changes from one process to the next.
    vocab = tokenizer.get_vocab()
    order = sorted(vocab, key=vocab.get)
    assert order[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and order[5:] == sorted(order[5:])
    assert tokenizer.tokenize("the cat sat on the mat") == ["the", "cat", "sat", "on", "the", "mat"]


def test_eval_questions_score_the_training_curve_positions_with_an_interval(tokenizer):
    import math

    from pretrain_lessons.train import evaluate

    blocks = mlm.make_blocks(tokenizer, TEXTS, block_size=32)
    data = mlm.MLMData(tokenizer, blocks[:-8], blocks[-8:], None,
                       mlm.fixed_masked_loader(blocks[-8:], tokenizer, batch_size=4))
    model = mlm.new_model(RECIPE, tokenizer)
    s = mlm.score(model, mlm.eval_questions(data))
    assert s.mean_loss == pytest.approx(evaluate(model, data.held_out_loader, progress=False)["loss"], abs=1e-4)
    low, high = s.pseudo_perplexity_interval
    assert low < s.pseudo_perplexity < high
    assert math.log(high) - math.log(s.pseudo_perplexity) == pytest.approx(1.96 * s.loss_se)
    assert s.row()["loss ± se"] == round(s.loss_se, 3) and "–" in s.row()["pseudo-perplexity 95 % interval"]


def test_padded_review_questions_keep_their_attention_mask(tokenizer):
    ids, mask = mlm.one_per_row(tokenizer, ["the cat sat on the mat"] * 20, block_size=16)
    q = mlm.questions_of(ids, tokenizer, 0.3, attention_mask=mask)
    assert torch.equal(q.attention_mask, mask) and (q.labels[mask == 0] == -100).all()
    assert torch.equal(mlm.questions_of(ids, tokenizer, 0.3).attention_mask, torch.ones_like(ids))
