"""Activation functions, written once with the array namespace of their input.

Every function takes a floating-point array of any shape and returns an array of the
same shape and dtype (``softmax``/``log_softmax`` along ``axis``; ``logsumexp`` reduces).
Each is written in its numerically stable form: no overflow and no NaN, in the value or
in the gradient, for inputs as large as +-1000 in float32.

Conventions, the same on every backend:

- ``relu'(0) = 0``: relu is ``where(x <= 0, 0, x)``, never ``maximum(x, 0)`` (which would
  split the gradient at the tie); ``relu(-0.0) = +0.0``, and NaN stays NaN (as
  ``torch.relu``, ``jax.nn.relu``, ``tf.nn.relu`` and MLX's give it: a NaN mapped to 0 would
  hide a divergence). ``leaky_relu'(0) = negative_slope``, as in PyTorch; NaN stays NaN.
- A backend may compute relu by its framework's own kernel (:meth:`portable_dl.Backend.kernel`),
  held to the same values and gradients by the conformance family ``native_kernels``;
  :func:`pure_relu` is the expression it is checked against.
- ``logsumexp`` subtracts the maximum before exponentiating; tied maxima share the
  gradient of that maximum evenly, which cancels exactly in the result.
- Stable forms select between two expressions with ``where``. Both expressions are
  evaluated, so each is fed an input for which it cannot overflow (``-|x|`` computed by
  ``where``): an overflowing branch that is not selected would still put ``0 * inf = NaN``
  into the gradient.

``softmax``, ``log_softmax`` and ``logsumexp`` compute in float32 when given float16 or
bfloat16 input, and return float32 (as Keras's mixed-precision policies keep the final
softmax in float32): a half-precision log-sum-exp of logits near 30000 rounds away the
``log(sum)`` term entirely (spacing 32 in float16), and its sum of exponentials has three
significant digits. See :mod:`portable_dl.precision`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .errors import DTypeError
from .precision import HALF_DTYPES
from .registry import backend_of

__all__ = [
    "relu",
    "pure_relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "gelu",
    "softplus",
    "softmax",
    "log_softmax",
    "logsumexp",
    "identity",
    "get_activation",
    "ACTIVATIONS",
]


def _namespace(x: Any) -> Any:
    return backend_of(x).xp


def float32_if_half(x: Any) -> Any:
    """``x`` cast to float32 when its dtype is float16 or bfloat16, else ``x`` itself: the
    promotion that the losses and the softmax family apply to half-precision inputs."""
    owner = backend_of(x)
    try:
        name = owner.dtype_name(x.dtype)
    except DTypeError:  # a dtype portable_dl does not name is no half-precision one
        return x
    return owner.xp.astype(x, owner.xp.float32) if name in HALF_DTYPES else x


def _negative_abs(x: Any, xp: Any) -> Any:
    """``-|x|`` with the gradient of the branch ``x >= 0`` at 0 (-1), not ``abs'(0) = 0``:
    the stable forms below need the derivative of the expression they stand for."""
    return xp.where(xp.greater_equal(x, 0), xp.negative(x), x)


def identity(x: Any) -> Any:
    """``x`` unchanged (the "linear" activation)."""
    return x


def relu(x: Any) -> Any:
    """``max(x, 0)`` element-wise, same shape and dtype: :func:`pure_relu`, or the backend's
    own kernel of the same values and gradients where it has one (:meth:`portable_dl.Backend.kernel`)."""
    owner = backend_of(x)
    kernel = owner.kernel("relu")
    if kernel is not None:
        return kernel(x)
    return _pure_relu(x, owner.xp)


def pure_relu(x: Any) -> Any:
    """relu as the array-API expression ``where(x <= 0, 0, x)``: ``relu'(0) = 0``,
    ``relu(-0.0) = +0.0``, NaN stays NaN (the comparison is false for NaN, so the NaN itself
    is selected). The reference that a backend's relu kernel is checked against."""
    return _pure_relu(x, _namespace(x))


def _pure_relu(x: Any, xp: Any) -> Any:
    return xp.where(xp.less_equal(x, 0), xp.zeros_like(x), x)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Any:
    """``x`` where ``x > 0``, else ``negative_slope * x``; the derivative at 0 is
    ``negative_slope`` (PyTorch's choice)."""
    xp = _namespace(x)
    return xp.where(xp.greater(x, 0), x, xp.multiply(x, negative_slope))


def sigmoid(x: Any) -> Any:
    """``1 / (1 + exp(-x))`` element-wise.

    With ``z = exp(-|x|)`` (at most 1, never overflows): ``1 / (1 + z)`` for ``x >= 0``
    and ``z / (1 + z)`` for ``x < 0``. Gives exactly 0 and 1 at -1000 and 1000, with
    gradient 0 there.
    """
    xp = _namespace(x)
    z = xp.exp(_negative_abs(x, xp))
    denominator = xp.add(z, 1.0)
    return xp.where(xp.greater_equal(x, 0), xp.divide(1.0, denominator), xp.divide(z, denominator))


def tanh(x: Any) -> Any:
    """Hyperbolic tangent element-wise (the framework's own, which saturates cleanly)."""
    return _namespace(x).tanh(x)


def _stable_softplus(x: Any, xp: Any) -> Any:
    """``log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))``, one ``where`` choosing the
    branch so that the derivative is exact everywhere (0.5 at 0)."""
    tail = xp.log1p(xp.exp(_negative_abs(x, xp)))
    return xp.where(xp.greater_equal(x, 0), xp.add(x, tail), tail)


def softplus(x: Any, beta: float = 1.0, threshold: float = 20.0) -> Any:
    """``log(1 + exp(beta * x)) / beta`` element-wise, as ``torch.nn.functional.softplus``:
    where ``beta * x > threshold`` the result is ``x`` itself. The stable form is exact
    everywhere; ``threshold`` only reproduces PyTorch's switch to the identity."""
    if beta <= 0:
        raise ValueError(f"softplus needs beta > 0, got {beta}")
    xp = _namespace(x)
    scaled = xp.multiply(x, beta)
    smooth = xp.divide(_stable_softplus(scaled, xp), beta)
    return xp.where(xp.greater(scaled, threshold), x, smooth)


def _finite_maximum(x: Any, axis: Any, xp: Any) -> Any:
    """The maximum along ``axis`` (kept as a size-1 axis) to subtract before ``exp``, or 0
    where that maximum is +-inf: ``inf - inf`` would make NaN of a well-defined result."""
    maximum = xp.max(x, axis=axis, keepdims=True)
    return xp.where(xp.isfinite(maximum), maximum, xp.zeros_like(maximum))


def logsumexp(x: Any, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Any:
    """``log(sum(exp(x), axis))`` computed as ``m + log(sum(exp(x - m)))`` with ``m`` the
    maximum along ``axis``, so no term exceeds 1. ``axis=None`` reduces every axis.

    The gradient is ``softmax(x)`` along ``axis``. A maximum of +-inf (all inputs -inf, or
    an inf among them) is not subtracted, so those cases give the mathematically right
    -inf or inf rather than NaN. Half-precision input computes and returns float32.
    """
    x = float32_if_half(x)
    xp = _namespace(x)
    shift = _finite_maximum(x, axis, xp)
    total = xp.sum(xp.exp(xp.subtract(x, shift)), axis=axis, keepdims=True)
    result = xp.add(xp.log(total), shift)
    if keepdims:
        return result
    if axis is None:
        return xp.reshape(result, ())
    return xp.squeeze(result, axis=axis)


def log_softmax(x: Any, axis: int = -1) -> Any:
    """``x - logsumexp(x, axis)``: log-probabilities along ``axis``, same shape as ``x`` (float32
    for half-precision input)."""
    x = float32_if_half(x)
    xp = _namespace(x)
    return xp.subtract(x, logsumexp(x, axis=axis, keepdims=True))


def softmax(x: Any, axis: int = -1) -> Any:
    """``exp(x) / sum(exp(x), axis)``: probabilities along ``axis`` that sum to 1, same
    shape as ``x``. Computed as ``exp(x - m) / sum(exp(x - m))`` with ``m`` the maximum,
    not as ``exp(log_softmax(x))``: for logits near 1000 the rounding of the float32
    log-sum-exp (spacing 6e-5 there) would become a relative error of the probabilities.
    Half-precision input computes and returns float32."""
    x = float32_if_half(x)
    xp = _namespace(x)
    shift = _finite_maximum(x, axis, xp)
    exponentials = xp.exp(xp.subtract(x, shift))
    return xp.divide(exponentials, xp.sum(exponentials, axis=axis, keepdims=True))


# ------------------------------------------------------------------------ gelu
# The array API has no erf, so the exact gelu needs one written with its functions.
# For |t| <= 2 the Maclaurin series erf(t) = 2/sqrt(pi) sum (-1)^n t^(2n+1) / (n! (2n+1))
# (30 terms: relative error below 1e-15 in float64; the alternating sum loses about one
# digit to cancellation at t = 2, which float32 can afford). For |t| > 2 the continued
# fraction erfc(t) = exp(-t^2)/sqrt(pi) / (t + (1/2)/(t + 1/(t + (3/2)/(t + ...)))) with
# 60 levels (relative error below 4e-15). Both branches are evaluated with inputs clamped
# into their own interval so that neither overflows where it is not selected.
_SERIES_SPLIT = 2.0
_SERIES_TERMS = 30
_FRACTION_DEPTH = 60
_SERIES_COEFFICIENTS = tuple(
    2.0 / math.sqrt(math.pi) * (-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(_SERIES_TERMS)
)


def _erf_series(t: Any, xp: Any) -> Any:
    """erf(t) for 0 <= t <= 2 by the Maclaurin series in Horner form."""
    t_squared = xp.multiply(t, t)
    accumulated = xp.zeros_like(t)
    for coefficient in reversed(_SERIES_COEFFICIENTS):
        accumulated = xp.add(xp.multiply(accumulated, t_squared), coefficient)
    return xp.multiply(t, accumulated)


def _erfc_continued_fraction(t: Any, xp: Any) -> Any:
    """erfc(t) for t >= 2 by the continued fraction, evaluated from the bottom up."""
    fraction = t
    for level in range(_FRACTION_DEPTH, 0, -1):
        fraction = xp.add(t, xp.divide(level / 2.0, fraction))
    return xp.divide(xp.exp(xp.negative(xp.multiply(t, t))), xp.multiply(fraction, math.sqrt(math.pi)))


def _erfc(t: Any, xp: Any) -> Any:
    """The complementary error function ``1 - erf(t)``, accurate in the tails."""
    magnitude = xp.negative(_negative_abs(t, xp))
    near = xp.less_equal(magnitude, _SERIES_SPLIT)
    split = xp.full_like(magnitude, _SERIES_SPLIT)
    series = _erf_series(xp.where(near, magnitude, split), xp)
    tail = _erfc_continued_fraction(xp.where(near, split, magnitude), xp)
    erfc_of_magnitude = xp.where(near, xp.subtract(1.0, series), tail)
    # erfc(-a) = 2 - erfc(a)
    return xp.where(xp.greater_equal(t, 0), erfc_of_magnitude, xp.subtract(2.0, erfc_of_magnitude))


def gelu(x: Any, approximate: bool | str = False) -> Any:
    """Gaussian error linear unit ``x * Phi(x)``, Phi the standard normal CDF.

    ``approximate=False`` (or ``"none"``): exact, ``Phi(x) = erfc(-x / sqrt(2)) / 2``,
    with an erf built from array-API functions (see the comment above :func:`_erf_series`).
    ``approximate="tanh"`` (or True): ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``,
    as ``torch.nn.functional.gelu(approximate="tanh")``.

    float16 and bfloat16 inputs are computed in float32 and the result rounded once to the
    input's dtype: in float16 the series' backward overflows (``t**2`` thirty times) and
    the cube of the tanh form overflows at |x| > 40, both giving ``inf * 0 = NaN`` gradients.
    """
    half = float32_if_half(x)
    if half is not x:
        return _namespace(x).astype(gelu(half, approximate), x.dtype)
    xp = _namespace(x)
    if approximate in (False, None, "none"):
        cdf = xp.multiply(_erfc(xp.multiply(x, -1.0 / math.sqrt(2.0)), xp), 0.5)
        return xp.multiply(x, cdf)
    if approximate in (True, "tanh"):
        cubic = xp.add(x, xp.multiply(xp.multiply(xp.multiply(x, x), x), 0.044715))
        inner = xp.tanh(xp.multiply(cubic, math.sqrt(2.0 / math.pi)))
        return xp.multiply(xp.multiply(x, 0.5), xp.add(inner, 1.0))
    raise ValueError(f'gelu: approximate must be False, "none", True or "tanh", got {approximate!r}')


#: Activations by name, for ``MLP(activation="relu")`` and :func:`get_activation`.
ACTIVATIONS: dict[str, Callable[[Any], Any]] = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "gelu": gelu,
    "gelu_tanh": lambda x: gelu(x, approximate="tanh"),
    "softplus": softplus,
    "softmax": softmax,
    "log_softmax": log_softmax,
    "identity": identity,
    "linear": identity,
}


def get_activation(name_or_callable: str | Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """The activation called ``name_or_callable`` (see :data:`ACTIVATIONS`), a callable
    unchanged, or :func:`identity` for None. Unknown names raise ValueError listing the known."""
    if name_or_callable is None:
        return identity
    if callable(name_or_callable):
        return name_or_callable
    if isinstance(name_or_callable, str) and name_or_callable.lower() in ACTIVATIONS:
        return ACTIVATIONS[name_or_callable.lower()]
    raise ValueError(f"unknown activation {name_or_callable!r}; known: {', '.join(sorted(ACTIVATIONS))}")
