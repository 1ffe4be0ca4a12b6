"""Exercises of 05_finetuning_text_classification: attention masks, a real dataset for Trainer, compute_metrics,
fine-tuning for the five BBC News topics, judging a gap against its spread, and mean pooling."""
from __future__ import annotations

import numpy as np
import torch

from .core import Exercise, Incorrect, call

# ---------------------------------------------------------------- q1: the attention mask seed 001 forgot


def _check_q1(fn):
    if not callable(fn):
        raise Incorrect("define a function attention_mask_for(input_ids, pad_id) that returns a tensor.")
    ids = torch.tensor([[101, 2023, 3185, 102, 0, 0], [101, 2307, 999, 2143, 2003, 102]])
    mask = call(fn, ids, 0)
    if not isinstance(mask, torch.Tensor):
        raise Incorrect(f"return a tensor (got {type(mask).__name__}).")
    if tuple(mask.shape) != tuple(ids.shape):
        raise Incorrect(f"the mask must have one entry per token: shape {tuple(ids.shape)}, not {tuple(mask.shape)}.")
    expected = (ids != 0).long()
    if mask.is_floating_point() or mask.dtype == torch.bool:
        mask_values = mask.long()
    else:
        mask_values = mask
    if torch.equal(mask_values, 1 - expected):
        raise Incorrect("your mask is inverted: 1 marks a real token the model may attend to, 0 marks padding.")
    if torch.equal(mask_values, torch.ones_like(ids)):
        raise Incorrect("an all-ones mask lets every token attend to the [PAD] tokens — that is seed 001's bug.")
    if not torch.equal(mask_values, expected):
        raise Incorrect("the mask should be 1 exactly where input_ids is not the padding id, 0 elsewhere.")
    other = torch.tensor([[0, 31414, 232, 2, 1, 1]])   # RoBERTa-style ids: padding id 1, and 0 is a real token
    if not torch.equal(call(fn, other, 1).long(), torch.tensor([[1, 1, 1, 1, 0, 0]])):
        raise Incorrect("with pad_id=1 (as in RoBERTa's vocabulary) the mask is wrong: compare with pad_id, "
                        "do not assume padding is 0.")


q1 = Exercise(
    name="q1",
    question=("Seed 001 feeds BERT padded ids without an attention mask. Write `attention_mask_for(input_ids, pad_id)` "
              "that returns the mask (1 for real tokens, 0 for padding) for a batch of padded ids."),
    checker=_check_q1,
    hint_text="Compare the ids with the padding id element-wise (`!=`) and turn the booleans into integers with `.long()`.",
    solution_code="""def attention_mask_for(input_ids, pad_id):
    return (input_ids != pad_id).long()""",
    answer_name="attention_mask_for",
    setup="import torch",
    wrong_answers=[
        "def attention_mask_for(input_ids, pad_id):\n    return torch.ones_like(input_ids)",
        "def attention_mask_for(input_ids, pad_id):\n    return (input_ids == pad_id).long()",
        "def attention_mask_for(input_ids, pad_id):\n    return (input_ids != 0).long()",
        "def attention_mask_for(input_ids, pad_id):\n    return (input_ids != pad_id).long()[:, 1:]",
    ],
)


# ---------------------------------------------------------------- q2: a real dataset of examples for Trainer

Q2_SETUP = """
import torch
from transformers import AutoTokenizer
from pretrain_lessons.data.loaders import minilm_dir
minilm_tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
"""


def _check_q2(dataset_class):
    from transformers import AutoTokenizer

    from ..data.loaders import minilm_dir

    if not callable(dataset_class):
        raise Incorrect("define a class ReviewDataset(texts, labels) (a torch Dataset).")
    texts = ["A triumph.", "Dull and far too long.", "I laughed, I cried.", "Not worth the ticket.", "Pure joy!"]
    labels = [1, 0, 1, 0, 1]
    dataset = call(dataset_class, texts, labels)
    try:
        n = len(dataset)
    except TypeError:
        raise Incorrect("the dataset needs __len__ (the number of examples).") from None
    if n == 3:
        raise Incorrect("len() is 3: that is the number of keys of the tokenizer output (input_ids, token_type_ids, "
                        "attention_mask), not of examples — seed 004's mistake. Return one item per text.")
    if n != len(texts):
        raise Incorrect(f"the dataset has {n} items for {len(texts)} texts: one item per example.")
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    for i in range(n):
        item = dataset[i]
        if not isinstance(item, dict):
            raise Incorrect(f"item {i} is a {type(item).__name__}; Trainer's collator wants a dict of tensors per example.")
        if "labels" not in item:
            raise Incorrect(f"item {i} has keys {sorted(item)} but no 'labels': the model cannot compute a loss, "
                            "Trainer cannot train.")
        if "input_ids" not in item or "attention_mask" not in item:
            raise Incorrect(f"item {i} needs 'input_ids' and 'attention_mask' (it has {sorted(item)}).")
        if int(torch.as_tensor(item["labels"])) != labels[i]:
            raise Incorrect(f"item {i} carries label {item['labels']}, but text {i} has label {labels[i]}.")
        ids = [int(t) for t in torch.as_tensor(item["input_ids"]).reshape(-1).tolist()]
        mask = [int(t) for t in torch.as_tensor(item["attention_mask"]).reshape(-1).tolist()]
        if len(mask) != len(ids):
            raise Incorrect(f"item {i}: attention_mask has {len(mask)} entries for {len(ids)} input_ids; one per token.")
        real = [t for t in ids if t != tokenizer.pad_token_id]
        if real != tokenizer(texts[i])["input_ids"]:
            raise Incorrect(f"item {i}'s input_ids do not encode text {i} ({texts[i]!r}) with the MiniLM tokenizer.")
        expected = [int(t != tokenizer.pad_token_id) for t in ids]
        if mask != expected:
            if all(m == 1 for m in mask):
                raise Incorrect(f"item {i} is padded, but its attention_mask is all ones: the model would attend to "
                                "the [PAD] tokens — seed 001's bug. Use the mask the tokenizer returns (0 on padding).")
            raise Incorrect(f"item {i}'s attention_mask is {mask}; it must be 1 on the real tokens and 0 on the "
                            f"padding: {expected}.")


q2 = Exercise(
    name="q2",
    question=("Fix seed 004: write a `torch.utils.data.Dataset` class `ReviewDataset(texts, labels)` whose items are "
              "dicts with `input_ids`, `attention_mask` and `labels` (tokenise with `minilm_tokenizer`), so that "
              "`Trainer(train_dataset=ReviewDataset(texts, labels), …)` can train."),
    checker=_check_q2,
    hint_text=("Tokenise all texts once in __init__ (truncation=True). __len__ returns the number of labels; "
               "__getitem__(i) builds {key: torch.tensor(values[i]) for each key of the encodings} and adds "
               "'labels': torch.tensor(labels[i]). Seed 003's CustomDataset is the pattern."),
    solution_code="""class ReviewDataset(torch.utils.data.Dataset):
    def __init__(self, texts, labels):
        self.encodings = minilm_tokenizer(list(texts), truncation=True, max_length=64)
        self.labels = list(labels)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        item = {key: torch.tensor(values[i]) for key, values in self.encodings.items()}
        item["labels"] = torch.tensor(self.labels[i])
        return item""",
    answer_name="ReviewDataset",
    setup=Q2_SETUP,
    wrong_answers=[
        "ReviewDataset = lambda texts, labels: minilm_tokenizer(list(texts), truncation=True)",
        """class ReviewDataset(torch.utils.data.Dataset):
    def __init__(self, texts, labels):
        self.enc = minilm_tokenizer(list(texts), padding="max_length", max_length=16, truncation=True)
        self.labels = list(labels)
    def __len__(self):
        return len(self.labels)
    def __getitem__(self, i):
        ids = torch.tensor(self.enc["input_ids"][i])
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.tensor(self.labels[i])}""",
        """class ReviewDataset(torch.utils.data.Dataset):
    def __init__(self, texts, labels):
        self.enc = minilm_tokenizer(list(texts), padding="max_length", max_length=16, truncation=True)
        self.labels = list(labels)
    def __len__(self):
        return len(self.labels)
    def __getitem__(self, i):
        ids = torch.tensor(self.enc["input_ids"][i])
        return {"input_ids": ids, "attention_mask": (ids == 0).long(), "labels": torch.tensor(self.labels[i])}""",
        """class ReviewDataset(torch.utils.data.Dataset):
    def __init__(self, texts, labels):
        self.enc = minilm_tokenizer(list(texts), truncation=True)
    def __len__(self):
        return len(self.enc['input_ids'])
    def __getitem__(self, i):
        return {k: torch.tensor(v[i]) for k, v in self.enc.items()}""",
        """class ReviewDataset(torch.utils.data.Dataset):
    def __init__(self, texts, labels):
        self.enc, self.labels = minilm_tokenizer(list(texts), truncation=True), labels
    def __len__(self):
        return len(self.labels)
    def __getitem__(self, i):
        return {**{k: torch.tensor(v[i]) for k, v in self.enc.items()}, 'labels': torch.tensor(self.labels[0])}""",
    ],
)


# ---------------------------------------------------------------- q3: compute_metrics for Trainer


def _check_q3(fn):
    from sklearn.metrics import accuracy_score, f1_score

    if not callable(fn):
        raise Incorrect("define a function compute_metrics(eval_pred) that returns a dict.")
    rng = np.random.default_rng(5)
    labels = np.array([0] * 12 + [1] * 5 + [2] * 3)
    logits = rng.normal(size=(len(labels), 3)).astype(np.float32)
    logits[np.arange(12), 0] += 2.5   # mostly right on the big class, mostly wrong on the small ones
    result = call(fn, (logits, labels))
    if not isinstance(result, dict):
        raise Incorrect(f"return a dict such as {{'accuracy': …, 'macro_f1': …}}, not {type(result).__name__}.")
    missing = {"accuracy", "macro_f1"} - set(result)
    if missing:
        raise Incorrect(f"the dict needs the keys 'accuracy' and 'macro_f1'; missing {sorted(missing)}.")
    preds = logits.argmax(-1)
    accuracy, macro = accuracy_score(labels, preds), f1_score(labels, preds, average="macro")
    try:
        acc_value, f1_value = float(result["accuracy"]), float(result["macro_f1"])
    except (TypeError, ValueError):
        raise Incorrect("the metric values must be numbers.") from None
    if abs(acc_value - accuracy) > 1e-6:
        raise Incorrect(f"accuracy is {acc_value:.4f}, expected {accuracy:.4f}: take argmax over the last axis of the "
                        "logits to get predicted classes, then compare with the labels.")
    if abs(f1_value - accuracy) < 1e-6 and abs(macro - accuracy) > 1e-6:
        raise Incorrect("your macro_f1 equals the accuracy — that is micro-averaged F1. Macro-F1 averages the F1 of each "
                        "class with equal weight (average='macro').")
    if abs(f1_value - macro) > 1e-6:
        raise Incorrect(f"macro_f1 is {f1_value:.4f}, expected {macro:.4f}: compute F1 per class and take the plain mean "
                        "(sklearn's f1_score(..., average='macro')).")


q3 = Exercise(
    name="q3",
    question=("Write `compute_metrics(eval_pred)` for `Trainer`: `eval_pred` unpacks to `(logits, labels)` (NumPy "
              "arrays); return `{'accuracy': …, 'macro_f1': …}`."),
    checker=_check_q3,
    hint_text=("logits, labels = eval_pred; preds = logits.argmax(-1). sklearn.metrics has accuracy_score and "
               "f1_score — pass average='macro' to the latter."),
    solution_code="""from sklearn.metrics import accuracy_score, f1_score

def compute_metrics(eval_pred):
    logits, labels = eval_pred
    preds = logits.argmax(-1)
    return {"accuracy": accuracy_score(labels, preds), "macro_f1": f1_score(labels, preds, average="macro")}""",
    answer_name="compute_metrics",
    setup="import numpy as np",
    wrong_answers=[
        """from sklearn.metrics import accuracy_score, f1_score
def compute_metrics(eval_pred):
    logits, labels = eval_pred
    preds = logits.argmax(-1)
    return {"accuracy": accuracy_score(labels, preds), "macro_f1": f1_score(labels, preds, average="micro")}""",
        """def compute_metrics(eval_pred):
    logits, labels = eval_pred
    return {"accuracy": float((logits.argmax(0)[:len(labels)] == labels).mean()), "macro_f1": 0.5}""",
        """from sklearn.metrics import accuracy_score, f1_score
def compute_metrics(eval_pred):
    logits, labels = eval_pred
    preds = logits.argmax(-1)
    return {"accuracy": accuracy_score(labels, preds), "macro_f1": f1_score(labels, preds, average="weighted")}""",
        """def compute_metrics(eval_pred):
    logits, labels = eval_pred
    return {"accuracy": 0.9}""",
    ],
)


# ---------------------------------------------------------------- q4: five BBC News topics


def bbc_exercise_split(train_per_class: int = 10, check_per_class: int = 20, seed: int = 0):
    """A small fixed split of BBC News: (train texts, train labels, check texts); the check labels stay hidden."""
    train_texts, train_labels, check_texts, _ = _bbc_split(train_per_class, check_per_class, seed)
    return train_texts, train_labels, check_texts


def _bbc_split(train_per_class: int, check_per_class: int, seed: int):
    from ..data.loaders import bbc_news

    texts, labels = bbc_news()
    rng = np.random.default_rng(seed)
    train, check = [], []
    for c in sorted(set(labels)):
        idx = rng.permutation([i for i, y in enumerate(labels) if y == c])
        train += idx[:train_per_class].tolist()
        check += idx[train_per_class:train_per_class + check_per_class].tolist()
    train, check = rng.permutation(train).tolist(), sorted(check)
    return ([texts[i] for i in train], [labels[i] for i in train], [texts[i] for i in check],
            [labels[i] for i in check])


def _check_q4(predictions):
    from ..data.loaders import BBC_CLASSES

    *_, check_labels = _bbc_split(10, 20, 0)
    try:
        preds = np.asarray(predictions).astype(int).ravel()
    except (TypeError, ValueError):
        raise Incorrect("give a list (or array) of predicted class indices, one per article of bbc_check_texts.") from None
    if len(preds) != len(check_labels):
        raise Incorrect(f"you gave {len(preds)} predictions for {len(check_labels)} articles: predict every article of "
                        "bbc_check_texts, in order.")
    used = set(preds.tolist())
    if len(used) == 1:
        raise Incorrect(f"every article is predicted as class {used.pop()}: the model has not learned the topics yet "
                        "(or the predictions are not from a trained model).")
    if used <= {0, 1}:
        raise Incorrect("only classes 0 and 1 are predicted: a 2-label head cannot name 5 topics. Build the model with "
                        "num_labels=5.")
    if not used <= set(range(len(BBC_CLASSES))):
        raise Incorrect(f"class indices must lie in 0..4 (the {len(BBC_CLASSES)} topics); got {sorted(used)[:6]}.")
    accuracy = float((preds == np.asarray(check_labels)).mean())
    if accuracy < 0.7:
        raise Incorrect(f"{accuracy:.0%} of the held-out articles are right; a fine-tuned MiniLM gets above 80 %. "
                        "Train a few more steps or with a larger learning rate (2e-4), and keep the label order of "
                        "BBC_CLASSES.")
    return f"{accuracy:.0%} of the {len(preds)} held-out articles are classified correctly."


Q4_SETUP = """
from transformers import AutoTokenizer
from pretrain_lessons.data.loaders import BBC_CLASSES, minilm_dir
from pretrain_lessons.exercises.lesson05 import bbc_exercise_split
from pretrain_lessons.finetune import finetune_classifier, minilm_classifier, predict_proba
bbc_train_texts, bbc_train_labels, bbc_check_texts = bbc_exercise_split()
minilm_tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
"""

q4 = Exercise(
    name="q4",
    question=("Fine-tune MiniLM for the five BBC News topics (business, entertainment, politics, sport, tech) on "
              "`bbc_train_texts` / `bbc_train_labels`, then predict the topic of each article of `bbc_check_texts`: "
              "`bbc_predictions` is a list of class indices (the order of `BBC_CLASSES`)."),
    checker=_check_q4,
    hint_text=("minilm_classifier(num_labels=5) gives MiniLM with a 5-way head. finetune_classifier(model, "
               "minilm_tokenizer, texts, labels, lr=2e-4, epochs=3, batch_size=10, max_length=24) trains it in "
               "seconds (the first 24 tokens — the headline and a few words — say a lot about the topic). "
               "predict_proba(...).argmax(1) gives the predictions."),
    solution_code="""bbc_model = minilm_classifier(num_labels=5, id2label=dict(enumerate(BBC_CLASSES)),
                               label2id={name: i for i, name in enumerate(BBC_CLASSES)})
finetune_classifier(bbc_model, minilm_tokenizer, bbc_train_texts, bbc_train_labels, lr=2e-4, epochs=3,
                    batch_size=10, max_length=24, progress=False)
bbc_predictions = predict_proba(bbc_model, minilm_tokenizer, bbc_check_texts, max_length=24).argmax(1).tolist()""",
    answer_name="bbc_predictions",
    setup=Q4_SETUP,
    wrong_answers=[
        "bbc_predictions = [0] * len(bbc_check_texts)",
        "bbc_predictions = [i % 2 for i in range(len(bbc_check_texts))]",
        "bbc_predictions = [1, 2, 3]",
        "bbc_predictions = [i % 5 for i in range(len(bbc_check_texts))]",
    ],
)


# ---------------------------------------------------------------- q5: is the gap real? Judge it against its spread

# Two experiments of the kind this lesson runs: test accuracy of two models on the same draws of labelled reviews
# (draw i of A and draw i of B were trained on the same labelled subset). Not this lesson's numbers.
Q5_RUNS = {
    "experiment 1": {"A": [0.712, 0.641, 0.735, 0.668, 0.702], "B": [0.690, 0.655, 0.701, 0.641, 0.689]},
    "experiment 2": {"A": [0.804, 0.811, 0.798, 0.815, 0.806], "B": [0.797, 0.802, 0.791, 0.806, 0.800]},
}


def q5_runs() -> dict:
    """The runs of exercise 5: {experiment: {"A": [accuracy per draw], "B": [...]}}, paired by draw."""
    return {e: {k: list(v) for k, v in runs.items()} for e, runs in Q5_RUNS.items()}


def _q5_expected() -> dict:
    from ..stats import compare

    out = {}
    for experiment, runs in Q5_RUNS.items():
        c = compare(runs["A"], runs["B"], paired=True)
        out[experiment] = (c.verdict, c.p)
    return out


def _check_q5(answer):
    from ..stats import compare

    if not isinstance(answer, dict) or set(answer) != set(Q5_RUNS):
        raise Incorrect(f"give a dict with one entry per experiment, {sorted(Q5_RUNS)}, each a (verdict, p) pair.")
    expected = _q5_expected()
    for experiment, value in answer.items():
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise Incorrect(f"{experiment}: give a pair (verdict, p-value), e.g. ('better', 0.01).")
        verdict, p = value
        p = float(p) if isinstance(p, (int, float)) else p
        if not isinstance(p, float):
            raise Incorrect(f"{experiment}: the second entry is the p-value, a number.")
        want_verdict, want_p = expected[experiment]
        runs = Q5_RUNS[experiment]
        welch = compare(runs["A"], runs["B"], paired=False).p
        if abs(p - want_p) > 1e-3:
            if abs(p - welch) < 1e-3:
                raise Incorrect(f"{experiment}: that p-value treats the runs as unpaired (Welch's test). Draw i of A "
                                "and of B saw the same labelled reviews: compare them draw by draw (paired=True).")
            raise Incorrect(f"{experiment}: the p-value is not that of a paired t-test on the per-draw differences "
                            "A[i] − B[i] (stats.compare(A, B, paired=True).p).")
        if verdict not in ("better", "worse", "no measurable difference"):
            raise Incorrect(f"{experiment}: the verdict is 'better', 'worse' or 'no measurable difference'.")
        if verdict != want_verdict:
            mean_gap = float(np.mean(runs["A"]) - np.mean(runs["B"]))
            raise Incorrect(f"{experiment}: A is {100 * mean_gap:+.1f} points on average, but with p = {want_p:.3f} "
                            f"against the 0.05 threshold the verdict for A is not {verdict!r}. Judge the gap against "
                            "its spread across draws, not by its size alone.")
    return ("experiment 1's bigger gap is inside the noise of its draws; experiment 2's small gap is the same on "
            "every draw, so it is real.")


q5 = Exercise(
    name="q5",
    question=("`ex.q5_runs()` gives two experiments, each the test accuracy of models A and B on the same five draws "
              "of labelled reviews. For each experiment give (verdict for A, p-value) of a paired comparison at "
              "α = 0.05: `q5_answer = {'experiment 1': (verdict, p), 'experiment 2': (verdict, p)}`."),
    checker=_check_q5,
    hint_text=("stats.compare(A, B, paired=True) pairs A[i] with B[i] and returns .verdict and .p. Which experiment "
               "has the bigger mean gap, and which the more consistent one?"),
    solution_code="""from pretrain_lessons import stats
q5_answer = {}
for experiment, runs in ex.q5_runs().items():
    c = stats.compare(runs["A"], runs["B"], paired=True)
    q5_answer[experiment] = (c.verdict, c.p)""",
    answer_name="q5_answer",
    setup="from pretrain_lessons.exercises import lesson05 as ex",
    wrong_answers=[
        "q5_answer = {'experiment 1': ('better', 0.2), 'experiment 2': ('better', 0.01)}",
        """from pretrain_lessons import stats
q5_answer = {e: (stats.compare(r['A'], r['B'], paired=False).verdict, stats.compare(r['A'], r['B'], paired=False).p)
             for e, r in ex.q5_runs().items()}""",
        """from pretrain_lessons import stats
q5_answer = {e: ('better' if sum(r['A']) > sum(r['B']) else 'worse', stats.compare(r['A'], r['B']).p)
             for e, r in ex.q5_runs().items()}""",
        "q5_answer = ('no measurable difference', 0.2)",
    ],
)


# ---------------------------------------------------------------- q6: mean pooling, padding excluded


def _check_q6(fn):
    if not callable(fn):
        raise Incorrect("define a function mean_pool(hidden, attention_mask) that returns a tensor.")
    g = torch.Generator().manual_seed(6)
    hidden = torch.randn(3, 5, 4, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    hidden[mask == 0] = 50.0          # what a model computes at [PAD] positions must not matter
    out = call(fn, hidden, mask)
    if not isinstance(out, torch.Tensor):
        raise Incorrect(f"return a tensor (got {type(out).__name__}).")
    if tuple(out.shape) != (3, 4):
        raise Incorrect(f"one vector per text: shape (batch, hidden) = (3, 4), not {tuple(out.shape)}.")
    expected = torch.stack([hidden[i, mask[i].bool()].mean(0) for i in range(3)])
    if torch.allclose(out, hidden[:, 0], atol=1e-5):
        raise Incorrect("that is the [CLS] vector (position 0), not the average over the tokens.")
    if torch.allclose(out, hidden.mean(1), atol=1e-4):
        raise Incorrect("you averaged over every position, padding included: the [PAD] vectors pull the mean. "
                        "Use the attention mask to keep only the real tokens.")
    if torch.allclose(out, (hidden * mask.unsqueeze(-1)).sum(1) / hidden.shape[1], atol=1e-4):
        raise Incorrect("the sum excludes the padding, but you divide by the full length: divide by the number of "
                        "real tokens of each text (mask.sum(1)).")
    if not torch.allclose(out.float(), expected, atol=1e-4):
        raise Incorrect("not the mean of the real tokens' vectors: multiply by the mask (unsqueezed to (batch, "
                        "length, 1)), sum over the length, and divide by each text's number of real tokens.")


q6 = Exercise(
    name="q6",
    question=("MiniLM-L6 was trained to represent a text by the **mean** of its token vectors. Write "
              "`mean_pool(hidden, attention_mask)`: hidden is (batch, length, d), attention_mask (batch, length) with "
              "1 for real tokens and 0 for padding; return the (batch, d) average over the real tokens only."),
    checker=_check_q6,
    hint_text=("mask = attention_mask.unsqueeze(-1).float() has shape (batch, length, 1); (hidden * mask).sum(1) adds "
               "the real tokens' vectors; mask.sum(1) counts them."),
    solution_code="""def mean_pool(hidden, attention_mask):
    mask = attention_mask.unsqueeze(-1).float()
    return (hidden * mask).sum(1) / mask.sum(1)""",
    answer_name="mean_pool",
    setup="import torch",
    wrong_answers=[
        "def mean_pool(hidden, attention_mask):\n    return hidden.mean(1)",
        "def mean_pool(hidden, attention_mask):\n    return hidden[:, 0]",
        "def mean_pool(hidden, attention_mask):\n    return (hidden * attention_mask.unsqueeze(-1)).sum(1) / hidden.shape[1]",
        "def mean_pool(hidden, attention_mask):\n    return (hidden * attention_mask.unsqueeze(-1)).sum(1)",
    ],
)
