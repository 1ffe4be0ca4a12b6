"""Exercises of 03_text_preprocessing: keep the negations, a TF-IDF weight, seed 004's VSM formula, choosing C on the
right split, and judging whether a gap between two classifiers is real."""
from __future__ import annotations

import math
from functools import lru_cache

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
            if "n't" in got or "did" in got or "was" in got or (expected.count("not") > got.count("not")
                                                                and "n't" in sentence.replace("n’t", "n't")):
                raise Incorrect(f"for {sentence!r} you returned {got}: word_tokenize splits \"didn't\" into 'did' + "
                                "\"n't\", and isalpha() then drops \"n't\" — map \"n't\" to 'not' *before* the isalpha() "
                                "filter.")
            if "no" in expected and "no" not in got:
                raise Incorrect(f"for {sentence!r} you returned {got}: 'no' is in NLTK's stopword list; take it out "
                                "of the set you filter with, as you did for 'not'.")
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

# ---------------------------------------------------------------- q4: which split do you choose C on?

Q4_CS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
Q4_N_TRAIN = 3000


@lru_cache(maxsize=1)
def _q4_data():
    from sklearn.feature_extraction.text import CountVectorizer

    from ..data.loaders import rotten_tomatoes

    split = {name: rotten_tomatoes(name) for name in ("train", "validation", "test")}
    split["train"] = (split["train"][0][:Q4_N_TRAIN], split["train"][1][:Q4_N_TRAIN])
    vectorizer = CountVectorizer(binary=True).fit(split["train"][0])
    return {name: (vectorizer.transform(x), np.array(y)) for name, (x, y) in split.items()}


@lru_cache(maxsize=None)
def q4_scores(C: float) -> dict[str, float]:
    """Bag of words (unigrams, present/absent) + logistic regression with inverse regularisation strength C, fitted
    on the first 3,000 training reviews: its accuracy on those training reviews, on validation and on test."""
    from sklearn.linear_model import LogisticRegression

    data = _q4_data()
    model = LogisticRegression(C=float(C), max_iter=2000, solver="liblinear").fit(*data["train"])
    return {name: float((model.predict(x) == y).mean()) for name, (x, y) in data.items()}


def _best(split: str) -> list[float]:
    values = [q4_scores(C)[split] for C in Q4_CS]
    return [C for C, v in zip(Q4_CS, values) if v == max(values)]


def _check_q4(answer):
    value = number(answer, "give the value of C you choose (a number from the grid).")
    if not any(abs(value - C) < 1e-9 for C in Q4_CS):
        raise Incorrect(f"choose one of the grid values {list(Q4_CS)}.")
    if value in _best("validation"):
        return "validation is where choices are made; the test split stays untouched until the one final report."
    if value in _best("test"):
        raise Incorrect("that C has the best *test* accuracy. Choosing on test makes the test score an optimistic "
                        "estimate — the test split is only for the final report. Choose on validation.")
    if value in _best("train"):
        raise Incorrect("that C has the best *training* accuracy: weaker regularisation always fits the training "
                        "reviews better, so training accuracy cannot choose C. Choose on validation.")
    raise Incorrect("that C is not the best on any split: compare the validation accuracies of the whole grid.")


q4 = Exercise(
    name="q4",
    question=("`ex.q4_scores(C)` fits a bag-of-words logistic regression (unigrams, present/absent) with inverse "
              "regularisation strength C on the first 3,000 training reviews and returns its accuracy on those "
              "training reviews, on validation and on test. Run it for every C in `ex.Q4_CS` and give the C you "
              "would use."),
    checker=_check_q4,
    hint_text=("Put the three accuracies of every C in a table. Training accuracy only grows with C; test is for the "
               "final report. Which split is left for choices?"),
    solution_code=("scores = {C: ex.q4_scores(C) for C in ex.Q4_CS}\n"
                   "chosen_C = max(ex.Q4_CS, key=lambda C: scores[C]['validation'])"),
    answer_name="chosen_C",
    setup="from pretrain_lessons.exercises import lesson03 as ex",
    wrong_answers=["chosen_C = max(ex.Q4_CS, key=lambda C: ex.q4_scores(C)['test'])",
                   "chosen_C = max(ex.Q4_CS, key=lambda C: ex.q4_scores(C)['train'])",
                   "chosen_C = 1.0", "chosen_C = 5", "chosen_C = 'validation'"],
)

# ---------------------------------------------------------------- q5: is the gap real?

Q5 = {"n": 1276, "a_right": 1012, "b_right": 998, "only_a": 61, "only_b": 47}


def q5_expected() -> str:
    from ..stats import mcnemar

    only_a, only_b = Q5["only_a"], Q5["only_b"]
    _, _, p = mcnemar([True] * only_a + [False] * only_b, [False] * only_a + [True] * only_b)
    return "no measurable difference" if p >= 0.05 else ("better" if only_a > only_b else "worse")


def _check_q5(answer):
    if not isinstance(answer, str):
        raise Incorrect("answer with one of the strings 'better', 'worse' or 'no measurable difference'.")
    value = answer.strip().lower()
    if value not in ("better", "worse", "no measurable difference"):
        raise Incorrect("answer with one of the strings 'better', 'worse' or 'no measurable difference'.")
    expected = q5_expected()
    if value == expected:
        return ("61 against 47 discordant reviews is what a fair coin gives quite often (exact McNemar p ≈ 0.21): "
                "the 14-review gap is inside the noise.")
    if value == "better":
        raise Incorrect("A is ahead by 14 reviews, but only the 108 reviews on which the two disagree carry "
                        "information: would a fair coin split 108 tosses 61 to 47 often? Compute the exact McNemar "
                        "p-value (stats.mcnemar) before calling it better.")
    raise Incorrect("A has more correct answers than B, so it cannot be worse; the question is whether the gap is real.")


q5 = Exercise(
    name="q5",
    question=("Two sentiment classifiers were scored on the same 1,276 test reviews. A is right on 1,012, B on 998; "
              "A is right where B is wrong on 61 reviews, and B right where A is wrong on 47. Compared with B, is A "
              "'better', 'worse', or is there 'no measurable difference' (5 % level)?"),
    checker=_check_q5,
    hint_text=("Reviews both get right (or both get wrong) say nothing about which is better. Under 'no difference' "
               "each of the 61 + 47 disagreements is a fair coin toss: `stats.mcnemar(correct_a, correct_b)` gives "
               "the exact p-value from two boolean arrays."),
    solution_code=("import numpy as np\nfrom pretrain_lessons import stats\n\n"
                   "correct_a = np.array([True] * 61 + [False] * 47)   # only the discordant reviews matter\n"
                   "correct_b = ~correct_a\n"
                   "_, _, p = stats.mcnemar(correct_a, correct_b)\n"
                   "verdict = 'no measurable difference' if p >= 0.05 else 'better'"),
    answer_name="verdict",
    wrong_answers=["verdict = 'better'", "verdict = 'worse'", "verdict = 0.21", "verdict = 'A'"],
)
