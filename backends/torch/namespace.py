"""The array-API namespace of the PyTorch backend: ``array_api_compat.torch``, with our
error model and a few corrections.

``array_api_compat.torch`` already gives torch the standard's names, signatures and type
promotion (``float32 tensor + 1.5`` stays float32, a 0-d float64 tensor widens a float32
one). What this module adds:

* Errors. PyTorch reports every shape mistake as ``RuntimeError``. Functions that combine
  arrays raise :class:`portable_dl.BroadcastError` naming both shapes; ``matmul``,
  ``tensordot``, ``reshape``, ``squeeze``, ``concat`` and ``stack`` raise
  :class:`portable_dl.ShapeError`; ``take`` out of range raises ``IndexError``.
* ``clip`` is :func:`generic.clip`: gradient 1 at the bounds, bounds included.
* ``can_cast`` follows the standard's promotion table (``torch.can_cast`` allows
  ``float64 -> float32``, a narrowing); ``broadcast_arrays`` returns a list.

Gradient conventions, checked against torch 2.13: ``maximum``/``minimum`` already split
the gradient evenly at ties, ``max``/``min`` reductions (``amax``/``amin``) split it evenly
among tied elements, ``abs'(0) = 0``, and ``prod``'s gradient is exact where an element
is zero. Nothing to override there.

Defaults (PyTorch's own): Python floats become float32, Python ints int64; integer sums
and ``argmax``/``argmin``/``argsort`` give int64. PyTorch implements arithmetic on
uint16, uint32 and uint64 tensors only in part: the backend reports them unsupported.
"""

from __future__ import annotations

import builtins
import types
from collections.abc import Sequence
from typing import Any

import array_api_compat.torch as compat
import torch

from portable_dl.errors import BroadcastError

from .._common import dtypes, generic, info, surface
from .._common.broadcasting import (
    broadcast_shapes,
    checks_matmul_shapes,
    raises_broadcast_error,
    shape_of,
)
from .._common.promotion import PROMOTION_TABLE
from .._common.shape_errors import (
    concat_error,
    reshape_error,
    squeeze_error,
    stack_error,
    tensordot_axes_differ,
    tensordot_error,
)

__array_api_version__ = surface.VERSION

# ---------------------------------------------------------------- dtypes, constants
bool = compat.bool
int8, int16, int32, int64 = compat.int8, compat.int16, compat.int32, compat.int64
uint8, uint16, uint32, uint64 = torch.uint8, torch.uint16, torch.uint32, torch.uint64
float32, float64 = compat.float32, compat.float64
complex64, complex128 = compat.complex64, compat.complex128

e, pi, inf, nan, newaxis = compat.e, compat.pi, compat.inf, compat.nan, None

__array_namespace_info__ = info.info_function(compat.__array_namespace_info__)


def finfo(type: Any, /) -> Any:
    """Limits of a floating dtype (or an array's): Python floats, and ``dtype`` this namespace's dtype."""
    limits = compat.finfo(type)
    return dtypes.standard_finfo(limits, _torch_dtype(limits.dtype))


def iinfo(type: Any, /) -> Any:
    """Limits of an integer dtype (or an array's): Python ints, and ``dtype`` this namespace's dtype."""
    limits = compat.iinfo(type)
    return dtypes.standard_iinfo(limits, _torch_dtype(limits.dtype))


def _torch_dtype(dtype: Any) -> Any:
    # torch.finfo(..).dtype and torch.iinfo(..).dtype are names ("float32"), not dtypes.
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


isdtype = compat.isdtype
result_type = compat.result_type
astype = compat.astype


def can_cast(from_: Any, to: Any, /) -> bool:
    """Whether ``from_`` (a dtype or an array) casts to ``to`` under the standard's
    promotion rules: only to a dtype that holds every value (never float64 -> float32)."""
    source = from_.dtype if isinstance(from_, torch.Tensor) else from_
    names = (_name_of(source), _name_of(to))
    return PROMOTION_TABLE.get(names) == names[1]


def _name_of(dtype: Any) -> str:
    return str(dtype).rsplit(".", 1)[-1]


# ----------------------------------------------------------------------- creation
asarray = compat.asarray
arange = compat.arange
empty = compat.empty
empty_like = compat.empty_like
eye = compat.eye
full = compat.full
full_like = compat.full_like
linspace = compat.linspace
ones = compat.ones
ones_like = compat.ones_like
zeros = compat.zeros
zeros_like = compat.zeros_like


def meshgrid(*arrays: Any, indexing: str = "xy") -> list:
    """Coordinate matrices from coordinate vectors, as a list (the standard's return type)."""
    return list(compat.meshgrid(*arrays, indexing=indexing))


tril = compat.tril
triu = compat.triu

# ----------------------------------------------------------------- element-wise
add = raises_broadcast_error(compat.add, "add")


def _subtract(x1: Any, x2: Any, /) -> Any:
    """``x1 - x2``. torch refuses to subtract a bool operand; under the project's promotion rule
    a bool meets a number as 0 or 1 of the other operand's dtype (as ``add`` does). Tried only
    after torch refused, so ordinary calls pay nothing."""
    try:
        return compat.subtract(x1, x2)
    except RuntimeError:
        x1, x2 = _numeric_bools(x1, x2)
        return compat.subtract(x1, x2)


def _numeric_bools(x1: Any, x2: Any) -> tuple[Any, Any]:
    """Bool operands (Python or tensors) as numbers of the other operand's dtype."""
    # builtins.bool: in this module ``bool`` is the dtype torch.bool.
    if type(x1) is builtins.bool:
        x1 = int(x1)
    if type(x2) is builtins.bool:
        x2 = int(x2)
    if (
        isinstance(x1, torch.Tensor)
        and x1.dtype == torch.bool
        and isinstance(x2, torch.Tensor)
        and x2.dtype != torch.bool
    ):
        x1 = x1.to(x2.dtype)
    if (
        isinstance(x2, torch.Tensor)
        and x2.dtype == torch.bool
        and isinstance(x1, torch.Tensor)
        and x1.dtype != torch.bool
    ):
        x2 = x2.to(x1.dtype)
    return x1, x2


subtract = raises_broadcast_error(_subtract, "subtract")
multiply = raises_broadcast_error(compat.multiply, "multiply")
divide = raises_broadcast_error(compat.divide, "divide")


def _floor_divide(x1: Any, x2: Any, /) -> Any:
    return generic.floor_divide_at_infinities(x1, x2, compat.floor_divide(x1, x2), xp=_this)


def _remainder(x1: Any, x2: Any, /) -> Any:
    return generic.remainder_signed_zeros(x2, compat.remainder(x1, x2), xp=_this)


floor_divide = raises_broadcast_error(_floor_divide, "floor_divide")
remainder = raises_broadcast_error(_remainder, "remainder")
pow = raises_broadcast_error(compat.pow, "pow")
maximum = raises_broadcast_error(compat.maximum, "maximum")
minimum = raises_broadcast_error(compat.minimum, "minimum")
atan2 = raises_broadcast_error(compat.atan2, "atan2")
hypot = raises_broadcast_error(compat.hypot, "hypot")
copysign = raises_broadcast_error(compat.copysign, "copysign")
logaddexp = raises_broadcast_error(compat.logaddexp, "logaddexp")
equal = raises_broadcast_error(compat.equal, "equal")
not_equal = raises_broadcast_error(compat.not_equal, "not_equal")
less = raises_broadcast_error(compat.less, "less")
less_equal = raises_broadcast_error(compat.less_equal, "less_equal")
greater = raises_broadcast_error(compat.greater, "greater")
greater_equal = raises_broadcast_error(compat.greater_equal, "greater_equal")
logical_and = raises_broadcast_error(compat.logical_and, "logical_and")
logical_or = raises_broadcast_error(compat.logical_or, "logical_or")
logical_xor = raises_broadcast_error(compat.logical_xor, "logical_xor")
where = raises_broadcast_error(compat.where, "where")

negative, positive, abs, sign = compat.negative, compat.positive, compat.abs, compat.sign
exp, log, log2, log10 = compat.exp, compat.log, compat.log2, compat.log10


def log1p(x: Any, /) -> Any:
    """``log(1 + x)``, accurate near 0; complex ``x`` with one infinite part and one NaN part gives
    ``+inf + NaN j``, as the standard says (torch's gives NaN + NaN j)."""
    if x.is_complex():
        return generic.complex_log1p(x, torch.log1p, xp=_this, from_parts=torch.complex)
    return torch.log1p(x)


def expm1(x: Any, /) -> Any:
    """``exp(x) - 1``, accurate near 0; complex ``x`` with the standard's special cases."""
    if x.is_complex():
        return generic.complex_expm1(x, xp=_this, from_parts=torch.complex)
    return torch.expm1(x)


sqrt, square, reciprocal = compat.sqrt, compat.square, compat.reciprocal
sin, cos, tan = compat.sin, compat.cos, compat.tan
asin, atan = compat.asin, compat.atan


def acos(x: Any, /) -> Any:
    """Inverse cosine; complex ``+-0 +- 0j`` gives ``pi/2 -+ 0j`` (torch's drops the zero's sign)."""
    result = torch.acos(x)
    if not x.is_complex():
        return result
    at_zero = (x.real == 0) & (x.imag == 0)
    exact = torch.complex(torch.full_like(x.real, torch.pi / 2), torch.copysign(torch.zeros_like(x.imag), -x.imag))
    return torch.where(at_zero, exact, result)


sinh, cosh = compat.sinh, compat.cosh


def tanh(x: Any, /) -> Any:
    """Hyperbolic tangent; complex ``x`` with infinite real part gives ``+-1 +- 0j`` (the sign of
    the imaginary part), where torch's own gives ``1 - 0j`` for positive ones."""
    if x.is_complex():
        return generic.complex_tanh(x, torch.tanh, xp=_this, from_parts=torch.complex)
    return torch.tanh(x)


asinh, acosh, atanh = compat.asinh, compat.acosh, compat.atanh
floor, ceil, trunc = compat.floor, compat.ceil, compat.trunc
round = compat.round  # torch.round rounds half to even, as the standard says
isnan, isinf, isfinite = compat.isnan, compat.isinf, compat.isfinite
logical_not = compat.logical_not


def clip(x: Any, /, min: Any = None, max: Any = None) -> Any:
    """Clamp ``x`` to ``[min, max]``; the gradient is 1 wherever ``min <= x <= max``."""
    return generic.clip(x, min, max, xp=_this)


# ------------------------------------------------------------------- reductions
sum = compat.sum
mean = compat.mean
max = compat.max  # amax: tied maxima share the gradient equally
min = compat.min
prod = compat.prod


def var(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    """Variance over ``axis``; a fractional ``correction`` (which torch refuses) through the formula."""
    if float(correction).is_integer():
        return compat.var(x, axis=axis, correction=correction, keepdims=keepdims)
    return generic.var(x, axis=axis, correction=correction, keepdims=keepdims, xp=_this)


def std(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    """Standard deviation over ``axis``; a fractional ``correction`` through the formula."""
    if float(correction).is_integer():
        return compat.std(x, axis=axis, correction=correction, keepdims=keepdims)
    return generic.std(x, axis=axis, correction=correction, keepdims=keepdims, xp=_this)


all = compat.all
any = compat.any


def cumulative_sum(x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False) -> Any:
    """Running sums along ``axis`` (optional for 1-D arrays); with ``include_initial`` a
    leading zero, so the result is one longer along ``axis``. Integer sums are int64, as
    torch's. Written on ``torch.cumsum`` rather than taken from array_api_compat, whose
    version looks its namespace up through an ``lru_cache`` at every call: TorchDynamo
    warns about that cache each time it compiles a step (the loss's one-hot labels call
    this function)."""
    if axis is None:
        if x.ndim > 1:
            raise ValueError(f"cumulative_sum needs an axis for arrays of rank > 1, got shape {tuple(x.shape)}")
        axis = 0
    axis = generic.normalize_axis(axis, x.ndim)
    result = torch.cumsum(x, dim=axis, dtype=dtype)
    if include_initial:
        zero_shape = (*result.shape[:axis], 1, *result.shape[axis + 1 :])
        result = torch.cat([torch.zeros(zero_shape, dtype=result.dtype, device=result.device), result], dim=axis)
    return result


# --------------------------------------------------------------- linear algebra
def _matmul(x1: Any, x2: Any, /) -> Any:
    # Operands of one dtype need no promotion: call torch directly, skipping the two
    # result_type lookups array_api_compat makes (they cost four times the product of
    # two small matrices).
    if isinstance(x1, torch.Tensor) and isinstance(x2, torch.Tensor) and x1.dtype == x2.dtype:
        return torch.matmul(x1, x2)
    return compat.matmul(x1, x2)


matmul = checks_matmul_shapes(_matmul)


def tensordot(x1: Any, x2: Any, /, *, axes: Any = 2) -> Any:
    """Sum of products over ``axes`` (an int: the last ``axes`` of ``x1`` with the first of
    ``x2``; or two sequences of axes). ShapeError when the contracted sizes differ."""
    try:
        return compat.tensordot(x1, x2, axes=axes)
    except RuntimeError as error:
        if tensordot_axes_differ(shape_of(x1), shape_of(x2), axes):
            raise tensordot_error(shape_of(x1), shape_of(x2), axes) from error
        raise


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """Dot product along ``axis`` of real vectors; the other axes broadcast."""
    broadcast_shapes(shape_of(x1), shape_of(x2), operation="vecdot")
    return generic.vecdot(x1, x2, axis=axis, xp=_this)


matrix_transpose = compat.matrix_transpose

# ----------------------------------------------------------------- manipulation


def reshape(x: Any, /, shape: Sequence[int], *, copy: bool | None = None) -> Any:
    try:
        return compat.reshape(x, tuple(shape), copy=copy)
    except RuntimeError as error:
        raise reshape_error(shape_of(x), shape) from error


def squeeze(x: Any, /, axis: int | Sequence[int]) -> Any:
    try:
        return compat.squeeze(x, axis=axis)
    except ValueError as error:
        raise squeeze_error(axis, shape_of(x)) from error


def concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    arrays = list(arrays)
    try:
        return compat.concat(arrays, axis=axis)
    except RuntimeError as error:
        raise concat_error(arrays, axis) from error


def stack(arrays: Sequence[Any], /, *, axis: int = 0) -> Any:
    arrays = list(arrays)
    try:
        return torch.stack(arrays, dim=axis)
    except RuntimeError as error:
        if len({shape_of(a) for a in arrays}) > 1:
            raise stack_error(arrays) from error
        raise  # not a shape mistake: a dtype, say


def broadcast_to(x: Any, /, shape: Sequence[int]) -> Any:
    shape = tuple(shape)
    try:
        return compat.broadcast_to(x, shape)
    except RuntimeError as error:
        raise BroadcastError(shape_of(x), shape, operation="broadcast_to") from error


def broadcast_arrays(*arrays: Any) -> list:
    """The arrays broadcast to one shape, as a list."""
    return generic.broadcast_arrays(*arrays, xp=_this)


permute_dims = compat.permute_dims


def expand_dims(x: Any, /, axis: int = 0) -> Any:
    """``x`` with a new axis of size one at ``axis``; IndexError when ``axis`` is out of range."""
    generic.check_expand_dims_axis(axis, x.ndim)
    return compat.expand_dims(x, axis=axis)


unstack = compat.unstack
flip = compat.flip
roll = compat.roll
tile = compat.tile
repeat = compat.repeat
moveaxis = compat.moveaxis

# ------------------------------------------------------------ searching, indexing
argmax = compat.argmax
argmin = compat.argmin
sort = compat.sort
argsort = compat.argsort
take_along_axis = compat.take_along_axis


def take(x: Any, indices: Any, /, *, axis: int | None = None) -> Any:
    """Elements of ``x`` at ``indices`` along ``axis``; repeated indices add up in the
    gradient. IndexError when an index is out of range."""
    try:
        return compat.take(x, indices, axis=axis)
    except (RuntimeError, IndexError) as error:
        raise IndexError(f"take: indices out of range for axis {axis} of an array of shape {shape_of(x)}") from error


# ---------------------------------------- functions new in 2023.12-2024.12, as array_api_compat has them
bitwise_and = raises_broadcast_error(compat.bitwise_and, "bitwise_and")
bitwise_or = raises_broadcast_error(compat.bitwise_or, "bitwise_or")
bitwise_xor = raises_broadcast_error(compat.bitwise_xor, "bitwise_xor")
bitwise_left_shift = raises_broadcast_error(compat.bitwise_left_shift, "bitwise_left_shift")
bitwise_right_shift = raises_broadcast_error(compat.bitwise_right_shift, "bitwise_right_shift")
bitwise_invert = compat.bitwise_invert
nextafter = raises_broadcast_error(compat.nextafter, "nextafter")
real, imag, signbit = compat.real, compat.imag, compat.signbit
nonzero, count_nonzero, searchsorted = compat.nonzero, compat.count_nonzero, compat.searchsorted
unique_counts = compat.unique_counts


def conj(x: Any, /) -> Any:
    """The complex conjugate, computed now: ``torch.conj`` only sets a flag that NumPy
    conversion and DLPack refuse."""
    return torch.conj_physical(x) if x.is_complex() else x


def unique_all(x: Any, /) -> Any:
    """Unique values (sorted), the index of each one's first occurrence in the flattened
    ``x``, the inverse indices (shape of ``x``) and the counts. array_api_compat leaves it
    out for torch (torch.unique gives no first indices): taken here from the inverse."""
    values, inverse, counts = torch.unique(x, sorted=True, return_inverse=True, return_counts=True)
    positions = torch.arange(x.numel(), device=x.device)
    first = torch.full((values.shape[0],), x.numel(), dtype=positions.dtype, device=x.device)
    first = first.scatter_reduce(0, inverse.reshape(-1), positions, reduce="amin")
    return generic.UniqueAllResult(values, first, inverse.reshape(x.shape), counts)


unique_inverse, unique_values = compat.unique_inverse, compat.unique_values
from_dlpack = compat.from_dlpack
cumulative_prod = compat.cumulative_prod
diff = compat.diff

# The four functions the main namespace shares with ``linalg`` are the same objects in both.
linalg = types.SimpleNamespace(
    **{
        name: globals()[name] if name in surface.LINEAR_ALGEBRA else getattr(compat.linalg, name)
        for name in surface.LINALG
    }
)


def _ihfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
    # torch.fft.ihfft returns a conjugate view (a flag NumPy conversion and DLPack refuse).
    return compat.fft.ihfft(x, n=n, axis=axis, norm=norm).resolve_conj()


fft = types.SimpleNamespace(**{name: _ihfft if name == "ihfft" else getattr(compat.fft, name) for name in surface.FFT})

import sys as _sys

_this = _sys.modules[__name__]
del _sys

#: The namespace a PyTorch backend hands out: the standard's names only.
xp = surface.build_namespace("portable_dl.backends.torch.xp", globals())
