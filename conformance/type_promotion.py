"""Type promotion of every binary function, judged against the array API standard's table.

The expected dtypes are written out here, pair by pair, from the standard's promotion
table ("Type Promotion Rules", array API standard 2023.12), independently of
``backends/_common/promotion.py`` and of every framework, and given to each case as its
``expected`` outputs: a rule the NumPy reference also broke would still fail.

Where the standard says "implementation-defined", portable_dl's rule (README,
"Conventions") is checked instead:

- an integer array meeting a floating array gives that floating dtype (``int64 +
  float32 -> float32``, as PyTorch and JAX do), so integer labels never move a float32
  model to float64;
- a Python ``bool`` meeting a floating array takes the array's dtype, like ``int`` and
  ``float``; a Python ``float`` meeting an integer array gives the namespace's default
  floating dtype.

Each case runs in float32 and in float64: the pairs that involve the dtype under test,
plus (in float32) the integer pairs, which involve no floating dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from portable_dl.backend import Backend

from .cases import Case, Outputs

FAMILY = "ops"

#: Arithmetic functions defined for every real dtype.
NUMERIC = ("add", "subtract", "multiply", "maximum", "minimum", "pow", "floor_divide", "remainder")
#: Functions the standard defines for floating-point arrays only.
FLOATING_ONLY = ("divide", "atan2", "hypot", "copysign", "logaddexp")
#: Comparisons: bool whatever the operands' dtypes.
COMPARISONS = ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")

#: Integer pairs, straight from the standard's table (signed, unsigned and mixed).
INTEGER_PAIRS = {
    ("int8", "int16"): "int16",
    ("int16", "int8"): "int16",
    ("int8", "int64"): "int64",
    ("int32", "int16"): "int32",
    ("uint8", "uint16"): "uint16",
    ("uint8", "int8"): "int16",
    ("int8", "uint8"): "int16",
    ("uint8", "int32"): "int32",
    ("int64", "uint8"): "int64",
}

#: Pairs with the floating dtype under test: the standard's float32 + float64, and the
#: project's rule for integers meeting floats.
FLOATING_PAIRS = {
    "float32": {
        ("float32", "float64"): "float64",
        ("int32", "float32"): "float32",
        ("float32", "int64"): "float32",
        ("uint8", "float32"): "float32",
        ("float32", "int8"): "float32",
        ("float32", "float32"): "float32",
    },
    "float64": {
        ("float64", "float32"): "float64",
        ("int8", "float64"): "float64",
        ("float64", "int32"): "float64",
        ("uint8", "float64"): "float64",
        ("float64", "float64"): "float64",
    },
}

#: Python scalars on either side of an array: (array dtype, scalar, scalar first) -> result.
#: ``None`` for the result: the namespace's default floating dtype (the project's rule).
SCALAR_PAIRS = {
    "float32": [
        ("float32", 2.5, False),
        ("float32", 3, True),
        ("float32", True, False),
        ("int32", 7, False),
        ("int8", 3, True),
        ("uint8", 2, False),
        ("int32", 0.5, False),
    ],
    "float64": [("float64", 2.5, True), ("float64", 3, False), ("float64", False, True), ("int16", 5, False)],
}


def _scalar_result(array_dtype: str, scalar: Any) -> str | None:
    """The standard's (and, where it is silent, the project's) dtype of array op scalar."""
    if array_dtype.startswith("float"):
        return array_dtype  # bool, int, float scalars: the array's dtype
    if isinstance(scalar, float):
        return None  # integer array with a Python float: the default floating dtype
    return array_dtype  # integer array with a Python int (or bool): the array's dtype


def _values(dtype: str) -> np.ndarray:
    # Small positive values every function accepts in every dtype (pow, remainder, hypot).
    return np.array([3, 2, 1], dtype=dtype)


def _pairs_for(function: str, dtype: str) -> list[tuple[str, str, str]]:
    pairs = dict(FLOATING_PAIRS[dtype])
    if dtype == "float32" and function not in FLOATING_ONLY:
        pairs.update(INTEGER_PAIRS)
    return [(a, b, result) for (a, b), result in pairs.items()]


def _scalars_for(function: str, dtype: str) -> list[tuple[str, Any, bool]]:
    scalars = SCALAR_PAIRS[dtype]
    if function in FLOATING_ONLY:
        scalars = [entry for entry in scalars if entry[0].startswith("float")]
    return scalars


def _label(value: Any) -> str:
    return f"Python {type(value).__name__} {value!r}"


def promotion_case(function: str) -> Case:
    def compute(backend: Backend, dtype: str) -> Outputs:
        xp, outputs = backend.xp, {}
        for first, second, _ in _pairs_for(function, dtype):
            if backend.supports(first) and backend.supports(second):
                result = getattr(xp, function)(backend.asarray(_values(first)), backend.asarray(_values(second)))
                outputs[f"{first} with {second}"] = backend.dtype_name(result.dtype)
        for array_dtype, scalar, scalar_first in _scalars_for(function, dtype):
            if backend.supports(array_dtype):
                array = backend.asarray(_values(array_dtype))
                result = getattr(xp, function)(*((scalar, array) if scalar_first else (array, scalar)))
                key = f"{_label(scalar)} with {array_dtype}" if scalar_first else f"{array_dtype} with {_label(scalar)}"
                outputs[key] = backend.dtype_name(result.dtype)
        return outputs

    def expected(backend: Backend, dtype: str) -> Outputs:
        default_float = backend.dtype_name(backend.xp.__array_namespace_info__().default_dtypes()["real floating"])
        outputs = {}
        for first, second, result in _pairs_for(function, dtype):
            if backend.supports(first) and backend.supports(second):
                outputs[f"{first} with {second}"] = "bool" if function in COMPARISONS else result
        for array_dtype, scalar, scalar_first in _scalars_for(function, dtype):
            if backend.supports(array_dtype):
                key = f"{_label(scalar)} with {array_dtype}" if scalar_first else f"{array_dtype} with {_label(scalar)}"
                result = _scalar_result(array_dtype, scalar) or default_float
                outputs[key] = "bool" if function in COMPARISONS else result
        return outputs

    return Case(FAMILY, f"promotion {function}", compute, expected=expected)


def cases(quick: bool = False) -> list[Case]:
    """One case per binary function; ``quick``: one function of each group."""
    functions = NUMERIC + FLOATING_ONLY + COMPARISONS
    if quick:
        functions = ("add", "divide", "less")
    return [promotion_case(function) for function in functions]
