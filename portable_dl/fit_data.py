"""The data :func:`portable_dl.fit` is given, checked and prepared on the host before training.

A NaN or an infinity in the data does not always show in the loss (``relu`` maps a NaN
input to 0, while the gradient of the first layer turns NaN), and an integer label outside
``[0, C)`` cannot be checked inside a compiled step. So fit refuses both before its first
step, with the same ValueError on every backend, naming the array and its first bad row.

Targets are prepared by one rule on every backend: floating targets are cast to the dtype
the model computes in (so float64 NumPy targets train a float32 model in float32, on JAX
as elsewhere), integer and boolean labels become int64 (PyTorch reads uint8 index arrays
as boolean masks).

This module imports no framework.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import ShapeError

__all__ = ["prepared_data", "check_finite", "check_labels", "class_count", "targets_as_moved"]

#: Rows scanned at a time for the first non-finite one: bounds the boolean array made.
_ROWS_PER_CHUNK = 4096


def prepared_data(
    apply: Callable[[Any, Any], Any],
    params: Any,
    backend: Any,
    x: np.ndarray,
    y: np.ndarray,
    validation_data: tuple[Any, Any] | None,
    dtype_name: str,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """fit's ``(x, y, validation)``, checked (:func:`check_finite` for every array,
    :func:`check_labels` for integer labels against :func:`class_count`) and with targets as
    moved to the device (:func:`targets_as_moved`). ``dtype_name`` is the model's dtype."""
    if x.shape[:1] != y.shape[:1]:
        raise ShapeError(f"fit needs x and y with the same number of examples, got shapes {x.shape} and {y.shape}")
    if x.shape[0] == 0:
        raise ValueError("fit needs at least one training example")
    arrays = {"x": x, "y": y}
    if validation_data is not None:
        arrays["validation x"], arrays["validation y"] = (np.asarray(a) for a in validation_data)
    for what, array in arrays.items():
        check_finite(what, array)
    classes = class_count(apply, params, backend, x, y, dtype_name)
    if classes is not None:
        for what in ("y", "validation y"):
            labels = arrays.get(what)
            if labels is not None and labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
                check_labels(what, labels, classes)
    validation = None
    if validation_data is not None:
        validation = (arrays["validation x"], targets_as_moved(arrays["validation y"], dtype_name))
    return x, targets_as_moved(y, dtype_name), validation


def check_finite(what: str, array: np.ndarray) -> None:
    """ValueError when the floating (or complex) ``array`` (N, ...) holds a NaN or an
    infinity, naming ``what`` (``"x"``, ``"validation y"``...), the first such row and its
    value, and how many rows hold one. Arrays of other dtypes pass."""
    if not np.issubdtype(array.dtype, np.inexact) or array.size == 0:
        return
    # Fast path: one float64 sum, finite only if every element is; a sum that overflows
    # while every element is finite falls through to the exact scan below.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(array, dtype=np.complex128 if np.iscomplexobj(array) else np.float64)):
            return
    rows = array.reshape(array.shape[0], -1) if array.ndim else array.reshape(1, 1)
    first, count = None, 0
    for start in range(0, rows.shape[0], _ROWS_PER_CHUNK):
        bad = ~np.isfinite(rows[start : start + _ROWS_PER_CHUNK]).all(axis=1)
        count += int(bad.sum())
        if first is None and bad.any():
            first = start + int(np.argmax(bad))
    if first is None:
        return
    value = rows[first][~np.isfinite(rows[first])][0]
    raise ValueError(
        f"fit: {what} holds NaN or infinite values in {count} of {rows.shape[0]} rows, the first in "
        f"row {first} ({value}); remove or repair those rows before training"
    )


def check_labels(what: str, labels: np.ndarray, classes: int) -> None:
    """ValueError when integer class ``labels`` (N,) fall outside ``[0, classes)``, naming
    ``what``, the first such row and its label, and how many there are."""
    outside = (labels < 0) | (labels >= classes)
    if not outside.any():
        return
    first = int(np.argmax(outside))
    raise ValueError(
        f"fit: {what} holds class labels outside [0, {classes}) for a model with {classes} outputs: "
        f"{int(outside.sum())} of {labels.shape[0]}, the first in row {first} ({int(labels[first])})"
    )


def class_count(
    apply: Callable[[Any, Any], Any], params: Any, backend: Any, x: np.ndarray, y: np.ndarray, dtype_name: str
) -> int | None:
    """The number of classes that integer labels ``y`` (N,) index: the width C of the model's
    output (1, C) for the first example of ``x``, computed eagerly. None when ``y`` is not
    integer labels of shape (N,) or the output is not (1, C): then nothing indexes classes."""
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        return None
    output = apply(params, backend.asarray(x[:1].astype(dtype_name, copy=False)))
    shape = tuple(output.shape)
    return int(shape[1]) if len(shape) == 2 and shape[0] == 1 else None


def targets_as_moved(y: np.ndarray, dtype_name: str) -> np.ndarray:
    """``y`` as it goes to the device: floating targets in ``dtype_name`` (the model's
    dtype), integer and boolean labels as int64; any other dtype as it is."""
    if np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        return y.astype(np.int64, copy=False)
    if np.issubdtype(y.dtype, np.floating):
        try:
            return y.astype(np.dtype(dtype_name), copy=False)
        except TypeError:  # a dtype NumPy lacks (bfloat16): left to the loss's dtype rule
            return y
    return y
