"""The ops family: every function of the namespaces against the reference.

For each function: values on random inputs in its domain (against NumPy in float64), values
on edge inputs (zeros of both signs, large magnitudes, infinities, NaN; against NumPy in the
same dtype, since float32 overflows where float64 does not), and the result's dtype and
shape (exactly). The dtype cases check the standard's type promotion.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from portable_dl.backend import Backend

from .cases import HALF_DTYPES, Case, Outputs, with_half_precision
from .tolerances import UNSPECIFIED_ZERO_SIGN

FAMILY = "ops"

#: Edge inputs for element-wise functions: signed zeros, small and large magnitudes, the
#: largest finite float32, infinities and NaN.
EDGE_VALUES = [
    0.0,
    -0.0,
    1e-30,
    -1e-30,
    0.5,
    -0.5,
    1.0,
    -1.0,
    30.0,
    -30.0,
    88.0,
    1e30,
    -1e30,
    3e38,
    np.inf,
    -np.inf,
    np.nan,
]

DOMAINS: dict[str, Callable[[np.random.Generator, tuple], np.ndarray]] = {
    "any": lambda rng, shape: rng.uniform(-3, 3, shape),
    "positive": lambda rng, shape: rng.uniform(0.1, 4, shape),
    "unit": lambda rng, shape: rng.uniform(-0.9, 0.9, shape),
    "above_one": lambda rng, shape: rng.uniform(1.1, 4, shape),
    "away_from_zero": lambda rng, shape: rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 3, shape),
    "quarter_steps": lambda rng, shape: np.round(rng.uniform(-3, 3, shape) * 4) / 4 + 0.1,
}

UNARY = {
    "abs": "any",
    "negative": "any",
    "positive": "any",
    "sign": "any",
    "exp": "any",
    "expm1": "any",
    "log": "positive",
    "log1p": "positive",
    "log2": "positive",
    "log10": "positive",
    "sqrt": "positive",
    "square": "any",
    "reciprocal": "away_from_zero",
    "sin": "any",
    "cos": "any",
    "tan": "unit",
    "asin": "unit",
    "acos": "unit",
    "atan": "any",
    "sinh": "any",
    "cosh": "any",
    "tanh": "any",
    "asinh": "any",
    "acosh": "above_one",
    "atanh": "unit",
    "floor": "any",
    "ceil": "any",
    "trunc": "any",
    "round": "quarter_steps",
    "isnan": "any",
    "isinf": "any",
    "isfinite": "any",
}

BINARY = {
    "add": "any",
    "subtract": "any",
    "multiply": "any",
    "divide": "away_from_zero",
    "pow": "any",
    "maximum": "any",
    "minimum": "any",
    "atan2": "away_from_zero",
    "hypot": "any",
    "copysign": "away_from_zero",
    "logaddexp": "any",
    "equal": "any",
    "not_equal": "any",
    "less": "any",
    "less_equal": "any",
    "greater": "any",
    "greater_equal": "any",
}


def as_outputs(backend: Backend, result: Any, prefix: str = "") -> Outputs:
    """Value, shape and dtype of an array result, as case outputs."""
    value = backend.to_numpy(result)
    return {
        f"{prefix}shape": tuple(int(d) for d in result.shape),
        f"{prefix}dtype": backend.dtype_name(result.dtype),
        f"{prefix}value": np.asarray(value, dtype=np.float64),
    }


def draw(domain: str, shape: tuple, seed: int) -> np.ndarray:
    """Random float64 inputs in ``domain``, each exactly representable in float32: the
    float64 reference then sees the very inputs a float32 run sees, and an element-wise
    result can be judged element by element (an input rounded differently would measure
    the function's conditioning, as for ``subtract`` of near-equal values, not its error)."""
    return DOMAINS[domain](np.random.default_rng(seed), shape).astype(np.float32).astype(np.float64)


def unary_cases() -> list[Case]:
    cases = []
    for name, domain in UNARY.items():

        def compute(backend, dtype, name=name, domain=domain):
            x = backend.asarray(draw(domain, (4, 5), 1), dtype)
            return as_outputs(backend, getattr(backend.xp, name)(x))

        def compute_edges(backend, dtype, name=name):
            x = backend.asarray(np.array(EDGE_VALUES), dtype)
            return as_outputs(backend, getattr(backend.xp, name)(x))

        zero_sign = name not in UNSPECIFIED_ZERO_SIGN
        cases.append(Case(FAMILY, name, compute, elementwise=True, zero_sign=zero_sign))
        cases.append(
            Case(
                FAMILY,
                f"{name} edge inputs",
                compute_edges,
                reference_dtype="same",
                elementwise=True,
                zero_sign=zero_sign,
            )
        )
    return cases


def binary_cases() -> list[Case]:
    cases = []
    for name, domain in BINARY.items():

        def compute(backend, dtype, name=name, domain=domain):
            a = backend.asarray(draw("positive" if name == "pow" else "any", (3, 4), 2), dtype)
            b = backend.asarray(draw(domain, (4,), 3), dtype)
            return as_outputs(backend, getattr(backend.xp, name)(a, b))

        def compute_edges(backend, dtype, name=name):
            values = np.array(EDGE_VALUES)
            if name == "divide":
                # XLA on CPU flushes subnormals to zero and divides arrays through the
                # reciprocal: inf / 3e38 = inf * (1 / 3e38) = inf * 0 = NaN there. Subnormal
                # handling is a platform's choice (GPUs flush too), not the operation's.
                values = values[values != 3e38]
            a = backend.asarray(values[:, None], dtype)
            b = backend.asarray(values[None, :], dtype)
            return as_outputs(backend, getattr(backend.xp, name)(a, b))

        zero_sign = name not in UNSPECIFIED_ZERO_SIGN
        cases.append(Case(FAMILY, name, compute, elementwise=True, zero_sign=zero_sign))
        if name != "pow":  # pow's edge table (0**-inf, (-1)**inf, ...) is IEEE's, not the standard's subject
            cases.append(
                Case(
                    FAMILY,
                    f"{name} edge inputs",
                    compute_edges,
                    reference_dtype="same",
                    elementwise=True,
                    zero_sign=zero_sign,
                )
            )
    return cases


def reduction_cases(quick: bool = False) -> list[Case]:
    cases = []
    for name in ("sum", "mean", "max", "min", "prod", "var", "std"):
        for axis in (1,) if quick else (None, 1, (0, 2)):

            def compute(backend, dtype, name=name, axis=axis):
                x = backend.asarray(draw("positive" if name == "prod" else "any", (3, 4, 5), 4), dtype)
                keyword = {"correction": 1} if name in ("var", "std") else {}
                outputs = as_outputs(backend, getattr(backend.xp, name)(x, axis=axis, **keyword))
                outputs.update(
                    as_outputs(backend, getattr(backend.xp, name)(x, axis=axis, keepdims=True, **keyword), "keepdims ")
                )
                return outputs

            cases.append(Case(FAMILY, f"{name} axis={axis}", compute, reduction_size=60))

        def compute_edges(backend, dtype, name=name):
            rows = [[0.0, -0.0, 1.0], [np.inf, 1.0, 2.0], [np.nan, 1.0, 2.0]]
            if name not in ("var", "std"):
                # Whether var's intermediate squares overflow is an implementation's choice
                # (torch's Welford update does not, NumPy's two-pass form does): not checked.
                rows.append([3e38, 3e38, 1.0])
            x = backend.asarray(np.array(rows), dtype)
            return as_outputs(backend, getattr(backend.xp, name)(x, axis=1))

        cases.append(Case(FAMILY, f"{name} edge inputs", compute_edges, reference_dtype="same", reduction_size=3))
    return cases


#: Functions returning indices: the standard leaves the index dtype to the implementation
#: (int64 in NumPy and PyTorch, int32 in JAX without x64 and in MLX), so the case checks
#: that it is the namespace's own default index dtype.
INDEX_RESULTS = ("argmax", "argmin", "argsort")


def _case(name: str, function: Callable[[Backend, str], Any], reduction_size: int = 1) -> Case:
    def compute(backend: Backend, dtype: str) -> Outputs:
        result = function(backend, dtype)
        outputs = as_outputs(backend, result)
        if name.split()[0] in INDEX_RESULTS:
            outputs.pop("dtype")
            outputs.update(_index_dtype_outputs(backend, result, "indexing"))
        return outputs

    # One term per element (copies, selections, creation): judged element by element.
    return Case(FAMILY, name, compute, reduction_size=reduction_size, elementwise=reduction_size == 1)


def structured_cases() -> list[Case]:
    """Linear algebra, manipulation, searching, creation: one case each."""
    a = lambda backend, dtype, shape=(2, 3, 4), seed=5: backend.asarray(draw("any", shape, seed), dtype)
    table: list[tuple[str, Callable[[Backend, str], Any], int]] = [
        ("matmul", lambda be, dt: be.xp.matmul(a(be, dt), a(be, dt, (4, 6), 6)), 4),
        ("matmul vector", lambda be, dt: be.xp.matmul(a(be, dt, (4,), 6), a(be, dt, (2, 4, 3), 7)), 4),
        ("tensordot", lambda be, dt: be.xp.tensordot(a(be, dt), a(be, dt, (3, 4, 2), 6), axes=2), 12),
        ("tensordot axes lists", lambda be, dt: be.xp.tensordot(a(be, dt), a(be, dt, (4, 2), 6), axes=([2], [0])), 4),
        ("vecdot", lambda be, dt: be.xp.vecdot(a(be, dt), a(be, dt, (3, 4), 6)), 4),
        ("matrix_transpose", lambda be, dt: be.xp.matrix_transpose(a(be, dt)), 1),
        ("reshape", lambda be, dt: be.xp.reshape(a(be, dt), (4, -1)), 1),
        ("permute_dims", lambda be, dt: be.xp.permute_dims(a(be, dt), (2, 0, 1)), 1),
        ("expand_dims", lambda be, dt: be.xp.expand_dims(a(be, dt), axis=-1), 1),
        ("squeeze", lambda be, dt: be.xp.squeeze(a(be, dt, (2, 1, 4)), axis=1), 1),
        ("concat", lambda be, dt: be.xp.concat([a(be, dt), a(be, dt, (2, 1, 4), 6)], axis=1), 1),
        ("concat axis=None", lambda be, dt: be.xp.concat([a(be, dt), a(be, dt, (5,), 6)], axis=None), 1),
        ("stack", lambda be, dt: be.xp.stack([a(be, dt), a(be, dt, seed=6)], axis=1), 1),
        ("broadcast_to", lambda be, dt: be.xp.broadcast_to(a(be, dt, (3, 1)), (2, 3, 4)), 1),
        ("broadcast_arrays", lambda be, dt: be.xp.broadcast_arrays(a(be, dt, (3, 1)), a(be, dt, (2, 1, 4), 6))[0], 1),
        ("flip", lambda be, dt: be.xp.flip(a(be, dt), axis=(0, 2)), 1),
        ("roll", lambda be, dt: be.xp.roll(a(be, dt), 3, axis=2), 1),
        ("tile", lambda be, dt: be.xp.tile(a(be, dt), (2, 1, 1)), 1),
        ("repeat", lambda be, dt: be.xp.repeat(a(be, dt), 2, axis=1), 1),
        ("moveaxis", lambda be, dt: be.xp.moveaxis(a(be, dt), 0, 2), 1),
        ("unstack", lambda be, dt: be.xp.unstack(a(be, dt), axis=2)[1], 1),
        ("where", lambda be, dt: be.xp.where(be.xp.greater(a(be, dt), 0.0), a(be, dt), a(be, dt, (4,), 6)), 1),
        ("clip", lambda be, dt: be.xp.clip(a(be, dt), min=-1.0, max=0.5), 1),
        ("clip one-sided", lambda be, dt: be.xp.clip(a(be, dt), max=0.5), 1),
        ("argmax", lambda be, dt: be.xp.argmax(a(be, dt), axis=1), 1),
        ("argmin", lambda be, dt: be.xp.argmin(a(be, dt), axis=-1, keepdims=True), 1),
        ("take", lambda be, dt: be.xp.take(a(be, dt), be.asarray(np.array([3, 0, 3])), axis=2), 1),
        (
            "take_along_axis",
            lambda be, dt: be.xp.take_along_axis(a(be, dt), be.asarray(np.array([[[0], [3], [1]]] * 2)), axis=2),
            1,
        ),
        ("sort", lambda be, dt: be.xp.sort(a(be, dt), axis=1), 1),
        ("sort descending", lambda be, dt: be.xp.sort(a(be, dt), axis=-1, descending=True), 1),
        ("argsort", lambda be, dt: be.xp.argsort(a(be, dt), axis=1), 1),
        ("cumulative_sum", lambda be, dt: be.xp.cumulative_sum(a(be, dt), axis=2), 4),
        ("zeros", lambda be, dt: be.xp.zeros((2, 3), dtype=be.dtype(dt)), 1),
        ("ones", lambda be, dt: be.xp.ones((2, 3), dtype=be.dtype(dt)), 1),
        ("full", lambda be, dt: be.xp.full((2, 3), 0.25, dtype=be.dtype(dt)), 1),
        ("arange", lambda be, dt: be.xp.arange(0.5, 3, 0.5, dtype=be.dtype(dt)), 1),
        ("linspace", lambda be, dt: be.xp.linspace(-1, 1, 9, dtype=be.dtype(dt)), 1),
        ("eye", lambda be, dt: be.xp.eye(3, 4, k=1, dtype=be.dtype(dt)), 1),
        ("zeros_like", lambda be, dt: be.xp.zeros_like(a(be, dt)), 1),
        ("ones_like", lambda be, dt: be.xp.ones_like(a(be, dt)), 1),
        ("full_like", lambda be, dt: be.xp.full_like(a(be, dt), 2.0), 1),
        ("tril", lambda be, dt: be.xp.tril(a(be, dt, (4, 4))), 1),
        ("triu", lambda be, dt: be.xp.triu(a(be, dt, (4, 4)), k=1), 1),
    ]
    return [_case(name, function, size) for name, function, size in table]


def _index_dtype_outputs(backend: Backend, result: Any, kind: str) -> Outputs:
    default = backend.dtype_name(backend.xp.__array_namespace_info__().default_dtypes()[kind])
    return {"is the default " + kind + " dtype": backend.dtype_name(result.dtype) == default}


def promotion_cases() -> list[Case]:
    """Result dtypes under the standard's promotion rules, and integer arithmetic."""

    def arrays(backend, *specs):
        return [backend.asarray(np.ones(3, dtype=d) * 3) for d in specs]

    def binary(backend, x1, x2):
        return {"dtype": backend.dtype_name(backend.xp.add(x1, x2).dtype)}

    table: list[tuple[str, Callable[[Backend, str], Outputs]]] = [
        ("promotion array + Python float is weak", lambda be, dt: binary(be, be.asarray(np.ones(2), dt), 1.5)),
        ("promotion array + Python int is weak", lambda be, dt: binary(be, be.asarray(np.ones(2), dt), 2)),
        ("promotion int8 + int16", lambda be, dt: binary(be, *arrays(be, "int8", "int16"))),
        ("promotion uint8 + int8", lambda be, dt: binary(be, *arrays(be, "uint8", "int8"))),
        ("promotion int32 + Python int", lambda be, dt: binary(be, arrays(be, "int32")[0], 7)),
        (
            "promotion bool and bool",
            lambda be, dt: {"dtype": be.dtype_name(be.xp.logical_and(*arrays(be, "bool", "bool")).dtype)},
        ),
        (
            "integer sum uses the default integer",
            lambda be, dt: {
                **_index_dtype_outputs(be, be.xp.sum(be.asarray(np.full(300, 100, dtype="int8"))), "integral"),
                "value": float(be.to_numpy(be.xp.sum(be.asarray(np.full(300, 100, dtype="int8"))))),
            },
        ),
        (
            "argmax gives the default index dtype",
            lambda be, dt: _index_dtype_outputs(be, be.xp.argmax(be.asarray(np.arange(4.0), dt)), "indexing"),
        ),
        (
            "integer floor_divide and remainder",
            lambda be, dt: {
                "floor_divide": be.to_numpy(
                    be.xp.floor_divide(be.asarray(np.array([7, -7, 7, -7])), be.asarray(np.array([2, 2, -2, -2])))
                ).astype(np.float64),
                "remainder": be.to_numpy(
                    be.xp.remainder(be.asarray(np.array([7, -7, 7, -7])), be.asarray(np.array([2, 2, -2, -2])))
                ).astype(np.float64),
            },
        ),
        (
            "astype float to int truncates",
            lambda be, dt: as_outputs(be, be.xp.astype(be.asarray(np.array([1.7, -1.7, 2.5]), dt), be.dtype("int32"))),
        ),
    ]
    cases = [Case(FAMILY, name, compute) for name, compute in table]

    def mixed_float(backend, dtype):
        if not backend.supports("float64"):
            from .cases import CaseSkipped

            raise CaseSkipped(f"{backend.name} on {backend.device} has no float64")
        return binary(backend, backend.asarray(np.ones(2), "float32"), backend.asarray(np.ones(2), "float64"))

    cases.append(Case(FAMILY, "promotion float32 + float64", mixed_float))
    return cases


#: Ties: rows with repeated values, signed zeros (which compare equal) and all-equal rows.
TIES = [[1.0, 3.0, 3.0, 0.0, 3.0], [2.0, 2.0, 2.0, 2.0, 2.0], [-0.0, 0.0, -1.0, 0.0, -1.0], [5.0, 1.0, 1.0, 5.0, 1.0]]
FLAT_TIES = [value for row in TIES for value in row]


def _first_occurrences(rows: list[list[float]], pick: Callable) -> list[int]:
    return [row.index(pick(row)) for row in rows]


def _stable_order(row: list[float], descending: bool) -> list[int]:
    # Python's sort is stable: equal keys keep their order, in both directions.
    return sorted(range(len(row)), key=lambda i: -row[i] if descending else row[i])


def tie_cases() -> list[Case]:
    """argmax/argmin give the first occurrence of the extreme value; sort and argsort are
    stable (equal values keep their order), ascending and descending: the standard's
    default ``stable=True``. Expected indices are derived here by hand (Python's own stable
    sort), not by NumPy."""

    def indices(backend, result) -> tuple:
        values = result if isinstance(result, np.ndarray) else backend.to_numpy(result)
        return tuple(int(i) for i in np.asarray(values).reshape(-1))

    table: dict[str, tuple[Callable, Callable[[], tuple]]] = {
        "argmax ties give the first occurrence": (
            lambda be, x: be.xp.argmax(x, axis=1),
            lambda: tuple(_first_occurrences(TIES, max)),
        ),
        "argmin ties give the first occurrence": (
            lambda be, x: be.xp.argmin(x, axis=1),
            lambda: tuple(_first_occurrences(TIES, min)),
        ),
        "argmax ties over the flattened array": (
            lambda be, x: be.xp.argmax(x),
            lambda: (FLAT_TIES.index(max(FLAT_TIES)),),
        ),
        "argsort is stable": (
            lambda be, x: be.xp.argsort(x, axis=1),
            lambda: tuple(i for row in TIES for i in _stable_order(row, False)),
        ),
        "argsort descending is stable": (
            lambda be, x: be.xp.argsort(x, axis=1, descending=True),
            lambda: tuple(i for row in TIES for i in _stable_order(row, True)),
        ),
        "sort keeps signed zeros in order": (
            lambda be, x: np.signbit(be.to_numpy(be.xp.sort(x, axis=1))),
            lambda: tuple(int(np.signbit(row[i])) for row in TIES for i in _stable_order(row, False)),
        ),
    }
    cases = []
    for name, (function, expected_indices) in table.items():

        def compute(backend, dtype, function=function):
            return {"indices": indices(backend, function(backend, backend.asarray(np.array(TIES), dtype)))}

        def expected(backend, dtype, expected_indices=expected_indices):
            return {"indices": expected_indices()}

        cases.append(Case(FAMILY, name, compute, expected=expected))
    return cases


def cases(quick: bool = False, seed: int = 0) -> list[Case]:
    """Every ops case; ``quick`` keeps one case in eight of the element-wise functions,
    one in three of the reductions and of the structured functions."""
    element_wise, reductions, structured = unary_cases() + binary_cases(), reduction_cases(quick), structured_cases()
    if quick:
        element_wise, reductions, structured = element_wise[::8], reductions[::3], structured[::3]
    from . import type_promotion
    from .ops_coverage import cases as coverage_cases  # arguments and functions the cases above never reach
    from .standard_functions import ops_cases as standard_function_cases  # issue 14: the functions 2024.12 added

    return with_half_precision(
        element_wise
        + reductions
        + structured
        + promotion_cases()
        + tie_cases()
        + type_promotion.cases(quick)
        + standard_function_cases(quick, seed)
        + coverage_cases(quick),
        HALF_PRECISION_EXCLUDED,
    )


#: Cases that do not run in float16 or bfloat16 (``--dtype``), by a part of their names:
#: the half dtypes they leave out, and why (a skipped row says it).
HALF_PRECISION_EXCLUDED = {
    "promotion": (HALF_DTYPES, "the promotion cases check the standard's table, which has no half-precision dtypes"),
    "complex": (HALF_DTYPES, "no complex dtype has half-precision parts (the standard has complex64 and complex128)"),
    "fft": (HALF_DTYPES, "the Fourier transforms give complex results, and no complex dtype has half-precision parts"),
    "from_dlpack": (("bfloat16",), "NumPy, the reference, exchanges no bfloat16 array through DLPack"),
}
