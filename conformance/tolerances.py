"""Every tolerance the conformance suite judges by, in one place.

Two ways of measuring, chosen per case (``Case.elementwise``):

- **Element by element**, for element-wise functions and for copies (reshape, take,
  creation): each element's error relative to its own reference value, and NaN, the
  infinities and the sign of zero exactly. An element-wise function computes every
  element on its own, so every element must be right: ``round(0.5)`` giving 1,
  ``log1p(1e-30)`` giving 0 or ``expm1(1e-30)`` giving 0 is a wrong answer even beside an
  output element of 3e38. Below the smallest normal number of the dtype the error is
  absolute (flushing subnormals to zero is a platform's choice: XLA on CPUs, GPUs). The
  inputs of these cases are exactly representable in float32 (``ops.draw``), so the float64
  reference sees the inputs a float32 run sees and the error is the function's own.
- **Norm-wise**, for reductions, products and gradients: the largest absolute difference
  over an output divided by the largest magnitude of the reference output (``scale``).
  That is the error a user sees ("the logits differ by 3e-7 of their size"); a sum of many
  terms of both signs may be near zero where its terms are not, and its error is then
  the terms' rounding, not its own. A result passes when ``max_abs_error <= tolerance *
  scale`` (``scale`` floored at the smallest normal number: an all-zero reference asks
  for exact zeros).
"""

from __future__ import annotations

import math

from portable_dl.backend import HALF_DTYPE_NAMES

#: Unit roundoff (half an ulp at 1) per dtype: 2**-(fraction bits + 1). bfloat16 keeps
#: float32's 8 exponent bits and 7 fraction bits; float16 has 5 and 10.
UNIT_ROUNDOFF = {"bfloat16": 2.0**-8, "float16": 2.0**-11, "float32": 2.0**-24, "float64": 2.0**-53}

#: Element-wise functions: libraries use different polynomial approximations of exp, log,
#: tanh, ... (Eigen's vectorized float32 tanh is within a few ulps; MLX's and XLA's likewise).
#: 64 units of roundoff (32 ulps) leave room for them and for a few chained operations,
#: and are still 4 orders of magnitude below a wrong formula in float32.
ELEMENTWISE_UNITS = 64

#: Functions whose zero results the standard lets carry either sign: ``maximum``/
#: ``minimum`` ("the order of signed zeros is unspecified"), ``sign`` ("the result is 0"),
#: ``logaddexp`` (no special case for zeros). Elsewhere (``sin(-0) = -0``, ``round(-0.4) =
#: -0``, ...) the standard says which zero, and the sign is checked.
UNSPECIFIED_ZERO_SIGN = ("maximum", "minimum", "sign", "logaddexp")

#: Reductions of n terms: pairwise and blocked summation orders differ between libraries;
#: the error of a sum grows like sqrt(n) units for random signs (and n in the worst case).
#: 8 sqrt(n) covers the summation orders seen in practice with a margin of ~4x.
REDUCTION_UNITS_PER_SQRT_TERM = 8

#: Gradients pass through a forward and a backward pass: about twice the operations.
GRADIENT_FACTOR = 2

#: Why a wrong gradient formula of relative size 1e-4 fails in float32: the largest float32
#: gradient tolerance of the gradients, broadcasting and compile families is that of the
#: batched matmul case with n = 240 terms, (64 + 8 sqrt(240)) * 2 * 2^-24 = 2.2e-5, and the
#: finite-difference comparison's floor is 1e-6 (below); a gradient off by 1e-4 of its size
#: exceeds both at least 4-fold (tests/test_tolerances.py checks every case and plants such a
#: fault). Only the training family's tolerances, which grow with the steps, are wider.
#:
#: Central finite differences in float64 with step h = 1e-6 have truncation error O(h^2)
#: times the third derivative and rounding error eps/h ~ 1e-10 of the scale: 1e-6 norm-wise
#: is met by every smooth case here and misses no wrong derivative (those are off by O(1)).
FINITE_DIFFERENCE_STEP = 1e-6
FINITE_DIFFERENCE_TOLERANCE = 1e-6


#: Optimizer trajectories and training runs: each step adds the rounding error of one
#: gradient evaluation, with a random sign, so on a contracting problem the error grows
#: like the square root of the number of steps (measured: 2e-7 to 6e-7 after 50 float32
#: steps of every optimizer here, against a tolerance of 1.4e-4).
def step_growth(steps: int) -> float:
    return math.sqrt(1 + steps)


# ------------------------------------------------------------ half precision
# float16 and bfloat16 (``--dtype float16,bfloat16``) are judged by the same norm-wise and
# element-wise rules, with units of their own roundoff, but not the same unit counts: the
# float32 counts are set by the spread of libraries' float32 polynomial approximations (a few
# float32 ulps), which is 2**-13 of a float16 unit and invisible at half precision. What is
# visible is how many times a result is rounded to the half dtype:
#
# - A half-precision element-wise function computed in float32 and rounded once (NumPy's
#   float16 loops, ml_dtypes' bfloat16 ufuncs, torch's CPU kernels) is off by at most 1 unit,
#   plus float32's error, below 2**-12 of a unit. :data:`HALF_ELEMENTWISE_UNITS` = 2 allows
#   one more rounding, a formula of two half-precision steps (TensorFlow's float16 log2,
#   measured at 1.98 units), and no more: a formula of several steps that cancel fails, as
#   it should (logaddexp(-0.5, -1) in bfloat16 on JAX, TensorFlow and MLX: 14 units), and
#   float16 results rounded through bfloat16 are off by up to 8 float16 units (bfloat16's
#   unit roundoff is 2**-8), beyond 2 units for 62% of random results (measured on 10**5),
#   so a case of twelve elements misses that fault with probability 0.38**12 < 1e-5. The
#   inputs of the references are rounded to the half dtype first (:mod:`.half_reference`),
#   so that this is the function's own error and not the input's rounding magnified by its
#   condition.
# - A reduction of n terms adds n - 1 roundings of partial sums when a library accumulates
#   in the half dtype (ml_dtypes' bfloat16 sum does; torch accumulates in float32 and
#   rounds once): random signs give sqrt(n - 1) units. 4 of them per sqrt(term)
#   (:data:`HALF_REDUCTION_UNITS_PER_SQRT_TERM`) cover the summation orders and the chained
#   roundings of the gradient cases: measured at most 2.5 per sqrt(term) (torch and
#   TensorFlow in bfloat16, a 6-term gradient through a pytree). Half float32's 8: there the
#   count also covers libraries' float32 approximations, here invisible. sqrt(n - 1), not
#   sqrt(n): one term is not a sum, and an element-wise result keeps its 2 units.
# - Gradients: twice the operations (:data:`GRADIENT_FACTOR`), as for float32.
#
#: Units of roundoff of a half-precision element-wise result (see above).
HALF_ELEMENTWISE_UNITS = 2
#: Units of roundoff per square root of the terms of a half-precision reduction (see above).
HALF_REDUCTION_UNITS_PER_SQRT_TERM = 4
#: The half-precision dtypes, which take the rules above.
HALF_DTYPES = HALF_DTYPE_NAMES


def value_tolerance(dtype: str, reduction_size: int = 1, gradient: bool = False, steps: int = 0) -> float:
    """Norm-wise relative tolerance for an output computed in ``dtype``.

    ``reduction_size``: the most terms summed into one output element (a matmul's inner
    dimension, a mean's count); ``gradient``: the output is a gradient; ``steps``: the
    number of optimizer or training steps the output went through.
    """
    if dtype in HALF_DTYPES:
        units = HALF_ELEMENTWISE_UNITS + HALF_REDUCTION_UNITS_PER_SQRT_TERM * math.sqrt(max(reduction_size, 1) - 1)
    else:
        units = ELEMENTWISE_UNITS + REDUCTION_UNITS_PER_SQRT_TERM * math.sqrt(max(reduction_size, 1))
    if gradient:
        units *= GRADIENT_FACTOR
    units *= step_growth(steps)
    return UNIT_ROUNDOFF[dtype] * units


def finite_difference_tolerance(dtype: str, reduction_size: int = 1) -> float:
    """Tolerance of a backend's gradient against float64 central differences: the
    finite-difference error or the dtype's own gradient tolerance, whichever is larger."""
    return max(FINITE_DIFFERENCE_TOLERANCE, value_tolerance(dtype, reduction_size, gradient=True))


# ------------------------------------------------------------------- the pytest tests
# tests/helpers.py takes its numbers from here, so that one module holds every tolerance.
# Tests compare whole computations (a training step, a schedule, a restored checkpoint)
# element by element against NumPy float64 or hand-derived values, with one bound per
# dtype rather than a per-case error model: a relative bound of about 340 units of
# roundoff in float32 (2e-5) and a looser 1e-12 in float64, whose unit roundoff (1.1e-16)
# would otherwise be met only by single operations; both are orders of magnitude below a
# wrong formula (off by 1e-3 or more). ``scale`` in the helpers widens them for long chains.

#: Element-wise relative and absolute tolerance of ``tests/helpers.assert_close``.
TEST_RELATIVE = {"float32": 2e-5, "float64": 1e-12}
TEST_ABSOLUTE = {"float32": 2e-6, "float64": 1e-13}

#: Element-wise tolerance of a test's gradient against float64 central differences with
#: step :data:`FINITE_DIFFERENCE_STEP` (error about eps/h + h^2 ~ 1e-10 on values of order 1).
TEST_FINITE_DIFFERENCE_TOLERANCE = 1e-7
