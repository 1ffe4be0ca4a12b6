"""Tests of pretrain_lessons.text: seed 001's pipeline, BERT masking (parity with transformers), vectors, baseline."""
import numpy as np
import pytest
import torch

from pretrain_lessons import text

WORDS = ["the", "movie", "film", "is", "not", "good", "bad", "great", "boring", "fun", "plot", "actor", "a", "an",
         "and", "of", "to", "it", "was", "very"] + [f"w{i}" for i in range(180)]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import BertTokenizerFast

    folder = tmp_path_factory.mktemp("vocab")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    return BertTokenizerFast(vocab=str(vocab), do_lower_case=True)


def seed_preprocess(sentence):
    """Seed 001's code, verbatim apart from the download calls."""
    import nltk
    from nltk.corpus import stopwords

    tokens = nltk.word_tokenize(sentence)
    tokens = [token.lower() for token in tokens if token.isalpha()]
    tokens = [token for token in tokens if token not in stopwords.words("english")]
    return tokens


def test_preprocess_is_seed_001_pipeline():
    sentence = "This movie is NOT good: I didn't laugh once in 2 hours, and it's 3x too long!"
    assert text.preprocess(sentence) == seed_preprocess(sentence)
    assert "not" not in text.preprocess(sentence)       # the negation is destroyed
    assert "not" in text.preprocess_keep_negations(sentence)


def batch(tokenizer, rows=400, length=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, len(tokenizer), (rows, length), generator=g)
    ids[:, 0], ids[:, -1] = tokenizer.cls_token_id, tokenizer.sep_token_id
    ids[::3, -10:] = tokenizer.pad_token_id      # some padded rows
    ids[::3, -11] = tokenizer.sep_token_id
    return ids


def test_mask_tokens_never_chooses_special_tokens(tokenizer):
    ids = batch(tokenizer)
    masked, labels = text.mask_tokens(ids, tokenizer, generator=torch.Generator().manual_seed(1))
    special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
    assert (labels[special] == -100).all()
    assert (masked[special] == ids[special]).all()
    chosen = labels != -100
    assert (labels[chosen] == ids[chosen]).all()
    assert (masked[~chosen] == ids[~chosen]).all()          # nothing unchosen is touched
    replaced = chosen & (masked != tokenizer.mask_token_id) & (masked != ids)
    assert not torch.isin(masked[replaced], torch.tensor(tokenizer.all_special_ids)).any()


def test_mask_tokens_is_reproducible_and_leaves_input_alone(tokenizer):
    ids = batch(tokenizer)
    before = ids.clone()
    a = text.mask_tokens(ids, tokenizer, generator=torch.Generator().manual_seed(3))
    b = text.mask_tokens(ids, tokenizer, generator=torch.Generator().manual_seed(3))
    c = text.mask_tokens(ids, mask_token_id=tokenizer.mask_token_id, vocab_size=len(tokenizer),
                         special_ids=tokenizer.all_special_ids, generator=torch.Generator().manual_seed(3))
    assert torch.equal(ids, before)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(a[0], c[0]) and torch.equal(a[1], c[1])


def test_mask_tokens_statistics_match_data_collator(tokenizer):
    from transformers import DataCollatorForLanguageModeling

    ids = batch(tokenizer, rows=1500, length=64)              # ~85,000 ordinary tokens
    ordinary = ~torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
    ours = text.mask_tokens(ids, tokenizer, 0.15, generator=torch.Generator().manual_seed(0))
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, mask_replace_prob=0.8,
                                               random_replace_prob=0.1)
    torch.manual_seed(0)
    theirs = collator.torch_mask_tokens(ids.clone())
    s_ours = text.masking_statistics(ids, *ours, tokenizer.mask_token_id, ordinary)
    s_theirs = text.masking_statistics(ids, *theirs, tokenizer.mask_token_id, ordinary)
    assert s_ours["labels_match"] and s_theirs["labels_match"]
    assert abs(s_ours["chosen"] - 0.15) < 0.006
    # The collator may draw [MASK] or the same token as its "random" one (1/vocab of the time): 0.02 covers it.
    for key, expected in [("chosen", None), ("mask", 0.8), ("random", 0.1), ("unchanged", 0.1)]:
        assert abs(s_ours[key] - s_theirs[key]) < 0.02, (key, s_ours, s_theirs)
        if expected is not None:
            assert abs(s_ours[key] - expected) < 0.015, (key, s_ours)
    # Both leave special tokens and padding alone.
    assert (theirs[1][~ordinary] == -100).all() and (ours[1][~ordinary] == -100).all()


def test_mask_probability_zero_and_one(tokenizer):
    ids = batch(tokenizer, rows=20)
    _, labels = text.mask_tokens(ids, tokenizer, 0.0)
    assert (labels == -100).all()
    masked, labels = text.mask_tokens(ids, tokenizer, 1.0, mask_replace_prob=1.0, random_replace_prob=0.0)
    ordinary = ~torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
    assert (masked[ordinary] == tokenizer.mask_token_id).all() and (labels[ordinary] == ids[ordinary]).all()


def test_word_vocabulary_orders_by_frequency_then_alphabet():
    vocab = text.word_vocabulary([["b", "a", "c"], ["a", "c"], ["a"]], min_count=1)
    assert list(vocab) == ["[PAD]", "[UNK]", "a", "c", "b"]
    assert text.encode_words(["a", "zzz"], vocab) == [2, 1]
    assert "b" not in text.word_vocabulary([["b", "a"], ["a"]], min_count=2)


def test_vsm_word_vectors_is_the_formula():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 3, size=(6, 4))
    doc_vectors = rng.normal(size=(6, 3))
    expected = np.array([sum(counts[d, w] * doc_vectors[d] for d in range(6)) for w in range(4)])
    np.testing.assert_allclose(text.vsm_word_vectors(counts, doc_vectors), expected)
    from scipy.sparse import csr_matrix

    np.testing.assert_allclose(text.vsm_word_vectors(csr_matrix(counts), doc_vectors), expected)


def test_cosine_neighbours():
    vectors = np.array([[1.0, 0], [0.9, 0.1], [0, 1], [-1, 0]])
    near = text.cosine_neighbours(vectors, ["a", "b", "c", "d"], "a", k=3)
    assert [w for w, _ in near] == ["b", "c", "d"]
    assert near[0][1] > 0.99 and near[-1][1] == pytest.approx(-1.0)


def test_bow_baseline_is_deterministic_and_learns():
    rng = np.random.default_rng(0)
    pos, neg = ["great", "fun", "moving", "superb"], ["dull", "boring", "mess", "awful"]
    filler = ["the", "film", "plot", "actor", "is", "was", "a"]

    def make(n):
        texts, labels = [], []
        for i in range(n):
            label = i % 2
            words = list(rng.choice(filler, 5)) + [rng.choice(pos if label else neg)]
            texts.append(" ".join(rng.permutation(words)))
            labels.append(label)
        return texts, labels

    train, test = make(200), make(100)
    a = text.bow_baseline(*train, *test)
    b = text.bow_baseline(*train, *test)
    assert a["accuracy"] > 0.95 and 0 < a["macro_f1"] <= 1 and a["seconds"] > 0
    assert a["accuracy"] == b["accuracy"] and (a["predictions"] == b["predictions"]).all()


def test_vsm_with_sparse_one_hot_documents_gives_count_columns():
    from scipy.sparse import csr_matrix, identity

    counts = csr_matrix(np.array([[1, 0, 2], [0, 3, 1]]))
    vectors = text.vsm_word_vectors(counts, identity(2, format="csr"))
    np.testing.assert_array_equal(vectors.toarray(), counts.T.toarray())
    dense = text.cosine_neighbours(vectors.toarray(), ["a", "b", "c"], "c", k=2)
    sparse = text.cosine_neighbours(vectors, ["a", "b", "c"], "c", k=2)
    assert [w for w, _ in dense] == [w for w, _ in sparse]
    assert np.allclose([s for _, s in dense], [s for _, s in sparse])


def test_negation_lists_match_nltk_stopwords():
    stop = text.english_stopwords()
    assert {"not", "no", "nor"} <= text.NEGATIONS <= stop
    assert text.QUALIFIERS <= stop and not (text.QUALIFIERS & text.NEGATIONS)
    assert not (text.OTHER_NEGATIONS & stop)          # 'never', 'nothing', … survive seed 001's pipeline anyway
    kept = text.preprocess_keep_negations("It is not very good, but I never laughed.")
    assert {"not", "very", "but", "never"} <= set(kept) and "is" not in kept


def sentiment_data(n, seed):
    rng = np.random.default_rng(seed)
    pos, neg = ["great", "fun", "moving", "superb"], ["dull", "boring", "mess", "awful"]
    filler = ["the", "film", "plot", "actor", "is", "was", "a", "and", "it", "very"]
    texts, labels = [], []
    for i in range(n):
        label = int(rng.random() < 0.5)
        words = list(rng.choice(filler, 6)) + [rng.choice(pos if label else neg)]
        if rng.random() < 0.2:                        # label noise: the task is not trivially separable
            label = 1 - label
        texts.append(" ".join(rng.permutation(words)))
        labels.append(label)
    return texts, labels


def test_nb_scaler_is_the_log_count_ratio():
    from scipy.sparse import csr_matrix

    X = csr_matrix(np.array([[1, 0, 1], [1, 1, 0], [0, 1, 0], [0, 1, 1]]))
    y = np.array([1, 1, 0, 0])
    scaler = text.NBScaler(alpha=1.0).fit(X, y)
    p, q = 1 + np.array([2, 1, 1]), 1 + np.array([0, 2, 1])
    np.testing.assert_allclose(scaler.ratios_, np.log((p / p.sum()) / (q / q.sum())))
    np.testing.assert_allclose(scaler.transform(X).toarray(), X.toarray() * scaler.ratios_)
    with pytest.raises(ValueError):
        text.NBScaler().fit(X, np.array([0, 1, 2, 1]))


def test_tuned_bow_baseline_chooses_on_validation_only():
    train, val, test = sentiment_data(300, 0), sentiment_data(200, 1), sentiment_data(200, 2)
    result = text.tuned_bow_baseline(*train, *val, *test, Cs=(0.01, 1.0))
    assert len(result["grid"]) == 4 and {row["model"] for row in result["grid"]} == set(text.BOW_MODELS)
    best = max(result["grid"], key=lambda row: (row["val_accuracy"], -row["val_log_loss"]))
    assert (result["model"], result["C"], result["val_accuracy"]) == (best["model"], best["C"], best["val_accuracy"])
    assert result["accuracy"] > 0.6 and len(result["predictions"]) == 200          # 20 % label noise
    assert result["pipeline"].predict_proba(["great fun"]).shape == (1, 2)
    # the test labels play no part in the choice: scrambling them changes the score, not the chosen model
    scrambled = text.tuned_bow_baseline(*train, *val, test[0], list(reversed(test[1])), Cs=(0.01, 1.0))
    assert (scrambled["model"], scrambled["C"]) == (result["model"], result["C"])
    assert (scrambled["predictions"] == result["predictions"]).all()
    with pytest.raises(ValueError):
        text.tuned_bow_baseline(*train, *val, *test, models=("svm",))


def test_has_negation_reads_contractions_and_the_words_nltk_keeps():
    from pretrain_lessons.text import has_negation

    assert has_negation("I couldn't recommend this film more.") and has_negation("Never boring for a second.")
    assert has_negation("Not bad at all.") and not has_negation("A knotty, notable film.")
