"""Standard functions written once in terms of other standard functions of ``xp``.

Like array-api-compat's ``common/_aliases.py``: each function takes the namespace as a
keyword argument ``xp`` and a namespace binds it with ``functools.partial`` or a one-line
wrapper. Only functions whose definition really is the same on every framework live here;
where a framework has a native form with the right semantics, its namespace uses that.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .broadcasting import broadcast_shapes, shape_of

__all__ = ["vecdot", "matrix_transpose", "broadcast_arrays", "clip", "var", "std", "normalize_axis"]


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1, xp: Any) -> Any:
    """Dot product along ``axis``, broadcasting the other axes: ``sum(conj(x1) * x2, axis)``,
    in the dtype the two promote to (``uint8 . uint8`` stays uint8: the standard gives
    ``vecdot`` the promoted dtype, not the accumulation dtype of ``sum``)."""
    vecdot_axis(shape_of(x1), shape_of(x2), axis)
    if xp.isdtype(x1.dtype, "complex floating"):
        x1 = xp.conj(x1)
    product = xp.multiply(x1, x2)
    return xp.sum(product, axis=axis, dtype=product.dtype)


def vecdot_axis(shape1: tuple, shape2: tuple, axis: int) -> int:
    """``vecdot``'s contracted axis counted from the end (a non-negative one counts in the
    broadcast shape). It does not broadcast: it must exist in both shapes with one size,
    else ShapeError, with the same message on every backend."""
    from portable_dl.errors import ShapeError

    shape = broadcast_shapes(shape1, shape2, operation="vecdot")
    from_end = axis - len(shape) if axis >= 0 else axis
    if not -min(len(shape1), len(shape2)) <= from_end <= -1:
        raise ShapeError(f"vecdot of shapes {shape1} and {shape2}: axis {axis} is not an axis of both")
    if shape1[from_end] != shape2[from_end]:
        raise ShapeError(
            f"vecdot of shapes {shape1} and {shape2}: "
            f"sizes {shape1[from_end]} and {shape2[from_end]} along axis {axis} differ"
        )
    return from_end


def matrix_transpose(x: Any, /, *, xp: Any) -> Any:
    """Swap the last two axes of an array of rank >= 2."""
    ndim = len(shape_of(x))
    if ndim < 2:
        from portable_dl.errors import ShapeError

        raise ShapeError(f"matrix_transpose needs an array of rank >= 2, got shape {shape_of(x)}")
    axes = tuple(range(ndim - 2)) + (ndim - 1, ndim - 2)
    return xp.permute_dims(x, axes)


def broadcast_arrays(*arrays: Any, xp: Any) -> list:
    """The arrays broadcast to one common shape (a list, as the standard says)."""
    shape = broadcast_shapes(*(shape_of(a) for a in arrays), operation="broadcast_arrays")
    return [xp.broadcast_to(a, shape) for a in arrays]


def clip(x: Any, /, min: Any = None, max: Any = None, *, xp: Any) -> Any:
    """Clamp ``x`` to ``[min, max]`` (either bound may be None, a scalar or an array).

    Written with ``where`` and strict comparisons so the gradient is 1 wherever
    ``min <= x <= max``, bounds included, as in ``torch.clamp``; a ``minimum``/``maximum``
    form would split the gradient at the bounds.
    """
    result = x
    if min is not None:
        result = xp.where(
            xp.less(result, min), xp.astype(xp.asarray(min), x.dtype) if hasattr(min, "shape") else min, result
        )
    if max is not None:
        result = xp.where(
            xp.greater(result, max), xp.astype(xp.asarray(max), x.dtype) if hasattr(max, "shape") else max, result
        )
    return result


def var(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False, xp: Any) -> Any:
    """Variance ``sum((x - mean(x))**2) / (N - correction)`` over ``axis``."""
    count = _count(x, axis)
    centered = xp.subtract(x, xp.mean(x, axis=axis, keepdims=True))
    total = xp.sum(xp.multiply(centered, centered), axis=axis, keepdims=keepdims)
    return xp.divide(total, max(count - correction, 0.0))


def std(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False, xp: Any) -> Any:
    """Standard deviation: the square root of :func:`var`."""
    return xp.sqrt(var(x, axis=axis, correction=correction, keepdims=keepdims, xp=xp))


def normalize_axis(axis: int, ndim: int) -> int:
    """``axis`` as a non-negative int for an array of rank ``ndim``; IndexError when out of range."""
    if not -ndim <= axis < max(ndim, 1):
        raise IndexError(f"axis {axis} is out of range for an array of rank {ndim}")
    return axis % max(ndim, 1)


def _count(x: Any, axis: Any) -> int:
    shape = shape_of(x)
    if axis is None:
        axes: Sequence[int] = range(len(shape))
    elif isinstance(axis, int):
        axes = (axis,)
    else:
        axes = axis
    count = 1
    for a in axes:
        count *= shape[normalize_axis(a, len(shape))]
    return count


def accumulation_dtype(dtype_name: str, default_integer: str = "int64") -> str | None:
    """The dtype ``sum``, ``prod`` and ``cumulative_sum``/``cumulative_prod`` give an input of
    ``dtype_name`` when no ``dtype=`` is passed, or None for the input's own dtype.

    The standard (2024.12): integers narrower than the default integer dtype widen to it
    (signed, and bool, which counts as the smallest) or to the unsigned integer of its width
    (unsigned); every other dtype is kept.
    """
    bits = int("".join(c for c in default_integer if c.isdigit()))
    if dtype_name == "bool" or (dtype_name.startswith("int") and int(dtype_name[3:]) < bits):
        return default_integer
    if dtype_name.startswith("uint") and int(dtype_name[4:]) < bits:
        return f"uint{bits}"
    return None


def diff(x: Any, /, *, axis: int = -1, n: int = 1, prepend: Any = None, append: Any = None, xp: Any) -> Any:
    """The ``n``-th forward difference along ``axis``: ``x[i + 1] - x[i]``, applied ``n`` times,
    after joining ``prepend`` and ``append`` to ``x`` along ``axis``. Differentiable wherever
    slicing and ``subtract`` are."""
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"diff needs a non-negative integer n, got {n!r}")
    ndim = len(shape_of(x))
    axis = normalize_axis(axis, ndim)
    if prepend is not None or append is not None:
        parts = [p for p in (prepend, x, append) if p is not None]
        x = xp.concat([xp.asarray(p) if not hasattr(p, "shape") else p for p in parts], axis=axis)
    before = (slice(None),) * axis
    for _ in range(n):
        x = xp.subtract(x[before + (slice(1, None),)], x[before + (slice(None, -1),)])
    return x


# ------------------------------------------------------------------------------------------
# Used by the namespaces written here (MLX, TensorFlow); each is the standard's definition
# expressed through other standard functions of ``xp`` (the linalg result types and norms
# are in :mod:`portable_dl.backends._common.linalg`).


class UniqueAllResult(NamedTuple):
    values: Any
    indices: Any
    inverse_indices: Any
    counts: Any


class UniqueCountsResult(NamedTuple):
    values: Any
    counts: Any


class UniqueInverseResult(NamedTuple):
    values: Any
    inverse_indices: Any


def with_initial(result: Any, axis: int, initial: Any, *, xp: Any, device: Any = None) -> Any:
    """``result`` with one slice of ``initial`` (0 for sums, 1 for products) put in front along
    ``axis``: what ``cumulative_sum``/``cumulative_prod`` return with ``include_initial=True``.
    ``device``: where to make that slice, for namespaces that do not default to ``result``'s."""
    shape = list(shape_of(result))
    shape[axis] = 1
    if device is None:
        first = xp.full(tuple(shape), initial, dtype=result.dtype)
    else:
        first = xp.full(tuple(shape), initial, dtype=result.dtype, device=device)
    return xp.concat([first, result], axis=axis)


def meshgrid(*arrays: Any, indexing: str = "xy", xp: Any) -> list:
    """Coordinate arrays from 1-D coordinate vectors (a list, as the standard says): with
    ``"xy"`` the first two output axes are swapped, as in NumPy."""
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid indexing must be 'xy' or 'ij', got {indexing!r}")
    sizes = [shape_of(a)[0] if len(shape_of(a)) == 1 else None for a in arrays]
    if None in sizes:
        raise ValueError(f"meshgrid needs one-dimensional arrays, got shapes {[shape_of(a) for a in arrays]}")
    swap = indexing == "xy" and len(arrays) >= 2
    shape = list(sizes)
    if swap:
        shape[0], shape[1] = shape[1], shape[0]
    grids = []
    for i, a in enumerate(arrays):
        axis = (1 - i if i < 2 else i) if swap else i
        view = [1] * len(arrays)
        view[axis] = sizes[i]
        grids.append(xp.broadcast_to(xp.reshape(a, tuple(view)), tuple(shape)))
    return grids


def _as_numpy(x: Any) -> np.ndarray:
    return np.asarray(x)


def nonzero(x: Any, /, *, xp: Any, index_dtype: Any) -> tuple:
    """The indices of the non-zero elements, one 1-D array per axis, in row-major order.

    The result's size depends on the values, which MLX's lazy graph and XLA cannot express:
    the values are read through NumPy (so this cannot be traced or compiled)."""
    if len(shape_of(x)) == 0:
        from portable_dl.errors import ShapeError

        raise ShapeError("nonzero needs an array of at least one dimension, got a 0-d array")
    return tuple(xp.asarray(i, dtype=index_dtype) for i in np.nonzero(_as_numpy(x)))


def _unique(x: Any, *, xp: Any, index_dtype: Any) -> tuple:
    """values, first indices, inverse indices (x's shape) and counts, computed through NumPy:
    a data-dependent shape, like :func:`nonzero`. NaNs are distinct, +0 and -0 are one."""
    values = _as_numpy(x)
    unique, first, inverse, counts = np.unique(
        values.reshape(-1), return_index=True, return_inverse=True, return_counts=True, equal_nan=False
    )
    return (
        xp.asarray(unique, dtype=x.dtype),
        xp.asarray(first, dtype=index_dtype),
        xp.asarray(inverse.reshape(values.shape), dtype=index_dtype),
        xp.asarray(counts, dtype=index_dtype),
    )


def unique_all(x: Any, /, *, xp: Any, index_dtype: Any) -> UniqueAllResult:
    return UniqueAllResult(*_unique(x, xp=xp, index_dtype=index_dtype))


def unique_counts(x: Any, /, *, xp: Any, index_dtype: Any) -> UniqueCountsResult:
    values, _, _, counts = _unique(x, xp=xp, index_dtype=index_dtype)
    return UniqueCountsResult(values, counts)


def unique_inverse(x: Any, /, *, xp: Any, index_dtype: Any) -> UniqueInverseResult:
    values, _, inverse, _ = _unique(x, xp=xp, index_dtype=index_dtype)
    return UniqueInverseResult(values, inverse)


def unique_values(x: Any, /, *, xp: Any, index_dtype: Any) -> Any:
    return _unique(x, xp=xp, index_dtype=index_dtype)[0]


def nextafter(x1: Any, x2: Any, /, *, xp: Any, to_bits: Any, from_bits: Any) -> Any:
    """The next representable float after ``x1`` towards ``x2``, by stepping the IEEE 754 bit
    pattern: ``to_bits`` reinterprets floats as same-width signed integers, ``from_bits`` back.
    Equal operands give ``x2``, a NaN operand NaN, zero the smallest subnormal towards ``x2``."""
    bits = to_bits(x1)
    # Away from zero adds one to the magnitude's pattern; towards zero subtracts one. The
    # pattern of a negative float is its magnitude's with the sign bit set, so the step is
    # +1 when (x1 < x2) == (x1 > 0), else -1.
    up = xp.equal(xp.less(x1, x2), xp.greater(x1, 0))
    stepped = from_bits(xp.where(up, bits + 1, bits - 1))
    one = xp.astype(xp.ones_like(bits), bits.dtype)
    tiny = from_bits(one)  # the smallest positive subnormal
    from_zero = xp.where(xp.greater(x2, 0), tiny, xp.negative(tiny))
    result = xp.where(xp.equal(x1, 0), from_zero, stepped)
    result = xp.where(xp.equal(x1, x2), x2, result)
    return xp.where(xp.logical_or(xp.isnan(x1), xp.isnan(x2)), xp.asarray(float("nan"), dtype=result.dtype), result)


def matrix_power(x: Any, n: int, /, *, xp: Any, inv: Any) -> Any:
    """``x`` multiplied by itself ``n`` times (``n`` an int; the identity for 0; powers of
    ``inv(x)`` for negative ``n``), by repeated squaring."""
    if not isinstance(n, int):
        raise TypeError(f"matrix_power needs an integer power, got {n!r}")
    shape = shape_of(x)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        from portable_dl.errors import ShapeError

        raise ShapeError(f"matrix_power needs square matrices, got shape {shape}")
    if n == 0:
        return xp.broadcast_to(xp.eye(shape[-1], dtype=x.dtype), shape)
    base, n = (inv(x), -n) if n < 0 else (x, n)
    result = None
    while n:
        if n & 1:
            result = base if result is None else xp.matmul(result, base)
        n >>= 1
        if n:
            base = xp.matmul(base, base)
    return result


def _default_rtol(x: Any, xp: Any) -> float:
    shape = shape_of(x)
    return max(shape[-2], shape[-1]) * xp.finfo(x.dtype).eps


def matrix_rank(x: Any, /, *, rtol: Any = None, xp: Any, svdvals: Any) -> Any:
    """The number of singular values above ``rtol * largest`` (``rtol`` defaults to
    ``max(M, N) * eps``), in the default index dtype of the namespace's ``count_nonzero``."""
    values = svdvals(x)
    tolerance = _default_rtol(x, xp) if rtol is None else rtol
    if hasattr(tolerance, "shape"):
        tolerance = xp.expand_dims(tolerance, axis=-1)
    cutoff = xp.multiply(xp.max(values, axis=-1, keepdims=True), tolerance)
    return xp.count_nonzero(xp.greater(values, cutoff), axis=-1)


def pinv(x: Any, /, *, rtol: Any = None, xp: Any, svd: Any) -> Any:
    """The Moore-Penrose pseudo-inverse ``V @ diag(1/s) @ U^H`` keeping singular values above
    ``rtol * largest`` (``rtol`` defaults to ``max(M, N) * eps``)."""
    u, s, vh = svd(x, full_matrices=False)
    tolerance = _default_rtol(x, xp) if rtol is None else rtol
    if hasattr(tolerance, "shape"):
        tolerance = xp.expand_dims(tolerance, axis=-1)
    keep = xp.greater(s, xp.multiply(xp.max(s, axis=-1, keepdims=True), tolerance))
    inverse = xp.where(keep, xp.divide(xp.ones_like(s), xp.where(keep, s, xp.ones_like(s))), xp.zeros_like(s))
    v = xp.conj(matrix_transpose(vh, xp=xp))
    uh = xp.conj(matrix_transpose(u, xp=xp))
    return xp.matmul(xp.multiply(v, xp.expand_dims(inverse, axis=-2)), uh)


def fftfreq(n: int, /, *, d: float = 1.0, dtype: Any = None, device: Any = None, xp: Any) -> Any:
    """The sample frequencies of an ``n``-point FFT with spacing ``d``: ``[0, 1, ..., -1] / (d n)``."""
    if not isinstance(n, int) or n <= 0:
        raise ValueError(f"fftfreq needs a positive integer n, got {n!r}")
    positive = (n - 1) // 2 + 1
    integers = list(range(positive)) + list(range(-(n // 2), 0))
    values = np.asarray(integers, dtype=np.float64) / (d * n)
    return xp.asarray(values, dtype=dtype if dtype is not None else xp.asarray(0.0).dtype, device=device)


def rfftfreq(n: int, /, *, d: float = 1.0, dtype: Any = None, device: Any = None, xp: Any) -> Any:
    """The sample frequencies of ``rfft``: ``[0, 1, ..., n // 2] / (d n)``."""
    if not isinstance(n, int) or n <= 0:
        raise ValueError(f"rfftfreq needs a positive integer n, got {n!r}")
    values = np.arange(n // 2 + 1, dtype=np.float64) / (d * n)
    return xp.asarray(values, dtype=dtype if dtype is not None else xp.asarray(0.0).dtype, device=device)


def check_expand_dims_axis(axis: int, ndim: int) -> None:
    """IndexError (the standard's) unless ``axis`` is a position in ``[-ndim - 1, ndim]`` for
    the new axis of ``expand_dims`` on an array of rank ``ndim``."""
    if not -ndim - 1 <= axis <= ndim:
        raise IndexError(f"expand_dims: axis {axis} is out of range for an array of rank {ndim}")


def moveaxis_order(ndim: int, source: Any, destination: Any) -> list[int]:
    """The permutation ``moveaxis`` gives an array of rank ``ndim``: axes ``source`` (an int
    or a sequence) go to positions ``destination``, the others keep their order."""
    sources = [normalize_axis(a, ndim) for a in ((source,) if isinstance(source, int) else source)]
    destinations = [normalize_axis(a, ndim) for a in ((destination,) if isinstance(destination, int) else destination)]
    if len(sources) != len(destinations):
        raise ValueError(f"moveaxis needs as many destinations as sources, got {source} and {destination}")
    if len(set(sources)) != len(sources) or len(set(destinations)) != len(destinations):
        raise ValueError(f"moveaxis needs distinct axes, got {source} and {destination}")
    order = [a for a in range(ndim) if a not in sources]
    for position, axis in sorted(zip(destinations, sources)):
        order.insert(position, axis)
    return order


def _on_or_below_diagonal(x: Any, k: int, xp: Any) -> Any:
    """True on and below the ``k``-th diagonal of the last two axes of ``x``."""
    shape = shape_of(x)
    if len(shape) < 2:
        from portable_dl.errors import ShapeError

        raise ShapeError(f"tril and triu need an array of rank >= 2, got shape {shape}")
    rows = xp.reshape(xp.arange(shape[-2]), (-1, 1))
    columns = xp.reshape(xp.arange(shape[-1]), (1, -1))
    return xp.less_equal(xp.subtract(columns, rows), k)


def tril(x: Any, /, *, k: int = 0, xp: Any) -> Any:
    """``x`` with zeros above the ``k``-th diagonal of its last two axes."""
    return xp.where(_on_or_below_diagonal(x, k, xp), x, xp.zeros_like(x))


def triu(x: Any, /, *, k: int = 0, xp: Any) -> Any:
    """``x`` with zeros below the ``k``-th diagonal of its last two axes."""
    return xp.where(_on_or_below_diagonal(x, k - 1, xp), xp.zeros_like(x), x)


def concat_flattened(arrays: Sequence[Any], *, xp: Any) -> Any:
    """What ``concat(arrays, axis=None)`` gives: the arrays flattened and joined."""
    return xp.concat([xp.reshape(a, (-1,)) for a in arrays], axis=0)


def floor_divide_at_infinities(x1: Any, x2: Any, quotient: Any, *, xp: Any) -> Any:
    """``quotient`` (a framework's ``floor_divide(x1, x2)``) with the standard's special cases
    where an operand is infinite or ``x1`` is a zero: ``floor(x1 / x2)`` there (``inf // 2 = inf``,
    ``1 // -inf = -0``, ``-0 // 3 = -0``), which fmod-based floor divisions (NumPy, PyTorch, XLA)
    get wrong (NaN, -1, +0). Floats only."""
    if not xp.isdtype(quotient.dtype, "real floating"):
        return quotient
    a, b = (v if hasattr(v, "dtype") else xp.asarray(v, dtype=quotient.dtype) for v in (x1, x2))
    # There, and where x1 is a zero (whose sign XLA drops), x1 / x2 is exact: floor it.
    exact = xp.logical_or(xp.logical_or(xp.isinf(a), xp.isinf(b)), xp.equal(a, 0.0))
    return xp.where(exact, xp.floor(xp.divide(a, b)), quotient)


def remainder_signed_zeros(x2: Any, remainder: Any, *, xp: Any) -> Any:
    """``remainder`` (a framework's ``remainder(x1, x2)``) with a zero result carrying the sign
    of ``x2``, as the standard says (``+0 % -3 = -0``, ``-0 % 3 = +0``). Floats only."""
    if not xp.isdtype(remainder.dtype, "real floating"):
        return remainder
    divisor = x2 if hasattr(x2, "dtype") else xp.asarray(x2, dtype=remainder.dtype)
    return xp.where(xp.equal(remainder, 0.0), xp.copysign(remainder, divisor), remainder)


# Complex functions at the standard's special values (C99's cexpm1, csign, ctanh), for
# frameworks whose kernels miss them. ``from_parts(re, im)`` builds a complex array from its
# parts keeping the sign of zeros (``re + 1j * im`` would not).


def complex_expm1(x: Any, /, *, xp: Any, from_parts: Any) -> Any:
    """``exp(x) - 1`` of a complex ``x = a + ib``: ``expm1(a) cos(b) - 2 sin(b/2)**2 + i exp(a) sin(b)``,
    exact to rounding near 0, with ``-1 + 0j`` for ``a = -inf`` and ``inf + NaN j`` for ``a = +inf``
    with ``b`` infinite or NaN."""
    a, b = xp.real(x), xp.imag(x)
    half = xp.sin(xp.divide(b, 2))
    real = xp.subtract(xp.multiply(xp.expm1(a), xp.cos(b)), xp.multiply(2, xp.multiply(half, half)))
    real = xp.add(real, 0.0)  # -0 + 0 = +0: the standard's expm1(-0 + 0j) is +0 + 0j (H6)
    imag = xp.where(xp.equal(b, 0), b, xp.multiply(xp.exp(a), xp.sin(b)))
    minus_infinity = xp.equal(a, -float("inf"))
    plus_infinity_odd = xp.logical_and(xp.equal(a, float("inf")), xp.logical_not(xp.isfinite(b)))
    real = xp.where(
        minus_infinity, xp.full_like(real, -1.0), xp.where(plus_infinity_odd, xp.full_like(real, float("inf")), real)
    )
    imag = xp.where(
        minus_infinity,
        xp.zeros_like(imag),
        xp.where(xp.logical_and(plus_infinity_odd, xp.not_equal(b, 0)), xp.full_like(imag, float("nan")), imag),
    )
    return from_parts(real, imag)


def complex_round(x: Any, round: Any, /, *, from_parts: Any, xp: Any) -> Any:
    """A complex ``x`` rounded part by part (half to even) with the framework's real ``round``."""
    return from_parts(round(xp.real(x)), round(xp.imag(x)))


def complex_log1p(x: Any, log1p: Any, /, *, xp: Any, from_parts: Any) -> Any:
    """``log1p(x)`` of a complex ``x`` from the framework's ``log1p``, with ``+inf + NaN j`` where
    one part of ``x`` is infinite and the other NaN, and ``+inf +- (pi/2)j`` where ``a`` is finite
    and ``b`` infinite, as the standard says (PyTorch and XLA give ``NaN + NaN j`` there)."""
    a, b = xp.real(x), xp.imag(x)
    unbounded = xp.logical_or(xp.logical_and(xp.isinf(a), xp.isnan(b)), xp.logical_and(xp.isnan(a), xp.isinf(b)))
    result = xp.where(unbounded, from_parts(xp.full_like(a, float("inf")), xp.full_like(a, float("nan"))), log1p(x))
    # Finite a and infinite b: +inf + (+-pi/2)j (PyTorch gives NaN + NaN j for a subnormal a).
    vertical = xp.logical_and(xp.isfinite(a), xp.isinf(b))
    quarter_turn = xp.copysign(xp.full_like(b, math.pi / 2), b)
    return xp.where(vertical, from_parts(xp.full_like(a, float("inf")), quarter_turn), result)


def with_clamped_diagonal_offset(function: Any) -> Any:
    """``function(x, /, *, offset=..., **kw)`` (``diagonal``, ``trace``) with ``offset``
    clamped to ``[-rows, columns]``: any offset outside the matrix names an empty diagonal,
    and NumPy and XLA take the offset as a C int, overflowing at 2**31 where the standard
    allows any Python int."""

    # functools.wraps also sets __wrapped__: inspect.signature then shows the function's own
    # keywords (trace's ``dtype``), which the standard's signature tests look for.
    @functools.wraps(function)
    def clamped(x: Any, /, *, offset: int = 0, **keywords: Any) -> Any:
        shape = shape_of(x)
        if len(shape) >= 2:
            offset = max(-int(shape[-2]), min(int(shape[-1]), int(offset)))
        return function(x, offset=offset, **keywords)

    return clamped
