"""Exercises of 03_text_preprocessing: keep the negations, compute a TF-IDF weight, implement seed 004's VSM formula."""
from __future__ import annotations

import math

import numpy as np

from .core import Exercise, Incorrect, call, number

# ---------------------------------------------------------------- q1: a preprocess that keeps negations

Q1_CASES = [
    ("This movie is not good.", ["movie", "not", "good"]),
    ("I didn't like it, and it wasn't funny.", ["not", "like", "not", "funny"]),
    ("No jokes, no plot, never once surprising!", ["no", "jokes", "no", "plot", "never", "surprising"]),
    ("The 2 leads are great", ["leads", "great"]),
]


def _check_q1(fn):
    if not callable(fn):
        raise Incorrect("give a function that takes a text and returns a list of tokens.")
    for sentence, expected in Q1_CASES:
        got = call(fn, sentence)
        if not isinstance(got, list):
            raise Incorrect(f"your function returned {type(got).__name__}; return a list of strings.")
        if got != expected:
            if "the" in got or "is" in got or "are" in got:
                raise Incorrect(f"for {sentence!r} you returned {got}: ordinary stopwords such as 'the' and 'is' "
                                "should still go — remove only the negations from the stopword set.")
            if "n't" in got:
                raise Incorrect(f"for {sentence!r} you returned {got}: word_tokenize splits \"didn't\" into 'did' + "
                                "\"n't\"; map \"n't\" to 'not' before the isalpha() filter drops it.")
            raise Incorrect(f"for {sentence!r} the expected tokens are {expected}; you returned {got}.")


q1 = Exercise(
    name="q1",
    question=("Write `keep_negations(text)`: seed 001's pipeline (word_tokenize, lower-case, isalpha, English "
              "stopwords) except that 'not', 'no', 'nor' and 'never' survive and \"n't\" becomes 'not'."),
    checker=_check_q1,
    hint_text=("Make a smaller stopword set: english_stopwords() - {'not', 'no', 'nor', 'never'}. Lower-case the tokens "
               "and replace \"n't\" by 'not' *before* filtering with isalpha()."),
    solution_code='''import nltk
from pretrain_lessons.text import english_stopwords

def keep_negations(text):
    stop = english_stopwords() - {"not", "no", "nor", "never"}
    tokens = [t.lower() for t in nltk.word_tokenize(text)]
    tokens = ["not" if t == "n't" else t for t in tokens]
    return [t for t in tokens if t.isalpha() and t not in stop]''',
    answer_name="keep_negations",
    setup="import pretrain_lessons",
    wrong_answers=[
        "from pretrain_lessons.text import preprocess as keep_negations",
        '''import nltk
def keep_negations(text):
    return [t.lower() for t in nltk.word_tokenize(text) if t.isalpha()]''',
        '''import nltk
from pretrain_lessons.text import english_stopwords
def keep_negations(text):
    stop = english_stopwords() - {"not", "no", "nor", "never"}
    return [t.lower() for t in nltk.word_tokenize(text) if t.isalpha() and t.lower() not in stop]''',
    ],
)

# ---------------------------------------------------------------- q2: a TF-IDF weight by hand

Q2_DOCS = ["a great film", "a dull film", "a great great cast", "dull dull dull"]


def q2_expected() -> float:
    """tf × smoothed idf of 'great' in document 2 (0-based), as scikit-learn computes it before normalising."""
    n, df, tf = len(Q2_DOCS), sum("great" in d.split() for d in Q2_DOCS), Q2_DOCS[2].split().count("great")
    return tf * (math.log((1 + n) / (1 + df)) + 1)


def _check_q2(answer):
    value = number(answer, "give a number.")
    expected = q2_expected()
    if abs(value - expected) < 1e-3:
        return None
    n, df = len(Q2_DOCS), 2
    if abs(value - 2 * math.log(n / df)) < 1e-3:
        raise Incorrect("that is tf × ln(N/df), the textbook idf without smoothing; scikit-learn uses "
                        "ln((1 + N) / (1 + df)) + 1.")
    if abs(value - (math.log((1 + n) / (1 + df)) + 1)) < 1e-3:
        raise Incorrect("that is the idf alone; multiply by the term frequency (how often 'great' occurs in the document).")
    if abs(value - 2 * (math.log10((1 + n) / (1 + df)) + 1)) < 1e-3:
        raise Incorrect("scikit-learn uses the natural logarithm, not log10.")
    raise Incorrect(f"{value:.4f} is not it: count tf in the document, df over the {n} documents, then tf × idf.")


q2 = Exercise(
    name="q2",
    question=("For the four documents " + ", ".join(repr(d) for d in Q2_DOCS) + ", compute by hand the TF-IDF weight "
              "of 'great' in the third document ('a great great cast') as scikit-learn's TfidfVectorizer does "
              "before normalising: tf × (ln((1 + N) / (1 + df)) + 1)."),
    checker=_check_q2,
    hint_text="tf = 2 (it occurs twice); N = 4 documents; df = 2 documents contain 'great'. Use math.log (natural log).",
    solution_code="import math\ntfidf_great = 2 * (math.log((1 + 4) / (1 + 2)) + 1)",
    answer_name="tfidf_great",
    wrong_answers=["import math\ntfidf_great = 2 * math.log(4 / 2)",
                   "import math\ntfidf_great = math.log(5 / 3) + 1",
                   "import math\ntfidf_great = 2 * (math.log10(5 / 3) + 1)",
                   "tfidf_great = 'two'"],
)

# ---------------------------------------------------------------- q3: seed 004's VSM formula


def _check_q3(fn):
    if not callable(fn):
        raise Incorrect("give a function vsm(counts, doc_vectors).")
    rng = np.random.default_rng(7)
    counts = rng.integers(0, 4, size=(5, 3))
    doc_vectors = rng.normal(size=(5, 2))
    got = np.asarray(call(fn, counts, doc_vectors), dtype=float)
    expected = counts.T @ doc_vectors
    if got.shape != expected.shape:
        raise Incorrect(f"for 5 documents, 3 words and 2-dimensional v(d) the result should have shape (3, 2) — one "
                        f"vector per word; yours has shape {got.shape}.")
    if not np.allclose(got, expected):
        if np.allclose(got, (counts > 0).T @ doc_vectors):
            raise Incorrect("you used whether a word occurs, not how often: the formula weights v(d) by count(d, w).")
        raise Incorrect("the values differ from Σ_d count(d, w) · v(d); check which axis you sum over.")


q3 = Exercise(
    name="q3",
    question=("Write `vsm(counts, doc_vectors)` for seed 004's formula v_w = Σ_d count(d, w) · v(d): `counts` is a "
              "(documents × words) NumPy array, `doc_vectors` a (documents × k) array; return the (words × k) array "
              "of word vectors."),
    checker=_check_q3,
    hint_text=("Row w of the result is a weighted sum of the rows of doc_vectors, with weights counts[:, w]. "
               "All words at once: a matrix product with the transposed counts."),
    solution_code="def vsm(counts, doc_vectors):\n    return counts.T @ doc_vectors",
    answer_name="vsm",
    setup="import numpy as np",
    wrong_answers=["def vsm(counts, doc_vectors):\n    return doc_vectors.T @ counts",
                   "def vsm(counts, doc_vectors):\n    return (counts > 0).T @ doc_vectors",
                   "def vsm(counts, doc_vectors):\n    return counts.sum(0)[:, None] * doc_vectors.sum(0)",
                   "vsm = 3"],
)
