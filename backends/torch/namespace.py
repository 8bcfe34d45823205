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
uint16, uint32 and uint64 tensors only in part: the backend reports them unsupported, and
every function here raises :class:`portable_dl.DTypeError` naming the function and dtype
where PyTorch has no kernel (:mod:`.missing_kernels`). Unsigned sums and products accumulate
in uint64, as the standard says (computed in int64: the bits are the same modulo 2**64).
Complex ``exp``, ``log``, ``sqrt`` and the hyperbolic functions follow the standard's special
values (:mod:`.._common.complex_special_values`); ``unique_*`` take complex arrays.

Half floats: ``float16`` and ``bfloat16`` (an extension of the standard) are torch's own;
``asarray`` takes NumPy bfloat16 arrays (``ml_dtypes``) bit for bit. The factorizations have no
half kernels in PyTorch and raise DTypeError up front; the FFTs refuse half input (no complex
half dtype).
"""

from __future__ import annotations

import builtins
import sys
import types
from collections.abc import Sequence
from typing import Any

import array_api_compat.torch as compat
import numpy as np
import torch

from portable_dl.errors import BroadcastError

from .._common import complex_special_values, dtypes, generic, info, surface
from .._common.broadcasting import (
    broadcast_shapes,
    checks_matmul_shapes,
    raises_broadcast_error,
    shape_of,
)
from .._common.promotion import PROMOTION_TABLE
from .._common.shape_errors import (
    concat_failed,
    reshape_failed,
    shape_checked,
    squeeze_failed,
    stack_failed,
    tensordot_failed,
)
from .missing_kernels import missing_kernel_error, reports_missing_kernels

__array_api_version__ = surface.VERSION

#: This module: the namespace the generic functions of ``_common`` call back into.
_this = sys.modules[__name__]

# ---------------------------------------------------------------- dtypes, constants
bool = compat.bool
int8, int16, int32, int64 = compat.int8, compat.int16, compat.int32, compat.int64
uint8, uint16, uint32, uint64 = torch.uint8, torch.uint16, torch.uint32, torch.uint64
float32, float64 = compat.float32, compat.float64
float16, bfloat16 = torch.float16, torch.bfloat16  # the half floats, beyond the standard (surface.HALF_DTYPES)
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
def tensor_from_numpy(values: Any, dtype: Any = None, device: Any = None) -> torch.Tensor:
    """A tensor copy of the NumPy array ``values``; an ``ml_dtypes.bfloat16`` array goes in
    bit for bit through int16 (torch does not know NumPy's bfloat16 type)."""
    if dtypes.half_name(values.dtype) == "bfloat16":
        tensor = torch.tensor(values.view(np.int16), device=device).view(torch.bfloat16)
        return tensor if dtype is None else tensor.to(dtype)
    return torch.tensor(values, dtype=dtype, device=device)


def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None) -> torch.Tensor:
    """``array_api_compat.torch.asarray``, and NumPy bfloat16 arrays (``ml_dtypes``) bit for bit."""
    if isinstance(obj, (np.ndarray, np.generic)) and dtypes.half_name(obj.dtype) == "bfloat16":
        if copy is False:  # the NumPy memory itself, seen as bfloat16; compat raises if a copy is needed
            shared = torch.from_numpy(np.asarray(obj).view(np.int16)).view(torch.bfloat16)
            return compat.asarray(shared, dtype=dtype, device=device, copy=False)
        return tensor_from_numpy(np.asarray(obj), dtype=dtype, device=device)
    return compat.asarray(obj, dtype=dtype, device=device, copy=copy)


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
#: Array-combining functions: BroadcastError for shapes that do not broadcast, DTypeError for a
#: dtype PyTorch has no kernel for, both found only once the call has failed.
#: Functions that translate PyTorch's missing kernels in their own error path; the loop at the
#: end wraps every other function of the namespace for it.
_TRANSLATING = {"sum", "matmul"}


def _combining(function: Any, name: str) -> Any:
    _TRANSLATING.add(name)
    return raises_broadcast_error(function, name, translate=missing_kernel_error)


add = _combining(compat.add, "add")


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


subtract = _combining(_subtract, "subtract")
multiply = _combining(compat.multiply, "multiply")
divide = _combining(compat.divide, "divide")


def _floor_divide(x1: Any, x2: Any, /) -> Any:
    return generic.floor_divide_at_infinities(x1, x2, compat.floor_divide(x1, x2), xp=_this)


def _remainder(x1: Any, x2: Any, /) -> Any:
    return generic.remainder_signed_zeros(x2, compat.remainder(x1, x2), xp=_this)


floor_divide = _combining(_floor_divide, "floor_divide")
remainder = _combining(_remainder, "remainder")
pow = _combining(compat.pow, "pow")
maximum = _combining(compat.maximum, "maximum")
minimum = _combining(compat.minimum, "minimum")
atan2 = _combining(compat.atan2, "atan2")
hypot = _combining(compat.hypot, "hypot")
copysign = _combining(compat.copysign, "copysign")
logaddexp = _combining(compat.logaddexp, "logaddexp")
equal = _combining(compat.equal, "equal")
not_equal = _combining(compat.not_equal, "not_equal")
less = _combining(compat.less, "less")
less_equal = _combining(compat.less_equal, "less_equal")
greater = _combining(compat.greater, "greater")
greater_equal = _combining(compat.greater_equal, "greater_equal")
logical_and = _combining(compat.logical_and, "logical_and")
logical_or = _combining(compat.logical_or, "logical_or")
logical_xor = _combining(compat.logical_xor, "logical_xor")
where = _combining(compat.where, "where")

negative, positive, abs, sign = compat.negative, compat.positive, compat.abs, compat.sign
log2, log10 = compat.log2, compat.log10


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


def _with_complex_special_values(function: Any, name: str) -> Any:
    # torch's complex kernels drop a zero's sign (acos(+-0 + 0j)), give tanh(inf - 0j) = 1 + 0j
    # and put some results on the wrong side of a branch cut.
    return complex_special_values.with_special_values(
        function,
        name,
        xp=_this,
        from_parts=torch.complex,
        complex_dtypes=frozenset((torch.complex64, torch.complex128)),
    )


# exp, log, sqrt, acos, acosh, asinh, atanh, cosh, sinh, tanh: the functions the standard gives
# complex special values.
for _name in complex_special_values.SPECIAL_VALUES:
    globals()[_name] = _with_complex_special_values(getattr(compat, _name), _name)
square, reciprocal = compat.square, compat.reciprocal
sin, cos, tan = compat.sin, compat.cos, compat.tan
asin, atan = compat.asin, compat.atan
floor, ceil, trunc = compat.floor, compat.ceil, compat.trunc
round = compat.round  # torch.round rounds half to even, as the standard says
isnan, isinf, isfinite = compat.isnan, compat.isinf, compat.isfinite
logical_not = compat.logical_not


def clip(x: Any, /, min: Any = None, max: Any = None) -> Any:
    """Clamp ``x`` to ``[min, max]``; the gradient is 1 wherever ``min <= x <= max``."""
    return generic.clip(x, min, max, xp=_this)


# ------------------------------------------------------------------- reductions
_UNSIGNED = frozenset((torch.uint8, torch.uint16, torch.uint32, torch.uint64))


def _accumulate(reduce: Any, x: Any, dtype: Any, **keywords: Any) -> Any:
    """``reduce(x, dtype=..., **keywords)`` (a sum or product, running or not) in the standard's
    accumulation dtype: ``dtype``, else uint64 for an unsigned ``x`` (torch would give int64).

    PyTorch has no arithmetic on uint16, uint32 and uint64: an unsigned accumulation runs in
    int64 and its result is reinterpreted (uint64) or cast (narrower). Sums and products modulo
    2**64 have the same bits in both, so the result is exact modulo 2**bits, as the standard's
    wrapping unsigned arithmetic is."""
    if dtype is None and x.dtype in _UNSIGNED:
        dtype = torch.uint64
    if dtype not in _UNSIGNED:
        return reduce(x if x.dtype not in _UNSIGNED else x.to(dtype), dtype=dtype, **keywords)
    result = reduce(x.to(torch.int64), dtype=torch.int64, **keywords)
    return result.view(torch.uint64) if dtype == torch.uint64 else result.to(dtype)


def sum(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    """Sum over ``axis``; small integers accumulate in int64, unsigned ones in uint64."""
    try:
        if dtype is None and axis is None and not keepdims and x.dtype not in _UNSIGNED:
            return torch.sum(x)  # the common case, without array_api_compat's argument handling
        return _accumulate(compat.sum, x, dtype, axis=axis, keepdims=keepdims)
    except (NotImplementedError, RuntimeError) as error:
        replacement = missing_kernel_error(error, "sum")
        if replacement is None:
            raise
        raise replacement from error


def prod(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    """Product over ``axis``; small integers accumulate in int64, unsigned ones in uint64."""
    return _accumulate(compat.prod, x, dtype, axis=axis, keepdims=keepdims)


mean = compat.mean
max = compat.max  # amax: tied maxima share the gradient equally
min = compat.min


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
    leading zero, so the result is one longer along ``axis``. Small integers accumulate in
    int64, unsigned ones in uint64 (see :func:`_accumulate`). Written on ``torch.cumsum``
    rather than taken from array_api_compat, whose version looks its namespace up through
    an ``lru_cache`` at every call: TorchDynamo
    warns about that cache each time it compiles a step (the loss's one-hot labels call
    this function)."""
    if axis is None:
        if x.ndim > 1:
            raise ValueError(f"cumulative_sum needs an axis for arrays of rank > 1, got shape {tuple(x.shape)}")
        axis = 0
    axis = generic.normalize_axis(axis, x.ndim)
    result = _accumulate(torch.cumsum, x, dtype, dim=axis)
    return generic.with_initial(result, axis, 0, xp=_this, device=result.device) if include_initial else result


# --------------------------------------------------------------- linear algebra
def _matmul(x1: Any, x2: Any, /) -> Any:
    # Operands of one dtype need no promotion: call torch directly, skipping the two
    # result_type lookups array_api_compat makes (they cost four times the product of
    # two small matrices).
    if isinstance(x1, torch.Tensor) and isinstance(x2, torch.Tensor) and x1.dtype == x2.dtype:
        return torch.matmul(x1, x2)
    return compat.matmul(x1, x2)


matmul = checks_matmul_shapes(_matmul, translate=missing_kernel_error)


def _tensordot(x1: Any, x2: Any, /, *, axes: Any = 2) -> Any:
    """Sum of products over ``axes`` (an int: the last ``axes`` of ``x1`` with the first of
    ``x2``; or two sequences of axes). ShapeError when the contracted sizes differ."""
    return compat.tensordot(x1, x2, axes=axes)


tensordot = shape_checked(_tensordot, RuntimeError, tensordot_failed)


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """Dot product along ``axis`` of real vectors; the other axes broadcast."""
    broadcast_shapes(shape_of(x1), shape_of(x2), operation="vecdot")
    return generic.vecdot(x1, x2, axis=axis, xp=_this)


matrix_transpose = compat.matrix_transpose

# ----------------------------------------------------------------- manipulation


def _reshape(x: Any, /, shape: Sequence[int], *, copy: bool | None = None) -> Any:
    return compat.reshape(x, tuple(shape), copy=copy)


def _squeeze(x: Any, /, axis: int | Sequence[int]) -> Any:
    return compat.squeeze(x, axis=axis)


def _concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    return compat.concat(list(arrays), axis=axis)


def _stack(arrays: Sequence[Any], /, *, axis: int = 0) -> Any:
    return torch.stack(list(arrays), dim=axis)


reshape = shape_checked(_reshape, RuntimeError, reshape_failed)
squeeze = shape_checked(_squeeze, ValueError, squeeze_failed)
concat = shape_checked(_concat, RuntimeError, concat_failed)
stack = shape_checked(_stack, RuntimeError, stack_failed)


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
bitwise_and = _combining(compat.bitwise_and, "bitwise_and")
bitwise_or = _combining(compat.bitwise_or, "bitwise_or")
bitwise_xor = _combining(compat.bitwise_xor, "bitwise_xor")
bitwise_left_shift = _combining(compat.bitwise_left_shift, "bitwise_left_shift")
bitwise_right_shift = _combining(compat.bitwise_right_shift, "bitwise_right_shift")
bitwise_invert = compat.bitwise_invert
nextafter = _combining(compat.nextafter, "nextafter")
real, imag, signbit = compat.real, compat.imag, compat.signbit
nonzero, count_nonzero, searchsorted = compat.nonzero, compat.count_nonzero, compat.searchsorted


def conj(x: Any, /) -> Any:
    """The complex conjugate, computed now: ``torch.conj`` only sets a flag that NumPy
    conversion and DLPack refuse."""
    return torch.conj_physical(x) if x.is_complex() else x


def _unique(x: Any) -> tuple[Any, Any, Any, Any]:
    """The unique values of ``x`` (sorted; complex ones by real part, then imaginary part, NaNs
    where torch puts them), the index of each one's first occurrence in the flattened ``x``,
    the inverse indices (shape of ``x``) and the counts. NaNs are distinct, +0 and -0 one, as the standard says.

    torch.unique has no complex kernel: a complex ``x`` is unique over the rows of its
    (n, 2) real view. It gives no first indices: they come from the inverse."""
    flat = x.reshape(-1)
    if x.is_complex():
        rows, inverse, counts = torch.unique(
            torch.view_as_real(flat), dim=0, sorted=True, return_inverse=True, return_counts=True
        )
        values = torch.complex(rows[:, 0], rows[:, 1])
    else:
        values, inverse, counts = torch.unique(flat, sorted=True, return_inverse=True, return_counts=True)
    positions = torch.arange(flat.shape[0], device=x.device)
    first = torch.full((values.shape[0],), flat.shape[0], dtype=positions.dtype, device=x.device)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")
    return values, first, inverse.reshape(x.shape), counts


def unique_all(x: Any, /) -> Any:
    """Unique values, first indices, inverse indices and counts (see :func:`_unique`)."""
    return generic.UniqueAllResult(*_unique(x))


def unique_counts(x: Any, /) -> Any:
    """Unique values and their counts (see :func:`_unique`)."""
    values, _, _, counts = _unique(x)
    return generic.UniqueCountsResult(values, counts)


def unique_inverse(x: Any, /) -> Any:
    """Unique values and the inverse indices, of ``x``'s shape (see :func:`_unique`)."""
    values, _, inverse, _ = _unique(x)
    return generic.UniqueInverseResult(values, inverse)


def unique_values(x: Any, /) -> Any:
    """The unique values of ``x`` (see :func:`_unique`)."""
    return _unique(x)[0]


from_dlpack = compat.from_dlpack


def cumulative_prod(x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False) -> Any:
    """Running products along ``axis``; small integers accumulate in int64, unsigned ones in uint64."""
    return _accumulate(compat.cumulative_prod, x, dtype, axis=axis, include_initial=include_initial)


diff = compat.diff

#: Functions that only read dtypes or move elements, which PyTorch does for every dtype (checked
#: on uint16, uint32 and uint64 with torch 2.13): they keep their single Python frame.
_EVERY_DTYPE = {
    "astype", "broadcast_arrays", "broadcast_to", "can_cast", "concat", "empty", "empty_like", "expand_dims",
    "finfo", "full", "full_like", "iinfo", "isdtype", "matrix_transpose", "moveaxis", "ones", "ones_like",
    "permute_dims", "repeat", "reshape", "result_type", "roll", "squeeze", "stack", "tile", "unstack", "zeros",
    "zeros_like",
}  # fmt: skip

# Every other function of the namespace reports PyTorch's missing dtype kernels as DTypeError.
for _name in surface.FUNCTIONS:
    if _name not in _TRANSLATING and _name not in _EVERY_DTYPE and callable(globals().get(_name)):
        globals()[_name] = reports_missing_kernels(globals()[_name], _name)
del _name

# The four functions the main namespace shares with ``linalg`` are the same objects in both.
linalg = types.SimpleNamespace(
    **{
        name: globals()[name] if name in surface.LINEAR_ALGEBRA else getattr(compat.linalg, name)
        for name in surface.LINALG
    }
)


def _trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
    """The sum of the ``offset``-th diagonal of the last two axes, accumulated as :func:`sum`
    accumulates (unsigned integers in uint64; array_api_compat's gives int64)."""
    return sum(torch.diagonal(x, offset=offset, dim1=-2, dim2=-1), axis=-1, dtype=dtype)


linalg.trace = reports_missing_kernels(generic.with_clamped_diagonal_offset(_trace), "trace")

#: The factorizations (LAPACK's, MAGMA's), which PyTorch computes in float32, float64 and complex
#: only: for float16 and bfloat16 it raises NotImplementedError or RuntimeError, with messages that
#: do not all name the dtype (probed with torch 2.13 on the CPU). Refused up front, as on NumPy and JAX.
_NO_HALF_KERNEL = (
    "cholesky", "det", "eigh", "eigvalsh", "inv", "matrix_rank", "pinv", "qr", "slogdet", "solve", "svd", "svdvals",
)  # fmt: skip
dtypes.refuse_half_factorizations(linalg, _NO_HALF_KERNEL, f"PyTorch {torch.__version__}")


def _ihfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
    # torch.fft.ihfft returns a conjugate view (a flag NumPy conversion and DLPack refuse).
    return compat.fft.ihfft(x, n=n, axis=axis, norm=norm).resolve_conj()


fft = types.SimpleNamespace(**{name: _ihfft if name == "ihfft" else getattr(compat.fft, name) for name in surface.FFT})
for _name in dtypes.HALF_REFUSING_FFT:  # no complex half dtype for the result (dtypes.HALF_REFUSING_FFT)
    setattr(fft, _name, dtypes.without_half_kernel(getattr(fft, _name), _name, "", dtypes.FFT_HALF_REASON))
del _name


#: The namespace a PyTorch backend hands out: the standard's names only.
xp = surface.build_namespace("portable_dl.backends.torch.xp", globals())
