"""Text preprocessing (文本预处理): seed 001's NLTK pipeline, masking for MLM, vocabularies, bag-of-words and VSM vectors.

`preprocess()` is seed 001's pipeline exactly; `mask_tokens()` is BERT's 80/10/10 masking written out;
`bow_baseline()` is the bag-of-words logistic-regression classifier lesson 05 must beat;
`vsm_word_vectors()` implements seed 004's formula v_w = Σ_d count(d, w) · v(d).
"""
from __future__ import annotations

import time
from collections import Counter
from functools import lru_cache

import numpy as np
import torch

# Negations in NLTK's English stopword list: "not", "no", "nor" and the pieces of the n't contractions.
NEGATIONS = frozenset({"not", "no", "nor", "don", "don't", "didn", "didn't", "doesn", "doesn't", "isn", "isn't",
                       "wasn", "wasn't", "weren", "weren't", "won", "won't", "wouldn", "wouldn't", "couldn",
                       "couldn't", "shouldn", "shouldn't", "aren", "aren't", "hasn", "hasn't", "haven", "haven't",
                       "hadn", "hadn't", "mightn", "mightn't", "mustn", "mustn't", "needn", "needn't", "ain"})
# Stopwords that are not negations but change how strongly (or in which direction) a sentence means what it says.
QUALIFIERS = frozenset({"against", "very", "too", "but", "few", "only"})
# Negating words that NLTK's list does NOT contain (its list is not built around sentiment): they survive as is.
OTHER_NEGATIONS = frozenset({"never", "nothing", "nobody", "none", "neither", "nowhere", "without", "cannot"})


# ---------------------------------------------------------------- seed 001's NLTK pipeline


@lru_cache(maxsize=1)
def english_stopwords() -> frozenset[str]:
    """NLTK's English stopword list (read from the provisioned nltk_data, no download)."""
    import pretrain_lessons  # noqa: F401  (registers data/nltk_data with NLTK)
    from nltk.corpus import stopwords

    return frozenset(stopwords.words("english"))


def preprocess(text: str, stop: frozenset[str] | None = None) -> list[str]:
    """Seed 001's pipeline: word_tokenize, lower-case, keep alphabetic tokens, drop English stopwords."""
    import nltk

    stop = english_stopwords() if stop is None else stop
    tokens = nltk.word_tokenize(text)
    tokens = [token.lower() for token in tokens if token.isalpha()]
    # The seed calls stopwords.words('english') once per token; a set gives the same result far faster.
    return [token for token in tokens if token not in stop]


def preprocess_keep_negations(text: str) -> list[str]:
    """Seed 001's pipeline, but the negations ("not", "no", "nor", "n't" → "not") and the qualifiers ("very", "too",
    "but", "only", …) of the stopword list survive."""
    import nltk

    stop = english_stopwords() - NEGATIONS - QUALIFIERS
    tokens = [t.lower() for t in nltk.word_tokenize(text)]
    tokens = ["not" if t == "n't" else t for t in tokens]
    return [t for t in tokens if t.isalpha() and t not in stop]


def has_negation(text: str) -> bool:
    """Whether a text holds a negation of NEGATIONS or OTHER_NEGATIONS (NLTK's tokens; "n't" counts as "not")."""
    import nltk

    return any(("not" if t == "n't" else t.lower()) in NEGATIONS | OTHER_NEGATIONS for t in nltk.word_tokenize(text))


# ---------------------------------------------------------------- masking for the masked language model


def special_ids_of(tokenizer) -> list[int]:
    """The ids of a tokenizer's special tokens ([CLS], [SEP], [PAD], [MASK], [UNK])."""
    return sorted(set(tokenizer.all_special_ids))


def mask_tokens(input_ids: torch.Tensor, tokenizer=None, mlm_probability: float = 0.15,
                generator: torch.Generator | None = None, *, mask_token_id: int | None = None,
                vocab_size: int | None = None, special_ids: list[int] | None = None,
                mask_replace_prob: float = 0.8, random_replace_prob: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: choose `mlm_probability` of the ordinary tokens; of those 80 % → [MASK], 10 % → a random
    token, 10 % unchanged. Returns (masked input_ids, labels) with labels −100 wherever nothing was chosen.

    Pass a Hugging Face tokenizer, or `mask_token_id`, `vocab_size` and `special_ids` directly.
    Special tokens (and so padding) are never chosen; random replacements are never special tokens.
    """
    if tokenizer is not None:
        mask_token_id = tokenizer.mask_token_id if mask_token_id is None else mask_token_id
        vocab_size = len(tokenizer) if vocab_size is None else vocab_size
        special_ids = special_ids_of(tokenizer) if special_ids is None else special_ids
    if mask_token_id is None or vocab_size is None:
        raise ValueError("give a tokenizer, or mask_token_id and vocab_size")
    special = torch.tensor(sorted(special_ids or []), dtype=input_ids.dtype, device=input_ids.device)
    ordinary = ~torch.isin(input_ids, special)

    def uniform() -> torch.Tensor:
        return torch.rand(input_ids.shape, generator=generator, device=input_ids.device)

    chosen = (uniform() < mlm_probability) & ordinary
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    # One draw decides what happens to a chosen token: [0, 0.8) mask, [0.8, 0.9) random, [0.9, 1) keep.
    action = uniform()
    to_mask = chosen & (action < mask_replace_prob)
    to_random = chosen & (action >= mask_replace_prob) & (action < mask_replace_prob + random_replace_prob)
    masked = input_ids.clone()
    masked[to_mask] = mask_token_id
    if to_random.any():
        allowed = torch.ones(vocab_size, dtype=torch.bool)
        allowed[special.cpu().long()] = False
        pool = allowed.nonzero().squeeze(1).to(input_ids.device)
        picks = torch.randint(len(pool), (int(to_random.sum()),), generator=generator, device=input_ids.device)
        masked[to_random] = pool[picks].to(input_ids.dtype)
    return masked, labels


def masking_statistics(original: torch.Tensor, masked: torch.Tensor, labels: torch.Tensor, mask_token_id: int,
                       candidates: torch.Tensor | None = None) -> dict[str, float]:
    """Shares of chosen tokens, and among them of [MASK], random (changed) and unchanged tokens."""
    candidates = torch.ones_like(original, dtype=torch.bool) if candidates is None else candidates
    chosen = labels != -100
    n = max(1, int(chosen.sum()))
    return {
        "chosen": float(chosen.sum()) / max(1, int(candidates.sum())),
        "mask": float((chosen & (masked == mask_token_id)).sum()) / n,
        "random": float((chosen & (masked != mask_token_id) & (masked != original)).sum()) / n,
        "unchanged": float((chosen & (masked == original)).sum()) / n,
        "labels_match": bool((labels[chosen] == original[chosen]).all()),
    }


# ---------------------------------------------------------------- vocabularies and vectors


def word_vocabulary(token_lists: list[list[str]], min_count: int = 1,
                    specials: tuple[str, ...] = ("[PAD]", "[UNK]")) -> dict[str, int]:
    """A word-level vocabulary: special tokens first, then words by falling frequency (ties alphabetically)."""
    counts = Counter(t for tokens in token_lists for t in tokens)
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return {w: i for i, w in enumerate(list(specials) + words)}


def encode_words(tokens: list[str], vocab: dict[str, int], unk: str = "[UNK]") -> list[int]:
    """Ids of words in a word-level vocabulary; unknown words map to [UNK]."""
    return [vocab.get(t, vocab[unk]) for t in tokens]


def vsm_word_vectors(counts, doc_vectors) -> np.ndarray:
    """Seed 004's vector space model: v_w = Σ_d count(d, w) · v(d), for every word w at once.

    `counts` is the (documents × words) count matrix (dense or scipy sparse), `doc_vectors` the
    (documents × k) matrix whose row d is v(d). Returns the (words × k) matrix whose row w is v_w
    (scipy sparse when both inputs are sparse, e.g. one-hot document vectors).
    """
    from scipy import sparse

    result = counts.T @ doc_vectors
    return result.tocsr() if sparse.issparse(result) else np.asarray(result)


def cosine_neighbours(vectors: np.ndarray, words: list[str], query: str, k: int = 8) -> list[tuple[str, float]]:
    """The k words whose vectors are closest in cosine similarity to the query word's vector."""
    from scipy import sparse

    index = {w: i for i, w in enumerate(words)}
    if query not in index:
        raise KeyError(f"{query!r} is not in the vocabulary")
    q = index[query]
    if sparse.issparse(vectors):
        vectors = vectors.tocsr().astype(np.float64)
        norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(1)).ravel())
        dots = np.asarray((vectors @ vectors[q].T).todense()).ravel()
    else:
        vectors = np.asarray(vectors, dtype=np.float64)
        norms = np.linalg.norm(vectors, axis=1)
        dots = vectors @ vectors[q]
    sims = dots / (np.where(norms > 0, norms, 1) * (norms[q] or 1))
    order = [i for i in np.argsort(-sims, kind="stable") if i != index[query]][:k]
    return [(words[i], float(sims[i])) for i in order]


# ---------------------------------------------------------------- the bag-of-words baseline


def bow_baseline(train_texts: list[str], train_labels: list[int], test_texts: list[str], test_labels: list[int], *,
                 ngram_range: tuple[int, int] = (1, 2), C: float = 1.0, binary: bool = True) -> dict:
    """Bag-of-words (unigrams and bigrams, present/absent) + logistic regression: fit on train, score on test.

    Deterministic (the liblinear solver has no randomness here). Returns accuracy, macro_f1, seconds
    (fit and predict), the fitted pipeline and the test predictions.
    """
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline

    start = time.perf_counter()
    pipeline = make_pipeline(CountVectorizer(ngram_range=ngram_range, binary=binary, lowercase=True),
                             LogisticRegression(C=C, max_iter=2000, solver="liblinear"))
    pipeline.fit(list(train_texts), list(train_labels))
    predictions = pipeline.predict(list(test_texts))
    seconds = time.perf_counter() - start
    return {"accuracy": float(accuracy_score(test_labels, predictions)),
            "macro_f1": float(f1_score(test_labels, predictions, average="macro")),
            "seconds": seconds, "pipeline": pipeline, "predictions": predictions,
            "n_features": len(pipeline[0].vocabulary_)}


class NBScaler:
    """The "NB" of NB-SVM (Wang & Manning, 2012): scale each feature by its naive-Bayes log-count ratio
    r = log((p / ‖p‖₁) / (q / ‖q‖₁)), where p (q) sums the feature over positive (negative) training texts, plus α.

    A scikit-learn transformer: put it between the vectorizer and a linear classifier.
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def fit(self, X, y):
        y = np.asarray(y)
        if set(np.unique(y)) - {0, 1}:
            raise ValueError("NBScaler is for two classes labelled 0 and 1")
        p = self.alpha + np.asarray(X[y == 1].sum(0)).ravel()
        q = self.alpha + np.asarray(X[y == 0].sum(0)).ravel()
        self.ratios_ = np.log((p / p.sum()) / (q / q.sum()))
        return self

    def transform(self, X):
        from scipy import sparse

        return X @ sparse.diags(self.ratios_) if sparse.issparse(X) else np.asarray(X) * self.ratios_

    def fit_transform(self, X, y):
        return self.fit(X, y).transform(X)

    def get_params(self, deep: bool = True) -> dict:
        return {"alpha": self.alpha}

    def set_params(self, **params):
        for key, value in params.items():
            setattr(self, key, value)
        return self


BOW_MODELS = ("logistic", "nb-logistic")
BOW_CS = (0.1, 0.3, 1.0, 3.0, 10.0)


def tuned_bow_baseline(train_texts: list[str], train_labels: list[int], val_texts: list[str], val_labels: list[int],
                       test_texts: list[str], test_labels: list[int], *, Cs: tuple[float, ...] = BOW_CS,
                       models: tuple[str, ...] = BOW_MODELS, ngram_range: tuple[int, int] = (1, 2)) -> dict:
    """The bag-of-words baseline with its choices made on validation: the model ("logistic" regression on
    present/absent unigrams and bigrams, or "nb-logistic", the same with NB-SVM's log-count-ratio scaling) and the
    inverse regularisation strength C. Every candidate is fitted on train and scored on validation; the best
    validation accuracy wins (ties: the lower validation log-loss); the test split is scored once, by the winner.

    Returns what `bow_baseline` returns (accuracy, macro_f1, predictions, pipeline, n_features, seconds) for the
    winner on test, plus `model`, `C`, `val_accuracy` and `grid` (one row per candidate: model, C, validation
    accuracy and log-loss).
    """
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score, log_loss
    from sklearn.pipeline import Pipeline

    unknown = set(models) - set(BOW_MODELS)
    if unknown:
        raise ValueError(f"unknown model(s) {sorted(unknown)}; choose from {BOW_MODELS}")
    start = time.perf_counter()
    vectorizer = CountVectorizer(ngram_range=ngram_range, binary=True, lowercase=True)
    X_train = vectorizer.fit_transform(list(train_texts))
    X_val = vectorizer.transform(list(val_texts))
    y_train, y_val = np.asarray(train_labels), np.asarray(val_labels)
    grid, best = [], None
    for model in models:
        scaler = NBScaler().fit(X_train, y_train) if model == "nb-logistic" else None
        A_train = scaler.transform(X_train) if scaler else X_train
        A_val = scaler.transform(X_val) if scaler else X_val
        for C in Cs:
            classifier = LogisticRegression(C=C, max_iter=2000, solver="liblinear").fit(A_train, y_train)
            proba = classifier.predict_proba(A_val)
            row = {"model": model, "C": C, "val_accuracy": float(accuracy_score(y_val, proba.argmax(1))),
                   "val_log_loss": float(log_loss(y_val, proba, labels=[0, 1]))}
            grid.append(row)
            key = (row["val_accuracy"], -row["val_log_loss"])
            if best is None or key > best[0]:
                best = (key, row, scaler, classifier)
    _, row, scaler, classifier = best
    steps = [("vectorizer", vectorizer)] + ([("nb", scaler)] if scaler else []) + [("classifier", classifier)]
    pipeline = Pipeline(steps)
    predictions = pipeline.predict(list(test_texts))
    return {"accuracy": float(accuracy_score(test_labels, predictions)),
            "macro_f1": float(f1_score(test_labels, predictions, average="macro")),
            "seconds": time.perf_counter() - start, "pipeline": pipeline, "predictions": predictions,
            "n_features": len(vectorizer.vocabulary_), "model": row["model"], "C": row["C"],
            "val_accuracy": row["val_accuracy"], "grid": grid}
