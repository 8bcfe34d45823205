"""Metrics against values counted by hand, from labels, logits and one-hot rows, on NumPy
arrays and on every backend's arrays."""

from __future__ import annotations

import numpy as np
import pytest

from portable_dl import ShapeError
from portable_dl.metrics import accuracy, confusion_matrix, f1, get_metric, precision, recall

# Six examples, three classes. Counted by hand (rows: true class, columns: predicted):
#   true 0 -> predicted 0, 0       [2, 0, 0]
#   true 1 -> predicted 1, 1, 1    [0, 3, 0]
#   true 2 -> predicted 1          [0, 1, 0]
# TP = [2, 3, 0], FP = [0, 1, 0], FN = [0, 0, 1].
TARGETS = np.array([0, 0, 1, 1, 1, 2])
PREDICTED = np.array([0, 0, 1, 1, 1, 1])
CONFUSION = [[2, 0, 0], [0, 3, 0], [0, 1, 0]]
ACCURACY = 5 / 6
MACRO_PRECISION = (1 + 3 / 4 + 0) / 3  # class 2 never predicted: its precision counts as 0
MACRO_RECALL = (1 + 1 + 0) / 3
MACRO_F1 = (4 / 4 + 6 / 7 + 0 / 1) / 3  # per class 2TP / (2TP + FP + FN)
MICRO = 5 / 6  # single-label data: micro precision = micro recall = micro F1 = accuracy


def logits_for(labels: np.ndarray, classes: int = 3) -> np.ndarray:
    """Scores whose arg-max is ``labels``, with noise so no row is one-hot."""
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(labels.size, classes))
    scores[np.arange(labels.size), labels] = 5.0
    return scores.astype(np.float32)


def test_hand_counted_values_from_labels():
    assert confusion_matrix(PREDICTED, TARGETS).tolist() == CONFUSION
    assert accuracy(PREDICTED, TARGETS) == pytest.approx(ACCURACY)
    assert precision(PREDICTED, TARGETS) == pytest.approx(MACRO_PRECISION)
    assert recall(PREDICTED, TARGETS) == pytest.approx(MACRO_RECALL)
    assert f1(PREDICTED, TARGETS) == pytest.approx(MACRO_F1)
    for metric in (precision, recall, f1):
        assert metric(PREDICTED, TARGETS, average="micro") == pytest.approx(MICRO)


def test_logits_and_one_hot_targets_on_every_backend(backend):
    logits = backend.asarray(logits_for(PREDICTED))
    one_hot = backend.asarray(np.eye(3, dtype=np.float32)[TARGETS])
    assert accuracy(logits, one_hot) == pytest.approx(ACCURACY)
    assert f1(logits, backend.asarray(TARGETS)) == pytest.approx(MACRO_F1)
    assert precision(logits, one_hot) == pytest.approx(MACRO_PRECISION)
    assert confusion_matrix(logits, one_hot).tolist() == CONFUSION


def test_num_classes_counts_absent_classes_and_otherwise_they_are_left_out():
    assert confusion_matrix(PREDICTED, TARGETS, num_classes=4).shape == (4, 4)
    assert precision(PREDICTED, TARGETS, num_classes=4) == pytest.approx((1 + 3 / 4) / 4)
    # Class 1 occurs in neither: it does not drag the macro average down.
    assert precision(np.array([0, 2]), np.array([0, 2])) == 1.0
    with pytest.raises(ValueError, match="num_classes=2"):
        confusion_matrix(PREDICTED, TARGETS, num_classes=2)


def test_binary_scores_use_the_threshold():
    probabilities = np.array([0.2, 0.7, 0.9, 0.4])
    targets = np.array([0, 1, 0, 0])
    assert accuracy(probabilities, targets) == pytest.approx(3 / 4)  # predicted [0, 1, 1, 0]
    logits = np.array([[-1.0], [2.0], [0.5], [-0.1]])
    assert accuracy(logits, targets, threshold=0.0) == pytest.approx(3 / 4)
    assert recall(probabilities, targets) == pytest.approx((2 / 3 + 1) / 2)


def test_bad_input_raises():
    with pytest.raises(ShapeError, match=r"\(6,\).*\(5,\)"):
        accuracy(PREDICTED, TARGETS[:5])
    with pytest.raises(ValueError, match="average"):
        f1(PREDICTED, TARGETS, average="weighted")
    with pytest.raises(ValueError, match="unknown metric"):
        get_metric("auc")
    assert get_metric("f1") is f1
