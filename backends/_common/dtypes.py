"""Dtype information for namespaces that name the standard's dtypes with their own objects
(MLX, TensorFlow): ``finfo``, ``iinfo``, ``isdtype`` and ``can_cast``, written once.

A namespace binds a :class:`DtypeTable` with its mapping from the standard's names to its
dtype objects and a function that names any of its dtypes, then exports the bound methods.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from portable_dl.errors import DTypeError

from .promotion import KIND_OF, promote_names

__all__ = [
    "FloatInfo",
    "IntegerInfo",
    "DtypeTable",
    "KINDS",
    "half_aware_finfo",
    "half_name",
    "numpy_bfloat16",
    "without_half_kernel",
    "HALF_REFUSING_FFT",
    "FFT_HALF_REASON",
    "refuse_half_factorizations",
    "HALF_IN_FLOAT32",
    "compute_halves_in_float32",
]

#: The standard's dtype kinds and the kinds of KIND_OF each covers.
KINDS = {
    "bool": ("bool",),
    "signed integer": ("signed integer",),
    "unsigned integer": ("unsigned integer",),
    "integral": ("signed integer", "unsigned integer"),
    "real floating": ("real floating",),
    "complex floating": ("complex floating",),
    "numeric": ("signed integer", "unsigned integer", "real floating", "complex floating"),
}


@dataclass(frozen=True)
class FloatInfo:
    """Machine limits of a floating dtype, as the standard's ``finfo`` describes them."""

    bits: int
    eps: float
    max: float
    min: float
    smallest_normal: float
    dtype: Any


@dataclass(frozen=True)
class IntegerInfo:
    """Limits of an integer dtype, as the standard's ``iinfo`` describes them."""

    bits: int
    max: int
    min: int
    dtype: Any


class DtypeTable:
    """The dtype functions of one namespace.

    ``native``: standard name -> the framework's dtype object; ``name_of``: any dtype of the
    framework -> its standard name (raising DTypeError for others).
    """

    def __init__(self, native: dict[str, Any], name_of: Callable[[Any], str]):
        self.native = native
        self.name_of = name_of

    def _name(self, dtype_or_array: Any) -> str:
        # A class is a dtype, never an array: NumPy's scalar types (np.float16) have ``shape``
        # and ``dtype`` attributes too.
        is_array = (
            not isinstance(dtype_or_array, type)
            and hasattr(dtype_or_array, "shape")
            and hasattr(dtype_or_array, "dtype")
        )
        return self.name_of(dtype_or_array.dtype if is_array else dtype_or_array)

    def finfo(self, type: Any, /) -> FloatInfo:
        """Limits of a floating dtype (or of an array's dtype): IEEE 754, so NumPy's numbers.
        A complex dtype gives the limits of its real components (``dtype`` float32 for complex64)."""
        name = self._name(type)
        if KIND_OF[name] == "complex floating":
            name = {"complex64": "float32", "complex128": "float64"}[name]
        if KIND_OF[name] != "real floating":
            raise DTypeError(f"finfo needs a floating dtype, got {name}")
        return half_aware_finfo(name, self.native[name])

    def iinfo(self, type: Any, /) -> IntegerInfo:
        """Limits of an integer dtype (or of an array's dtype)."""
        name = self._name(type)
        if KIND_OF[name] not in ("signed integer", "unsigned integer"):
            raise DTypeError(f"iinfo needs an integer dtype, got {name}")
        info = np.iinfo(name)
        return IntegerInfo(info.bits, int(info.max), int(info.min), self.native[name])

    def isdtype(self, dtype: Any, kind: Any) -> builtins.bool:
        """Whether ``dtype`` is of ``kind``: a kind name, a dtype, or a tuple of them."""
        if isinstance(kind, tuple):
            return builtins.any(self.isdtype(dtype, k) for k in kind)
        name = self.name_of(dtype)
        if isinstance(kind, str):
            if kind not in KINDS:
                raise ValueError(f"unknown dtype kind {kind!r}; kinds are {', '.join(KINDS)}")
            return KIND_OF[name] in KINDS[kind]
        return name == self.name_of(kind)

    def can_cast(self, from_: Any, to: Any, /) -> builtins.bool:
        """Whether type promotion takes ``from_`` (a dtype or an array) to ``to``.

        Only promotions within the standard's lattice count (bool, the integers, the
        floats, each among themselves, and signed with unsigned): a cast across kinds
        (int to float) is a conversion, not a promotion, as array-api-strict reads it.
        """
        source, target = self._name(from_), self.name_of(to)
        if source == target:
            return True
        kinds = {KIND_OF[source], KIND_OF[target]}
        if len(kinds) == 2 and kinds not in (
            {"signed integer", "unsigned integer"},
            {"real floating", "complex floating"},
        ):
            return False
        try:
            return promote_names(source, target) == target
        except DTypeError:
            return False


#: bfloat16's limits, which NumPy's finfo does not know without ml_dtypes: 8 exponent bits like
#: float32 and 7 stored mantissa bits, so eps 2**-7, max (2 - 2**-7) * 2**127, smallest normal 2**-126.
BFLOAT16_INFO = (16, 2.0**-7, (2 - 2.0**-7) * 2.0**127, -(2 - 2.0**-7) * 2.0**127, 2.0**-126)


def half_aware_finfo(name: str, dtype: Any) -> FloatInfo:
    """The standard's ``finfo`` of the real floating dtype named ``name`` (float16, bfloat16,
    float32, float64), with ``dtype`` the namespace's object for it. IEEE numbers, so NumPy's,
    except bfloat16, which NumPy lacks (its numbers are written out in :data:`BFLOAT16_INFO`)."""
    if name == "bfloat16":
        return FloatInfo(*BFLOAT16_INFO, dtype)
    info = np.finfo(name)
    return FloatInfo(
        int(info.bits), float(info.eps), float(info.max), float(info.min), float(info.smallest_normal), dtype
    )


def standard_finfo(info: Any, dtype: Any) -> FloatInfo:
    """The standard's ``finfo`` object from a framework's own (``numpy.finfo``, ``torch.finfo``,
    ``jax.numpy.finfo``): Python floats, as the standard says, and ``dtype`` the namespace's
    dtype object (``torch.finfo`` names it with a string, NumPy's eps is a ``numpy.float32``)."""
    return FloatInfo(
        int(info.bits), float(info.eps), float(info.max), float(info.min), float(info.smallest_normal), dtype
    )


def standard_iinfo(info: Any, dtype: Any) -> IntegerInfo:
    """The standard's ``iinfo`` object from a framework's own: Python ints and the namespace's dtype."""
    return IntegerInfo(int(info.bits), int(info.max), int(info.min), dtype)


def dtype_namer(
    native: dict[str, Any], missing: dict[str, str] | None = None, stand_ins: dict[Any, str] | None = None
) -> Callable[[Any], str]:
    """The ``_dtype_name`` of a namespace whose dtypes are its framework's own objects (MLX,
    TensorFlow): the standard's name of a dtype spelled as one of ``native``'s objects, a
    string, a NumPy dtype or a Python type; :class:`DTypeError` for anything else.

    ``missing`` maps standard names the framework lacks to the reason (MLX's complex128), and
    ``stand_ins`` the namespace's stand-in objects for them to their names.
    """
    by_object = {dtype: name for name, dtype in native.items()}
    by_object.update(stand_ins or {})
    missing = missing or {}

    def name_of(dtype: Any) -> str:
        try:
            name = by_object.get(dtype)
        except TypeError:  # unhashable: not a dtype object
            name = None
        if name is None:
            if isinstance(dtype, str):
                name = dtype
            else:
                try:
                    name = np.dtype(dtype).name
                except TypeError:
                    raise DTypeError(f"{dtype!r} is not a dtype") from None
        if name in missing:
            raise DTypeError(f"{name}: {missing[name]}")
        if name not in native:
            raise DTypeError(f"{dtype!r} is not one of the dtypes portable_dl supports here: {', '.join(native)}")
        return name

    return name_of


#: How to get NumPy's bfloat16, said wherever it is missing.
ML_DTYPES_HINT = "NumPy has no bfloat16 of its own: pip install ml_dtypes (it comes with jax and tensorflow)"


def numpy_bfloat16() -> Any:
    """NumPy's bfloat16 scalar type, from ``ml_dtypes``; :class:`DTypeError` saying how to
    install it where it is missing."""
    try:
        from ml_dtypes import bfloat16
    except ImportError:
        raise DTypeError(f"bfloat16: {ML_DTYPES_HINT}") from None
    return bfloat16


def half_name(dtype: Any) -> str | None:
    """``"float16"`` or ``"bfloat16"`` when ``dtype`` (any framework's dtype object) is one of
    the half floats, else None. By the dtype's printed name, which every framework spells with
    the standard's name in it (``torch.bfloat16``, ``<dtype: 'float16'>``, ``mlx.core.float16``)."""
    text = str(dtype)
    if "float16" not in text:  # the common case, one test
        return None
    return "bfloat16" if "bfloat16" in text else "float16"


#: The transforms of arrays: the standard has no complex half dtype for their results, and the
#: frameworks disagree (NumPy widens to complex128, PyTorch's CPU has no half FFT, JAX's rfft
#: refuses halves): every backend refuses float16 and bfloat16 input alike. The shifts move data
#: and take every dtype; fftfreq and rfftfreq take no array.
HALF_REFUSING_FFT = ("fft", "ifft", "fftn", "ifftn", "rfft", "irfft", "rfftn", "irfftn", "hfft", "ihfft")
FFT_HALF_REASON = "the array API has no complex dtype of {dtype}'s precision for the result"


def without_half_kernel(
    function: Callable,
    name: str,
    framework: str,
    reason: str | None = None,
    when: Callable[..., bool] | None = None,
) -> Callable:
    """``function`` raising :class:`DTypeError` when its first argument is a float16 or
    bfloat16 array: for functions whose framework has no half-precision kernel (LAPACK's
    factorizations). Checked before the call, so the error is the same whatever the
    framework would have said (NotImplementedError, RuntimeError, a silent float64 result),
    and the result never comes back in another dtype. The message names the function, the
    dtype and why: ``"<framework> has no <dtype> kernel for this function"``, or ``reason``
    (with ``{dtype}`` in it) when the cause is not the framework's. ``when(x, *args, **kwargs)``
    limits the refusal to the calls that need the missing kernel (a matrix norm of ord 2)."""
    why = reason or framework + " has no {dtype} kernel for this function"

    @functools.wraps(function)
    def checked(x: Any, /, *args: Any, **kwargs: Any) -> Any:
        half = half_name(getattr(x, "dtype", None))
        if half is not None and (when is None or when(x, *args, **kwargs)):
            raise DTypeError(f"{name}: {why.format(dtype=half)}; cast to float32 first")
        return function(x, *args, **kwargs)

    return checked


def refuse_half_factorizations(linalg: Any, names: tuple[str, ...], framework: str) -> None:
    """Wrap, in the ``linalg`` namespace object, the functions ``names`` (the factorizations
    ``framework`` has no half kernel for) and the two that call them for some arguments:
    ``matrix_norm`` of ord 2, -2 and "nuc" (singular values) and ``matrix_power`` of a negative
    power (an inverse), with :func:`without_half_kernel`."""
    for name in names:
        setattr(linalg, name, without_half_kernel(getattr(linalg, name), name, framework))
    linalg.matrix_norm = without_half_kernel(
        linalg.matrix_norm, "matrix_norm", framework, when=lambda x, /, *, ord="fro", **_: ord in (2, -2, "nuc")
    )
    linalg.matrix_power = without_half_kernel(
        linalg.matrix_power, "matrix_power", framework, when=lambda x, n, /: n < 0
    )


#: The element-wise functions whose half-precision results some frameworks compose from
#: several half-precision operations (TensorFlow's ``log2`` is ``log(x) / log(2)`` rounded
#: twice; XLA's ``asinh``, ``hypot``; MLX's ``logaddexp``), each rounding, so that they come
#: out 2 units of the half precision off or more. PyTorch and NumPy compute halves in float32
#: and round once; :func:`compute_halves_in_float32` makes the others do the same (XLA's float16
#: ``divide`` is off by 1.7 units too).
HALF_IN_FLOAT32 = (
    "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt",
    "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh",
    "divide", "atan2", "hypot", "pow", "logaddexp",
)  # fmt: skip


def compute_halves_in_float32(module_globals: dict, names: tuple[str, ...] = HALF_IN_FLOAT32) -> None:
    """Rebind, in a namespace module's ``module_globals``, each function of ``names`` so that
    when its array arguments are of one half dtype (float16 or bfloat16; Python scalars may
    join them) it computes in float32 and rounds the result once to that dtype, with the
    module's own ``astype``; every other call is passed through unchanged. Differentiable and
    compilable: the casts are the framework's own."""
    astype, float32 = module_globals["astype"], module_globals["float32"]

    def in_float32(function: Callable) -> Callable:
        @functools.wraps(function)
        def computed(*args: Any) -> Any:
            halves = {half_name(a.dtype) for a in args if hasattr(a, "dtype") and hasattr(a, "shape")}
            if len(halves) != 1 or None in halves:
                return function(*args)
            dtype = next(a.dtype for a in args if hasattr(a, "dtype") and hasattr(a, "shape"))
            widened = (astype(a, float32) if hasattr(a, "dtype") and hasattr(a, "shape") else a for a in args)
            return astype(function(*widened), dtype)

        return computed

    for name in names:
        module_globals[name] = in_float32(module_globals[name])
