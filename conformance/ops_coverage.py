"""Ops cases for what the other ops cases never reach: functions with no case of their own
(``logical_*``, ``empty``, ``result_type``, ``isdtype``, ``iinfo``), and arguments the
common cases leave at one value (a ``squeeze`` among several unit axes, ``tensordot`` with
explicit axis lists, ``vecdot``/``take_along_axis`` on a leading axis, a square ``matmul``,
``where`` with NaN and infinity in the branch not taken).

Each was added because a plausible fault (see :mod:`.mutants`) passed the suite without
it. Included by one line in :func:`conformance.ops.cases`; the cases are cheap, so
``--quick`` runs them all.

``--quick`` keeps one element-wise function in eight, one reduction axis and one structured
function in three: a fault in any other passed the quick run (``round(0.5)``, a ``sum``
that drops ``keepdims`` for a tuple of axes, ``eye`` ignoring ``k``). In quick mode this
module therefore also runs *sweeps*: the cases quick leaves out, bundled into a few rows
(their outputs prefixed with the case's name, judged exactly as the case itself would be),
in float32 only. They cost operations, not rows: about 120 eager operations per backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from portable_dl.backend import Backend

from .cases import Case, CaseSkipped, Outputs

FAMILY = "ops"


def _outputs(backend: Backend, result: Any) -> Outputs:
    return {
        "shape": tuple(int(d) for d in result.shape),
        "dtype": backend.dtype_name(result.dtype),
        "value": np.asarray(backend.to_numpy(result)).astype(np.float64),
    }


def _uniform(backend: Backend, dtype: str, shape: tuple, seed: int) -> Any:
    return backend.asarray(np.random.default_rng(seed).uniform(-3, 3, shape), dtype)


def _logical(name: str) -> Callable[[Backend, str], Any]:
    def compute(backend: Backend, dtype: str) -> Any:
        a = backend.asarray(np.array([[True, False, True, False]]))
        b = backend.asarray(np.array([[True], [False], [True]]))
        return getattr(backend.xp, name)(a, b) if name != "logical_not" else backend.xp.logical_not(a)

    return compute


def _where_not_taken(backend: Backend, dtype: str) -> Any:
    xp = backend.xp
    x1 = backend.asarray(np.array([1.0, np.inf, 2.0, np.nan, -np.inf, 3.0]), dtype)
    x2 = backend.asarray(np.array([np.nan, 4.0, -np.inf, 5.0, 6.0, np.inf]), dtype)
    condition = backend.asarray(np.array([True, False, False, False, False, True]))
    return xp.where(condition, x1, x2)  # every NaN and inf sits in the branch not taken, but one


#: Binary functions checked with a Python float as their second operand.
PYTHON_SCALAR_FUNCTIONS = ("add", "subtract", "multiply", "divide", "maximum", "minimum", "pow")


def _python_float_operand(backend: Backend, dtype: str) -> Outputs:
    """Values (not only dtypes) of ``f(array, 0.1)``: 0.1 has no exact binary form, so a
    namespace that converts the Python float through another precision is off by ~1e-9."""
    x = backend.asarray(np.random.default_rng(18).uniform(0.5, 2.0, (2, 3)), dtype)
    outputs: Outputs = {}
    for name in PYTHON_SCALAR_FUNCTIONS:
        result = getattr(backend.xp, name)(x, 0.1)
        outputs.update({f"{name}(x, 0.1) {key}": value for key, value in _outputs(backend, result).items()})
    return outputs


def _square_matmul(backend: Backend, dtype: str) -> Any:
    x1 = backend.asarray(np.arange(16.0).reshape(4, 4) / 7 - 1, dtype)
    x2 = backend.asarray(np.random.default_rng(8).uniform(-2, 2, (4, 4)), dtype)
    return backend.xp.matmul(x1, x2)


def _value_cases() -> list[Case]:
    u = _uniform
    table: list[tuple[str, Callable[[Backend, str], Any], int, str]] = [
        ("logical_not", _logical("logical_not"), 1, "float64"),
        ("logical_or", _logical("logical_or"), 1, "float64"),
        ("logical_xor", _logical("logical_xor"), 1, "float64"),
        (
            "squeeze one of several unit axes",
            lambda be, dt: be.xp.squeeze(u(be, dt, (1, 3, 1, 2), 9), axis=2),
            1,
            "float64",
        ),
        (
            "tensordot axes ([0], [1])",
            lambda be, dt: be.xp.tensordot(u(be, dt, (3, 4, 3), 10), u(be, dt, (3, 3), 11), axes=([0], [1])),
            3,
            "float64",
        ),
        (
            "tensordot axes ([2, 0], [0, 1])",
            lambda be, dt: be.xp.tensordot(u(be, dt, (2, 4, 3), 12), u(be, dt, (3, 2, 5), 13), axes=([2, 0], [0, 1])),
            6,
            "float64",
        ),
        (
            "vecdot axis=0",
            lambda be, dt: be.xp.vecdot(u(be, dt, (3, 4), 14), u(be, dt, (3, 4), 15), axis=0),
            3,
            "float64",
        ),
        (
            "take_along_axis axis=0",
            lambda be, dt: be.xp.take_along_axis(
                u(be, dt, (3, 3), 16), be.asarray(np.array([[2, 0, 1], [0, 0, 2], [1, 2, 0]])), axis=0
            ),
            1,
            "float64",
        ),
        ("matmul square matrices", _square_matmul, 4, "float64"),
        ("where with NaN and inf in the branch not taken", _where_not_taken, 1, "same"),
        ("empty", lambda be, dt: be.xp.zeros_like(be.xp.empty((2, 3), dtype=be.dtype(dt))), 1, "float64"),
        ("empty_like", lambda be, dt: be.xp.zeros_like(be.xp.empty_like(u(be, dt, (3, 2), 17))), 1, "float64"),
    ]
    cases = []
    for name, function, size, reference in table:

        def compute(backend: Backend, dtype: str, function=function) -> Outputs:
            return _outputs(backend, function(backend, dtype))

        cases.append(Case(FAMILY, name, compute, reduction_size=size, reference_dtype=reference))
    cases.append(Case(FAMILY, "binary functions with a Python float operand", _python_float_operand, elementwise=True))
    return cases


def _zero_d_case() -> Case:
    """Every element-wise function on 0-d arrays, as schedules and optimizers use them:
    comparisons at equality (a step boundary), ``round`` of a half, ``where`` both ways."""
    from .ops import BINARY, UNARY

    def compute(backend: Backend, dtype: str) -> Outputs:
        xp = backend.xp
        scalar = lambda v: backend.asarray(np.array(v), dtype)
        outputs: Outputs = {}
        for x in (0.7, 2.5):
            for name in UNARY:
                outputs.update(_outputs_named(backend, getattr(xp, name)(scalar(x)), f"{name}({x})"))
        for a, b in ((3.0, 3.0), (2.5, 4.0), (-1.5, 2.0)):
            for name in BINARY:
                outputs.update(_outputs_named(backend, getattr(xp, name)(scalar(a), scalar(b)), f"{name}({a}, {b})"))
        for condition in (True, False):
            result = xp.where(backend.asarray(np.array(condition)), scalar(1.5), scalar(-2.0))
            outputs.update(_outputs_named(backend, result, f"where({condition})"))
        return outputs

    return Case(FAMILY, "element-wise functions on 0-d arrays", compute, elementwise=True, zero_sign=False)


def _outputs_named(backend: Backend, result: Any, prefix: str) -> Outputs:
    return {f"{prefix} {key}": value for key, value in _outputs(backend, result).items()}


def _dtype_functions_case() -> Case:
    """``result_type``, ``isdtype``, ``iinfo`` and ``finfo``: exact answers from the standard."""

    def compute(backend: Backend, dtype: str) -> Outputs:
        xp, d = backend.xp, backend.dtype
        return {
            "result_type(int8, int16)": backend.dtype_name(xp.result_type(d("int8"), d("int16"))),
            "result_type(uint8, int8)": backend.dtype_name(xp.result_type(d("uint8"), d("int8"))),
            f"result_type({dtype} array, float32)": backend.dtype_name(
                xp.result_type(backend.asarray(np.ones(2), dtype), d("float32"))
            ),
            "isdtype(float32, 'real floating')": bool(xp.isdtype(d("float32"), "real floating")),
            "isdtype(int32, 'real floating')": bool(xp.isdtype(d("int32"), "real floating")),
            "isdtype(uint8, 'integral')": bool(xp.isdtype(d("uint8"), "integral")),
            "iinfo(int8) min, max": (int(xp.iinfo(d("int8")).min), int(xp.iinfo(d("int8")).max)),
            "iinfo(uint8) max": int(xp.iinfo(d("uint8")).max),
            f"finfo({dtype}) eps": float(xp.finfo(d(dtype)).eps),
        }

    return Case(FAMILY, "result_type, isdtype, iinfo, finfo", compute)


#: The attributes by which a case is judged: only cases alike in all of them share a sweep.
_JUDGED_BY = ("reference_dtype", "elementwise", "zero_sign", "gradient", "steps")


def bundle(name: str, cases: list[Case], dtype: str = "float32") -> list[Case]:
    """``cases`` as few cases named ``name``: one per way of judging them (see
    :data:`_JUDGED_BY`), whose outputs are each case's outputs under ``"<case>: <output>"``.
    Cases with their own expected values or finite differences are left out (they are
    judged against something else than the reference run)."""
    groups: dict[tuple, list[Case]] = {}
    for case in cases:
        if (
            dtype in case.dtypes
            and case.expected is None
            and case.finite_differences is None
            and case.independent_reference is None
        ):
            groups.setdefault(tuple(getattr(case, a) for a in _JUDGED_BY), []).append(case)
    bundles = []
    for number, (key, members) in enumerate(groups.items(), 1):

        def compute(backend: Backend, dtype: str, members=members) -> Outputs:
            outputs: Outputs = {}
            for member in members:
                try:
                    produced = member.compute(backend, dtype)
                except CaseSkipped:
                    raise
                except Exception as error:
                    raise type(error)(f"{member.name}: {error}") from error
                outputs.update({f"{member.name}: {output}": value for output, value in produced.items()})
            return outputs

        label = name if len(groups) == 1 else f"{name} ({number} of {len(groups)})"
        bundles.append(
            Case(
                FAMILY,
                label,
                compute,
                reduction_size=max(m.reduction_size for m in members),
                dtypes=(dtype,),
                **dict(zip(_JUDGED_BY, key)),
            )
        )
    return bundles


def quick_sweeps() -> list[Case]:
    """What ``--quick`` leaves out of the ops family, in a few float32 rows."""
    from .ops import binary_cases, reduction_cases, structured_cases, unary_cases

    edges = [case for case in unary_cases() + binary_cases() if case.name.endswith("edge inputs")]
    reductions = [case for case in reduction_cases(quick=False) if "axis=(" in case.name or "axis=None" in case.name]
    return (
        bundle("quick sweep: every element-wise function at edge inputs", edges)
        + bundle("quick sweep: reductions over all axes and over a tuple of axes", reductions)
        + bundle("quick sweep: every structured function", structured_cases())
    )


def cases(quick: bool = False) -> list[Case]:
    """Every coverage case (cheap: ``quick`` runs them all), and in ``quick`` mode the sweeps."""
    return _value_cases() + [_zero_d_case(), _dtype_functions_case()] + (quick_sweeps() if quick else [])
