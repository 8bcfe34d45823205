"""The array-API namespace of the TensorFlow backend, written over plain ``tf`` ops.

Not built on ``tf.experimental.numpy``: that module follows NumPy 1.16 (``float32 + 1.5``
gives float64) and its full behaviour needs a switch of TensorFlow's global state, which a
library must not flip. Every function here is an ordinary ``tf`` op, so ``tf.GradientTape``
differentiates it and ``tf.function(jit_compile=True)`` compiles it with XLA.

Type promotion. TensorFlow promotes nothing (``float32 + float64`` is an error), so every
function that combines arrays first casts its operands to the dtype the standard's
promotion table gives (:mod:`portable_dl.backends._common.promotion`). Python scalars are
weak: they take the array's dtype.

Default dtypes (our choice, the same as NumPy and PyTorch): Python floats become float32
(TensorFlow's own default, and the dtype deep learning computes in); Python ints become
int64, integer sums accumulate in int64, and argmax/argmin/argsort return int64.

Half floats, beyond the standard (as on every backend): ``float16`` and ``bfloat16`` are
TensorFlow's own, Python floats round straight to them, and ``__array_namespace_info__().dtypes()``
keeps the standard's list. TensorFlow has no half NextAfter kernel (``nextafter`` reads their bits
here), and its CPU flushes bfloat16 subnormals, like float32 ones, to zero in arithmetic. The
``linalg`` factorizations it has no half kernel for refuse them (:mod:`.linalg`).

Gradient conventions, where TensorFlow's own differ: ``maximum``/``minimum`` give all the
gradient to the first argument at ties; ours split it evenly (a custom gradient).
``max``/``min`` reductions already split ties evenly (TensorFlow's ReduceMax gradient
divides by the number of tied elements); ``abs'(0) = 0`` and ``sign``, ``floor``, ``ceil``,
``round`` have zero gradient in TensorFlow too.

Shape errors: TensorFlow raises ``InvalidArgumentError`` when it runs eagerly and
``ValueError`` while tracing; both become :class:`portable_dl.BroadcastError` or
:class:`portable_dl.ShapeError` naming the shapes.
"""

from __future__ import annotations

import builtins
import contextlib
import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from portable_dl.backend import DTYPE_NAMES, STANDARD_DTYPE_NAMES
from portable_dl.errors import BroadcastError, DTypeError, ShapeError

from .._common import complex_special_values, dtypes, generic
from .._common.broadcasting import (
    broadcast_shapes,
    checks_matmul_shapes,
    matmul_shape,
    raises_broadcast_error,
    shape_of,
)
from .._common.dtypes import DtypeTable, dtype_namer
from .._common.promotion import COMPLEX_OF, KIND_OF, promote_names, promote_with_scalar
from .._common.shape_errors import (
    concat_error,
    reshape_error,
    squeeze_error,
    stack_error,
    take_along_axis_error,
    tensordot_error,
)
from .._common.surface import VERSION, build_namespace
from .missing_kernels import missing_kernel_error

__array_api_version__ = VERSION

# ---------------------------------------------------------------- dtypes, constants
bool = tf.bool
int8, int16, int32, int64 = tf.int8, tf.int16, tf.int32, tf.int64
uint8, uint16, uint32, uint64 = tf.uint8, tf.uint16, tf.uint32, tf.uint64
float32, float64 = tf.float32, tf.float64
float16, bfloat16 = tf.float16, tf.bfloat16  # the half floats, beyond the standard (surface.HALF_DTYPES)
complex64, complex128 = tf.complex64, tf.complex128

e, pi, inf, nan, newaxis = math.e, math.pi, math.inf, math.nan, None

DEFAULT_FLOAT = "float32"
DEFAULT_INTEGER = "int64"
DEFAULT_INDEX = "int64"

_TF_DTYPE = {name: getattr(tf, name) for name in DTYPE_NAMES + ("complex64", "complex128")}


#: The standard's name of a dtype spelled as a ``tf.DType``, a string, a NumPy dtype or a Python type.
_dtype_name = dtype_namer(_TF_DTYPE)


def _tf_dtype(dtype: Any) -> tf.DType:
    return _TF_DTYPE[_dtype_name(dtype)]


def _is_tensor(x: Any) -> builtins.bool:
    return isinstance(x, (tf.Tensor, tf.Variable))


def _is_python_scalar(x: Any) -> builtins.bool:
    return isinstance(x, (builtins.bool, int, float, complex))


def _kind(x: tf.Tensor) -> str:
    return KIND_OF[x.dtype.name]


def _is_floating(x: tf.Tensor) -> builtins.bool:
    return x.dtype.is_floating


def _is_inexact(x: tf.Tensor) -> builtins.bool:
    """Floating or complex: the dtypes functions such as ``exp`` and ``divide`` keep."""
    return x.dtype.is_floating or x.dtype.is_complex


# ------------------------------------------------------------- devices, info
def _tf_device_name(device: str) -> str:
    """TensorFlow's spelling of one of our device strings: ``"gpu:1"`` -> ``"/GPU:1"``; a full
    TensorFlow device name (``tensor.device``, ``"/job:localhost/.../device:CPU:0"``) as it is."""
    if str(device).startswith("/job:"):
        return str(device)
    kind, _, index = str(device).lower().lstrip("/").replace("device:", "").partition(":")
    return f"/{kind.upper()}:{index or 0}"


def _placed(device: Any):
    """A context that places new tensors on ``device`` (None: TensorFlow's default)."""
    return contextlib.nullcontext() if device is None else tf.device(_tf_device_name(device))


def _device_strings() -> list[str]:
    gpus = [f"gpu:{i}" for i, _ in enumerate(tf.config.list_logical_devices("GPU"))]
    return gpus + ["cpu"]


class _NamespaceInfo:
    """What ``__array_namespace_info__()`` returns: capabilities, devices, default dtypes."""

    def capabilities(self) -> dict:
        # Boolean masks (x[mask]), nonzero and unique_* give data-dependent shapes: eagerly,
        # not inside tf.function with XLA, whose shapes are static.
        return {"boolean indexing": True, "data-dependent shapes": True, "max dimensions": 254}

    def default_device(self) -> str:
        return _device_strings()[0]

    def devices(self) -> list[str]:
        return _device_strings()

    def default_dtypes(self, *, device: Any = None) -> dict:
        return {
            "real floating": _TF_DTYPE[DEFAULT_FLOAT],
            "complex floating": tf.complex64,
            "integral": _TF_DTYPE[DEFAULT_INTEGER],
            "indexing": _TF_DTYPE[DEFAULT_INDEX],
        }

    def dtypes(self, *, device: Any = None, kind: Any = None) -> dict:
        # The standard's dtypes only: the half floats are an extension (array-api-tests iterates this).
        return {
            name: _TF_DTYPE[name] for name in STANDARD_DTYPE_NAMES if kind is None or isdtype(_TF_DTYPE[name], kind)
        }


def __array_namespace_info__() -> _NamespaceInfo:
    return _NamespaceInfo()


_dtypes = DtypeTable(_TF_DTYPE, _dtype_name)
finfo = _dtypes.finfo
iinfo = _dtypes.iinfo
isdtype = _dtypes.isdtype
can_cast = _dtypes.can_cast


# ---------------------------------------------------------------- type promotion
def _scalar_default_name(value: Any) -> str:
    """The dtype a lone Python scalar becomes: bool, int64 or float32."""
    if isinstance(value, builtins.bool):
        return "bool"
    if isinstance(value, int):
        return DEFAULT_INTEGER
    if isinstance(value, complex):
        return COMPLEX_OF[DEFAULT_FLOAT]
    return DEFAULT_FLOAT


def _promoted_name(operands: Sequence[Any]) -> str:
    """The dtype name of an operation on ``operands`` (arrays, dtypes, Python scalars):
    arrays and dtypes by the standard's table, then the weak Python scalars."""
    strong = [o for o in operands if not _is_python_scalar(o)]
    weak = [o for o in operands if _is_python_scalar(o)]
    if strong:
        name = promote_names(*(_dtype_name(o.dtype if hasattr(o, "dtype") else o) for o in strong))
    else:
        name = promote_names(*(_scalar_default_name(w) for w in weak))
    for scalar in weak:
        name = promote_with_scalar(name, scalar, DEFAULT_FLOAT, DEFAULT_INTEGER)
    return name


def result_type(*arrays_and_dtypes: Any) -> tf.DType:
    """The dtype the standard's promotion gives these arrays, dtypes and Python scalars."""
    return _TF_DTYPE[_promoted_name(arrays_and_dtypes)]


def _tensor(x: Any, dtype_name: str | None = None) -> tf.Tensor:
    """``x`` as a tensor (a Variable is read), cast to ``dtype_name`` when given."""
    if isinstance(x, tf.Variable):
        x = tf.convert_to_tensor(x)
    elif not isinstance(x, tf.Tensor):
        # Straight to the target dtype: 0.1 through float32 would lose its float64 digits.
        return asarray(x, dtype=dtype_name)
    if dtype_name is not None and x.dtype.name != dtype_name:
        x = tf.cast(x, _TF_DTYPE[dtype_name])
    return x


def _promoted(*operands: Any) -> list[tf.Tensor]:
    """The operands as tensors of one dtype, by the standard's promotion rules."""
    name = _promoted_name(operands)
    return [_tensor(o, name) for o in operands]


def _floating(x: Any) -> tf.Tensor:
    """``x`` as a floating tensor: integers and bools move to the default float dtype,
    as functions such as ``exp`` are defined on real numbers."""
    x = _tensor(x)
    return x if _is_inexact(x) else tf.cast(x, _TF_DTYPE[DEFAULT_FLOAT])


def _promoted_floating(*operands: Any) -> list[tf.Tensor]:
    tensors = _promoted(*operands)
    if _is_inexact(tensors[0]):
        return tensors
    return [tf.cast(t, _TF_DTYPE[DEFAULT_FLOAT]) for t in tensors]


def _combining(function: Any, name: str) -> Any:
    """``function`` raising BroadcastError for shapes that do not broadcast, and DTypeError where
    TensorFlow has no kernel for the operands' dtype (both in the error path only)."""
    return raises_broadcast_error(function, name, translate=missing_kernel_error)


def _raise_missing_kernel(error: Exception, name: str) -> None:
    """Raise DTypeError from ``error`` when it says TensorFlow has no kernel for a dtype; else return
    (the caller re-raises ``error``). Called in error paths only."""
    replacement = missing_kernel_error(error, name)
    if replacement is not None:
        raise replacement from error


# ----------------------------------------------------------------------- creation
def _contains_tensor(obj: Any) -> builtins.bool:
    if _is_tensor(obj):
        return True
    return isinstance(obj, (list, tuple)) and builtins.any(_contains_tensor(item) for item in obj)


def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: builtins.bool | None = None) -> tf.Tensor:
    """A tensor from a tensor, NumPy array, nested sequence or Python scalar.

    Without ``dtype``: tensors and NumPy arrays keep theirs; Python floats (also nested in
    lists) become float32, Python ints int64, Python bools bool.
    """
    target = None if dtype is None else _tf_dtype(dtype)
    with _placed(device):
        if _is_tensor(obj):
            tensor = tf.convert_to_tensor(obj)
            if device is not None or copy:
                tensor = tf.identity(tensor)
        elif isinstance(obj, (list, tuple)) and _contains_tensor(obj):
            tensor = tf.stack([asarray(item) for item in obj])
        else:
            from_python = not isinstance(obj, (np.ndarray, np.generic))
            # Python numbers go straight to the dtype asked for (uint64 values above 2**63 fit
            # no int64, and 0.1 through float32 would lose its float64 digits). A float beyond
            # the dtype's range rounds to inf, as IEEE 754 says: no warning (65520.0 in float16).
            with np.errstate(over="ignore"):
                array = (
                    np.asarray(obj, dtype=target.as_numpy_dtype)
                    if target is not None and from_python
                    else np.asarray(obj)
                )
            if target is None and from_python and array.dtype == np.float64:
                array = array.astype(DEFAULT_FLOAT)  # Python floats: the default float dtype
            elif target is None and from_python and array.dtype == np.complex128:
                array = array.astype(COMPLEX_OF[DEFAULT_FLOAT])
            elif target is None and from_python and array.dtype.kind in "iu":
                array = array.astype(DEFAULT_INTEGER)
            _dtype_name(array.dtype)  # DTypeError for complex, strings, objects
            tensor = tf.convert_to_tensor(array)
        if target is not None and tensor.dtype != target:
            tensor = tf.cast(tensor, target)
    return tensor


def _shape(shape: Any) -> list[int]:
    return [int(shape)] if isinstance(shape, int) else [int(d) for d in shape]


def _fill_dtype(fill_value: Any, dtype: Any) -> tf.DType:
    if dtype is not None:
        return _tf_dtype(dtype)
    if _is_tensor(fill_value):
        return fill_value.dtype
    return _TF_DTYPE[_scalar_default_name(fill_value)]


def _fill_scalar(fill_value: Any, dtype: tf.DType) -> tf.Tensor:
    """A 0-d tensor of ``dtype`` holding ``fill_value``: the namespace's one way in for Python
    scalars (:func:`_tensor`, through NumPy), which rounds a float once, straight to ``dtype``,
    and keeps a zero's sign (``tf.constant(-0.0)`` is cached by value, so it can return +0.0)."""
    return _tensor(fill_value, dtype.name)


def zeros(shape: Any, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    with _placed(device):
        return tf.zeros(_shape(shape), dtype=_tf_dtype(dtype or DEFAULT_FLOAT))


def ones(shape: Any, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    with _placed(device):
        return tf.ones(_shape(shape), dtype=_tf_dtype(dtype or DEFAULT_FLOAT))


def empty(shape: Any, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    """Tensors are immutable and always initialised: an empty array is a zero array."""
    return zeros(shape, dtype=dtype, device=device)


def full(shape: Any, fill_value: Any, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    target = _fill_dtype(fill_value, dtype)
    with _placed(device):
        return tf.fill(_shape(shape), _fill_scalar(fill_value, target))


def zeros_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    x = _tensor(x)
    with _placed(device):
        return tf.zeros(tf.shape(x), dtype=x.dtype if dtype is None else _tf_dtype(dtype))


def ones_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    x = _tensor(x)
    with _placed(device):
        return tf.ones(tf.shape(x), dtype=x.dtype if dtype is None else _tf_dtype(dtype))


def empty_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    return zeros_like(x, dtype=dtype, device=device)


def full_like(x: Any, /, fill_value: Any, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    x = _tensor(x)
    target = x.dtype if dtype is None else _tf_dtype(dtype)
    with _placed(device):
        return tf.fill(tf.shape(x), _fill_scalar(fill_value, target))


def arange(start: Any, /, stop: Any = None, step: Any = 1, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    """``start, start + step, ...`` below ``stop``: ``ceil((stop - start) / step)`` values,
    each computed as ``start + i * step`` (as NumPy does, so float steps do not drift)."""
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ValueError("arange needs a non-zero step")
    count = builtins.max(int(math.ceil((stop - start) / step)), 0)
    if dtype is None:
        integral = builtins.all(isinstance(v, int) for v in (start, stop, step))
        dtype = DEFAULT_INTEGER if integral else DEFAULT_FLOAT
    target = _tf_dtype(dtype)
    with _placed(device):
        if target.is_integer:
            return tf.cast(start + step * tf.range(count, dtype=tf.int64), target)
        positions = tf.range(count, dtype=tf.float64)
        return tf.cast(start + step * positions, target)


def linspace(
    start: Any, stop: Any, /, num: int, *, dtype: Any = None, device: Any = None, endpoint: builtins.bool = True
) -> tf.Tensor:
    """``num`` evenly spaced values from ``start`` to ``stop`` (included when ``endpoint``),
    computed in float64 and rounded once to ``dtype``."""
    target = _tf_dtype(dtype or DEFAULT_FLOAT)
    divisions = (num - 1) if endpoint else num
    with _placed(device):
        steps = tf.range(num, dtype=tf.float64)
        step = (float(stop) - float(start)) / builtins.max(divisions, 1)
        values = float(start) + steps * step
        if endpoint and num > 1:
            values = tf.concat([values[:-1], tf.constant([float(stop)], tf.float64)], axis=0)
        return tf.cast(values, target)


def eye(n_rows: int, n_cols: int | None = None, /, *, k: int = 0, dtype: Any = None, device: Any = None) -> tf.Tensor:
    """Ones on the ``k``-th diagonal (above the main one for ``k > 0``), zeros elsewhere."""
    n_cols = n_rows if n_cols is None else n_cols
    k = builtins.max(-n_rows, builtins.min(k, n_cols))  # beyond the matrix all are zeros; k stays an int32
    with _placed(device):
        rows = tf.range(n_rows)[:, None]
        cols = tf.range(n_cols)[None, :]
        return tf.cast(tf.equal(cols - rows, k), _tf_dtype(dtype or DEFAULT_FLOAT))


def tril(x: Any, /, *, k: int = 0) -> tf.Tensor:
    """Elements on and below the ``k``-th diagonal of the last two axes; zeros above."""
    return generic.tril(_tensor(x), k=k, xp=_this)


def triu(x: Any, /, *, k: int = 0) -> tf.Tensor:
    """Elements on and above the ``k``-th diagonal of the last two axes; zeros below."""
    return generic.triu(_tensor(x), k=k, xp=_this)


# --------------------------------------------------------------- element-wise, one
def _float_function(tf_function: Any, name: str):
    def function(x: Any, /) -> tf.Tensor:
        return tf_function(_floating(x))

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"Element-wise {name} of a floating array (integers move to float32); same shape."
    return function


exp = _float_function(tf.math.exp, "exp")


def _expm1(x: tf.Tensor) -> tf.Tensor:
    # TensorFlow's complex expm1 gives NaN at infinite real parts: the standard's special values.
    if x.dtype.is_complex:
        return generic.complex_expm1(x, xp=_this, from_parts=tf.complex)
    return tf.math.expm1(x)


def _tanh(x: tf.Tensor) -> tf.Tensor:
    # TensorFlow's complex tanh gives 1 - 0j at +inf + ib (b > 0); the standard says 1 + 0j.
    if x.dtype.is_complex:
        return complex_special_values.complex_function("tanh", tf.math.tanh, x, xp=_this, from_parts=tf.complex)
    return tf.math.tanh(x)


expm1 = _float_function(_expm1, "expm1")


def _log(x: tf.Tensor) -> tf.Tensor:
    # TensorFlow's vectorized complex log squares the parts: NaN + ...j once |x| passes about
    # 1.8e19 or falls below 1e-19 (complex64). log|x| + i arg(x) with TensorFlow's own |x|
    # (a hypot) keeps the whole range and the standard's special values.
    if not x.dtype.is_complex:
        return tf.math.log(x)
    return tf.complex(tf.math.log(tf.math.abs(x)), tf.math.atan2(tf.math.imag(x), tf.math.real(x)))


log = _float_function(_log, "log")


def _divided_by_real(x: tf.Tensor, divisor: float) -> tf.Tensor:
    # Part by part for complex x: a complex division by divisor + 0j turns -inf + pi j into NaN.
    if not x.dtype.is_complex:
        return x / tf.constant(divisor, x.dtype)
    scale = tf.constant(divisor, x.dtype.real_dtype)
    return tf.complex(tf.math.real(x) / scale, tf.math.imag(x) / scale)


def _log1p(x: tf.Tensor) -> tf.Tensor:
    # TensorFlow's complex log1p gives NaN at infinite parts and at -1; log(1 + x) has the
    # standard's special values there (and 1 + x loses nothing when a part is infinite).
    if not x.dtype.is_complex:
        return tf.math.log1p(x)
    special = tf.logical_or(tf.logical_not(isfinite(x)), tf.equal(x, tf.constant(-1, x.dtype)))
    return tf.where(special, tf.math.log(1 + x), tf.math.log1p(x))


log1p = _float_function(_log1p, "log1p")
sqrt = _float_function(tf.math.sqrt, "sqrt")
reciprocal = _float_function(tf.math.reciprocal, "reciprocal")
sin, cos, tan = (_float_function(f, n) for f, n in ((tf.math.sin, "sin"), (tf.math.cos, "cos"), (tf.math.tan, "tan")))
asin, acos, atan = (
    _float_function(f, n) for f, n in ((tf.math.asin, "asin"), (tf.math.acos, "acos"), (tf.math.atan, "atan"))
)
sinh, cosh, tanh = (_float_function(f, n) for f, n in ((tf.math.sinh, "sinh"), (tf.math.cosh, "cosh"), (_tanh, "tanh")))
asinh, acosh, atanh = (
    _float_function(f, n) for f, n in ((tf.math.asinh, "asinh"), (tf.math.acosh, "acosh"), (tf.math.atanh, "atanh"))
)


def log2(x: Any, /) -> tf.Tensor:
    x = _floating(x)
    return _divided_by_real(_log(x), math.log(2.0))


def log10(x: Any, /) -> tf.Tensor:
    x = _floating(x)
    return _divided_by_real(_log(x), math.log(10.0))


def negative(x: Any, /) -> tf.Tensor:
    """``-x``; unsigned integers wrap modulo ``2**bits`` (TensorFlow's Neg kernel takes none, so ``0 - x``)."""
    x = _tensor(x)
    return tf.math.subtract(tf.zeros_like(x), x) if x.dtype.is_unsigned else tf.math.negative(x)


def positive(x: Any, /) -> tf.Tensor:
    return _tensor(x)


def abs(x: Any, /) -> tf.Tensor:
    """``|x|``; the gradient at 0 is 0 (TensorFlow's own, ``sign(x) * g``)."""
    x = _tensor(x)
    return x if _kind(x) in ("unsigned integer", "bool") else tf.math.abs(x)


def sign(x: Any, /) -> tf.Tensor:
    """-1, 0 or 1 (NaN stays NaN); zero gradient. Unsigned integers give 0 or 1 (TensorFlow's
    Sign kernel takes none)."""
    x = _tensor(x)
    if x.dtype.is_unsigned:
        return tf.cast(x > 0, x.dtype)
    if x.dtype.is_complex:
        # x / |x| part by part, with TensorFlow's hypot |x|: its own complex sign squares the
        # parts and gives 0 for |x| below about 1e-19 (complex64).
        magnitude = tf.math.abs(x)
        unit = tf.complex(tf.math.real(x) / magnitude, tf.math.imag(x) / magnitude)
        return tf.where(tf.equal(magnitude, 0), tf.zeros_like(x), unit)
    return tf.math.sign(x)


def square(x: Any, /) -> tf.Tensor:
    return tf.math.square(_tensor(x))


def _integers_unchanged(tf_function: Any, name: str, doc: str):
    def function(x: Any, /) -> tf.Tensor:
        x = _tensor(x)
        return tf_function(x) if _is_inexact(x) else x

    function.__name__ = function.__qualname__ = name
    function.__doc__ = doc
    return function


floor = _integers_unchanged(tf.math.floor, "floor", "Largest integer <= x, in x's dtype; zero gradient.")
ceil = _integers_unchanged(tf.math.ceil, "ceil", "Smallest integer >= x, in x's dtype; zero gradient.")


def _round(x: tf.Tensor) -> tf.Tensor:
    if x.dtype.is_complex:  # part by part, as the standard says
        return generic.complex_round(x, tf.math.round, xp=_this, from_parts=tf.complex)
    return tf.math.round(x)


round = _integers_unchanged(_round, "round", "Nearest integer, halves to even (as the standard says); zero gradient.")


def _truncate(x: tf.Tensor) -> tf.Tensor:
    return tf.where(x < 0, tf.math.ceil(x), tf.math.floor(x))


trunc = _integers_unchanged(_truncate, "trunc", "x rounded towards zero, in x's dtype; zero gradient.")


def isnan(x: Any, /) -> tf.Tensor:
    x = _tensor(x)
    if x.dtype.is_complex:
        return tf.logical_or(tf.math.is_nan(tf.math.real(x)), tf.math.is_nan(tf.math.imag(x)))
    return tf.math.is_nan(x) if _is_floating(x) else tf.zeros(tf.shape(x), tf.bool)


def isinf(x: Any, /) -> tf.Tensor:
    x = _tensor(x)
    if x.dtype.is_complex:
        return tf.logical_or(tf.math.is_inf(tf.math.real(x)), tf.math.is_inf(tf.math.imag(x)))
    return tf.math.is_inf(x) if _is_floating(x) else tf.zeros(tf.shape(x), tf.bool)


def isfinite(x: Any, /) -> tf.Tensor:
    x = _tensor(x)
    if x.dtype.is_complex:
        return tf.logical_and(tf.math.is_finite(tf.math.real(x)), tf.math.is_finite(tf.math.imag(x)))
    return tf.math.is_finite(x) if _is_floating(x) else tf.ones(tf.shape(x), tf.bool)


def logical_not(x: Any, /) -> tf.Tensor:
    return tf.math.logical_not(_tensor(x, "bool"))


# --------------------------------------------------------------- element-wise, two
def _binary(tf_function: Any, name: str, floating: builtins.bool = False):
    """``tf_function`` on both operands promoted to one dtype (the default float when
    ``floating`` and both are integers), raising BroadcastError for shapes that do not
    broadcast."""

    def function(x1: Any, x2: Any, /) -> tf.Tensor:
        a, b = (_promoted_floating if floating else _promoted)(x1, x2)
        return tf_function(a, b)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"Element-wise {name} of two broadcast arrays, in their promoted dtype."
    return _combining(function, name)


add = _binary(tf.math.add, "add")
subtract = _binary(tf.math.subtract, "subtract")
multiply = _binary(tf.math.multiply, "multiply")
divide = _binary(tf.math.truediv, "divide", floating=True)
floor_divide = _binary(tf.math.floordiv, "floor_divide")


def _floor_remainder(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """``a - floor(a / b) * b`` with the sign of ``b``, a zero result included (TensorFlow's
    ``floormod(-0.0, 2.0)`` is -0.0; the standard's remainder is +0.0)."""
    result = tf.math.floormod(a, b)
    if not result.dtype.is_floating:
        return result
    return tf.where(tf.equal(result, 0), _copysign(tf.zeros_like(result), b), result)


remainder = _binary(_floor_remainder, "remainder")
# TensorFlow's Pow kernel takes no unsigned integers: they are raised in the signed type of
# twice the width (of the same width for uint64) and cast back, which keeps the low bits, so
# the result wraps modulo 2**bits exactly as the unsigned arithmetic would.
_POW_WIDER = {"uint8": tf.int16, "uint16": tf.int32, "uint32": tf.int64, "uint64": tf.int64}


def _unsigned_safe_pow(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    wider = _POW_WIDER.get(a.dtype.name)
    if wider is None:
        return tf.math.pow(a, b)
    return tf.cast(tf.math.pow(tf.cast(a, wider), tf.cast(b, wider)), a.dtype)


pow = _binary(_unsigned_safe_pow, "pow")
atan2 = _binary(tf.math.atan2, "atan2", floating=True)
equal = _binary(tf.math.equal, "equal")
not_equal = _binary(tf.math.not_equal, "not_equal")
less = _binary(tf.math.less, "less")
less_equal = _binary(tf.math.less_equal, "less_equal")
greater = _binary(tf.math.greater, "greater")
greater_equal = _binary(tf.math.greater_equal, "greater_equal")


def _logical(tf_function: Any, name: str):
    def function(x1: Any, x2: Any, /) -> tf.Tensor:
        return tf_function(_tensor(x1, "bool"), _tensor(x2, "bool"))

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"Element-wise {name} of two broadcast boolean arrays."
    return _combining(function, name)


logical_and = _logical(tf.math.logical_and, "logical_and")
logical_or = _logical(tf.math.logical_or, "logical_or")
logical_xor = _logical(tf.math.logical_xor, "logical_xor")


def _broadcast_together(a: tf.Tensor, b: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Both tensors broadcast to their common shape; the gradient of ``broadcast_to``
    sums each back to its operand's shape."""
    if a.shape.is_fully_defined() and b.shape.is_fully_defined() and a.shape == b.shape:
        return a, b
    shape = tf.broadcast_dynamic_shape(tf.shape(a), tf.shape(b))
    return tf.broadcast_to(a, shape), tf.broadcast_to(b, shape)


@tf.custom_gradient
def _maximum_splitting_ties(a: tf.Tensor, b: tf.Tensor):
    def gradient(upstream: tf.Tensor):
        share_of_a = tf.where(a > b, 1.0, tf.where(tf.equal(a, b), 0.5, 0.0))
        share_of_a = tf.cast(share_of_a, upstream.dtype)
        return upstream * share_of_a, upstream * (1 - share_of_a)

    return tf.math.maximum(a, b), gradient


@tf.custom_gradient
def _minimum_splitting_ties(a: tf.Tensor, b: tf.Tensor):
    def gradient(upstream: tf.Tensor):
        share_of_a = tf.where(a < b, 1.0, tf.where(tf.equal(a, b), 0.5, 0.0))
        share_of_a = tf.cast(share_of_a, upstream.dtype)
        return upstream * share_of_a, upstream * (1 - share_of_a)

    return tf.math.minimum(a, b), gradient


def _maximum(x1: Any, x2: Any, /) -> tf.Tensor:
    """The larger of each pair; at ties each operand gets half of the gradient
    (TensorFlow's own Maximum gradient gives it all to ``x1``)."""
    a, b = _promoted(x1, x2)
    if not _is_floating(a):
        return tf.math.maximum(a, b)
    return _maximum_splitting_ties(*_broadcast_together(a, b))


def _minimum(x1: Any, x2: Any, /) -> tf.Tensor:
    """The smaller of each pair; at ties each operand gets half of the gradient."""
    a, b = _promoted(x1, x2)
    if not _is_floating(a):
        return tf.math.minimum(a, b)
    return _minimum_splitting_ties(*_broadcast_together(a, b))


_maximum.__name__, _minimum.__name__ = "maximum", "minimum"
maximum = _combining(_maximum, "maximum")
minimum = _combining(_minimum, "minimum")


def _logaddexp(x1: Any, x2: Any, /) -> tf.Tensor:
    """``log(exp(x1) + exp(x2))`` as ``max + log1p(exp(-|x1 - x2|))``: no overflow for
    large arguments; the gradient is ``sigmoid(x1 - x2)``, 1/2 each at ties."""
    a, b = _promoted_floating(x1, x2)
    larger = _maximum(a, b)
    result = larger + tf.math.log1p(tf.math.exp(-tf.math.abs(a - b)))
    # Equal infinities make a - b NaN; the answer is the infinity itself.
    same_infinity = tf.logical_and(tf.math.is_inf(larger), tf.equal(a, b))
    return tf.where(same_infinity, larger, result)


def _hypot(x1: Any, x2: Any, /) -> tf.Tensor:
    """``sqrt(x1**2 + x2**2)`` scaled by the larger magnitude, so that it neither
    overflows nor underflows; 0 (gradient 0) at the origin; +inf where either input is
    infinite, even NaN with it (IEEE 754's hypot, which the scaling would make inf/inf)."""
    a, b = _promoted_floating(x1, x2)
    larger = _maximum(tf.math.abs(a), tf.math.abs(b))
    unscalable = tf.logical_or(tf.equal(larger, 0), tf.math.is_inf(larger))
    safe = tf.where(unscalable, tf.ones_like(larger), larger)
    u = tf.where(unscalable, tf.ones_like(larger), a / safe)
    v = tf.where(unscalable, tf.zeros_like(larger), b / safe)
    result = larger * tf.math.sqrt(u * u + v * v)
    either_infinite = tf.logical_or(tf.math.is_inf(a), tf.math.is_inf(b))
    return tf.where(either_infinite, tf.fill(tf.shape(result), tf.constant(float("inf"), result.dtype)), result)


def _copysign(x1: Any, x2: Any, /) -> tf.Tensor:
    """``|x1|`` with the sign bit of ``x2`` (so ``-0.0`` counts as negative)."""
    a, b = _promoted_floating(x1, x2)
    a, b = _broadcast_together(a, b)
    return tf.where(_bits(b) < 0, -tf.math.abs(a), tf.math.abs(a))


_logaddexp.__name__, _hypot.__name__, _copysign.__name__ = "logaddexp", "hypot", "copysign"
logaddexp = _combining(_logaddexp, "logaddexp")
hypot = _combining(_hypot, "hypot")
copysign = _combining(_copysign, "copysign")


def _where(condition: Any, x1: Any, x2: Any, /) -> tf.Tensor:
    """``x1`` where ``condition`` holds, else ``x2``; all three broadcast together."""
    a, b = _promoted(x1, x2)
    return tf.where(_tensor(condition, "bool"), a, b)


_where.__name__ = "where"
where = _combining(_where, "where")


def clip(x: Any, /, min: Any = None, max: Any = None) -> tf.Tensor:
    """Clamp ``x`` to ``[min, max]``; gradient 1 on the closed interval (see ``generic.clip``)."""
    return generic.clip(_tensor(x), min, max, xp=_this)


# ------------------------------------------------------------------- reductions
def _axes(axis: Any) -> Any:
    return list(axis) if isinstance(axis, (tuple, list)) else axis


def _check_axes(x: tf.Tensor, axis: Any) -> None:
    ndim = x.shape.rank
    for a in axis if isinstance(axis, (tuple, list)) else () if axis is None else (axis,):
        generic.normalize_axis(a, ndim)


def _accumulator(x: tf.Tensor, dtype: Any) -> tf.Tensor:
    """``x`` cast for a sum or product: to ``dtype`` when given, else small integers and
    bools to the default integer dtype (unsigned to uint64), as the standard says."""
    if dtype is not None:
        return tf.cast(x, _tf_dtype(dtype))
    kind = _kind(x)
    if kind in ("signed integer", "bool"):
        return tf.cast(x, _TF_DTYPE[DEFAULT_INTEGER])
    if kind == "unsigned integer":
        return tf.cast(x, tf.uint64)
    return x


def sum(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: builtins.bool = False) -> tf.Tensor:
    x = _tensor(x)
    _check_axes(x, axis)
    return tf.math.reduce_sum(_accumulator(x, dtype), axis=_axes(axis), keepdims=keepdims)


def prod(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: builtins.bool = False) -> tf.Tensor:
    """Product over ``axis``; TensorFlow's gradient (exclusive cumulative products) is
    exact where elements are zero."""
    x = _tensor(x)
    _check_axes(x, axis)
    return tf.math.reduce_prod(_accumulator(x, dtype), axis=_axes(axis), keepdims=keepdims)


def mean(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> tf.Tensor:
    x = _floating(x)
    _check_axes(x, axis)
    return tf.math.reduce_mean(x, axis=_axes(axis), keepdims=keepdims)


def max(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> tf.Tensor:
    """Largest element; tied maxima share the gradient equally (TensorFlow's own rule)."""
    x = _tensor(x)
    _check_axes(x, axis)
    try:
        return tf.math.reduce_max(x, axis=_axes(axis), keepdims=keepdims)
    except tf.errors.OpError as error:  # bool and complex: no kernel (the standard defines max for real dtypes)
        _raise_missing_kernel(error, "max")
        raise


def min(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> tf.Tensor:
    """Smallest element; tied minima share the gradient equally (TensorFlow's own rule)."""
    x = _tensor(x)
    _check_axes(x, axis)
    try:
        return tf.math.reduce_min(x, axis=_axes(axis), keepdims=keepdims)
    except tf.errors.OpError as error:
        _raise_missing_kernel(error, "min")
        raise


def var(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: builtins.bool = False) -> tf.Tensor:
    """``sum((x - mean)**2) / (N - correction)`` over ``axis``."""
    return generic.var(_floating(x), axis=axis, correction=correction, keepdims=keepdims, xp=_this)


def std(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: builtins.bool = False) -> tf.Tensor:
    """The square root of :func:`var`."""
    return generic.std(_floating(x), axis=axis, correction=correction, keepdims=keepdims, xp=_this)


def all(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> tf.Tensor:
    x = _tensor(x, "bool")
    _check_axes(x, axis)
    return tf.math.reduce_all(x, axis=_axes(axis), keepdims=keepdims)


def any(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> tf.Tensor:
    x = _tensor(x, "bool")
    _check_axes(x, axis)
    return tf.math.reduce_any(x, axis=_axes(axis), keepdims=keepdims)


def _cumulative(
    cumulate: Any, initial: int, x: Any, axis: int | None, dtype: Any, include_initial: builtins.bool
) -> tf.Tensor:
    x = _accumulator(_tensor(x), dtype)
    if axis is None:
        if x.shape.rank != 1:
            raise ValueError(f"cumulative functions need an axis for arrays of rank > 1, got shape {shape_of(x)}")
        axis = 0
    axis = generic.normalize_axis(axis, x.shape.rank)
    if x.dtype.is_floating and x.dtype.size == 2:
        # Half floats accumulate in float32 and round once (as PyTorch and JAX do): a running sum
        # kept in float16 or bfloat16 stops growing once its spacing passes the addends.
        result = tf.cast(cumulate(tf.cast(x, tf.float32), axis=axis), x.dtype)
    else:
        result = cumulate(x, axis=axis)
    return generic.with_initial(result, axis, initial, xp=_this) if include_initial else result


def cumulative_sum(
    x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: builtins.bool = False
) -> tf.Tensor:
    """Running sums along ``axis`` (optional for 1-D arrays); with ``include_initial`` a
    leading zero, so the result is one longer along ``axis``."""
    return _cumulative(tf.math.cumsum, 0, x, axis, dtype, include_initial)


def cumulative_prod(
    x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: builtins.bool = False
) -> tf.Tensor:
    """Running products along ``axis``; with ``include_initial`` a leading one. Differentiable,
    exactly also where an element is zero (:func:`_cumprod_exact_gradient`)."""
    return _cumulative(_cumprod, 1, x, axis, dtype, include_initial)


def _cumprod(x: tf.Tensor, axis: int) -> tf.Tensor:
    real = x.dtype.is_floating
    return _cumprod_exact_gradient(x, axis) if real else tf.math.cumprod(x, axis=axis)


@tf.custom_gradient
def _cumprod_exact_gradient(x: tf.Tensor, axis: int) -> tf.Tensor:
    """``cumprod`` along ``axis`` of a real tensor, with a gradient that divides by nothing.

    TensorFlow's own gradient divides by ``x`` and is wrong at a zero. With ``w`` the incoming
    gradient, d/dx_i sum_j w_j prod_{k<=j} x_k = P_i S_i, where P_i = prod_{k<i} x_k (the
    exclusive cumprod) and S_i = sum_{j>=i} w_j prod_{i<k<=j} x_k, which obeys
    S_i = w_i + x_{i+1} S_{i+1}: a reverse scan along the axis.
    """
    y = tf.math.cumprod(x, axis=axis)

    def gradient(w: tf.Tensor) -> tuple:
        perm = [axis] + [d for d in range(x.shape.rank) if d != axis]
        inverse = [perm.index(d) for d in range(len(perm))]
        xs, ws = tf.transpose(x, perm), tf.transpose(w, perm)
        following = tf.concat([xs[1:], tf.zeros_like(xs[:1])], axis=0)  # x_{i+1}; the last is unused
        suffix = tf.scan(lambda s, e: e[0] + e[1] * s, (ws, following), initializer=tf.zeros_like(ws[0]), reverse=True)
        prefix = tf.math.cumprod(xs, axis=0, exclusive=True)
        return tf.transpose(prefix * suffix, inverse), None

    return y, gradient


# --------------------------------------------------------------- linear algebra
# TensorFlow's MatMul multiplies int32 and int64 only (XLA too) among the integers: the others
# multiply in a wider (or, for uint64, same-width signed) integer type and are cast back, which
# wraps exactly as the narrow type's own arithmetic would (sums and products modulo 2**bits).
_MATMUL_WIDER = {
    "int8": tf.int32,
    "int16": tf.int32,
    "uint8": tf.int32,
    "uint16": tf.int32,
    "uint32": tf.int64,
    "uint64": tf.int64,
    "bool": tf.int32,
}


def _matmul(x1: Any, x2: Any, /) -> tf.Tensor:
    """Matrix product with the standard's rules: 1-D operands become a row or a column
    (removed again from the result); batch axes broadcast."""
    a, b = _promoted(x1, x2)
    matmul_shape(shape_of(a), shape_of(b))  # ShapeError / BroadcastError, also while tracing
    wider = _MATMUL_WIDER.get(a.dtype.name)
    if wider is not None:
        return tf.cast(_matmul(tf.cast(a, wider), tf.cast(b, wider)), a.dtype)
    row, column = a.shape.rank == 1, b.shape.rank == 1
    if row:
        a = a[None, :]
    if column:
        b = b[:, None]
    result = tf.linalg.matmul(a, b)
    if row:
        result = tf.squeeze(result, axis=-2)
    if column:
        result = tf.squeeze(result, axis=-1)
    return result


_matmul.__name__ = "matmul"
matmul = checks_matmul_shapes(_matmul)


def tensordot(x1: Any, x2: Any, /, *, axes: Any = 2) -> tf.Tensor:
    """Sum of products over ``axes`` (an int N: the last N of x1 with the first N of x2; or
    two sequences of axes)."""
    a, b = _promoted(x1, x2)
    shape_a, shape_b = shape_of(a), shape_of(b)
    if isinstance(axes, int):
        pairs = list(zip(range(len(shape_a) - axes, len(shape_a)), range(axes)))
    else:
        first, second = (
            ([axes[0]] if isinstance(axes[0], int) else axes[0]),
            ([axes[1]] if isinstance(axes[1], int) else axes[1]),
        )
        pairs = list(zip(first, second))
        axes = [list(first), list(second)]
    if builtins.any(i >= len(shape_a) or j >= len(shape_b) or shape_a[i] != shape_b[j] for i, j in pairs):
        raise tensordot_error(shape_a, shape_b, axes)
    wider = _MATMUL_WIDER.get(a.dtype.name)
    if wider is not None:
        return tf.cast(tf.tensordot(tf.cast(a, wider), tf.cast(b, wider), axes=axes), a.dtype)
    return tf.tensordot(a, b, axes=axes)


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> tf.Tensor:
    """``sum(conj(x1) * x2)`` along ``axis`` of two broadcast arrays, in their promoted dtype
    (int8 . int8 stays int8, as the standard says)."""
    a, b = _promoted(x1, x2)
    from_end = generic.vecdot_axis(shape_of(a), shape_of(b), axis)
    return sum(multiply(conj(a), b), axis=from_end, dtype=a.dtype)


def matrix_transpose(x: Any, /) -> tf.Tensor:
    return generic.matrix_transpose(_tensor(x), xp=_this)


# ----------------------------------------------------------------- manipulation
def reshape(x: Any, /, shape: Sequence[int], *, copy: builtins.bool | None = None) -> tf.Tensor:
    x = _tensor(x)
    shape = _shape(shape)
    old = shape_of(x)
    if None not in old:
        size, known = math.prod(old), math.prod(d for d in shape if d != -1)
        unknown = shape.count(-1)
        fits = unknown <= 1 and (size == known if unknown == 0 else known > 0 and size % known == 0)
        if not fits:
            raise reshape_error(old, shape)
    return tf.reshape(x, shape)


def permute_dims(x: Any, /, axes: Sequence[int]) -> tf.Tensor:
    return tf.transpose(_tensor(x), perm=list(axes))


def expand_dims(x: Any, /, axis: int = 0) -> tf.Tensor:
    x = _tensor(x)
    generic.check_expand_dims_axis(axis, x.shape.rank)
    return tf.expand_dims(x, axis)


def squeeze(x: Any, /, axis: int | Sequence[int]) -> tf.Tensor:
    x = _tensor(x)
    axes = [axis] if isinstance(axis, int) else list(axis)
    shape = shape_of(x)
    for a in axes:
        if shape[generic.normalize_axis(a, len(shape))] != 1:
            raise squeeze_error(a, shape)
    if not axes:  # tf.squeeze with no axes would remove every axis of size 1
        return x
    return tf.squeeze(x, axis=axes)


def concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> tf.Tensor:
    tensors = _promoted(*arrays)
    if axis is None:
        return generic.concat_flattened(tensors, xp=_this)
    shapes = [shape_of(t) for t in tensors]
    ranks = {len(s) for s in shapes}
    if len(ranks) != 1:
        raise concat_error(shapes, axis)
    rank = ranks.pop()
    normalized = generic.normalize_axis(axis, rank)
    others = {tuple(d for i, d in enumerate(s) if i != normalized) for s in shapes}
    if len(others) != 1:
        raise concat_error(shapes, axis)
    return tf.concat(tensors, axis=normalized)


def stack(arrays: Sequence[Any], /, *, axis: int = 0) -> tf.Tensor:
    tensors = _promoted(*arrays)
    shapes = [shape_of(t) for t in tensors]
    if len(set(shapes)) > 1:
        raise stack_error(shapes)
    return tf.stack(tensors, axis=axis)


def unstack(x: Any, /, *, axis: int = 0) -> tuple:
    return tuple(tf.unstack(_tensor(x), axis=axis))


def broadcast_to(x: Any, /, shape: Sequence[int]) -> tf.Tensor:
    x = _tensor(x)
    shape = tuple(_shape(shape))
    if broadcast_shapes(shape_of(x), shape, operation="broadcast_to") != shape:
        raise BroadcastError(shape_of(x), shape, operation="broadcast_to")
    return tf.broadcast_to(x, shape)


def broadcast_arrays(*arrays: Any) -> list:
    return generic.broadcast_arrays(*(_tensor(a) for a in arrays), xp=_this)


def flip(x: Any, /, *, axis: Any = None) -> tf.Tensor:
    """Reverse the order of elements along ``axis`` (every axis when None)."""
    x = _tensor(x)
    axes = list(range(x.shape.rank)) if axis is None else ([axis] if isinstance(axis, int) else list(axis))
    return tf.reverse(x, axis=axes) if axes else x


def roll(x: Any, /, shift: Any, *, axis: Any = None) -> tf.Tensor:
    """Shift elements along ``axis`` cyclically (the flattened array when None)."""
    x = _tensor(x)
    if axis is None:
        return tf.reshape(tf.roll(tf.reshape(x, [-1]), shift, axis=0), tf.shape(x))
    return tf.roll(x, shift, axis=axis)


# TensorFlow's CPU Tile kernel (also behind tf.repeat) has no uint16: such tensors are tiled as
# the int16 of the same bits and read back, which moves every element unchanged.
_TILE_STAND_IN = {"uint16": tf.int16}


def _through_stand_in(function: Any, x: tf.Tensor, *args: Any, **kwargs: Any) -> tf.Tensor:
    """``function(x, ...)`` for a function that only moves elements, through the same-width
    dtype of :data:`_TILE_STAND_IN` where TensorFlow's kernel lacks ``x``'s dtype."""
    stand_in = _TILE_STAND_IN.get(x.dtype.name)
    if stand_in is None:
        return function(x, *args, **kwargs)
    return tf.bitcast(function(tf.bitcast(x, stand_in), *args, **kwargs), x.dtype)


def tile(x: Any, repetitions: Sequence[int], /) -> tf.Tensor:
    """``x`` repeated ``repetitions[i]`` times along axis i; the shorter of the shape and
    ``repetitions`` is padded with leading ones."""
    x = _tensor(x)
    repetitions = list(repetitions)
    rank = builtins.max(x.shape.rank, len(repetitions))
    x = tf.reshape(x, [1] * (rank - x.shape.rank) + list(shape_of(x)))
    return _through_stand_in(tf.tile, x, [1] * (rank - len(repetitions)) + repetitions)


def repeat(x: Any, repeats: Any, /, *, axis: int | None = None) -> tf.Tensor:
    """Each element repeated ``repeats`` times (an int or one count per element) along
    ``axis`` (the flattened array when None)."""
    x = _tensor(x)
    if axis is None:
        x, axis = tf.reshape(x, [-1]), 0
    return _through_stand_in(tf.repeat, x, repeats, axis=axis)


def moveaxis(x: Any, source: Any, destination: Any, /) -> tf.Tensor:
    """Move axes ``source`` to positions ``destination``; the others keep their order."""
    x = _tensor(x)
    return tf.transpose(x, perm=generic.moveaxis_order(x.shape.rank, source, destination))


# ------------------------------------------------------------ searching, indexing
def _arg_reduction(tf_function: Any, x: Any, axis: int | None, keepdims: builtins.bool, name: str) -> tf.Tensor:
    x = _tensor(x)
    rank = x.shape.rank
    try:
        if axis is None:
            result = tf_function(tf.reshape(x, [-1]), axis=0, output_type=tf.int64)
            return tf.reshape(result, [1] * rank) if keepdims else result
        axis = generic.normalize_axis(axis, rank)
        result = tf_function(x, axis=axis, output_type=tf.int64)
    except tf.errors.OpError as error:  # complex: no kernel (the standard defines it for real dtypes)
        _raise_missing_kernel(error, name)
        raise
    return tf.expand_dims(result, axis) if keepdims else result


def argmax(x: Any, /, *, axis: int | None = None, keepdims: builtins.bool = False) -> tf.Tensor:
    """Index (int64) of the first largest element along ``axis`` (of the flattened array when None)."""
    return _arg_reduction(tf.math.argmax, x, axis, keepdims, "argmax")


def argmin(x: Any, /, *, axis: int | None = None, keepdims: builtins.bool = False) -> tf.Tensor:
    """Index (int64) of the first smallest element along ``axis`` (of the flattened array when None)."""
    return _arg_reduction(tf.math.argmin, x, axis, keepdims, "argmin")


def _index_tensor(indices: Any, size: int, function: str) -> tf.Tensor:
    """Integer indices as a tensor, negative ones counted from the end. Concrete indices
    are checked here: TensorFlow on a GPU or under XLA would silently clamp them."""
    indices = _tensor(indices)
    if not indices.dtype.is_integer:
        raise DTypeError(f"{function} needs integer indices, got {indices.dtype.name}")
    values = tf.get_static_value(indices)  # None for indices computed inside a traced function
    if values is not None and size is not None:
        if values.size and (values.max() >= size or values.min() < -size):
            raise IndexError(f"{function}: indices out of range for an axis of size {size}")
    return tf.where(indices < 0, indices + tf.cast(size, indices.dtype), indices) if size is not None else indices


def take(x: Any, indices: Any, /, *, axis: int | None = None) -> tf.Tensor:
    """Elements of ``x`` at ``indices`` along ``axis``; repeated indices add up their gradients."""
    x = _tensor(x)
    if axis is None:
        if x.shape.rank != 1:
            raise ValueError(f"take needs an axis for arrays of rank > 1, got shape {shape_of(x)}")
        axis = 0
    axis = generic.normalize_axis(axis, x.shape.rank)
    return tf.gather(x, _index_tensor(indices, x.shape[axis], "take"), axis=axis)


def take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> tf.Tensor:
    """``result[..., i, ...] = x[..., indices[..., i, ...], ...]`` along ``axis``; the other
    axes of ``x`` and ``indices`` broadcast."""
    x = _tensor(x)
    rank = x.shape.rank
    axis = generic.normalize_axis(axis, rank)
    index = _index_tensor(indices, x.shape[axis], "take_along_axis")
    if index.shape.rank != rank:
        raise take_along_axis_error(shape_of(index), shape_of(x))
    x_last, index_last = moveaxis(x, axis, -1), moveaxis(index, axis, -1)
    batch = broadcast_shapes(shape_of(x_last)[:-1], shape_of(index_last)[:-1], operation="take_along_axis")
    x_last = tf.broadcast_to(x_last, batch + shape_of(x_last)[-1:])
    index_last = tf.broadcast_to(index_last, batch + shape_of(index_last)[-1:])
    gathered = tf.gather(x_last, index_last, axis=rank - 1, batch_dims=rank - 1)
    return moveaxis(gathered, -1, axis)


def _floating_order(x: tf.Tensor, axis: int, direction: str) -> tf.Tensor:
    """The stable order (indices along ``axis``) of a real floating tensor, a NaN counting as
    larger than +inf: last in ascending order, first in descending order, as NumPy, PyTorch, JAX
    and MLX sort them. TensorFlow's own sort compares with ``<``, which a NaN fails both ways, so
    the values around a NaN were left unsorted (``[1.5, nan, -2.0]`` stayed as it was)."""
    nan = tf.math.is_nan(x)
    order = tf.argsort(tf.where(nan, tf.constant(math.inf, x.dtype), x), axis=axis, direction=direction, stable=True)
    # The NaNs now sit among the +infs: a stable sort of the NaN flags, in that order, moves them past.
    flags = take_along_axis(tf.cast(nan, tf.int32), order, axis=axis)
    return take_along_axis(order, tf.argsort(flags, axis=axis, direction=direction, stable=True), axis=axis)


def sort(x: Any, /, *, axis: int = -1, descending: builtins.bool = False, stable: builtins.bool = True) -> tf.Tensor:
    """``x`` sorted along ``axis`` (NaNs last, or first when ``descending``); equal elements keep
    their order."""
    x = _tensor(x)
    direction = "DESCENDING" if descending else "ASCENDING"
    if _is_floating(x):
        return take_along_axis(x, _floating_order(x, axis, direction), axis=axis)
    try:
        return tf.sort(x, axis=axis, direction=direction)
    except tf.errors.OpError as error:  # bool and complex: no kernel (the standard sorts real dtypes)
        _raise_missing_kernel(error, "sort")
        raise


def argsort(x: Any, /, *, axis: int = -1, descending: builtins.bool = False, stable: builtins.bool = True) -> tf.Tensor:
    """Indices (int64) that sort ``x`` along ``axis`` (NaNs last, or first when ``descending``);
    equal elements keep their order."""
    x = _tensor(x)
    direction = "DESCENDING" if descending else "ASCENDING"
    if _is_floating(x):
        return tf.cast(_floating_order(x, axis, direction), tf.int64)
    try:
        order = tf.argsort(x, axis=axis, direction=direction, stable=True)
    except tf.errors.OpError as error:
        _raise_missing_kernel(error, "argsort")
        raise
    return tf.cast(order, tf.int64)


# ------------------------------------------------------------------ data types
def astype(x: Any, dtype: Any, /, *, copy: builtins.bool = True, device: Any = None) -> tf.Tensor:
    x = _tensor(x)
    with _placed(device):
        result = tf.cast(x, _tf_dtype(dtype))
        return tf.identity(result) if device is not None else result


# ---------------------------------------------------------------------- bitwise
def _bitwise(tf_function: Any, logical: Any, name: str):
    """``tf_function`` on two promoted integer arrays; on two bools the logical op."""

    def function(x1: Any, x2: Any, /) -> tf.Tensor:
        a, b = _promoted(x1, x2)
        if a.dtype == tf.bool:
            return logical(a, b)
        if not a.dtype.is_integer:
            raise DTypeError(f"{name} needs integer or boolean arrays, got {a.dtype.name}")
        return tf_function(a, b)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"Element-wise {name} of two broadcast integer or boolean arrays."
    return _combining(function, name)


bitwise_and = _bitwise(tf.bitwise.bitwise_and, tf.math.logical_and, "bitwise_and")
bitwise_or = _bitwise(tf.bitwise.bitwise_or, tf.math.logical_or, "bitwise_or")
bitwise_xor = _bitwise(tf.bitwise.bitwise_xor, tf.math.logical_xor, "bitwise_xor")


def bitwise_invert(x: Any, /) -> tf.Tensor:
    """Every bit flipped (``logical_not`` for bools)."""
    x = _tensor(x)
    return tf.math.logical_not(x) if x.dtype == tf.bool else tf.bitwise.invert(x)


def _shift(tf_function: Any, name: str, overflow: Any):
    """A shift whose amount, when it reaches the bit width, gives ``overflow(x1)``:
    TensorFlow's kernels shift by the amount modulo the width (``1 << 32`` gave ``-2**31``)."""

    def function(x1: Any, x2: Any, /) -> tf.Tensor:
        a, b = _promoted(x1, x2)
        if not a.dtype.is_integer:
            raise DTypeError(f"{name} needs integer arrays, got {a.dtype.name}")
        a, b = _broadcast_together(a, b)
        bits = iinfo(a.dtype).bits
        return tf.where(b >= tf.cast(bits, b.dtype), overflow(a), tf_function(a, b))

    function.__name__ = function.__qualname__ = name
    function.__doc__ = (
        f"Element-wise {name}; shifts by the bit width or more give 0 (or -1 for negative x1 shifted right)."
    )
    return _combining(function, name)


bitwise_left_shift = _shift(tf.bitwise.left_shift, "bitwise_left_shift", tf.zeros_like)


def _sign_fill(a: tf.Tensor) -> tf.Tensor:
    """What shifting ``a`` right by its whole width leaves: -1 (all bits set) where negative, else 0."""
    zeros = tf.zeros_like(a)
    return tf.where(a < 0, tf.bitwise.invert(zeros), zeros)


bitwise_right_shift = _shift(tf.bitwise.right_shift, "bitwise_right_shift", _sign_fill)


# ---------------------------------------------------------------------- complex numbers
def conj(x: Any, /) -> tf.Tensor:
    """The complex conjugate; real arrays are returned unchanged."""
    x = _tensor(x)
    return tf.math.conj(x) if x.dtype.is_complex else x


def real(x: Any, /) -> tf.Tensor:
    """The real part (float32 for complex64, float64 for complex128); real arrays unchanged."""
    x = _tensor(x)
    return tf.math.real(x) if x.dtype.is_complex else x


def imag(x: Any, /) -> tf.Tensor:
    """The imaginary part; zeros for real arrays."""
    x = _tensor(x)
    return tf.math.imag(x) if x.dtype.is_complex else tf.zeros_like(x)


# ---------------------------------------------------------------------- floating-point bits
def signbit(x: Any, /) -> tf.Tensor:
    """Whether the sign bit is set (True for -0.0 and for NaNs with the sign bit), read from
    the float's bit pattern."""
    x = _tensor(x)
    if not _is_floating(x):
        raise DTypeError(f"signbit needs a real floating array, got {x.dtype.name}")
    return _bits(x) < 0


#: The signed integer dtype of each real floating dtype's width: its bit pattern, sign bit first.
_SAME_WIDTH_INTEGER = {"float16": tf.int16, "bfloat16": tf.int16, "float32": tf.int32, "float64": tf.int64}


def _bits(x: tf.Tensor) -> tf.Tensor:
    """The bit pattern of a real floating tensor as the signed integers of its width (negative
    exactly where the sign bit is set)."""
    return tf.bitcast(x, _SAME_WIDTH_INTEGER[x.dtype.name])


def _nextafter(x1: Any, x2: Any, /) -> tf.Tensor:
    """The next float after ``x1`` towards ``x2``; no gradient. TensorFlow's own kernel, which
    has none for the half floats: those step their bit pattern (:func:`_half_nextafter`)."""
    a, b = _promoted(x1, x2)
    if not _is_floating(a):
        raise DTypeError(f"nextafter needs real floating arrays, got {a.dtype.name}")
    a, b = _broadcast_together(a, b)
    return _half_nextafter(a, b) if a.dtype.size == 2 else tf.math.nextafter(a, b)


def _half_nextafter(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """``nextafter`` of two float16 or bfloat16 tensors of one shape, decided on their bit patterns
    in integer arithmetic: TensorFlow's CPU flushes subnormal bfloat16 operands to zero in float
    comparisons, so ``-tiny < 1`` and ``-tiny == 0`` would step from the wrong value."""
    bits_a, bits_b = (tf.cast(_bits(t), tf.int32) for t in (a, b))

    def ordered(bits: tf.Tensor) -> tf.Tensor:
        # Sign and magnitude to an integer of the same order: -0 is -1, +0 is 0, -tiny is -2.
        return tf.where(bits >= 0, bits, -bits - 32769)

    key_a, key_b = ordered(bits_a), ordered(bits_b)
    zero_a, zero_b = tf.equal(bits_a % 32768, 0), tf.equal(bits_b % 32768, 0)
    # Away from zero adds one to the pattern, towards zero subtracts one; from a zero, the
    # smallest subnormal of x2's sign (pattern 1, or 0x8001 read as int16).
    up = tf.equal(key_a < key_b, key_a > 0)
    stepped = tf.where(zero_a, tf.where(key_b > 0, 1, -32767), bits_a + tf.where(up, 1, -1))
    equal = tf.logical_or(tf.equal(key_a, key_b), tf.logical_and(zero_a, zero_b))
    result = tf.bitcast(tf.cast(tf.where(equal, bits_b, stepped), tf.int16), a.dtype)
    unordered = tf.logical_or(tf.math.is_nan(a), tf.math.is_nan(b))
    return tf.where(unordered, tf.constant(math.nan, a.dtype), result)


_nextafter.__name__ = "nextafter"
nextafter = _combining(_nextafter, "nextafter")


# ---------------------------------------------------------------------- searching, counting
_INDEX_DTYPE = _TF_DTYPE[DEFAULT_INDEX]


def count_nonzero(
    x: Any, /, *, axis: int | tuple[int, ...] | None = None, keepdims: builtins.bool = False
) -> tf.Tensor:
    """The number of non-zero elements over ``axis`` (int64)."""
    x = _tensor(x)
    _check_axes(x, axis)
    if x.dtype == tf.bool:
        x = tf.cast(x, tf.int8)
    return tf.math.count_nonzero(x, axis=_axes(axis), keepdims=keepdims, dtype=_INDEX_DTYPE)


def searchsorted(x1: Any, x2: Any, /, *, side: str = "left", sorter: Any = None) -> tf.Tensor:
    """Indices (int64) where the values ``x2`` would be inserted into the ascending 1-D ``x1``
    (``x1[sorter]`` when ``sorter`` is given) to keep it sorted."""
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted side must be 'left' or 'right', got {side!r}")
    x1 = _tensor(x1)
    if x1.shape.rank != 1:
        raise ShapeError(f"searchsorted needs a 1-D sorted array, got shape {shape_of(x1)}")
    if sorter is not None:
        x1 = tf.gather(x1, _tensor(sorter))
    a, b = _promoted(x1, x2)
    flat = tf.reshape(b, [1, -1])  # tf.searchsorted pairs rows of its two arguments
    found = tf.searchsorted(a[None, :], flat, side=side, out_type=_INDEX_DTYPE)
    return tf.reshape(found, tf.shape(b))


def nonzero(x: Any, /) -> tuple:
    """The indices (int64) of the non-zero elements, one array per axis (read through NumPy:
    the size depends on the values, so this cannot run inside ``tf.function``)."""
    return generic.nonzero(_tensor(x), xp=_this, index_dtype=_INDEX_DTYPE)


# NumPy sorts ml_dtypes' bfloat16 arrays wrongly when they hold a NaN (the order stops at it), so
# np.unique of one repeats values: bfloat16 is counted as the float32 array of the same values
# (each bfloat16 is exactly a float32, NaNs and signed zeros included), and rounded back, exactly.
def _sortable(x: Any) -> tf.Tensor:
    x = _tensor(x)
    return tf.cast(x, tf.float32) if x.dtype == tf.bfloat16 else x


def unique_all(x: Any, /) -> generic.UniqueAllResult:
    """The unique values (sorted; NaNs each distinct), the first index of each, the inverse
    indices (``x``'s shape) and counts; read through NumPy, so not traceable."""
    values, indices, inverse, counts = generic.unique_all(_sortable(x), xp=_this, index_dtype=_INDEX_DTYPE)
    return generic.UniqueAllResult(tf.cast(values, _tensor(x).dtype), indices, inverse, counts)


def unique_counts(x: Any, /) -> generic.UniqueCountsResult:
    values, counts = generic.unique_counts(_sortable(x), xp=_this, index_dtype=_INDEX_DTYPE)
    return generic.UniqueCountsResult(tf.cast(values, _tensor(x).dtype), counts)


def unique_inverse(x: Any, /) -> generic.UniqueInverseResult:
    values, inverse = generic.unique_inverse(_sortable(x), xp=_this, index_dtype=_INDEX_DTYPE)
    return generic.UniqueInverseResult(tf.cast(values, _tensor(x).dtype), inverse)


def unique_values(x: Any, /) -> tf.Tensor:
    return tf.cast(generic.unique_values(_sortable(x), xp=_this, index_dtype=_INDEX_DTYPE), _tensor(x).dtype)


# ---------------------------------------------------------------------- creation, utility
def from_dlpack(x: Any, /, *, device: Any = None, copy: builtins.bool | None = None) -> tf.Tensor:
    """A tensor from any object with ``__dlpack__`` (TensorFlow's DLPack import, which shares
    the memory); ``copy=True`` copies."""
    if _is_tensor(x):
        tensor = tf.convert_to_tensor(x)
    else:
        tensor = tf.experimental.dlpack.from_dlpack(x.__dlpack__())
    with _placed(device):
        return tf.identity(tensor) if copy or device is not None else tensor


def meshgrid(*arrays: Any, indexing: str = "xy") -> list:
    """Coordinate arrays from 1-D arrays, as a list (``"xy"``: Cartesian, ``"ij"``: matrix)."""
    return generic.meshgrid(*(_tensor(a) for a in arrays), indexing=indexing, xp=_this)


def diff(x: Any, /, *, axis: int = -1, n: int = 1, prepend: Any = None, append: Any = None) -> tf.Tensor:
    """The ``n``-th forward difference along ``axis``; differentiable."""
    return generic.diff(_tensor(x), axis=axis, n=n, prepend=prepend, append=append, xp=_this)


# Half-precision element-wise math in float32, rounded once (dtypes.HALF_IN_FLOAT32 says why).
dtypes.compute_halves_in_float32(globals())
_this = sys.modules[__name__]

# The extensions, as sub-namespaces ``xp.linalg`` and ``xp.fft`` (imported last: they use this module).
from . import fft, linalg  # noqa: E402, F401 (exported through globals() into xp)

#: What the backend hands out as ``xp``: only the standard's names, none of this module's helpers.
xp = build_namespace("portable_dl.backends.tensorflow.xp", globals())
