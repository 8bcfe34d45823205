"""What a conformance case is.

A case computes named outputs on one backend in one dtype and hands them back as NumPy
values. The runner computes the same case on the NumPy reference backend and compares:

- numeric outputs (arrays) against the reference run in float64, within the tolerance of
  :mod:`.tolerances` for the dtype under test, element by element for element-wise
  functions and norm-wise for reductions (``Case.elementwise``); for float16 and bfloat16
  the reference's inputs are rounded to that dtype first (:mod:`.half_reference`);
- exact outputs (strings, ints, tuples: a result shape, a dtype name, the name of the
  error raised) against the reference run in the SAME dtype, which must match exactly;
- for gradient cases, numeric outputs whose names start with ``grad`` also against
  central finite differences in float64, when the case gives them (in float32 and
  float64: they check the reference's formulas, at the unrounded inputs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from portable_dl.backend import HALF_DTYPE_NAMES, Backend
from portable_dl.errors import DTypeError, PortableDLError

#: Outputs of a case: name -> NumPy array (numeric) or str/int/tuple (exact).
Outputs = dict[str, Any]


#: The dtypes a case runs in unless it says otherwise.
FLOAT_DTYPES = ("float32", "float64")
#: The half-precision dtypes (``--dtype float16,bfloat16``), which the ops, gradients and
#: broadcasting families run in besides (:func:`with_half_precision`).
HALF_DTYPES = HALF_DTYPE_NAMES


def with_half_precision(
    cases: list[Case], excluded: dict[str, tuple[tuple[str, ...], str]] | None = None
) -> list[Case]:
    """``cases`` with float16 and bfloat16 added to the dtypes of those defined for the float
    dtypes: they take their inputs through ``asarray(x, dtype)`` like every other dtype.

    ``excluded``: ``{part of a case's name: (half dtypes it does not run in, why)}``; a case
    whose name contains one skips those dtypes with that reason (``Case.dtype_note``). In
    half precision a :class:`~portable_dl.errors.DTypeError` (the documented refusal of a
    dtype a function has no kernel for: NumPy's linalg in float16) skips the case with the
    backend's reason.
    """
    extended = []
    for case in cases:
        if case.dtypes != FLOAT_DTYPES:
            extended.append(case)
            continue
        left_out, reason = next(
            ((dtypes, why) for part, (dtypes, why) in (excluded or {}).items() if part in case.name), ((), "")
        )
        extended.append(
            dataclasses.replace(
                case,
                dtypes=case.dtypes + tuple(dtype for dtype in HALF_DTYPES if dtype not in left_out),
                compute=_skipping_refusals(case.compute),
                dtype_note=reason,
            )
        )
    return extended


def _skipping_refusals(compute: Callable[[Backend, str], Outputs]) -> Callable[[Backend, str], Outputs]:
    def compute_or_skip(backend: Backend, dtype: str) -> Outputs:
        try:
            return compute(backend, dtype)
        except DTypeError as error:
            if dtype not in HALF_DTYPES:
                raise
            raise CaseSkipped(f"{backend.name} on {backend.device} cannot: {error}") from error

    return compute_or_skip


class CaseSkipped(Exception):
    """Raised by a case that cannot run on a backend; the message says why."""


@dataclass(frozen=True)
class Case:
    """One conformance check.

    ``compute(backend, dtype) -> Outputs`` runs it. ``reduction_size`` is the most terms
    summed into one output element and ``steps`` the number of iterative steps, both of
    which widen the tolerance; ``gradient`` marks gradient outputs. ``finite_differences()
    -> Outputs`` gives float64 gradients by central differences for outputs named
    ``grad*``.
    """

    family: str
    name: str
    compute: Callable[[Backend, str], Outputs]
    reduction_size: int = 1
    gradient: bool = False
    steps: int = 0
    finite_differences: Callable[[], Outputs] | None = None
    #: dtypes this case is meaningful in
    dtypes: tuple[str, ...] = field(default=FLOAT_DTYPES)
    #: why the case is not run in the dtypes it leaves out (a skipped row says it)
    dtype_note: str = ""
    #: "float64": numeric outputs are judged against the reference in float64; "same": in
    #: the dtype under test (edge inputs, where float32 overflows and float64 does not)
    reference_dtype: str = "float64"
    #: numeric outputs computed without the front end at all (the optimizers' trajectories),
    #: used instead of the NumPy backend's: a fault in shared front-end code then shows too
    independent_reference: Callable[[], Outputs] | None = None
    #: True: numeric outputs are judged element by element (relative error of each
    #: element, NaN, infinities and the sign of zero exactly), as for element-wise functions
    #: and copies; False: norm-wise, as for reductions, products and gradients
    #: (:mod:`.tolerances` says why)
    elementwise: bool = False
    #: False where the standard leaves the sign of a zero result to the implementation
    #: (:data:`.tolerances.UNSPECIFIED_ZERO_SIGN`): zeros then compare equal whatever their sign
    zero_sign: bool = True
    #: ``expected(backend, dtype) -> Outputs``: exact outputs written down independently of
    #: every backend (the standard's promotion table, first occurrences of ties), used
    #: instead of the NumPy backend's: a rule the reference also breaks still fails
    expected: Callable[[Backend, str], Outputs] | None = None

    @property
    def id(self) -> str:
        return f"{self.family}/{self.name}"


def error_name(error: BaseException) -> str:
    """The exception's class name when it is one of portable_dl's, else its generic kind:
    a framework's own exception must not leak through the portable layer."""
    if isinstance(error, PortableDLError):
        return type(error).__name__
    return f"foreign {type(error).__module__}.{type(error).__name__}"


def outcome_of(function: Callable[[], Any], backend: Backend) -> Outputs:
    """Run ``function``; return its value, shape and dtype, or the name of the error it
    raised, as outputs of a case."""
    try:
        result = function()
    except Exception as error:  # a case reports what happened, it does not crash the run
        return {"raises": error_name(error)}
    return {
        "raises": "nothing",
        "shape": tuple(int(d) for d in result.shape),
        "dtype": backend.dtype_name(result.dtype),
        "value": np.asarray(backend.to_numpy(result), dtype=np.float64)
        if backend.dtype_name(result.dtype) != "bool"
        else backend.to_numpy(result).astype(np.float64),
    }
