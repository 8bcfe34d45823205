"""The names every namespace exports, declared once: the array API standard, version 2024.12.

Taken from the standard's own stubs (``data-apis/array-api``, ``src/array_api_stubs/_2024_12``,
each module's ``__all__``), grouped as the specification groups them. A namespace exports
every name here and nothing else: ``tests/test_namespace_surface.py`` holds each backend to it.

A namespace module keeps its imports and private helpers; :func:`build_namespace` copies
only the standard's names out of it into the module object a backend hands out as ``xp``,
so nothing that is not in the standard leaks (``xp.torch``, ``xp.x64_enabled``). A function a
framework cannot support is still exported: :func:`unsupported` makes one that raises, naming why.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Any

from portable_dl.backend import HALF_DTYPE_NAMES, STANDARD_DTYPE_NAMES
from portable_dl.errors import DTypeError

__all__ = [
    "VERSION",
    "DTYPES",
    "HALF_DTYPES",
    "CONSTANTS",
    "FUNCTIONS",
    "LINALG",
    "FFT",
    "EXTENSIONS",
    "NAMES",
    "build_namespace",
    "unsupported",
    "unsupported_dtype",
]

#: The value of every namespace's ``__array_api_version__``.
VERSION = "2024.12"

#: The standard's dtypes (``data_types.rst``); complex dtypes are required since 2022.12. Declared
#: once, in the front end (which may not import the backends), and taken from there.
DTYPES = STANDARD_DTYPE_NAMES

#: The one extension of the standard's names: the half-precision floats. The standard (2024.12)
#: has no 16-bit float, but models train in them on GPUs and Apple silicon, so every namespace
#: whose framework has one exports it (``xp.float16``, ``xp.bfloat16``) for ``backend.dtype`` to
#: find. A namespace may lack one (NumPy's bfloat16 needs ``ml_dtypes``): the surface test allows
#: these names but does not require them. ``__array_namespace_info__().dtypes()`` keeps the
#: standard's list, which array-api-tests iterates.
HALF_DTYPES = HALF_DTYPE_NAMES

#: ``constants.py``.
CONSTANTS = ("e", "inf", "nan", "newaxis", "pi")

#: The main namespace's functions, one tuple per module of the specification.
CREATION = (
    "arange",
    "asarray",
    "empty",
    "empty_like",
    "eye",
    "from_dlpack",
    "full",
    "full_like",
    "linspace",
    "meshgrid",
    "ones",
    "ones_like",
    "tril",
    "triu",
    "zeros",
    "zeros_like",
)
DATA_TYPE = ("astype", "can_cast", "finfo", "iinfo", "isdtype", "result_type")
ELEMENTWISE = (
    "abs",
    "acos",
    "acosh",
    "add",
    "asin",
    "asinh",
    "atan",
    "atan2",
    "atanh",
    "bitwise_and",
    "bitwise_left_shift",
    "bitwise_invert",
    "bitwise_or",
    "bitwise_right_shift",
    "bitwise_xor",
    "ceil",
    "clip",
    "conj",
    "copysign",
    "cos",
    "cosh",
    "divide",
    "equal",
    "exp",
    "expm1",
    "floor",
    "floor_divide",
    "greater",
    "greater_equal",
    "hypot",
    "imag",
    "isfinite",
    "isinf",
    "isnan",
    "less",
    "less_equal",
    "log",
    "log1p",
    "log2",
    "log10",
    "logaddexp",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "maximum",
    "minimum",
    "multiply",
    "negative",
    "nextafter",
    "not_equal",
    "positive",
    "pow",
    "real",
    "reciprocal",
    "remainder",
    "round",
    "sign",
    "signbit",
    "sin",
    "sinh",
    "square",
    "sqrt",
    "subtract",
    "tan",
    "tanh",
    "trunc",
)
INDEXING = ("take", "take_along_axis")
LINEAR_ALGEBRA = ("matmul", "matrix_transpose", "tensordot", "vecdot")
MANIPULATION = (
    "broadcast_arrays",
    "broadcast_to",
    "concat",
    "expand_dims",
    "flip",
    "moveaxis",
    "permute_dims",
    "repeat",
    "reshape",
    "roll",
    "squeeze",
    "stack",
    "tile",
    "unstack",
)
SEARCHING = ("argmax", "argmin", "count_nonzero", "nonzero", "searchsorted", "where")
SET = ("unique_all", "unique_counts", "unique_inverse", "unique_values")
SORTING = ("argsort", "sort")
STATISTICAL = ("cumulative_sum", "cumulative_prod", "max", "mean", "min", "prod", "std", "sum", "var")
UTILITY = ("all", "any", "diff")

FUNCTIONS = (
    CREATION
    + DATA_TYPE
    + ELEMENTWISE
    + INDEXING
    + LINEAR_ALGEBRA
    + MANIPULATION
    + SEARCHING
    + SET
    + SORTING
    + STATISTICAL
    + UTILITY
)

#: The ``linalg`` extension (``linalg.py``), exported as ``xp.linalg``.
LINALG = (
    "cholesky",
    "cross",
    "det",
    "diagonal",
    "eigh",
    "eigvalsh",
    "inv",
    "matmul",
    "matrix_norm",
    "matrix_power",
    "matrix_rank",
    "matrix_transpose",
    "outer",
    "pinv",
    "qr",
    "slogdet",
    "solve",
    "svd",
    "svdvals",
    "tensordot",
    "trace",
    "vecdot",
    "vector_norm",
)

#: The ``fft`` extension (``fft.py``), exported as ``xp.fft``.
FFT = (
    "fft",
    "ifft",
    "fftn",
    "ifftn",
    "rfft",
    "irfft",
    "rfftn",
    "irfftn",
    "hfft",
    "ihfft",
    "fftfreq",
    "rfftfreq",
    "fftshift",
    "ifftshift",
)

EXTENSIONS = {"linalg": LINALG, "fft": FFT}

#: Every public name of a namespace, dunder names of the standard included, and the half dtypes.
NAMES = frozenset(DTYPES + HALF_DTYPES + CONSTANTS + FUNCTIONS + tuple(EXTENSIONS)) | {
    "__array_api_version__",
    "__array_namespace_info__",
}


def build_namespace(name: str, members: Mapping[str, Any], doc: str | None = None) -> types.ModuleType:
    """The module object handed out as ``xp``: the standard's names taken from ``members``
    (a namespace module's ``globals()``), nothing else.

    ``members["linalg"]`` and ``members["fft"]`` (any object with attributes, or a mapping)
    become sub-modules holding only the extension's names. Names ``members`` lacks are left
    out, not invented: the surface test reports them.
    """
    module = types.ModuleType(name, doc if doc is not None else members.get("__doc__"))
    for key in sorted(NAMES - set(EXTENSIONS)):
        if key in members:
            setattr(module, key, members[key])
    module.__array_api_version__ = VERSION
    for extension, names in EXTENSIONS.items():
        source = members.get(extension)
        if source is None:
            continue
        sub = types.ModuleType(f"{name}.{extension}", getattr(source, "__doc__", None))
        for key in names:
            value = source.get(key) if isinstance(source, Mapping) else getattr(source, key, None)
            if value is not None:
                setattr(sub, key, value)
        setattr(module, extension, sub)
    return module


def unsupported(name: str, reason: str, error: type[Exception] = NotImplementedError) -> Callable[..., Any]:
    """A stand-in for a standard function the framework cannot compute: it raises ``error``
    (NotImplementedError, or DTypeError for a missing dtype) with ``"<name>: <reason>"``."""

    def function(*args: Any, **kwargs: Any) -> Any:
        raise error(f"{name}: {reason}")

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"Not available on this backend: {reason}."
    return function


def unsupported_dtype(name: str, reason: str) -> Callable[..., Any]:
    """:func:`unsupported` raising :class:`portable_dl.DTypeError` (a dtype the framework lacks)."""
    return unsupported(name, reason, DTypeError)
