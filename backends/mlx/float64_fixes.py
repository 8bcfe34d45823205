"""MLX's float64 accuracy fixes.

MLX's CPU kernels for exp, sin and cos (and logaddexp, built on exp) use a fast approximation
that is accurate to float32 only, even in float64: exp is off by 3e-7 relative, cos by 1e-5
near its zeros. The gradients of tan, log2 and log10 carry float32 constants or that cos. In
float64 these functions are therefore written here from MLX functions that are exact to an
ulp or two (cosh, sinh, tan, log1p), each as an ``mx.custom_function`` whose gradient is the
textbook derivative. The namespace binds them with :func:`exact_in_float64`, so float32 and
complex64 keep MLX's own kernels.
"""

from __future__ import annotations

import math
from typing import Any

import mlx.core as mx

from .custom_gradients import sum_to_shape

__all__ = ["exact_in_float64", "exp64", "sin64", "cos64", "tan64", "log2_64", "log10_64", "logaddexp64", "exact_exp"]


def exact_exp(x: mx.array) -> mx.array:
    """``exp(x)`` as ``cosh(x) + sinh(x)`` for x >= 0 and ``1 / (cosh(x) - sinh(x))`` below:
    both add two terms of one sign, so nothing cancels."""
    nonnegative = x >= 0
    above, below = mx.where(nonnegative, x, 0), mx.where(nonnegative, 0, x)
    return mx.where(nonnegative, mx.cosh(above) + mx.sinh(above), 1 / (mx.cosh(below) - mx.sinh(below)))


def _half_angle_tangent(x: mx.array) -> mx.array:
    return mx.tan(x / 2)  # halving is exact, and MLX's tan is exact in float64


def exact_sin(x: mx.array) -> mx.array:
    """``sin(x) = 2t / (1 + t**2)`` with ``t = tan(x / 2)``."""
    t = _half_angle_tangent(x)
    return 2 * t / (1 + t * t)


def exact_cos(x: mx.array) -> mx.array:
    """``cos(x) = sin(x) / tan(x)`` where ``|tan(x)| >= 1`` (near the zeros of cos, where
    ``(1 - t**2)`` below would lose digits); elsewhere ``(1 - t**2) / (1 + t**2)`` with
    ``t = tan(x / 2)``, which is accurate there (cos is near +-1 or t is small)."""
    t = _half_angle_tangent(x)
    tangent = mx.tan(x)
    steep = mx.abs(tangent) >= 1
    safe_tangent = mx.where(steep, tangent, 1)
    return mx.where(steep, exact_sin(x) / safe_tangent, (1 - t) * (1 + t) / (1 + t * t))


def _single(primals: Any) -> mx.array:
    """The one input of a one-input ``mx.custom_function``: MLX hands it over bare."""
    return primals if isinstance(primals, mx.array) else primals[0]


@mx.custom_function
def exp64(x: mx.array) -> mx.array:
    return exact_exp(x)


@exp64.vjp
def exp64_vjp(primals: mx.array, cotangent: mx.array, output: mx.array) -> mx.array:
    return cotangent * output


@mx.custom_function
def sin64(x: mx.array) -> mx.array:
    return exact_sin(x)


@sin64.vjp
def sin64_vjp(primals: mx.array, cotangent: mx.array, output: mx.array) -> mx.array:
    return cotangent * exact_cos(_single(primals))


@mx.custom_function
def cos64(x: mx.array) -> mx.array:
    return exact_cos(x)


@cos64.vjp
def cos64_vjp(primals: mx.array, cotangent: mx.array, output: mx.array) -> mx.array:
    return -cotangent * exact_sin(_single(primals))


@mx.custom_function
def tan64(x: mx.array) -> mx.array:
    return mx.tan(x)


@tan64.vjp
def tan64_vjp(primals: mx.array, cotangent: mx.array, output: mx.array) -> mx.array:
    return cotangent * (1 + output * output)


@mx.custom_function
def log2_64(x: mx.array) -> mx.array:
    return mx.log2(x)


@log2_64.vjp
def log2_64_vjp(primals: mx.array, cotangent: mx.array, output: mx.array) -> mx.array:
    return cotangent / (_single(primals) * math.log(2.0))


@mx.custom_function
def log10_64(x: mx.array) -> mx.array:
    return mx.log10(x)


@log10_64.vjp
def log10_64_vjp(primals: mx.array, cotangent: mx.array, output: mx.array) -> mx.array:
    return cotangent / (_single(primals) * math.log(10.0))


@mx.custom_function
def logaddexp64(x1: mx.array, x2: mx.array) -> mx.array:
    larger = mx.maximum(x1, x2)
    gap = -mx.abs(x1 - x2)
    finite_gap = mx.where(mx.isnan(gap), 0, gap)  # both infinite of one sign: larger is the answer
    return mx.where(mx.isinf(larger), larger, larger + mx.log1p(exact_exp(finite_gap)))


@logaddexp64.vjp
def logaddexp64_vjp(primals: tuple, cotangent: mx.array, output: mx.array) -> tuple:
    """d/dx1 log(e^x1 + e^x2) = e^(x1 - out), the softmax weight of x1."""
    x1, x2 = primals
    return (
        sum_to_shape(cotangent * exact_exp(x1 - output), x1.shape),
        sum_to_shape(cotangent * exact_exp(x2 - output), x2.shape),
    )


def exact_in_float64(fast: Any, exact: Any) -> Any:
    """``exact`` for float64 arrays, MLX's ``fast`` for everything else."""

    def function(x: mx.array, /) -> mx.array:
        # The item size first: reading it costs a fraction of comparing two MLX dtypes, and
        # float32, the common case, is decided by it alone.
        return exact(x) if isinstance(x, mx.array) and x.itemsize == 8 and x.dtype == mx.float64 else fast(x)

    function.__name__ = fast.__name__
    function.__doc__ = f"Element-wise {fast.__name__}; in float64 computed to float64 accuracy."
    return function
