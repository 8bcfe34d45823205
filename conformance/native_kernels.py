"""The native_kernels family: a backend's own kernels for front-end functions against the pure expressions.

A backend may compute ``relu`` and ``cross_entropy`` by its framework's kernels
(:meth:`portable_dl.Backend.kernel`: ``torch.threshold`` and ``F.cross_entropy`` on torch). Their
reference is the front end's pure expression (:func:`portable_dl.activations.pure_relu`,
:func:`portable_dl.losses.pure_cross_entropy`) on the SAME backend, which the ``ops`` and
``gradients`` families check against NumPy; so a kernel that takes another convention
(``relu'(0) = 1``, ``relu(-0.0) = -0.0``) or drops an option (label smoothing, a reduction)
fails here by name, on the backend that has it. Values and gradients (by the backend's own
``value_and_grad``) are compared, on inputs with exact zeros, ``-0.0``, NaN, infinities, the
smallest subnormal, tied logits, logits of +-1000, N != C, every label smoothing kind
(0, 0.1, 1) and every reduction, in float32 and float64.

Tolerance, derived and measured:

- relu: both forms select ``x`` or ``+0.0`` and pass the cotangent or 0; no arithmetic, so
  values and gradients must agree bit for bit (signs of zeros and NaN included).
- cross-entropy: the pure form's log-probabilities are ``x - (m + log(sum exp(x - m)))``,
  whose last subtraction rounds at the size of the largest logit ``m``: an absolute error of
  an ulp or so of ``max |logit|`` (torch's kernel subtracts ``m`` first and is finer). A sum
  over N samples adds one ulp of the sum per term. So values may differ by :data:`ULPS` eps of
  ``scale = max(|loss|, max |logit|)``. Both gradients are ``(softmax - q)`` times the
  cotangent, each element a few correctly rounded operations, so they may differ by
  :data:`ULPS` eps of ``max |gradient|``. Measured on torch 2.13 (CPU) over every case
  below: values within 0.13 (float32) and 1.02 (float64) eps of their scale, gradients within
  1.01 and 1.40 eps. Ignoring label smoothing 0.1 moves the loss by about a tenth of its size
  (10^6 eps); ``relu'(0) = 1`` moves a gradient entry from 0 to its cotangent.

Backends without a kernel skip the cases that need it, saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from portable_dl.backend import Backend

from .cases import Case, CaseSkipped, Outputs

FAMILY = "native_kernels"
#: the allowed difference, in units of eps(dtype) times the scale (see the module docstring)
ULPS = 4
AGREE = "the kernel and the pure expression agree"
SMOOTHINGS = (0.0, 0.1, 1.0)
REDUCTIONS = ("mean", "sum", "none")


def _numpy(backend: Backend, x: Any) -> np.ndarray:
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


def disagreement(what: str, got: np.ndarray, want: np.ndarray, tolerance: float) -> str | None:
    """Where ``got`` differs from ``want`` (same shape, NaN and infinities in the same places,
    signs of zeros equal, finite values within ``tolerance``), or None."""
    if got.shape != want.shape:
        return f"{what}: shape {got.shape}, pure {want.shape}"
    if np.any(np.isnan(got) != np.isnan(want)):
        return f"{what}: NaN where the pure expression has none (or the reverse)"
    infinite = np.isinf(want)
    if np.any(np.isinf(got) != infinite) or np.any(got[infinite] != want[infinite]):
        return f"{what}: an infinity differs"
    finite = np.isfinite(want)
    difference = float(np.max(np.abs(got[finite] - want[finite]), initial=0.0))
    if difference > tolerance:
        at = np.unravel_index(np.argmax(np.where(finite, np.abs(got - want), -1.0)), want.shape)
        return f"{what}: differs by {difference:.3g}, more than {tolerance:.3g} (at {tuple(map(int, at))})"
    zeros = want == 0
    if np.any(np.signbit(got[zeros]) != np.signbit(want[zeros])):
        return f"{what}: the sign of a zero differs"
    return None


def _require(backend: Backend, *names: str) -> None:
    if all(backend.kernel(name) is None for name in names):
        raise CaseSkipped(f"{backend.name} has no native kernel for {' or '.join(names)}")


# ------------------------------------------------------------------------ relu
def relu_inputs(dtype: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, w)`` of shape (3, 7): x holds 0, -0.0, NaN, +-inf, the smallest subnormals, huge
    and ordinary values; w distinct cotangents of both signs (none 0)."""
    rng = np.random.default_rng(seed)
    tiny = np.finfo(np.dtype(dtype)).smallest_subnormal
    big = np.finfo(np.dtype(dtype)).max
    special = [0.0, -0.0, np.nan, np.inf, -np.inf, tiny, -tiny, big, -big, 1.0, -1.0]
    x = rng.standard_normal(21)
    x[: len(special)] = special
    w = rng.uniform(0.5, 2.0, 21) * rng.choice([-1.0, 1.0], 21)
    return x.reshape(3, 7).astype(dtype), w.reshape(3, 7).astype(dtype)


def relu_case(seed: int) -> Case:
    def compute(backend: Backend, dtype: str) -> Outputs:
        from portable_dl.activations import pure_relu, relu

        _require(backend, "relu")
        x_np, w_np = relu_inputs(dtype, seed)
        xp = backend.xp
        x, w = backend.asarray(x_np, dtype), backend.asarray(w_np, dtype)
        where = disagreement("value", _numpy(backend, relu(x)), _numpy(backend, pure_relu(x)), 0.0)
        if where:
            return {"kernel vs pure": where}
        # The cotangent w_i reaches x_i whatever the (NaN) value of the sum: the derivative of
        # sum(w * relu(x)) is w * relu'(x), at NaN and the infinities too.
        got = _numpy(backend, backend.value_and_grad(lambda t: xp.sum(xp.multiply(relu(t), w)))(x)[1])
        want = _numpy(backend, backend.value_and_grad(lambda t: xp.sum(xp.multiply(pure_relu(t), w)))(x)[1])
        return {"kernel vs pure": disagreement("gradient", got, want, 0.0) or AGREE}

    return Case(FAMILY, "relu at 0, -0.0, NaN, inf, subnormals", compute, expected=_agree)


# --------------------------------------------------------------- cross-entropy
def cross_entropy_inputs(dtype: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(logits, labels, w)``: 7 samples of 4 classes; rows with tied maxima, all ties, exact
    zeros and -0.0, logits of +-1000 (the label at +1000, at -1000, and between), ordinary
    values; labels covering every class; w distinct per-sample cotangents for ``"none"``."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((7, 4))
    logits[0] = [2.0, 2.0, -1.0, 0.5]  # two tied maxima
    logits[1] = [0.25, 0.25, 0.25, 0.25]  # all tied
    logits[2] = [0.0, -0.0, 0.0, 1.5]  # exact zeros of both signs
    logits[3] = [1000.0, -1000.0, 3.0, 999.0]  # label at 1000
    logits[4] = [1000.0, -1000.0, 0.0, -999.0]  # label at -1000: a loss of 2000
    labels = np.array([1, 3, 0, 0, 1, 2, 3])
    w = rng.uniform(0.5, 2.0, 7)
    return logits.astype(dtype), labels, w.astype(dtype)


def cross_entropy_case(seed: int, label_smoothing: float, reduction: str, label_dtype: str) -> Case:
    def compute(backend: Backend, dtype: str) -> Outputs:
        from portable_dl.losses import cross_entropy, pure_cross_entropy

        _require(backend, "cross_entropy")
        logits_np, labels_np, w_np = cross_entropy_inputs(dtype, seed)
        xp = backend.xp
        logits = backend.asarray(logits_np, dtype)
        # int64 where the backend has it (JAX without x64 mode has not)
        labels = backend.asarray(labels_np, label_dtype if backend.supports(label_dtype) else "int32")
        w = backend.asarray(w_np, dtype)
        logit_scale = float(np.max(np.abs(logits_np)))
        eps = float(np.finfo(np.dtype(dtype)).eps)

        def scalar(loss: Callable) -> Callable:
            def f(z: Any) -> Any:
                value = loss(z, labels, label_smoothing, reduction)
                return xp.sum(xp.multiply(value, w)) if reduction == "none" else value

            return f

        got = _numpy(backend, cross_entropy(logits, labels, label_smoothing, reduction))
        want = _numpy(backend, pure_cross_entropy(logits, labels, label_smoothing, reduction))
        scale = max(float(np.max(np.abs(want), initial=0.0)), logit_scale)
        where = disagreement("value", got, want, ULPS * eps * scale)
        if where:
            return {"kernel vs pure": where}
        got = _numpy(backend, backend.value_and_grad(scalar(cross_entropy))(logits)[1])
        want = _numpy(backend, backend.value_and_grad(scalar(pure_cross_entropy))(logits)[1])
        scale = float(np.max(np.abs(want), initial=0.0))
        return {"kernel vs pure": disagreement("gradient", got, want, ULPS * eps * scale) or AGREE}

    name = f"cross_entropy label_smoothing={label_smoothing} reduction={reduction} {label_dtype} labels"
    return Case(FAMILY, name, compute, reduction_size=7, expected=_agree)


# ------------------------------------------------------------------- together
def mlp_head_case(seed: int) -> Case:
    """relu then smoothed cross-entropy, as the last layers of a classifier: the kernels
    together, differentiated through each other. Pre-activations hold exact zeros, where
    relu'(0) decides the gradient."""

    def compute(backend: Backend, dtype: str) -> Outputs:
        from portable_dl.activations import pure_relu, relu
        from portable_dl.losses import cross_entropy, pure_cross_entropy

        _require(backend, "relu", "cross_entropy")
        rng = np.random.default_rng(seed)
        z_np = rng.standard_normal((5, 3)).astype(dtype)
        z_np[[0, 1, 3], [0, 2, 1]] = [0.0, -0.0, 0.0]
        labels = backend.asarray(np.array([2, 0, 1, 1, 0]))  # the backend's default integer dtype
        z = backend.asarray(z_np, dtype)
        eps = float(np.finfo(np.dtype(dtype)).eps)

        def head(activation: Callable, loss: Callable) -> Callable:
            return lambda t: loss(activation(t), labels, 0.1, "mean")

        (value_k, grad_k) = backend.value_and_grad(head(relu, cross_entropy))(z)
        (value_p, grad_p) = backend.value_and_grad(head(pure_relu, pure_cross_entropy))(z)
        want = _numpy(backend, value_p)
        where = disagreement("value", _numpy(backend, value_k), want, ULPS * eps * max(1.0, float(abs(want))))
        if where:
            return {"kernel vs pure": where}
        want = _numpy(backend, grad_p)
        scale = float(np.max(np.abs(want)))
        return {"kernel vs pure": disagreement("gradient", _numpy(backend, grad_k), want, ULPS * eps * scale) or AGREE}

    return Case(FAMILY, "relu then cross_entropy label_smoothing=0.1", compute, reduction_size=5, expected=_agree)


def _agree(backend: Backend, dtype: str) -> Outputs:
    return {"kernel vs pure": AGREE}


def cases(quick: bool = False, seed: int = 0) -> list[Case]:
    """Every kernel on every input kind; ``quick``: the relu-then-cross-entropy case alone
    (exact zeros under relu, label smoothing 0.1), which exercises both kernels."""
    if quick:
        return [mlp_head_case(seed)]
    every = [mlp_head_case(seed), relu_case(seed)]
    for smoothing in SMOOTHINGS:
        for reduction in REDUCTIONS:
            label_dtype = "int32" if (smoothing, reduction) == (0.1, "none") else "int64"
            every.append(cross_entropy_case(seed, smoothing, reduction, label_dtype))
    return every
