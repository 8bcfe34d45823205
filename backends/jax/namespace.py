"""The array-API namespace of the JAX backend: ``jax.numpy``, with our error model and
gradient conventions.

``jax.numpy`` already follows the standard (2023.12) in names, signatures and type
promotion (Python scalars are weak: ``float32 array * 2.0`` stays float32). What this
module adds:

* 64-bit dtypes. Unless the user enabled them (``jax.config.update("jax_enable_x64",
  True)`` before creating arrays, or ``JAX_ENABLE_X64=1``), JAX silently computes float64,
  int64 and uint64 requests in 32 bits. Here every function that takes a ``dtype`` raises
  :class:`portable_dl.DTypeError` instead, saying how to enable them. Nothing here changes
  JAX's configuration.
* Errors. Functions that combine arrays raise :class:`portable_dl.BroadcastError` naming
  both shapes (JAX raises ``ValueError`` or ``TypeError``); ``matmul``, ``tensordot``,
  ``reshape``, ``squeeze``, ``concat`` and ``stack`` raise :class:`portable_dl.ShapeError`.
  ``take`` and ``take_along_axis`` with indices out of range raise ``IndexError`` when the
  indices are known (JAX would fill with NaN); inside ``jax.jit`` they cannot be checked.
* Complex special values. XLA's complex ``exp``, ``log``, ``sqrt``, ``acos``, ``acosh``,
  ``asinh``, ``atanh``, ``cosh``, ``sinh`` and ``tanh`` give ``NaN + NaN j`` at many of the
  standard's special values and ignore a zero's sign on branch cuts: here they follow the
  standard (:mod:`.._common.complex_special_values`); ``sign`` of a zero is ``+0``.
* Gradient conventions. ``abs'(0)`` is 0 here (JAX's is 1); ``clip`` passes gradient 1
  at its bounds (JAX's ``clip`` gives 0.5, it is a ``maximum``/``minimum``). JAX already
  splits the gradient of ``maximum``/``minimum`` at ties and of ``max``/``min`` reductions
  among tied elements evenly, and ``prod``'s gradient is exact where an element is zero.

Defaults (JAX's own): the default float is float32 and the default integer and index
dtype int32; with x64 enabled, float64 and int64.
"""

from __future__ import annotations

import functools
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from portable_dl.errors import BroadcastError, DTypeError

from .._common import complex_special_values, dtypes, generic, info, surface
from .._common.broadcasting import (
    broadcast_shapes,
    checks_matmul_shapes,
    raises_broadcast_error,
    shape_of,
)
from .._common.shape_errors import (
    concat_failed,
    reshape_failed,
    shape_checked,
    squeeze_failed,
    stack_failed,
    tensordot_failed,
)

__array_api_version__ = surface.VERSION

#: This module: the namespace the generic functions of ``_common`` call back into.
_this = sys.modules[__name__]

# ---------------------------------------------------------------- dtypes, constants
bool = jnp.bool
int8, int16, int32, int64 = jnp.int8, jnp.int16, jnp.int32, jnp.int64
uint8, uint16, uint32, uint64 = jnp.uint8, jnp.uint16, jnp.uint32, jnp.uint64
float32, float64 = jnp.float32, jnp.float64
float16, bfloat16 = jnp.float16, jnp.bfloat16  # the half floats, beyond the standard (surface.HALF_DTYPES)
complex64, complex128 = jnp.complex64, jnp.complex128

e, pi, inf, nan, newaxis = jnp.e, jnp.pi, jnp.inf, jnp.nan, None

__array_namespace_info__ = info.info_function(jnp.__array_namespace_info__)


def finfo(type: Any, /) -> Any:
    """Limits of a floating dtype (or an array's): Python floats, and ``dtype`` this namespace's dtype."""
    limits = jnp.finfo(type)
    return dtypes.standard_finfo(limits, limits.dtype)


def iinfo(type: Any, /) -> Any:
    """Limits of an integer dtype (or an array's): Python ints, and ``dtype`` this namespace's dtype."""
    limits = jnp.iinfo(type)
    return dtypes.standard_iinfo(limits, limits.dtype)


isdtype = jnp.isdtype
can_cast = jnp.can_cast
result_type = jnp.result_type


def _x64_enabled() -> bool:
    """Whether JAX computes in 64 bits now (``jax_enable_x64``, or an ``enable_x64``
    context): then float64 is not narrowed to float32."""
    return jax.dtypes.canonicalize_dtype(np.float64) == np.float64


def _unsupported_dtype_reason(dtype: Any) -> str | None:
    """Why JAX cannot compute in ``dtype`` now, or None: the 64-bit dtypes without x64."""
    if dtype is None:
        return None
    try:
        numpy_dtype = np.dtype(dtype)
    except TypeError:
        return None
    wide = (numpy_dtype.itemsize == 8 and numpy_dtype.kind in "fiu") or (
        numpy_dtype.itemsize == 16 and numpy_dtype.kind == "c"
    )
    if wide and not _x64_enabled():
        return (
            f"JAX computes {numpy_dtype.name} in 32 bits unless 64-bit mode is enabled: call "
            'jax.config.update("jax_enable_x64", True) at startup, or set JAX_ENABLE_X64=1'
        )
    return None


def _require_supported(dtype: Any) -> None:
    reason = _unsupported_dtype_reason(dtype)
    if reason:
        raise DTypeError(reason)


def _checks_dtype(function: Callable) -> Callable:
    """Wrap a function taking ``dtype=`` so that a dtype JAX would narrow raises DTypeError."""

    @functools.wraps(function)
    def wrapper(*args: Any, dtype: Any = None, **kwargs: Any) -> Any:
        _require_supported(dtype)
        return function(*args, dtype=dtype, **kwargs)

    return wrapper


def astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Any:
    _require_supported(dtype)
    return jnp.astype(x, dtype, copy=copy, device=device)


# ----------------------------------------------------------------------- creation
asarray = _checks_dtype(jnp.asarray)
arange = _checks_dtype(jnp.arange)
empty = _checks_dtype(jnp.empty)
empty_like = _checks_dtype(jnp.empty_like)
eye = _checks_dtype(jnp.eye)
full = _checks_dtype(jnp.full)
full_like = _checks_dtype(jnp.full_like)
linspace = _checks_dtype(jnp.linspace)
ones = _checks_dtype(jnp.ones)
ones_like = _checks_dtype(jnp.ones_like)
zeros = _checks_dtype(jnp.zeros)
zeros_like = _checks_dtype(jnp.zeros_like)
meshgrid = jnp.meshgrid
tril = jnp.tril
triu = jnp.triu

# ----------------------------------------------------------------- element-wise
add = raises_broadcast_error(jnp.add, "add")
subtract = raises_broadcast_error(jnp.subtract, "subtract")
multiply = raises_broadcast_error(jnp.multiply, "multiply")
divide = raises_broadcast_error(jnp.divide, "divide")


def _floor_divide(x1: Any, x2: Any, /) -> Any:
    return generic.floor_divide_at_infinities(x1, x2, jnp.floor_divide(x1, x2), xp=_this)


def _remainder(x1: Any, x2: Any, /) -> Any:
    return generic.remainder_signed_zeros(x2, jnp.remainder(x1, x2), xp=_this)


floor_divide = raises_broadcast_error(_floor_divide, "floor_divide")
remainder = raises_broadcast_error(_remainder, "remainder")
pow = raises_broadcast_error(jnp.pow, "pow")
maximum = raises_broadcast_error(jnp.maximum, "maximum")
minimum = raises_broadcast_error(jnp.minimum, "minimum")
atan2 = raises_broadcast_error(jnp.atan2, "atan2")
hypot = raises_broadcast_error(jnp.hypot, "hypot")
copysign = raises_broadcast_error(jnp.copysign, "copysign")


logaddexp = raises_broadcast_error(jnp.logaddexp, "logaddexp")
equal = raises_broadcast_error(jnp.equal, "equal")
not_equal = raises_broadcast_error(jnp.not_equal, "not_equal")
less = raises_broadcast_error(jnp.less, "less")
less_equal = raises_broadcast_error(jnp.less_equal, "less_equal")
greater = raises_broadcast_error(jnp.greater, "greater")
greater_equal = raises_broadcast_error(jnp.greater_equal, "greater_equal")
logical_and = raises_broadcast_error(jnp.logical_and, "logical_and")
logical_or = raises_broadcast_error(jnp.logical_or, "logical_or")
logical_xor = raises_broadcast_error(jnp.logical_xor, "logical_xor")
where = raises_broadcast_error(jnp.where, "where")

negative, positive = jnp.negative, jnp.positive


def sign(x: Any, /) -> Any:
    """``-1``, ``0`` or ``1`` for real ``x``; ``x / |x|`` for complex ``x``; ``+0`` (``0 + 0j``) at
    a zero of either sign, as NumPy and PyTorch give (``jnp.sign(-0.0)`` is ``-0.0``)."""
    result = jnp.sign(x)
    return jnp.where(jnp.equal(x, 0), jnp.zeros_like(result), result)


def _with_complex_special_values(function: Callable, name: str) -> Callable:
    # XLA's complex kernels give NaN + NaN j at many of the standard's special values
    # (exp(-inf + inf j), sqrt(inf + NaN j), ...) and ignore a zero's sign on a branch cut.
    return complex_special_values.with_special_values(
        function,
        name,
        xp=_this,
        from_parts=jax.lax.complex,
        complex_dtypes=frozenset((np.dtype("complex64"), np.dtype("complex128"))),
    )


# exp, log, sqrt, acos, acosh, asinh, atanh, cosh, sinh, tanh: the functions the standard gives
# complex special values.
for _name in complex_special_values.SPECIAL_VALUES:
    globals()[_name] = _with_complex_special_values(getattr(jnp, _name), _name)
log2, log10 = jnp.log2, jnp.log10


def log1p(x: Any, /) -> Any:
    """``log(1 + x)``, accurate near 0; complex ``x`` with the standard's special cases."""
    if jnp.asarray(x).dtype.kind == "c":
        return generic.complex_log1p(x, jnp.log1p, xp=_this, from_parts=jax.lax.complex)
    return jnp.log1p(x)


def expm1(x: Any, /) -> Any:
    """``exp(x) - 1``, accurate near 0; complex ``x`` with the standard's special cases."""
    if jnp.asarray(x).dtype.kind == "c":
        return generic.complex_expm1(x, xp=_this, from_parts=jax.lax.complex)
    return jnp.expm1(x)


square, reciprocal = jnp.square, jnp.reciprocal
sin, cos, tan = jnp.sin, jnp.cos, jnp.tan
asin, atan = jnp.asin, jnp.atan
floor, ceil, trunc = jnp.floor, jnp.ceil, jnp.trunc
round = jnp.round  # rounds half to even, as the standard says
isnan, isinf, isfinite = jnp.isnan, jnp.isinf, jnp.isfinite
logical_not = jnp.logical_not


@jax.custom_jvp
def _real_abs(x: Any, /) -> Any:
    return jnp.abs(x)


@_real_abs.defjvp
def _abs_jvp(primals: tuple, tangents: tuple) -> tuple:
    (x,), (tangent,) = primals, tangents
    return jnp.abs(x), jnp.sign(x) * tangent


def abs(x: Any, /) -> Any:
    """``|x|``, with the derivative ``sign(x)`` for real ``x``: 0 at 0 (JAX's own is 1 there).
    Complex ``x`` keeps JAX's own rule (its tangent is real, which the real rule is not)."""
    return jnp.abs(x) if jnp.asarray(x).dtype.kind == "c" else _real_abs(x)


def clip(x: Any, /, min: Any = None, max: Any = None) -> Any:
    """Clamp ``x`` to ``[min, max]``; the gradient is 1 wherever ``min <= x <= max``."""
    return generic.clip(x, min, max, xp=_this)


# ------------------------------------------------------------------- reductions
sum = _checks_dtype(jnp.sum)
prod = _checks_dtype(jnp.prod)
cumulative_sum = _checks_dtype(jnp.cumulative_sum)
mean = jnp.mean
max = jnp.max  # tied maxima share the gradient equally
min = jnp.min
var = jnp.var
std = jnp.std
all = jnp.all
any = jnp.any

# --------------------------------------------------------------- linear algebra
matmul = checks_matmul_shapes(jnp.matmul)


def _tensordot(x1: Any, x2: Any, /, *, axes: Any = 2) -> Any:
    """Sum of products over ``axes``. ShapeError when the contracted sizes differ."""
    return jnp.tensordot(x1, x2, axes=axes)


tensordot = shape_checked(_tensordot, (TypeError, ValueError), tensordot_failed)


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """Dot product along ``axis`` of real vectors; the other axes broadcast."""
    broadcast_shapes(shape_of(x1), shape_of(x2), operation="vecdot")
    return generic.vecdot(x1, x2, axis=axis, xp=_this)


matrix_transpose = jnp.matrix_transpose

# ----------------------------------------------------------------- manipulation


def _reshape(x: Any, /, shape: Sequence[int], *, copy: bool | None = None) -> Any:
    return jnp.reshape(x, tuple(shape), copy=copy)


def _squeeze(x: Any, /, axis: int | Sequence[int]) -> Any:
    return jnp.squeeze(x, axis=axis)


def _concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    return jnp.concat(list(arrays), axis=axis)


def _stack(arrays: Sequence[Any], /, *, axis: int = 0) -> Any:
    return jnp.stack(list(arrays), axis=axis)


reshape = shape_checked(_reshape, (TypeError, ValueError), reshape_failed)
squeeze = shape_checked(_squeeze, ValueError, squeeze_failed)
concat = shape_checked(_concat, (TypeError, ValueError), concat_failed)
stack = shape_checked(_stack, ValueError, stack_failed)


def broadcast_to(x: Any, /, shape: Sequence[int]) -> Any:
    shape = tuple(shape)
    try:
        return jnp.broadcast_to(x, shape)
    except ValueError as error:
        raise BroadcastError(shape_of(x), shape, operation="broadcast_to") from error


def broadcast_arrays(*arrays: Any) -> list:
    """The arrays broadcast to one shape, as a list."""
    return generic.broadcast_arrays(*arrays, xp=_this)


def permute_dims(x: Any, /, axes: Sequence[int]) -> Any:
    """``x`` with its axes in the order ``axes``; negative axes count from the end (XLA's
    transpose takes only non-negative ones)."""
    ndim = jnp.ndim(x)
    return jnp.permute_dims(x, tuple(generic.normalize_axis(a, ndim) for a in axes))


def expand_dims(x: Any, /, axis: int = 0) -> Any:
    """``x`` with a new axis of size one at ``axis``; IndexError when ``axis`` is out of range."""
    generic.check_expand_dims_axis(axis, x.ndim)
    return jnp.expand_dims(x, axis=axis)


unstack = jnp.unstack
flip = jnp.flip
roll = jnp.roll
tile = jnp.tile
repeat = jnp.repeat
moveaxis = jnp.moveaxis

# ------------------------------------------------------------ searching, indexing
argmax = jnp.argmax
argmin = jnp.argmin
sort = jnp.sort
argsort = jnp.argsort


def _check_indices(indices: Any, size: int, function: str, axis: Any) -> None:
    """IndexError when known ``indices`` fall outside ``[-size, size)``. Indices traced by
    ``jax.jit`` have no values yet and are not checked."""
    if isinstance(indices, jax.core.Tracer):
        return
    values = np.asarray(indices)
    if values.size and (values.max() >= size or values.min() < -size):
        raise IndexError(f"{function}: indices out of range for axis {axis} of size {size}")


def take(x: Any, indices: Any, /, *, axis: int | None = None) -> Any:
    """Elements of ``x`` at ``indices`` along ``axis``; repeated indices add up in the gradient."""
    if axis is None:
        if jnp.ndim(x) != 1:
            raise ValueError("take needs an axis for arrays of rank > 1")
        axis = 0
    _check_indices(indices, shape_of(x)[axis], "take", axis)
    return jnp.take(x, indices, axis=axis)


def take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> Any:
    _check_indices(indices, shape_of(x)[axis], "take_along_axis", axis)
    return jnp.take_along_axis(x, indices, axis=axis)


# ------------------------------------------------ functions new in 2023.12-2024.12: jax.numpy's own
bitwise_and = raises_broadcast_error(jnp.bitwise_and, "bitwise_and")
bitwise_or = raises_broadcast_error(jnp.bitwise_or, "bitwise_or")
bitwise_xor = raises_broadcast_error(jnp.bitwise_xor, "bitwise_xor")
bitwise_left_shift = raises_broadcast_error(jnp.bitwise_left_shift, "bitwise_left_shift")
bitwise_right_shift = raises_broadcast_error(jnp.bitwise_right_shift, "bitwise_right_shift")
bitwise_invert = jnp.bitwise_invert
nextafter = raises_broadcast_error(jnp.nextafter, "nextafter")
conj, real, imag, signbit = jnp.conj, jnp.real, jnp.imag, jnp.signbit
nonzero, count_nonzero = jnp.nonzero, jnp.count_nonzero


def searchsorted(x1: Any, x2: Any, /, *, side: str = "left", sorter: Any = None) -> Any:
    """Insertion indices of ``x2`` in the sorted ``x1``, in the default index dtype (int64 with
    x64; ``jnp.searchsorted`` always gives int32)."""
    indices = jnp.searchsorted(x1, x2, side=side, sorter=sorter)
    return indices.astype(__array_namespace_info__().default_dtypes()["indexing"])


unique_all, unique_counts = jnp.unique_all, jnp.unique_counts
unique_inverse, unique_values = jnp.unique_inverse, jnp.unique_values
from_dlpack = jnp.from_dlpack


def cumulative_prod(x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False) -> Any:
    """Running products along ``axis``; small integers accumulate in the default integer dtype
    (``jnp.cumulative_prod`` keeps uint8 as uint8)."""
    if dtype is None:
        default = np.dtype(__array_namespace_info__().default_dtypes()["integral"]).name
        dtype = generic.accumulation_dtype(np.dtype(jnp.asarray(x).dtype).name, default)
    _require_supported(dtype)
    return jnp.cumulative_prod(x, axis=axis, dtype=dtype, include_initial=include_initial)


diff = jnp.diff

# The four functions the main namespace shares with ``linalg`` are the same objects in both.
linalg = types.SimpleNamespace(
    **{
        name: globals()[name] if name in surface.LINEAR_ALGEBRA else getattr(jnp.linalg, name)
        for name in surface.LINALG
    }
)
linalg.diagonal = generic.with_clamped_diagonal_offset(jnp.linalg.diagonal)
linalg.trace = generic.with_clamped_diagonal_offset(jnp.linalg.trace)

#: The factorizations, which XLA's CPU backend (LAPACK) has no float16 or bfloat16 kernel for:
#: JAX raises ``NotImplementedError: (KeyError(...), 'Unsupported dtype float16.')`` (probed with
#: JAX 0.10 on the CPU; ``det`` works). Refused up front with the DTypeError every backend gives.
_NO_HALF_KERNEL = (
    "cholesky", "eigh", "eigvalsh", "inv", "matrix_rank", "pinv", "qr", "slogdet", "solve", "svd", "svdvals",
)  # fmt: skip
dtypes.refuse_half_factorizations(linalg, _NO_HALF_KERNEL, f"JAX {jax.__version__}")
fft = types.SimpleNamespace(**{name: getattr(jnp.fft, name) for name in surface.FFT})
for _name in dtypes.HALF_REFUSING_FFT:  # no complex half dtype for the result (dtypes.HALF_REFUSING_FFT)
    setattr(fft, _name, dtypes.without_half_kernel(getattr(fft, _name), _name, "", dtypes.FFT_HALF_REASON))
del _name


# Half-precision element-wise math in float32, rounded once (dtypes.HALF_IN_FLOAT32 says why).
dtypes.compute_halves_in_float32(globals())
#: The namespace a JAX backend hands out: the standard's names only.
xp = surface.build_namespace("portable_dl.backends.jax.xp", globals())
