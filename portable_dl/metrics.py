"""Classification metrics: accuracy, precision, recall, F1 and the confusion matrix.

Metrics are read, not differentiated, so they run in NumPy on the host: backend arrays are
moved out with their backend's ``to_numpy`` first. Every function takes ``(predictions,
targets)`` in that order, like the losses:

- ``predictions``: integer labels of shape (N,), or scores (logits or probabilities) of
  shape (N, C) whose arg-max is the predicted class, or binary scores of shape (N,) or
  (N, 1) in floating point, compared with ``threshold`` (0.5 for probabilities; pass 0.0
  for logits);
- ``targets``: integer labels of shape (N,), or one-hot or probability rows of shape (N, C).

Results are Python floats (the confusion matrix: an int64 NumPy array).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import ShapeError

__all__ = ["accuracy", "precision", "recall", "f1", "confusion_matrix", "get_metric", "METRICS"]


def accuracy(predictions: Any, targets: Any, *, threshold: float = 0.5) -> float:
    """The fraction of examples whose predicted class is the target class."""
    predicted, actual = _labels_pair(predictions, targets, threshold)
    return float(np.mean(predicted == actual)) if actual.size else 0.0


def confusion_matrix(
    predictions: Any, targets: Any, *, num_classes: int | None = None, threshold: float = 0.5
) -> np.ndarray:
    """Counts ``M[i, j]`` of examples of true class ``i`` predicted as class ``j``.

    Shape (C, C), int64, with ``C = num_classes`` or one more than the largest label seen.
    """
    predicted, actual = _labels_pair(predictions, targets, threshold)
    size = _class_count(predicted, actual, num_classes)
    matrix = np.zeros((size, size), dtype=np.int64)
    np.add.at(matrix, (actual, predicted), 1)
    return matrix


def precision(
    predictions: Any, targets: Any, *, average: str = "macro", num_classes: int | None = None, threshold: float = 0.5
) -> float:
    """Of the examples predicted as a class, the fraction that belong to it:
    ``TP / (TP + FP)``, 0 where nothing was predicted as the class.

    ``average="macro"``: the unweighted mean over classes (those seen in targets or
    predictions, or all ``num_classes``); ``"micro"``: from the counts summed over classes,
    which for single-label data equals the accuracy.
    """
    true_positive, false_positive, _ = _per_class_counts(predictions, targets, num_classes, threshold, average)
    return _averaged(true_positive, true_positive + false_positive, average)


def recall(
    predictions: Any, targets: Any, *, average: str = "macro", num_classes: int | None = None, threshold: float = 0.5
) -> float:
    """Of the examples of a class, the fraction predicted as it: ``TP / (TP + FN)``,
    0 where the class has no examples. ``average`` as in :func:`precision`."""
    true_positive, _, false_negative = _per_class_counts(predictions, targets, num_classes, threshold, average)
    return _averaged(true_positive, true_positive + false_negative, average)


def f1(
    predictions: Any, targets: Any, *, average: str = "macro", num_classes: int | None = None, threshold: float = 0.5
) -> float:
    """The harmonic mean of precision and recall, ``2 TP / (2 TP + FP + FN)``, 0 where
    the denominator is 0.

    ``"macro"`` averages the per-class F1 scores; ``"micro"`` computes F1 once from the
    counts summed over classes.
    """
    true_positive, false_positive, false_negative = _per_class_counts(
        predictions, targets, num_classes, threshold, average
    )
    return _averaged(2 * true_positive, 2 * true_positive + false_positive + false_negative, average)


#: Metric functions by name, for ``fit(..., metrics=["accuracy", "f1"])``.
METRICS: dict[str, Callable[..., float]] = {
    "accuracy": accuracy,
    "precision": precision,
    "recall": recall,
    "f1": f1,
}


def get_metric(name_or_callable: str | Callable) -> Callable[[Any, Any], float]:
    """The metric called ``name`` (one of :data:`METRICS`), or the callable itself."""
    if callable(name_or_callable):
        return name_or_callable
    try:
        return METRICS[name_or_callable]
    except (KeyError, TypeError):
        raise ValueError(f"unknown metric {name_or_callable!r}; known metrics: {', '.join(METRICS)}") from None


# ------------------------------------------------------------------- helpers
def _to_numpy(x: Any) -> np.ndarray:
    """A NumPy array from a NumPy array, a list, or an array of any backend created so far."""
    if isinstance(x, (np.ndarray, np.generic, list, tuple, int, float)):
        return np.asarray(x)
    from .registry import backend_of

    return backend_of(x).to_numpy(x)


def _as_labels(x: np.ndarray, threshold: float, what: str) -> np.ndarray:
    """Class labels (N,) from labels (N,), class scores (N, C), or binary scores (N,)/(N, 1)."""
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim == 2:
        return np.argmax(x, axis=1)
    if x.ndim != 1:
        raise ShapeError(f"{what} must have shape (N,) or (N, C), got shape {x.shape}")
    if np.issubdtype(x.dtype, np.floating):
        if what == "targets" and np.all(x == np.round(x)):
            return x.astype(np.int64)
        return (x > threshold).astype(np.int64)
    return x.astype(np.int64)


def _labels_pair(predictions: Any, targets: Any, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    predictions, targets = _to_numpy(predictions), _to_numpy(targets)
    if predictions.shape[:1] != targets.shape[:1]:
        raise ShapeError(
            f"predictions of shape {predictions.shape} and targets of shape {targets.shape} "
            "hold different numbers of examples"
        )
    predicted = _as_labels(predictions, threshold, "predictions")
    actual = _as_labels(targets, threshold, "targets")
    if predicted.size and (predicted.min() < 0 or actual.min() < 0):
        raise ValueError("class labels must be non-negative integers")
    return predicted, actual


def _class_count(predicted: np.ndarray, actual: np.ndarray, num_classes: int | None) -> int:
    seen = int(max(predicted.max(initial=-1), actual.max(initial=-1))) + 1
    if num_classes is None:
        return seen
    if seen > num_classes:
        raise ValueError(f"labels go up to {seen - 1}, beyond num_classes={num_classes}")
    return num_classes


def _per_class_counts(
    predictions: Any, targets: Any, num_classes: int | None, threshold: float, average: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, false positives and false negatives per class (float64 vectors).

    Without ``num_classes``, only classes that occur in targets or predictions count, so a
    macro average is not dragged down by classes absent from both.
    """
    if average not in ("macro", "micro"):
        raise ValueError(f'average must be "macro" or "micro", got {average!r}')
    predicted, actual = _labels_pair(predictions, targets, threshold)
    matrix = confusion_matrix(predicted, actual, num_classes=num_classes).astype(np.float64)
    true_positive = np.diag(matrix)
    false_positive = matrix.sum(axis=0) - true_positive
    false_negative = matrix.sum(axis=1) - true_positive
    if num_classes is None:
        present = (matrix.sum(axis=0) + matrix.sum(axis=1)) > 0
        true_positive, false_positive, false_negative = (
            true_positive[present],
            false_positive[present],
            false_negative[present],
        )
    return true_positive, false_positive, false_negative


def _averaged(numerator: np.ndarray, denominator: np.ndarray, average: str) -> float:
    """Macro: the mean of per-class ratios (0 where a denominator is 0); micro: the ratio of sums."""
    if average == "micro":
        total = denominator.sum()
        return float(numerator.sum() / total) if total else 0.0
    if numerator.size == 0:
        return 0.0
    ratios = np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
    return float(np.mean(ratios))
