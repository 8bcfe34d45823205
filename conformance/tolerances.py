"""Every tolerance the conformance suite judges by, in one place.

Errors are measured norm-wise: the largest absolute difference over an output, divided by
the largest magnitude of the reference output (``scale``). That is the error a user sees
("the logits differ by 3e-7 of their size") and it does not explode where a reference
element happens to be near zero, as element-wise relative error does.

A result passes when ``max_abs_error <= tolerance * max(scale, 1e-30)`` (with ``scale``
floored at the smallest normal number so an all-zero reference asks for exact zeros).
"""

from __future__ import annotations

import math

#: Unit roundoff (half an ulp at 1) per dtype.
UNIT_ROUNDOFF = {"float32": 2.0**-24, "float64": 2.0**-53}

#: Element-wise functions: libraries use different polynomial approximations of exp, log,
#: tanh, ... (Eigen's vectorized float32 tanh is within a few ulps; MLX's and XLA's likewise).
#: 64 units of roundoff (32 ulps) leave room for them and for a few chained operations,
#: and are still 4 orders of magnitude below a wrong formula in float32.
ELEMENTWISE_UNITS = 64

#: Reductions of n terms: pairwise and blocked summation orders differ between libraries;
#: the error of a sum grows like sqrt(n) units for random signs (and n in the worst case).
#: 8 sqrt(n) covers the summation orders seen in practice with a margin of ~4x.
REDUCTION_UNITS_PER_SQRT_TERM = 8

#: Gradients pass through a forward and a backward pass: about twice the operations.
GRADIENT_FACTOR = 2

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


def value_tolerance(dtype: str, reduction_size: int = 1, gradient: bool = False, steps: int = 0) -> float:
    """Norm-wise relative tolerance for an output computed in ``dtype``.

    ``reduction_size``: the most terms summed into one output element (a matmul's inner
    dimension, a mean's count); ``gradient``: the output is a gradient; ``steps``: the
    number of optimizer or training steps the output went through.
    """
    units = ELEMENTWISE_UNITS + REDUCTION_UNITS_PER_SQRT_TERM * math.sqrt(max(reduction_size, 1))
    if gradient:
        units *= GRADIENT_FACTOR
    units *= step_growth(steps)
    return UNIT_ROUNDOFF[dtype] * units


def finite_difference_tolerance(dtype: str, reduction_size: int = 1) -> float:
    """Tolerance of a backend's gradient against float64 central differences: the
    finite-difference error or the dtype's own gradient tolerance, whichever is larger."""
    return max(FINITE_DIFFERENCE_TOLERANCE, value_tolerance(dtype, reduction_size, gradient=True))
