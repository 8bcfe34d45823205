"""The array-API namespace of the MLX backend, written over ``mlx.core``.

Like array-api-compat's NumPy and PyTorch wrappers: a plain rename is a one-line alias
(``asin = mx.arcsin``); a function whose semantics differ from the standard is a real
function here. Every function is made of ``mlx.core`` ops, so ``mx.value_and_grad``
differentiates it and ``mx.compile`` compiles it.

Where MLX departs from the standard, and what this module does about it:

- Default dtypes (our choice, MLX's own): Python floats become float32 and Python ints
  int32 (``mx.array(1)`` is int32), so the default integer *and* the default index dtype
  are int32. ``argmax``, ``argmin`` and ``argsort`` (MLX: uint32) return int32; integer
  sums and products of small integers accumulate in int32 (unsigned: uint32).
- NumPy float64 arrays become float32 in ``mx.array`` unless told otherwise: ``asarray``
  keeps the dtype it is given.
- float64 exists on the CPU only (MLX has no float64 GPU kernels): asking for it while the
  default device is a GPU raises :class:`portable_dl.DTypeError`.
- Half floats, beyond the standard (as on every backend): ``float16`` and ``bfloat16`` are MLX's
  own; ``__array_namespace_info__().dtypes()`` keeps the standard's list. MLX hands no bfloat16
  buffer to NumPy: ``nonzero`` and ``unique_*`` read bfloat16 as the float32 of the same values
  (and the backend's ``to_numpy`` reads its bits). ``mx.linalg`` has no half kernels (:mod:`.linalg`).
- Keyword signatures: ``clip``, ``var``/``std`` with ``correction`` (MLX: ``ddof``),
  ``astype``, ``eye``, the ``*_like`` functions with ``dtype``, ``take``,
  ``take_along_axis``, ``cumulative_sum`` (``include_initial``), ``sort``/``argsort``
  (``descending``, ``stable``), ``linspace`` (``endpoint``), ``moveaxis`` with tuples.
- Missing functions written here: ``hypot``, ``copysign``; integer ``matmul`` (MLX's
  matmul takes floating dtypes only). ``sign(nan)`` is NaN (MLX: 0).
- float64 accuracy: MLX's CPU ``exp``, ``sin``, ``cos`` and ``logaddexp`` are accurate to
  float32 only, even in float64 (exp is off by 3e-7), and the gradients of ``tan``,
  ``log2``, ``log10`` carry float32 constants. In float64 those seven are rebuilt here from
  MLX functions that are exact (see "float64 accuracy" below); float32 keeps MLX's own.
- Shape errors: MLX raises ``ValueError``; they become :class:`portable_dl.BroadcastError`
  or :class:`portable_dl.ShapeError` naming the shapes.

Gradient conventions, checked against MLX 0.32: ``mx.maximum``/``mx.minimum`` give the
whole gradient to the second argument at ties; ours split it evenly (a
``mx.custom_function``). ``max``/``min`` reductions already split ties evenly,
``abs'(0) = 0``, and ``sign``, ``floor``, ``ceil``, ``round``, ``floor_divide`` and the
comparisons have zero gradient in MLX itself. ``clip`` is written with ``where`` so its
gradient is 1 at the bounds (:func:`portable_dl.backends._common.generic.clip`).

Type promotion: MLX's own between arrays (it follows the standard's lattice, and Python
scalars are weak); ``result_type`` and ``can_cast`` answer from the standard's table in
:mod:`portable_dl.backends._common.promotion`.
"""

from __future__ import annotations

import builtins
import math
import sys
from collections.abc import Sequence
from typing import Any

import mlx.core as mx
import numpy as np

from portable_dl.backend import DTYPE_NAMES, STANDARD_DTYPE_NAMES
from portable_dl.errors import BroadcastError, DTypeError, ShapeError

from .._common import dtypes, generic
from .._common.broadcasting import (
    broadcast_shapes,
    checks_matmul_shapes,
    matmul_shape,
    raises_broadcast_error,
    shape_of,
)
from .._common.dtypes import DtypeTable, dtype_namer
from .._common.promotion import promote_names, promote_with_scalar
from .._common.shape_errors import (
    concat_error,
    reshape_error,
    squeeze_error,
    stack_error,
    take_along_axis_error,
    tensordot_error,
)
from .._common.surface import VERSION, build_namespace, unsupported_dtype
from . import complex_fixes, float64_fixes
from .custom_gradients import tie_splitting

__array_api_version__ = VERSION

# ---------------------------------------------------------------- dtypes, constants
bool = mx.bool_
int8, int16, int32, int64 = mx.int8, mx.int16, mx.int32, mx.int64
uint8, uint16, uint32, uint64 = mx.uint8, mx.uint16, mx.uint32, mx.uint64
float32, float64 = mx.float32, mx.float64
float16, bfloat16 = mx.float16, mx.bfloat16  # the half floats, beyond the standard (surface.HALF_DTYPES)
complex64 = mx.complex64
#: MLX has one complex dtype; the standard's complex128 is a stand-in that raises DTypeError when used.
_NO_COMPLEX128 = "MLX has no complex128 (its only complex dtype is complex64)"
complex128 = unsupported_dtype("complex128", _NO_COMPLEX128)

e, pi, inf, nan, newaxis = math.e, math.pi, math.inf, math.nan, None

DEFAULT_FLOAT = "float32"
DEFAULT_INTEGER = "int32"  # MLX's own: mx.array(1) and mx.arange(5) are int32
DEFAULT_INDEX = "int32"

_MX_DTYPE = {name: getattr(mx, "bool_" if name == "bool" else name) for name in DTYPE_NAMES}
_MX_DTYPE["complex64"] = mx.complex64
_NAME_OF_MX_DTYPE = {dtype: name for name, dtype in _MX_DTYPE.items()}
_STANDARD = frozenset(STANDARD_DTYPE_NAMES)


#: The standard's name of a dtype spelled as an ``mx.Dtype``, a string, a NumPy dtype or a Python type.
_dtype_name = dtype_namer(_MX_DTYPE, missing={"complex128": _NO_COMPLEX128}, stand_ins={complex128: "complex128"})


def _on_gpu() -> builtins.bool:
    return mx.default_device().type == mx.gpu


def _mx_dtype(dtype: Any) -> mx.Dtype:
    """The ``mx.Dtype`` for ``dtype``; :class:`DTypeError` for float64 while computing on a GPU."""
    name = _dtype_name(dtype)
    if name == "float64" and _on_gpu():
        raise DTypeError(_float64_on_gpu_message())
    return _MX_DTYPE[name]


def _float64_on_gpu_message() -> str:
    return (
        "float64 is not supported by MLX on the GPU (MLX has no float64 GPU kernels); "
        'use float32, or create the backend on the CPU: portable_dl.backend("mlx", device="cpu")'
    )


def _is_array(x: Any) -> builtins.bool:
    return isinstance(x, mx.array)


def _is_python_scalar(x: Any) -> builtins.bool:
    return isinstance(x, (builtins.bool, int, float, complex))


def _name(x: mx.array) -> str:
    return _NAME_OF_MX_DTYPE[x.dtype]


# ------------------------------------------------------------- devices, info
def _device_strings() -> list[str]:
    """``["gpu", "cpu"]`` where MLX has a GPU (Metal or CUDA; MLX computes there by
    default), else ``["cpu"]``."""
    return ["gpu", "cpu"] if mx.is_available(mx.gpu) else ["cpu"]


def _mx_device(device: Any) -> mx.Device:
    """MLX's device for one of our device strings (or an ``mx.Device``)."""
    if isinstance(device, mx.Device):
        return device
    kind = str(device).lower()
    if kind not in ("cpu", "gpu"):
        raise ValueError(f"MLX has devices 'cpu' and 'gpu', not {device!r}")
    return mx.Device(mx.cpu if kind == "cpu" else mx.gpu)


class _NamespaceInfo:
    """What ``__array_namespace_info__()`` returns: capabilities, devices, default dtypes."""

    __module__ = __name__

    def capabilities(self) -> dict:
        # MLX arrays refuse boolean masks (x[mask]). nonzero and unique_* give data-dependent
        # shapes by reading values through NumPy: eagerly, not inside mx.compile. MLX sets no
        # limit on the number of dimensions.
        return {"boolean indexing": False, "data-dependent shapes": True, "max dimensions": None}

    def default_device(self) -> str:
        return "gpu" if _on_gpu() else "cpu"

    def devices(self) -> list[str]:
        return _device_strings()

    def default_dtypes(self, *, device: Any = None) -> dict:
        return {
            "real floating": _MX_DTYPE[DEFAULT_FLOAT],
            "complex floating": mx.complex64,
            "integral": _MX_DTYPE[DEFAULT_INTEGER],
            "indexing": _MX_DTYPE[DEFAULT_INDEX],
        }

    def dtypes(self, *, device: Any = None, kind: Any = None) -> dict:
        # The standard's dtypes only (the half floats are an extension; array-api-tests iterates
        # this), less complex128, which MLX lacks, and float64 on the GPU.
        gpu = _on_gpu() if device is None else _mx_device(device).type == mx.gpu
        return {
            name: dtype
            for name, dtype in _MX_DTYPE.items()
            if name in _STANDARD and (kind is None or isdtype(dtype, kind)) and not (gpu and name == "float64")
        }


def __array_namespace_info__() -> _NamespaceInfo:
    return _NamespaceInfo()


_dtypes = DtypeTable(_MX_DTYPE, _dtype_name)
finfo = _dtypes.finfo
iinfo = _dtypes.iinfo
isdtype = _dtypes.isdtype
can_cast = _dtypes.can_cast


# ---------------------------------------------------------------- type promotion
def result_type(*arrays_and_dtypes: Any) -> mx.Dtype:
    """The dtype the standard's promotion gives these arrays, dtypes and Python scalars
    (scalars are weak: ``result_type(float32, 1.0)`` is float32)."""
    names = [_dtype_name(a.dtype if _is_array(a) else a) for a in arrays_and_dtypes if not _is_python_scalar(a)]
    if not names:
        raise DTypeError("result_type needs at least one array or dtype besides Python scalars")
    result = promote_names(*names)
    for scalar in (a for a in arrays_and_dtypes if _is_python_scalar(a)):
        result = promote_with_scalar(result, scalar, DEFAULT_FLOAT, DEFAULT_INTEGER)
    return _MX_DTYPE[result]


# ----------------------------------------------------------------------- creation
def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: builtins.bool | None = None) -> mx.array:
    """An ``mx.array`` from an array, a NumPy array, nested sequences or a Python scalar.

    With no ``dtype`` the dtype of ``obj`` is kept (NumPy float64 stays float64, which
    ``mx.array`` alone would make float32); Python floats give float32 and ints int32.
    MLX arrays live in unified memory: ``device`` places nothing, and is accepted for the
    standard's signature.
    """
    target = None if dtype is None else _mx_dtype(dtype)
    if _is_array(obj):
        if target is not None and obj.dtype != target:
            return obj.astype(target)
        return mx.array(obj) if copy else obj
    if isinstance(obj, (np.ndarray, np.generic)):
        if target is None:
            target = _mx_dtype(obj.dtype)
        return _from_numpy(np.asarray(obj), target)
    if hasattr(obj, "__array__") or hasattr(obj, "__dlpack__"):  # another framework's array
        return asarray(np.asarray(obj), dtype=dtype)
    if target is not None:
        # Through NumPy: mx.array reads Python ints as int64, so uint64 values above 2**63 fail.
        # NumPy has no bfloat16 without ml_dtypes: those values go through float32, which holds
        # every bfloat16 and rounds as ml_dtypes would (float64 -> float32 -> bfloat16). A float
        # beyond the dtype's range rounds to inf, as IEEE 754 says: no warning.
        name = _dtype_name(target)
        with np.errstate(over="ignore"):
            values = np.asarray(obj, dtype="float32" if name == "bfloat16" else name)
        return _from_numpy(values, target)
    return mx.array(obj)


def _from_numpy(values: np.ndarray, dtype: mx.Dtype) -> mx.array:
    """``values`` as an ``mx.array`` of ``dtype``. An empty one is made by ``mx.zeros``: a
    reduction (``mx.sum``) of an empty array copied from NumPy spins forever in most
    processes (MLX 0.32.4 on the CPU: its ``nd_loop`` never returns)."""
    if values.size == 0:
        return mx.zeros(values.shape, dtype=dtype)
    return mx.array(values, dtype=dtype)


def _dtype_or_none(dtype: Any) -> mx.Dtype | None:
    return None if dtype is None else _mx_dtype(dtype)


def _default_dtype_of(value: Any) -> mx.Dtype:
    """The dtype the standard gives a Python scalar on its own: bool, int32, float32."""
    if isinstance(value, builtins.bool):
        return mx.bool_
    if isinstance(value, int):
        return _MX_DTYPE[DEFAULT_INTEGER]
    return _MX_DTYPE[DEFAULT_FLOAT]


def zeros(shape: int | Sequence[int], *, dtype: Any = None, device: Any = None) -> mx.array:
    return mx.zeros(shape, dtype=_dtype_or_none(dtype) or mx.float32)


def ones(shape: int | Sequence[int], *, dtype: Any = None, device: Any = None) -> mx.array:
    return mx.ones(shape, dtype=_dtype_or_none(dtype) or mx.float32)


def empty(shape: int | Sequence[int], *, dtype: Any = None, device: Any = None) -> mx.array:
    """Uninitialised in the standard; zeros here (MLX has no uninitialised arrays)."""
    return zeros(shape, dtype=dtype)


def full(shape: int | Sequence[int], fill_value: Any, *, dtype: Any = None, device: Any = None) -> mx.array:
    target = _dtype_or_none(dtype) or (fill_value.dtype if _is_array(fill_value) else _default_dtype_of(fill_value))
    return mx.full(shape, fill_value, dtype=target)


def zeros_like(x: mx.array, /, *, dtype: Any = None, device: Any = None) -> mx.array:
    return mx.zeros(x.shape, dtype=_dtype_or_none(dtype) or x.dtype)


def ones_like(x: mx.array, /, *, dtype: Any = None, device: Any = None) -> mx.array:
    return mx.ones(x.shape, dtype=_dtype_or_none(dtype) or x.dtype)


def empty_like(x: mx.array, /, *, dtype: Any = None, device: Any = None) -> mx.array:
    return zeros_like(x, dtype=dtype)


def full_like(x: mx.array, /, fill_value: Any, *, dtype: Any = None, device: Any = None) -> mx.array:
    return mx.full(x.shape, fill_value, dtype=_dtype_or_none(dtype) or x.dtype)


def arange(
    start: int | float,
    /,
    stop: int | float | None = None,
    step: int | float = 1,
    *,
    dtype: Any = None,
    device: Any = None,
) -> mx.array:
    """``[start, stop)`` in steps of ``step``; int32 when every argument is an int, else float32."""
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        dtype = mx.int32 if builtins.all(isinstance(v, int) for v in (start, stop, step)) else mx.float32
    return mx.arange(start, stop, step, dtype=_mx_dtype(dtype))


def linspace(
    start: int | float,
    stop: int | float,
    /,
    num: int,
    *,
    dtype: Any = None,
    device: Any = None,
    endpoint: builtins.bool = True,
) -> mx.array:
    """``num`` evenly spaced values from ``start`` to ``stop`` (excluded when ``endpoint`` is false)."""
    target = _dtype_or_none(dtype) or mx.float32
    if endpoint:
        return mx.linspace(start, stop, num, dtype=target)
    return mx.linspace(start, stop, num + 1, dtype=target)[:num]


def eye(n_rows: int, n_cols: int | None = None, /, *, k: int = 0, dtype: Any = None, device: Any = None) -> mx.array:
    """Ones on the ``k``-th diagonal, zeros elsewhere (``k`` beyond the matrix: all zeros; MLX
    takes ``k`` as a 32-bit int, so it is clamped to the matrix first)."""
    n_cols = n_rows if n_cols is None else n_cols
    k = builtins.max(-n_rows, builtins.min(k, n_cols))
    return mx.eye(n_rows, n_cols, k=k, dtype=_dtype_or_none(dtype) or mx.float32)


def tril(x: mx.array, /, *, k: int = 0) -> mx.array:
    """Zero above the ``k``-th diagonal of the last two axes (any batch axes in front)."""
    return generic.tril(x, k=k, xp=_this)


def triu(x: mx.array, /, *, k: int = 0) -> mx.array:
    """Zero below the ``k``-th diagonal of the last two axes (any batch axes in front)."""
    return generic.triu(x, k=k, xp=_this)


# ----------------------------------------------------------------- element-wise
add = raises_broadcast_error(mx.add, "add")
subtract = raises_broadcast_error(mx.subtract, "subtract")
multiply = raises_broadcast_error(mx.multiply, "multiply")
divide = raises_broadcast_error(mx.divide, "divide")
floor_divide = raises_broadcast_error(mx.floor_divide, "floor_divide")


def _remainder(x1: Any, x2: Any, /) -> mx.array:
    """``x1 - floor(x1 / x2) * x2``, with the sign of ``x2``: also a zero result (MLX's
    ``remainder(-0.0, 2.0)`` is -0.0, the standard's +0.0)."""
    result = mx.remainder(x1, x2)
    if not isdtype(result.dtype, "real floating"):
        return result
    return mx.where(result == 0, copysign(mx.zeros((), dtype=result.dtype), _as_operand(x2, x1)), result)


_remainder.__name__ = "remainder"
remainder = raises_broadcast_error(_remainder, "remainder")
pow = raises_broadcast_error(mx.power, "pow")
atan2 = raises_broadcast_error(mx.arctan2, "atan2")
equal = raises_broadcast_error(mx.equal, "equal")
not_equal = raises_broadcast_error(mx.not_equal, "not_equal")
less = raises_broadcast_error(mx.less, "less")
less_equal = raises_broadcast_error(mx.less_equal, "less_equal")
greater = raises_broadcast_error(mx.greater, "greater")
greater_equal = raises_broadcast_error(mx.greater_equal, "greater_equal")
logical_and = raises_broadcast_error(mx.logical_and, "logical_and")
logical_or = raises_broadcast_error(mx.logical_or, "logical_or")
logical_xor = raises_broadcast_error(mx.logical_xor, "logical_xor")

negative = mx.negative
abs = mx.abs


_mx_expm1, _mx_tanh = mx.expm1, mx.tanh  # module globals: one lookup fewer per call


def expm1(x: mx.array, /) -> mx.array:
    """``exp(x) - 1`` without cancellation near 0 (complex64: :mod:`.complex_fixes`)."""
    if x.itemsize != 8:  # float32 and narrower: decided without comparing MLX dtypes (slower)
        return _mx_expm1(x)
    return complex_fixes.expm1(x) if x.dtype == mx.complex64 else _mx_expm1(x)


log = mx.log
log1p = mx.log1p
sqrt = mx.sqrt
square = mx.square
reciprocal = mx.reciprocal
asin, acos, atan = mx.arcsin, mx.arccos, mx.arctan
sinh, cosh = mx.sinh, mx.cosh


def tanh(x: mx.array, /) -> mx.array:
    """Element-wise tanh (complex64: the standard's limits at infinity, :mod:`.complex_fixes`)."""
    if x.itemsize != 8:  # float32 and narrower: decided without comparing MLX dtypes (slower)
        return _mx_tanh(x)
    return complex_fixes.tanh(x) if x.dtype == mx.complex64 else _mx_tanh(x)


asinh, acosh, atanh = mx.arcsinh, mx.arccosh, mx.arctanh
floor, ceil, trunc = mx.floor, mx.ceil, mx.trunc
isnan, isinf, isfinite = mx.isnan, mx.isinf, mx.isfinite
logical_not = mx.logical_not


# ------------------------------------------------------------ float64 accuracy
# MLX's CPU exp, sin, cos (and logaddexp) are accurate to float32 only, even in float64, and
# the gradients of tan, log2, log10 carry float32 constants: float64 arrays take the exact
# forms of :mod:`portable_dl.backends.mlx.float64_fixes`, every other dtype MLX's own.
exp = float64_fixes.exact_in_float64(mx.exp, float64_fixes.exp64)
_sin = float64_fixes.exact_in_float64(mx.sin, float64_fixes.sin64)


def sin(x: mx.array, /) -> mx.array:
    """Element-wise sine. MLX's CPU ``sin(-0.0)`` is ``+0.0``; the standard keeps the zero's
    sign. ``where(x == 0, x, sin(x))`` returns the zero itself, and its derivative there is
    1 = cos(0), so the gradient is unchanged. No dtype test (it would cost more than the two
    ops): an integer or boolean zero becomes +0.0 in ``where``'s promotion, and a complex zero
    of any signs is its own sine (``sin(-z) = -sin(z)``, ``sin(conj z) = conj(sin z)``)."""
    if not isinstance(x, mx.array):
        return _sin(x)
    return mx.where(x == 0, x, _sin(x))


cos = float64_fixes.exact_in_float64(mx.cos, float64_fixes.cos64)
tan = float64_fixes.exact_in_float64(mx.tan, float64_fixes.tan64)
log2 = float64_fixes.exact_in_float64(mx.log2, float64_fixes.log2_64)
log10 = float64_fixes.exact_in_float64(mx.log10, float64_fixes.log10_64)


def _logaddexp(x1: Any, x2: Any, /) -> mx.array:
    """``log(exp(x1) + exp(x2))`` without overflow; in float64 to float64 accuracy."""
    a, b = _as_operand(x1, x2), _as_operand(x2, x1)
    if a.dtype == mx.float64 or b.dtype == mx.float64:
        return float64_fixes.logaddexp64(a.astype(mx.float64), b.astype(mx.float64))
    return mx.logaddexp(a, b)


logaddexp = raises_broadcast_error(_logaddexp, "logaddexp")


def sign(x: mx.array, /) -> mx.array:
    """-1, 0 or 1 by the sign of ``x``, NaN for NaN (MLX's ``sign`` gives 0 there); its
    gradient is zero everywhere."""
    if x.itemsize == 8 and x.dtype == mx.complex64:
        return complex_fixes.sign(x)
    result = mx.sign(x)
    if not isdtype(x.dtype, "real floating"):
        return result
    return mx.where(mx.isnan(x), mx.array(math.nan, dtype=x.dtype), result)


def positive(x: mx.array, /) -> mx.array:
    return x


def round(x: mx.array, /) -> mx.array:
    """Round half to even, as the standard says (MLX's ``round`` does)."""
    return mx.round(x)


def _as_operand(value: Any, other: Any) -> mx.array:
    """A Python scalar as an array of the dtype the standard gives ``other op value``
    (weak scalars); an array unchanged."""
    if _is_array(value):
        return value
    if _is_python_scalar(value) and _is_array(other):
        return mx.array(
            value, dtype=_MX_DTYPE[promote_with_scalar(_name(other), value, DEFAULT_FLOAT, DEFAULT_INTEGER)]
        )
    return asarray(value)


_maximum = tie_splitting(mx.maximum)
_minimum = tie_splitting(mx.minimum)


def maximum(x1: Any, x2: Any, /) -> mx.array:
    """Element-wise larger value (NaN wins); ties split the gradient evenly."""
    broadcast_shapes(shape_of(x1), shape_of(x2), operation="maximum")
    return _maximum(_as_operand(x1, x2), _as_operand(x2, x1))


def minimum(x1: Any, x2: Any, /) -> mx.array:
    """Element-wise smaller value (NaN wins); ties split the gradient evenly."""
    broadcast_shapes(shape_of(x1), shape_of(x2), operation="minimum")
    return _minimum(_as_operand(x1, x2), _as_operand(x2, x1))


def hypot(x1: Any, x2: Any, /) -> mx.array:
    """``sqrt(x1**2 + x2**2)``, written as ``larger * sqrt(1 + (smaller / larger)**2)`` so
    that large inputs do not overflow the squares (MLX has no ``hypot``). The larger and
    smaller magnitudes come from the tie-splitting ``maximum``/``minimum``, so at
    ``|x1| == |x2|`` each input gets its share of the gradient, ``x / hypot``."""
    broadcast_shapes(shape_of(x1), shape_of(x2), operation="hypot")
    a, b = mx.abs(_as_operand(x1, x2)), mx.abs(_as_operand(x2, x1))
    larger, smaller = _maximum(a, b), _minimum(a, b)
    # Where larger is 0 or inf the ratio would be 0/0 or inf/inf: divide by 1 there instead,
    # and give the answer (0 or inf) directly.
    special = mx.logical_or(larger == 0, mx.isinf(larger))
    ratio = smaller / mx.where(special, mx.ones((), dtype=larger.dtype), larger)
    result = mx.where(special, larger, larger * mx.sqrt(1 + ratio * ratio))
    # IEEE 754: an infinite side makes hypot infinite even when the other is NaN.
    return mx.where(mx.logical_or(mx.isinf(a), mx.isinf(b)), mx.array(math.inf, dtype=result.dtype), result)


def copysign(x1: Any, x2: Any, /) -> mx.array:
    """The magnitude of ``x1`` with the sign bit of ``x2``: of -0.0 and of a NaN too (MLX has
    no ``copysign``; the bit is read as :func:`signbit` reads it, since ``x2 < 0`` misses both)."""
    broadcast_shapes(shape_of(x1), shape_of(x2), operation="copysign")
    target = result_type(x1, x2)
    magnitude = mx.abs(_as_operand(x1, x2).astype(target))
    sign_source = _as_operand(x2, x1).astype(target)
    if target in _SAME_WIDTH_INTEGER:
        negative_sign = _to_bits(sign_source) < 0
    else:  # integers and bools (outside the standard's copysign): their sign is their value's
        negative_sign = sign_source < 0
    return mx.where(negative_sign, -magnitude, magnitude)


def where(condition: Any, x1: Any, x2: Any, /) -> mx.array:
    """``x1`` where ``condition``, else ``x2``; the gradient flows only to the chosen side."""
    try:
        return mx.where(condition, x1, x2)
    except ValueError as error:
        broadcast_shapes(shape_of(condition), shape_of(x1), shape_of(x2), operation="where")
        raise error


def clip(x: mx.array, /, min: Any = None, max: Any = None) -> mx.array:
    """Clamp ``x`` to ``[min, max]``; gradient 1 inside the bounds, bounds included."""
    return generic.clip(x, min=min, max=max, xp=_this)


# ------------------------------------------------------------------- reductions
def _accumulation_dtype(x: mx.array, dtype: Any) -> mx.Dtype | None:
    """The dtype ``sum``, ``prod`` and ``cumulative_sum`` compute in: ``dtype`` when given;
    for bools and integers narrower than the default integer, int32 (uint32 for unsigned
    ones), so that sums of int8 do not wrap around; otherwise None (the input's own)."""
    if dtype is not None:
        return _mx_dtype(dtype)
    name = _name(x)
    if name in ("bool", "int8", "int16"):
        return mx.int32
    if name in ("uint8", "uint16"):
        return mx.uint32
    return None


def _cast(x: mx.array, dtype: mx.Dtype | None) -> mx.array:
    return x if dtype is None or x.dtype == dtype else x.astype(dtype)


def _axes(axis: Any) -> Any:
    return list(axis) if isinstance(axis, tuple) else axis


def _reduced(result: mx.array, dtype: mx.Dtype | None) -> mx.array:
    """MLX sums and multiplies small integers in int32 even when told another dtype: the
    result is cast to the dtype asked for (wrapping as the standard's fixed-width sum would)."""
    return _cast(result, dtype)


def sum(x: mx.array, /, *, axis: Any = None, dtype: Any = None, keepdims: builtins.bool = False) -> mx.array:
    if dtype is None and x.itemsize >= 4:  # the common case: nothing to widen (see _accumulation_dtype)
        return mx.sum(x, axis=_axes(axis), keepdims=keepdims)
    target = _accumulation_dtype(x, dtype)
    return _reduced(mx.sum(_cast(x, target), axis=_axes(axis), keepdims=keepdims), target)


def prod(x: mx.array, /, *, axis: Any = None, dtype: Any = None, keepdims: builtins.bool = False) -> mx.array:
    """Product over ``axis``; MLX's gradient is exact where elements are zero."""
    target = _accumulation_dtype(x, dtype)
    return _reduced(mx.prod(_cast(x, target), axis=_axes(axis), keepdims=keepdims), target)


def mean(x: mx.array, /, *, axis: Any = None, keepdims: builtins.bool = False) -> mx.array:
    return mx.mean(x, axis=_axes(axis), keepdims=keepdims)


def max(x: mx.array, /, *, axis: Any = None, keepdims: builtins.bool = False) -> mx.array:
    """Largest element; tied maxima share the gradient equally (MLX's own rule)."""
    return mx.max(x, axis=_axes(axis), keepdims=keepdims)


def min(x: mx.array, /, *, axis: Any = None, keepdims: builtins.bool = False) -> mx.array:
    """Smallest element; tied minima share the gradient equally (MLX's own rule)."""
    return mx.min(x, axis=_axes(axis), keepdims=keepdims)


def var(
    x: mx.array, /, *, axis: Any = None, correction: int | float = 0.0, keepdims: builtins.bool = False
) -> mx.array:
    """Variance ``sum((x - mean)**2) / (N - correction)`` over ``axis``. MLX's ``ddof`` is
    an int: a fractional correction is computed by the generic formula."""
    if float(correction).is_integer():
        return mx.var(x, axis=_axes(axis), keepdims=keepdims, ddof=int(correction))
    return generic.var(x, axis=axis, correction=correction, keepdims=keepdims, xp=_this)


def std(
    x: mx.array, /, *, axis: Any = None, correction: int | float = 0.0, keepdims: builtins.bool = False
) -> mx.array:
    """Standard deviation: the square root of :func:`var`."""
    return mx.sqrt(var(x, axis=axis, correction=correction, keepdims=keepdims))


def all(x: mx.array, /, *, axis: Any = None, keepdims: builtins.bool = False) -> mx.array:
    return mx.all(x, axis=_axes(axis), keepdims=keepdims)


def any(x: mx.array, /, *, axis: Any = None, keepdims: builtins.bool = False) -> mx.array:
    return mx.any(x, axis=_axes(axis), keepdims=keepdims)


def _cumulative(
    cumulate: Any, initial: int, x: mx.array, axis: int | None, dtype: Any, include_initial: builtins.bool
) -> mx.array:
    if axis is None:
        if x.ndim > 1:
            raise ValueError(f"cumulative functions need an axis for arrays of rank > 1, got shape {tuple(x.shape)}")
        axis = 0
    axis = generic.normalize_axis(axis, x.ndim)
    target = _accumulation_dtype(x, dtype)
    source = _cast(x, target)
    if source.dtype in (mx.float16, mx.bfloat16):
        # Half floats accumulate in float32 and round once (as PyTorch and JAX do): a running sum
        # kept in float16 or bfloat16 stops growing once its spacing passes the addends.
        result = cumulate(source.astype(mx.float32), axis=axis).astype(source.dtype)
    else:
        result = _reduced(cumulate(source, axis=axis), target)
    return generic.with_initial(result, axis, initial, xp=_this) if include_initial else result


def cumulative_sum(
    x: mx.array, /, *, axis: int | None = None, dtype: Any = None, include_initial: builtins.bool = False
) -> mx.array:
    """Running sums along ``axis`` (needed for rank > 1); with ``include_initial`` a zero
    first element, so the result is one longer along ``axis``."""
    return _cumulative(mx.cumsum, 0, x, axis, dtype, include_initial)


def cumulative_prod(
    x: mx.array, /, *, axis: int | None = None, dtype: Any = None, include_initial: builtins.bool = False
) -> mx.array:
    """Running products along ``axis`` (needed for rank > 1); with ``include_initial`` a one
    first, so the result is one longer along ``axis``. Differentiable (MLX's cumprod)."""
    return _cumulative(mx.cumprod, 1, x, axis, dtype, include_initial)


# --------------------------------------------------------------- linear algebra
# The dtypes mx.matmul multiplies; for the others (integers) the product is summed here.
_MX_MATMUL_DTYPES = frozenset((mx.float16, mx.bfloat16, mx.float32, mx.float64, mx.complex64))


@checks_matmul_shapes
def matmul(x1: mx.array, x2: mx.array, /) -> mx.array:
    """Matrix product with the standard's 1-D and batch rules. MLX multiplies floating
    arrays only; integer operands are multiplied and summed exactly instead, in their
    promoted dtype (wrapping on overflow, as integer arithmetic does)."""
    if x1.dtype in _MX_MATMUL_DTYPES and x2.dtype in _MX_MATMUL_DTYPES:  # a set lookup: this runs at every product
        return mx.matmul(x1, x2)
    matmul_shape(shape_of(x1), shape_of(x2))  # the broadcast below would accept (2, 1) @ (3, 2)
    target = result_type(x1, x2)
    a = x1[None, :] if x1.ndim == 1 else x1
    b = x2[:, None] if x2.ndim == 1 else x2
    product = mx.sum(mx.expand_dims(a, -1) * mx.expand_dims(b, -3), axis=-2).astype(target)
    if x1.ndim == 1:
        product = mx.squeeze(product, -2)
    if x2.ndim == 1:
        product = mx.squeeze(product, -1)
    return product


def _contracted_axes(shape1: tuple, shape2: tuple, axes: Any) -> tuple[list[int], list[int]]:
    """The axes ``tensordot`` contracts, as two lists of non-negative axes; ShapeError when
    their sizes differ."""
    if isinstance(axes, int):
        if axes < 0 or axes > builtins.min(len(shape1), len(shape2)):
            raise tensordot_error(shape1, shape2, axes)
        first, second = list(range(len(shape1) - axes, len(shape1))), list(range(axes))
    else:
        first = [axes[0]] if isinstance(axes[0], int) else list(axes[0])
        second = [axes[1]] if isinstance(axes[1], int) else list(axes[1])
        if len(first) != len(second):
            raise tensordot_error(shape1, shape2, axes)
        first = [generic.normalize_axis(a, len(shape1)) for a in first]
        second = [generic.normalize_axis(a, len(shape2)) for a in second]
    if builtins.any(shape1[i] != shape2[j] for i, j in zip(first, second)):
        raise tensordot_error(shape1, shape2, axes)
    return first, second


def tensordot(x1: mx.array, x2: mx.array, /, *, axes: int | tuple[Sequence[int], Sequence[int]] = 2) -> mx.array:
    """Sum of products over the last ``axes`` axes of ``x1`` and the first of ``x2``, or
    over the two given lists of axes. Integer operands (which ``mx.tensordot`` refuses) are
    contracted by moving the axes together and calling :func:`matmul`."""
    shape1, shape2 = shape_of(x1), shape_of(x2)
    first, second = _contracted_axes(shape1, shape2, axes)
    if x1.dtype in _MX_MATMUL_DTYPES and x2.dtype in _MX_MATMUL_DTYPES:
        return mx.tensordot(x1, x2, axes=[first, second])
    free1 = [a for a in range(len(shape1)) if a not in first]
    free2 = [a for a in range(len(shape2)) if a not in second]
    size = math.prod(shape1[a] for a in first)
    # Sizes written out, not -1: MLX cannot infer a -1 axis of an empty array.
    rows, cols = math.prod(shape1[a] for a in free1), math.prod(shape2[a] for a in free2)
    a = mx.reshape(mx.transpose(x1, free1 + first), (rows, size))
    b = mx.reshape(mx.transpose(x2, second + free2), (size, cols))
    return mx.reshape(matmul(a, b), tuple(shape1[i] for i in free1) + tuple(shape2[i] for i in free2))


def vecdot(x1: mx.array, x2: mx.array, /, *, axis: int = -1) -> mx.array:
    """``sum(conj(x1) * x2)`` along ``axis``, broadcasting the other axes, in the promoted
    dtype of the two (int8 . int8 stays int8, as the standard says)."""
    from_end = generic.vecdot_axis(shape_of(x1), shape_of(x2), axis)
    return sum(multiply(conj(x1), x2), axis=from_end, dtype=result_type(x1, x2))


def matrix_transpose(x: mx.array, /) -> mx.array:
    return generic.matrix_transpose(x, xp=_this)


# ----------------------------------------------------------------- manipulation
def reshape(x: mx.array, /, shape: Sequence[int], *, copy: builtins.bool | None = None) -> mx.array:
    try:
        return mx.reshape(x, tuple(shape))
    except ValueError as error:
        raise reshape_error(tuple(x.shape), shape) from error


def permute_dims(x: mx.array, /, axes: Sequence[int]) -> mx.array:
    return mx.transpose(x, list(axes))


def expand_dims(x: mx.array, /, axis: int = 0) -> mx.array:
    """``x`` with a new axis of size 1 at ``axis`` (from ``-x.ndim - 1`` to ``x.ndim``)."""
    generic.check_expand_dims_axis(axis, x.ndim)
    return mx.expand_dims(x, axis)


def squeeze(x: mx.array, /, axis: int | Sequence[int]) -> mx.array:
    """Remove axes of size 1; :class:`ShapeError` for an axis whose size is not 1."""
    try:
        return mx.squeeze(x, axis=_axes(axis))
    except ValueError as error:
        raise squeeze_error(axis, tuple(x.shape)) from error


def concat(arrays: Sequence[mx.array], /, *, axis: int | None = 0) -> mx.array:
    arrays = list(arrays)
    if axis is None:
        return generic.concat_flattened(arrays, xp=_this)
    try:
        return mx.concatenate(arrays, axis=axis)
    except ValueError as error:
        raise concat_error(arrays, axis) from error


def stack(arrays: Sequence[mx.array], /, *, axis: int = 0) -> mx.array:
    arrays = list(arrays)
    if len({tuple(a.shape) for a in arrays}) > 1:
        raise stack_error(arrays)
    return mx.stack(arrays, axis=axis)


def unstack(x: mx.array, /, *, axis: int = 0) -> tuple:
    """The slices of ``x`` along ``axis``, as a tuple."""
    moved = mx.moveaxis(x, axis, 0)
    return tuple(moved[i] for i in range(moved.shape[0]))


def broadcast_to(x: mx.array, /, shape: Sequence[int]) -> mx.array:
    shape = tuple(shape)
    if broadcast_shapes(shape_of(x), shape, operation="broadcast_to") != shape:
        raise BroadcastError(shape_of(x), shape, operation="broadcast_to")
    return mx.broadcast_to(x, shape)


def broadcast_arrays(*arrays: mx.array) -> list:
    return generic.broadcast_arrays(*arrays, xp=_this)


def flip(x: mx.array, /, *, axis: int | Sequence[int] | None = None) -> mx.array:
    """Reverse the order of elements along ``axis`` (every axis when None)."""
    axes = range(x.ndim) if axis is None else ((axis,) if isinstance(axis, int) else axis)
    index = [slice(None)] * x.ndim
    for a in axes:
        index[generic.normalize_axis(a, x.ndim)] = slice(None, None, -1)
    return x[tuple(index)]


def roll(x: mx.array, /, shift: int | tuple[int, ...], *, axis: int | tuple[int, ...] | None = None) -> mx.array:
    return mx.roll(x, shift, axis=axis)


def tile(x: mx.array, repetitions: Sequence[int], /) -> mx.array:
    return mx.tile(x, list(repetitions))


def repeat(x: mx.array, repeats: int | mx.array, /, *, axis: int | None = None) -> mx.array:
    """Each element repeated ``repeats`` times along ``axis`` (of the flattened array when
    None). An array of repeats needs its values, so it cannot be used inside ``compile``."""
    if axis is None:
        x, axis = mx.reshape(x, (-1,)), 0
    if isinstance(repeats, int):
        return mx.repeat(x, repeats, axis=axis)
    counts = np.asarray(repeats).astype(np.int64).reshape(-1)
    positions = np.repeat(np.arange(x.shape[axis]), counts if counts.size != 1 else int(counts[0]))
    return mx.take(x, _from_numpy(positions, mx.int32), axis=axis)


def moveaxis(x: mx.array, source: int | Sequence[int], destination: int | Sequence[int], /) -> mx.array:
    if isinstance(source, int) and isinstance(destination, int):
        return mx.moveaxis(x, source, destination)
    return mx.transpose(x, generic.moveaxis_order(x.ndim, source, destination))


# ------------------------------------------------------------ searching, indexing
def argmax(x: mx.array, /, *, axis: int | None = None, keepdims: builtins.bool = False) -> mx.array:
    """Index of the first largest element, in the default index dtype (int32; MLX gives uint32)."""
    return mx.argmax(x, axis=axis, keepdims=keepdims).astype(_MX_DTYPE[DEFAULT_INDEX])


def argmin(x: mx.array, /, *, axis: int | None = None, keepdims: builtins.bool = False) -> mx.array:
    """Index of the first smallest element, in the default index dtype (int32; MLX gives uint32)."""
    return mx.argmin(x, axis=axis, keepdims=keepdims).astype(_MX_DTYPE[DEFAULT_INDEX])


def take(x: mx.array, indices: Any, /, *, axis: int | None = None) -> mx.array:
    """Elements of ``x`` at the 1-D integer ``indices`` along ``axis`` (needed for rank > 1).
    Repeated indices add up in the gradient. Indices are not bounds-checked (the standard
    does not ask it, and checking would force MLX's lazy graph to run)."""
    if axis is None:
        if x.ndim != 1:
            raise ValueError(f"take needs an axis for arrays of rank > 1, got shape {tuple(x.shape)}")
        axis = 0
    return mx.take(x, asarray(indices), axis=axis)


def take_along_axis(x: mx.array, indices: mx.array, /, *, axis: int = -1) -> mx.array:
    """Elements of ``x`` at ``indices`` (an array of ``x``'s rank) along ``axis``."""
    indices = asarray(indices)
    if indices.ndim != x.ndim:
        raise take_along_axis_error(tuple(indices.shape), tuple(x.shape))
    return mx.take_along_axis(x, indices, axis=axis)


def sort(
    x: mx.array, /, *, axis: int = -1, descending: builtins.bool = False, stable: builtins.bool = True
) -> mx.array:
    """Sorted along ``axis``; the gradient goes back to each element's original place."""
    result = mx.sort(x, axis=axis)
    return flip(result, axis=axis) if descending else result


def argsort(
    x: mx.array, /, *, axis: int = -1, descending: builtins.bool = False, stable: builtins.bool = True
) -> mx.array:
    """Indices that sort ``x`` along ``axis``, equal values in their original order, in
    the default index dtype (int32; MLX gives uint32). MLX's argsort is stable."""
    index_dtype = _MX_DTYPE[DEFAULT_INDEX]
    if descending:
        # A stable descending order: sort the reversed array ascending, then map the
        # positions back, so equal values keep their original order.
        reversed_order = mx.argsort(flip(x, axis=axis), axis=axis).astype(index_dtype)
        return (x.shape[axis] - 1) - flip(reversed_order, axis=axis)
    return mx.argsort(x, axis=axis).astype(index_dtype)


# ------------------------------------------------------------------ data types
def astype(x: mx.array, dtype: Any, /, *, copy: builtins.bool = True, device: Any = None) -> mx.array:
    target = _mx_dtype(dtype)
    if x.dtype == target and not copy:
        return x
    return x.astype(target)


# ---------------------------------------------------------------------- bitwise
bitwise_and = raises_broadcast_error(mx.bitwise_and, "bitwise_and")
bitwise_or = raises_broadcast_error(mx.bitwise_or, "bitwise_or")
bitwise_xor = raises_broadcast_error(mx.bitwise_xor, "bitwise_xor")
bitwise_invert = mx.bitwise_invert


def _shift_operands(x1: Any, x2: Any, name: str) -> tuple[mx.array, mx.array, int]:
    broadcast_shapes(shape_of(x1), shape_of(x2), operation=name)
    a, b = _as_operand(x1, x2), _as_operand(x2, x1)
    if not (isdtype(a.dtype, "integral") and isdtype(b.dtype, "integral")):
        raise DTypeError(f"{name} needs integer arrays, got {_name(a)} and {_name(b)}")
    return a, b, iinfo(result_type(a, b)).bits


def bitwise_left_shift(x1: Any, x2: Any, /) -> mx.array:
    """``x1 * 2**x2`` in ``x1``'s integer type. MLX's kernel shifts by ``x2`` modulo the bit
    width (C's undefined behaviour: ``1 << 32`` gave 1); a shift by the width or more gives 0."""
    a, b, bits = _shift_operands(x1, x2, "bitwise_left_shift")
    result = mx.left_shift(a, b)
    return mx.where(b >= bits, mx.zeros((), dtype=result.dtype), result)


def bitwise_right_shift(x1: Any, x2: Any, /) -> mx.array:
    """``floor(x1 / 2**x2)``; a shift by the bit width or more gives 0, or -1 for negative
    ``x1`` (MLX's kernel would shift by ``x2`` modulo the width)."""
    a, b, bits = _shift_operands(x1, x2, "bitwise_right_shift")
    result = mx.right_shift(a, b)
    filled = mx.where(a < 0, mx.array(-1).astype(result.dtype), mx.zeros((), dtype=result.dtype))
    return mx.where(b >= bits, filled, result)


# ---------------------------------------------------------------------- complex numbers
def _is_complex(x: mx.array) -> builtins.bool:
    # The item size first: reading it costs a fraction of comparing MLX dtypes.
    return x.itemsize == 8 and x.dtype == mx.complex64


def conj(x: mx.array, /) -> mx.array:
    """The complex conjugate; real arrays are returned unchanged."""
    return mx.conj(x) if _is_complex(x) else x


def real(x: mx.array, /) -> mx.array:
    """The real part (float32 for complex64); real arrays are returned unchanged."""
    return mx.real(x) if _is_complex(x) else x


def imag(x: mx.array, /) -> mx.array:
    """The imaginary part (float32 for complex64); zeros for real arrays."""
    return mx.imag(x) if _is_complex(x) else mx.zeros_like(x)


# ---------------------------------------------------------------------- floating-point bits
_SAME_WIDTH_INTEGER = {mx.float32: mx.int32, mx.float64: mx.int64, mx.float16: mx.int16, mx.bfloat16: mx.int16}


def _to_bits(x: mx.array) -> mx.array:
    """The bit pattern of a real floating array as the signed integers of its width. It has no
    derivative, and MLX's View has no vjp: the gradient is stopped here, so that functions
    reading bits (``copysign``, ``signbit``, ``nextafter``) can be differentiated through."""
    return mx.stop_gradient(x).view(_SAME_WIDTH_INTEGER[x.dtype])


def signbit(x: mx.array, /) -> mx.array:
    """Whether the sign bit is set: True for -0.0 and for NaNs with the sign bit, read from
    the float's bit pattern (MLX has no signbit)."""
    if not isdtype(x.dtype, "real floating"):
        raise DTypeError(f"signbit needs a real floating array, got {_name(x)}")
    return _to_bits(x) < 0


def nextafter(x1: Any, x2: Any, /) -> mx.array:
    """The next float after ``x1`` towards ``x2``, stepping the bit pattern
    (:func:`portable_dl.backends._common.generic.nextafter`); no gradient."""
    broadcast_shapes(shape_of(x1), shape_of(x2), operation="nextafter")
    a, b = _as_operand(x1, x2), _as_operand(x2, x1)
    if not (isdtype(a.dtype, "real floating") and a.dtype == b.dtype):
        raise DTypeError(f"nextafter needs two arrays of one real floating dtype, got {_name(a)} and {_name(b)}")
    # Stopped: a step to the next float has no derivative, and MLX's View (from bits back to
    # floats) has no vjp, so differentiating through it would raise.
    a, b = (
        mx.stop_gradient(mx.broadcast_to(a, mx.broadcast_shapes(a.shape, b.shape))),
        mx.stop_gradient(mx.broadcast_to(b, mx.broadcast_shapes(a.shape, b.shape))),
    )
    return generic.nextafter(a, b, xp=_this, to_bits=_to_bits, from_bits=lambda bits: bits.view(a.dtype))


# ---------------------------------------------------------------------- searching, counting
_INDEX_DTYPE = _MX_DTYPE[DEFAULT_INDEX]


def count_nonzero(
    x: mx.array, /, *, axis: int | tuple[int, ...] | None = None, keepdims: builtins.bool = False
) -> mx.array:
    """The number of non-zero elements over ``axis``, in the default index dtype (int32)."""
    return mx.count_nonzero(x, axis=_axes(axis), keepdims=keepdims).astype(_INDEX_DTYPE)


def searchsorted(x1: mx.array, x2: mx.array, /, *, side: str = "left", sorter: mx.array | None = None) -> mx.array:
    """Indices where the values ``x2`` would be inserted into the ascending 1-D ``x1``
    (``x1[sorter]`` when ``sorter`` is given) to keep it sorted; int32."""
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted side must be 'left' or 'right', got {side!r}")
    if x1.ndim != 1:
        raise ShapeError(f"searchsorted needs a 1-D sorted array, got shape {tuple(x1.shape)}")
    if sorter is not None:
        x1 = mx.take(x1, asarray(sorter), axis=0)
    target = result_type(x1, x2)
    return mx.searchsorted(x1.astype(target), _as_operand(x2, x1).astype(target), side=side).astype(_INDEX_DTYPE)


# The functions below read values through NumPy, and MLX hands no bfloat16 buffer to NumPy:
# bfloat16 arrays are read as the float32 arrays of the same values (each bfloat16 is exactly a
# float32, NaNs and signed zeros included), and values given back are rounded back, exactly.
def _readable(x: mx.array) -> mx.array:
    return x.astype(mx.float32) if x.dtype == mx.bfloat16 else x


def nonzero(x: mx.array, /) -> tuple:
    """The indices of the non-zero elements, one int32 array per axis (read through NumPy:
    the size depends on the values, so this cannot be compiled)."""
    return generic.nonzero(_readable(x), xp=_this, index_dtype=_INDEX_DTYPE)


def unique_all(x: mx.array, /) -> generic.UniqueAllResult:
    """The unique values (sorted; NaNs each distinct), the first index of each, the inverse
    indices (``x``'s shape) and counts; read through NumPy, so not compilable."""
    values, indices, inverse, counts = generic.unique_all(_readable(x), xp=_this, index_dtype=_INDEX_DTYPE)
    return generic.UniqueAllResult(values.astype(x.dtype), indices, inverse, counts)


def unique_counts(x: mx.array, /) -> generic.UniqueCountsResult:
    values, counts = generic.unique_counts(_readable(x), xp=_this, index_dtype=_INDEX_DTYPE)
    return generic.UniqueCountsResult(values.astype(x.dtype), counts)


def unique_inverse(x: mx.array, /) -> generic.UniqueInverseResult:
    values, inverse = generic.unique_inverse(_readable(x), xp=_this, index_dtype=_INDEX_DTYPE)
    return generic.UniqueInverseResult(values.astype(x.dtype), inverse)


def unique_values(x: mx.array, /) -> mx.array:
    return generic.unique_values(_readable(x), xp=_this, index_dtype=_INDEX_DTYPE).astype(x.dtype)


# ---------------------------------------------------------------------- creation, utility
def from_dlpack(x: Any, /, *, device: Any = None, copy: builtins.bool | None = None) -> mx.array:
    """An ``mx.array`` from any object with ``__dlpack__`` (read through NumPy's DLPack
    import; MLX copies it into its own memory, so ``copy=False`` cannot be honoured)."""
    if _is_array(x):
        return mx.array(x) if copy else x
    if copy is False:
        raise BufferError("from_dlpack: MLX copies foreign memory into its own, so copy=False cannot be honoured")
    return asarray(np.from_dlpack(x))


def meshgrid(*arrays: mx.array, indexing: str = "xy") -> list:
    """Coordinate arrays from 1-D arrays, as a list (``"xy"``: Cartesian, ``"ij"``: matrix)."""
    return generic.meshgrid(*arrays, indexing=indexing, xp=_this)


def diff(
    x: mx.array, /, *, axis: int = -1, n: int = 1, prepend: mx.array | None = None, append: mx.array | None = None
) -> mx.array:
    """The ``n``-th forward difference along ``axis``; differentiable."""
    return generic.diff(x, axis=axis, n=n, prepend=prepend, append=append, xp=_this)


# Half-precision element-wise math in float32, rounded once (dtypes.HALF_IN_FLOAT32 says why).
dtypes.compute_halves_in_float32(globals())
_this = sys.modules[__name__]

# The extensions, as sub-namespaces ``xp.linalg`` and ``xp.fft`` (imported last: they use this module).
from . import fft, linalg  # noqa: E402, F401 (exported through globals() into xp)

#: What the backend hands out as ``xp``: only the standard's names, none of this module's helpers.
xp = build_namespace("portable_dl.backends.mlx.xp", globals())
