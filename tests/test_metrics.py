"""Streaming metrics agree with scikit-learn, including classes absent from a batch."""
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from pretrain_lessons.metrics import ConfusionMatrix, MeanMetric, Perplexity, classification_table


@pytest.mark.parametrize("seed", range(5))
def test_confusion_scores_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    c = 6
    y_true = rng.integers(0, c - 1, 500)      # class 5 never occurs as a label...
    y_pred = rng.integers(0, c, 500)
    y_pred[y_pred == 3] = 2                   # ...and class 3 is never predicted
    cm = ConfusionMatrix(c)
    for start in range(0, 500, 37):           # streamed in uneven batches, some lacking classes
        cm.update(torch.tensor(y_pred[start:start + 37]), torch.tensor(y_true[start:start + 37]))
    scores = cm.compute()
    labels = list(range(c))
    np.testing.assert_array_equal(cm.matrix.numpy(), confusion_matrix(y_true, y_pred, labels=labels))
    assert scores["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    np.testing.assert_allclose(scores["precision"], p)
    np.testing.assert_allclose(scores["recall"], r)
    np.testing.assert_allclose(scores["f1"], f)
    np.testing.assert_array_equal(scores["support"], s)
    for avg in ("macro", "micro"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=avg, zero_division=0)
        assert scores[f"{avg}_precision"] == pytest.approx(p)
        assert scores[f"{avg}_recall"] == pytest.approx(r)
        assert scores[f"{avg}_f1"] == pytest.approx(f)


def test_ignored_positions_and_bad_classes():
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([[0, 1, 2]]), torch.tensor([[0, -100, 1]]))
    assert cm.matrix.sum() == 2
    with pytest.raises(ValueError, match="0..2"):
        cm.update(torch.tensor([0]), torch.tensor([3]))


def test_perplexity_and_mean():
    ppl = Perplexity()
    ppl.update(math.log(4), weight=10)
    ppl.update(math.log(16), weight=10)
    assert ppl.compute() == pytest.approx(8.0)   # exp of the mean log = geometric mean
    m = MeanMetric()
    m.update(1.0, 1)
    m.update(4.0, 3)
    assert m.compute() == pytest.approx(3.25)


def test_classification_table_has_averages():
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]))
    table = classification_table(cm.compute(), ["neg", "pos"])
    assert list(table.index) == ["neg", "pos", "macro avg", "micro avg"]
    assert table.loc["micro avg", "f1"] == pytest.approx(2 / 3, abs=1e-4)
