"""Loss functions, written once with the array namespace of their inputs.

Every loss takes ``(predictions, targets)`` in that order and a ``reduction``:

- ``"mean"`` (the default): the mean over every sample (and, for element-wise losses,
  every element), a scalar of shape ``()``; batch means make the loss independent of the
  batch size, as in PyTorch;
- ``"sum"``: the sum, a scalar;
- ``"none"``: no reduction; element-wise losses keep the shape of ``predictions``, the
  classification losses give one value per sample, shape ``(N,)``.

Shapes are checked before any arithmetic, never broadcast silently: regression losses and
the binary cross-entropies need ``predictions`` and ``targets`` of one shape, so a model
output of shape ``(N, 1)`` with targets of shape ``(N,)`` raises :class:`ShapeError`
naming both shapes instead of averaging an ``(N, N)`` matrix. The classification losses
take logits of shape ``(N, C)`` with integer labels of shape ``(N,)`` or target
probabilities of shape ``(N, C)``.

Integer labels outside ``[0, C)`` raise ValueError when the labels are concrete (eager
arrays). Inside a compiled function the labels are symbolic and cannot be checked; there
the loss of each sample with an out-of-range label is NaN, so the reduced loss is NaN
and a training loop's divergence check stops rather than training on a wrong target.

Floating targets must have the predictions' dtype: float32 predictions with float64
targets raise :class:`DTypeError` on every backend (fit and evaluate cast floating targets
to the model's dtype, so this concerns direct calls).

Half-precision inputs (float16, bfloat16) are promoted to float32 before any arithmetic,
and the loss is float32: mixed-precision training (:mod:`portable_dl.precision`) runs the
model in half precision and its loss in float32, where a squared error of 300 (90000) does
not overflow float16's 65504 and a mean over a batch keeps its digits. Targets are then
checked against the promoted predictions (bfloat16 predictions with float32 targets agree).

Every loss is in its numerically stable form: log-softmax with the maximum subtracted,
``binary_cross_entropy_with_logits`` as ``softplus(x) - x * t``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .activations import _stable_softplus, float32_if_half, log_softmax
from .errors import DTypeError, ShapeError
from .registry import backend_of
from .tree import tree_leaves

__all__ = [
    "mse",
    "mae",
    "huber",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "pure_cross_entropy",
    "nll",
    "l2_penalty",
    "REDUCTIONS",
]

REDUCTIONS = ("mean", "sum", "none")

#: binary_cross_entropy clamps each log at -100, as PyTorch does, so that a probability
#: of exactly 0 or 1 gives a large finite loss instead of inf.
_LOG_FLOOR = -100.0


# --------------------------------------------------------------------- checks
def _shape(x: Any) -> tuple:
    return tuple(None if d is None else int(d) for d in x.shape)


def _same_size(a: int | None, b: int | None) -> bool:
    """Sizes agree, or one is unknown (None inside a traced function)."""
    return a is None or b is None or a == b


def _check_same_shape(loss: str, predictions: Any, targets: Any) -> None:
    shape_p, shape_t = _shape(predictions), _shape(targets)
    if len(shape_p) != len(shape_t) or not all(_same_size(a, b) for a, b in zip(shape_p, shape_t)):
        raise ShapeError(
            f"{loss}: predictions of shape {shape_p} and targets of shape {shape_t} differ; "
            "they must have the same shape (reshape one of them, e.g. predictions[:, 0] for "
            "a model with one output)"
        )


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}, got {reduction!r}")


def _check_floating(loss: str, what: str, x: Any, xp: Any) -> None:
    if not xp.isdtype(x.dtype, "real floating"):
        raise DTypeError(f"{loss}: {what} must be a floating-point array, got dtype {x.dtype}")


def _check_same_floating_dtype(loss: str, predictions: Any, targets: Any) -> None:
    """DTypeError when ``predictions`` and ``targets`` are floating arrays of different dtypes.

    A loss computes in one dtype; promoting float32 predictions to float64 targets would
    compute it, and its gradient, in float64 on some backends while others (JAX without x64)
    cannot, so mixed floating dtypes are refused alike everywhere. fit and evaluate cast
    floating targets to the model's dtype before they reach a loss."""
    if predictions.dtype == targets.dtype:
        return
    owner = backend_of(predictions, targets)
    if owner.xp.isdtype(predictions.dtype, "real floating") and owner.xp.isdtype(targets.dtype, "real floating"):
        have, want = owner.dtype_name(targets.dtype), owner.dtype_name(predictions.dtype)
        raise DTypeError(
            f"{loss}: targets of dtype {have} for predictions of dtype {want}; a loss computes in "
            f"one floating dtype: cast the targets to {want} (fit and evaluate do)"
        )


def _reduce(values: Any, reduction: str, xp: Any) -> Any:
    if reduction == "mean":
        return xp.mean(values)
    if reduction == "sum":
        return xp.sum(values)
    return values


def _concrete_values(x: Any) -> np.ndarray | None:
    """``x`` as NumPy when its values exist now; None while a compiler or an autodiff
    traces it symbolically (``to_numpy`` fails there, differently on every framework).

    The backend says so with ``is_concrete(x)``; that spares ``torch.compile`` the graph
    break a host copy and a data-dependent branch would cost it."""
    owner = backend_of(x)
    if not owner.is_concrete(x):
        return None
    try:
        return owner.to_numpy(x)
    except Exception:  # a tracer: TracerArrayConversionError, AttributeError, ValueError...
        return None


# ---------------------------------------------------------------- regression
def mse(predictions: Any, targets: Any, reduction: str = "mean") -> Any:
    """Mean squared error ``(p - t)^2``; ``predictions`` and ``targets`` of one shape and
    floating dtype. Mean over every element by default."""
    _check_reduction(reduction)
    _check_same_shape("mse", predictions, targets)
    predictions, targets = float32_if_half(predictions), float32_if_half(targets)
    _check_same_floating_dtype("mse", predictions, targets)
    xp = backend_of(predictions, targets).xp
    difference = xp.subtract(predictions, targets)
    return _reduce(xp.multiply(difference, difference), reduction, xp)


def mae(predictions: Any, targets: Any, reduction: str = "mean") -> Any:
    """Mean absolute error ``|p - t|`` (gradient 0 where ``p == t``: ``abs'(0) = 0``)."""
    _check_reduction(reduction)
    _check_same_shape("mae", predictions, targets)
    predictions, targets = float32_if_half(predictions), float32_if_half(targets)
    _check_same_floating_dtype("mae", predictions, targets)
    xp = backend_of(predictions, targets).xp
    return _reduce(xp.abs(xp.subtract(predictions, targets)), reduction, xp)


def huber(predictions: Any, targets: Any, delta: float = 1.0, reduction: str = "mean") -> Any:
    """Huber loss, as ``torch.nn.HuberLoss``: with ``d = p - t``,
    ``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``. Quadratic near 0,
    linear in the tails; value and gradient are continuous at ``|d| = delta``."""
    if not delta > 0:
        raise ValueError(f"huber needs delta > 0, got {delta}")
    _check_reduction(reduction)
    _check_same_shape("huber", predictions, targets)
    predictions, targets = float32_if_half(predictions), float32_if_half(targets)
    _check_same_floating_dtype("huber", predictions, targets)
    xp = backend_of(predictions, targets).xp
    difference = xp.subtract(predictions, targets)
    magnitude = xp.abs(difference)
    quadratic = xp.multiply(xp.multiply(difference, difference), 0.5)
    linear = xp.multiply(xp.subtract(magnitude, 0.5 * delta), delta)
    return _reduce(xp.where(xp.less(magnitude, delta), quadratic, linear), reduction, xp)


# -------------------------------------------------------------------- binary
def _clamped_log(x: Any, xp: Any) -> Any:
    """``max(log(x), -100)`` for ``x`` in [0, 1], without evaluating ``log(0)``: the log's
    input is replaced by 1 where ``x`` is 0, so no inf reaches the gradient."""
    positive = xp.greater(x, 0)
    logarithm = xp.log(xp.where(positive, x, xp.ones_like(x)))
    floor = xp.full_like(logarithm, _LOG_FLOOR)
    return xp.where(xp.logical_and(positive, xp.greater(logarithm, _LOG_FLOOR)), logarithm, floor)


def binary_cross_entropy(probs: Any, targets: Any, reduction: str = "mean") -> Any:
    """``-(t log p + (1 - t) log(1 - p))`` for probabilities ``p`` in [0, 1] and targets
    ``t`` in [0, 1] of the same shape. Each log is clamped at -100, as in PyTorch, so
    ``p = 0`` or ``1`` gives at most 100, never inf. Probabilities outside [0, 1] are not
    checked (they give meaningless values); prefer :func:`binary_cross_entropy_with_logits`,
    which is exact where ``p`` would round to 0 or 1."""
    _check_reduction(reduction)
    _check_same_shape("binary_cross_entropy", probs, targets)
    probs, targets = float32_if_half(probs), float32_if_half(targets)
    _check_same_floating_dtype("binary_cross_entropy", probs, targets)
    xp = backend_of(probs, targets).xp
    _check_floating("binary_cross_entropy", "probs", probs, xp)
    log_p = _clamped_log(probs, xp)
    log_not_p = _clamped_log(xp.subtract(1.0, probs), xp)
    per_element = xp.add(xp.multiply(targets, log_p), xp.multiply(xp.subtract(1.0, targets), log_not_p))
    return _reduce(xp.negative(per_element), reduction, xp)


def binary_cross_entropy_with_logits(logits: Any, targets: Any, reduction: str = "mean") -> Any:
    """Binary cross-entropy of ``sigmoid(logits)`` against ``targets`` (same shape), as
    ``softplus(x) - x t = max(x, 0) - x t + log1p(exp(-|x|))``: exact and finite for
    logits of any size."""
    _check_reduction(reduction)
    _check_same_shape("binary_cross_entropy_with_logits", logits, targets)
    logits, targets = float32_if_half(logits), float32_if_half(targets)
    _check_same_floating_dtype("binary_cross_entropy_with_logits", logits, targets)
    xp = backend_of(logits, targets).xp
    _check_floating("binary_cross_entropy_with_logits", "logits", logits, xp)
    per_element = xp.subtract(_stable_softplus(logits, xp), xp.multiply(logits, targets))
    return _reduce(per_element, reduction, xp)


# ------------------------------------------------------------ classification
def _check_classification_shapes(loss: str, scores: Any, targets: Any, xp: Any) -> bool:
    """Whether ``targets`` are integer labels ``(N,)`` (True) or per-class targets
    ``(N, C)`` (False) for ``scores`` of shape ``(N, C)``; ShapeError otherwise."""
    shape_s, shape_t = _shape(scores), _shape(targets)
    if len(shape_s) != 2:
        raise ShapeError(f"{loss}: predictions must have shape (N, C), got shape {shape_s} (targets {shape_t})")
    if shape_s[1] is None:
        raise ShapeError(f"{loss}: the number of classes (axis 1 of predictions {shape_s}) must be known")
    integer_labels = xp.isdtype(targets.dtype, "integral")
    if integer_labels:
        if len(shape_t) != 1 or not _same_size(shape_t[0], shape_s[0]):
            raise ShapeError(
                f"{loss}: integer labels must have shape (N,) for predictions of shape (N, C); "
                f"got labels of shape {shape_t} and predictions of shape {shape_s}"
            )
    elif len(shape_t) != 2 or not all(_same_size(a, b) for a, b in zip(shape_s, shape_t)):
        raise ShapeError(
            f"{loss}: targets must be integer labels of shape (N,) or class probabilities of the "
            f"predictions' shape (N, C); got targets of shape {shape_t} and dtype {targets.dtype} "
            f"and predictions of shape {shape_s}"
        )
    return integer_labels


def _check_label_range(loss: str, labels: Any, num_classes: int) -> bool:
    """ValueError naming the offending labels when concrete labels fall outside [0, C).
    Returns whether the labels were read (concrete) and so are known to be in range."""
    values = _concrete_values(labels)
    if values is None:
        return False
    if values.size == 0:
        return True
    outside = (values < 0) | (values >= num_classes)
    if outside.any():
        wrong = np.unique(values[outside])[:5].tolist()
        raise ValueError(
            f"{loss}: labels must lie in [0, {num_classes}) for {num_classes} classes; "
            f"got {int(outside.sum())} outside, e.g. {wrong}"
        )
    return True


def _label_mask(labels: Any, scores: Any, xp: Any) -> tuple[Any, Any]:
    """``(one_hot, valid)``: a boolean ``(N, C)`` array true at ``[i, labels[i]]``, and a
    boolean ``(N,)`` array true where the label names a class. The class indices come from
    a cumulative sum over ``scores`` so they live on its device and need no static N."""
    class_index = xp.subtract(xp.cumulative_sum(xp.ones_like(scores, dtype=xp.int32), axis=1), 1)
    one_hot = xp.equal(xp.expand_dims(labels, axis=1), class_index)
    valid = xp.equal(xp.sum(xp.astype(one_hot, xp.int32), axis=1), 1)
    return one_hot, valid


def _picked(values: Any, one_hot: Any, xp: Any) -> Any:
    """``values[i, labels[i]]`` for each row, as a sum over a ``where`` (not a product with
    the one-hot, which would give ``0 * -inf = NaN`` for log-probabilities of -inf)."""
    return xp.sum(xp.where(one_hot, values, xp.zeros_like(values)), axis=1)


def _invalid_to_nan(per_sample: Any, valid: Any, xp: Any) -> Any:
    return xp.where(valid, per_sample, xp.full_like(per_sample, float("nan")))


def cross_entropy(logits: Any, targets: Any, label_smoothing: float = 0.0, reduction: str = "mean") -> Any:
    """Softmax cross-entropy, as ``torch.nn.functional.cross_entropy``.

    ``logits``: floating ``(N, C)``. ``targets``: integer labels ``(N,)`` in ``[0, C)``, or
    class probabilities ``(N, C)`` (one-hot or soft). With ``q`` the target distribution,
    each sample's loss is ``-sum_c q_c log_softmax(logits)_c``. ``label_smoothing = e``
    replaces ``q`` by ``(1 - e) q + e / C``. Returns a scalar, or ``(N,)`` for
    ``reduction="none"``; ``"mean"`` divides by N.

    With integer labels that could be read and checked (eager code), the backend's own
    kernel computes it where it has one (:meth:`portable_dl.Backend.kernel`, held to
    :func:`pure_cross_entropy` by the conformance family ``native_kernels``); otherwise,
    and always for class probabilities, the expression of :func:`pure_cross_entropy`.
    """
    return _cross_entropy(logits, targets, label_smoothing, reduction, use_kernel=True)


def pure_cross_entropy(logits: Any, targets: Any, label_smoothing: float = 0.0, reduction: str = "mean") -> Any:
    """:func:`cross_entropy` always by its array-API expression (log-softmax, the label's
    term picked by a one-hot ``where``): the reference a backend's kernel is checked against."""
    return _cross_entropy(logits, targets, label_smoothing, reduction, use_kernel=False)


def _cross_entropy(logits: Any, targets: Any, label_smoothing: float, reduction: str, use_kernel: bool) -> Any:
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must lie in [0, 1], got {label_smoothing}")
    _check_reduction(reduction)
    logits, targets = float32_if_half(logits), float32_if_half(targets)
    owner = backend_of(logits, targets)
    xp = owner.xp
    integer_labels = _check_classification_shapes("cross_entropy", logits, targets, xp)
    _check_floating("cross_entropy", "logits", logits, xp)
    num_classes = _shape(logits)[1]
    if integer_labels:
        checked = _check_label_range("cross_entropy", targets, num_classes)
        # A kernel only for labels known to be in range: frameworks' kernels raise, or read
        # out of bounds, on others, where the expression below gives NaN.
        kernel = owner.kernel("cross_entropy") if checked and use_kernel else None
        if kernel is not None:
            return kernel(logits, targets, float(label_smoothing), reduction)
    log_probs = log_softmax(logits, axis=1)
    if integer_labels:
        one_hot, valid = _label_mask(targets, logits, xp)
        target_term = _picked(log_probs, one_hot, xp)
    else:
        _check_same_floating_dtype("cross_entropy", logits, targets)
        target_term = xp.sum(xp.multiply(targets, log_probs), axis=1)
    if label_smoothing == 0.0:
        # Without smoothing the smoothing term is not computed at all: it would cost two
        # passes over the logits per step, and 0 * mean(log p) is NaN where a logit is -inf.
        per_sample = xp.negative(target_term)
    else:
        smoothing_term = xp.multiply(xp.mean(log_probs, axis=1), label_smoothing)  # e/C * sum_c log p_c
        per_sample = xp.negative(xp.add(xp.multiply(target_term, 1.0 - label_smoothing), smoothing_term))
    if integer_labels:
        per_sample = _invalid_to_nan(per_sample, valid, xp)
    return _reduce(per_sample, reduction, xp)


def nll(log_probs: Any, labels: Any, reduction: str = "mean") -> Any:
    """Negative log-likelihood ``-log_probs[i, labels[i]]``, as ``torch.nn.functional.nll_loss``:
    ``log_probs`` floating ``(N, C)`` (e.g. from :func:`log_softmax`), ``labels`` integer
    ``(N,)`` in ``[0, C)``. Returns a scalar, or ``(N,)`` for ``reduction="none"``."""
    _check_reduction(reduction)
    log_probs = float32_if_half(log_probs)
    xp = backend_of(log_probs, labels).xp
    if not xp.isdtype(labels.dtype, "integral"):
        raise DTypeError(f"nll: labels must be integers, got dtype {labels.dtype} (shape {_shape(labels)})")
    _check_classification_shapes("nll", log_probs, labels, xp)
    _check_label_range("nll", labels, _shape(log_probs)[1])
    one_hot, valid = _label_mask(labels, log_probs, xp)
    per_sample = _invalid_to_nan(xp.negative(_picked(log_probs, one_hot, xp)), valid, xp)
    return _reduce(per_sample, reduction, xp)


# ------------------------------------------------------------ regularization
def l2_penalty(params: Any, lam: float) -> Any:
    """``lam * sum over leaves of sum(leaf^2)``: a scalar of the leaves' dtype (float32 for
    float16 and bfloat16 leaves, which are squared and summed in float32).

    Which parameters are penalized is the caller's choice through the tree passed (for
    weights only: ``[layer["W"] for layer in params["layers"]]``). None leaves are skipped.
    """
    leaves = tree_leaves(params)
    if not leaves:
        raise ValueError("l2_penalty needs at least one parameter array")
    xp = backend_of(*leaves).xp
    leaves = [float32_if_half(leaf) for leaf in leaves]
    total = xp.sum(xp.multiply(leaves[0], leaves[0]))
    for leaf in leaves[1:]:
        total = xp.add(total, xp.sum(xp.multiply(leaf, leaf)))
    return xp.multiply(total, lam)
