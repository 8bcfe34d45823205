"""Learning-rate schedules: ``schedule(step) -> lr``, written once with the array namespace.

``step`` counts the updates done before the one the rate is for: 0 at the first update,
as ``torch.optim.lr_scheduler`` (stepped once per update), optax, Keras and MLX count.
It may be

- a backend scalar array, integer or floating (an optimizer passes its step count from its
  state, cast to the parameters' dtype): the rate comes back as a 0-d array of that
  floating dtype (integers give float64 where the backend has it, else float32), computed
  with ``xp`` and no Python decision on the value, so it traces and compiles;
- a Python int or float: the rate comes back as a Python float.

Schedules are :class:`Schedule` objects, so an optimizer can report them in its
``hyperparameters`` (``schedule.hyperparameters``); any callable ``step -> lr`` is accepted
where a schedule is expected.

::

    warmup_then_cosine = linear_warmup(cosine(1e-3, total_steps=900), warmup_steps=100)
    piecewise = join([constant(0.1), constant(0.01)], boundaries=[500])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

from .registry import backend, backend_of

__all__ = ["Schedule", "constant", "step_decay", "exponential", "cosine", "linear_warmup", "join", "as_schedule"]


class Schedule:
    """A learning rate as a function of the step: ``schedule(step) -> lr``.

    Args:
        name: what the schedule is (``"cosine"``).
        rate: ``rate(t, xp) -> lr``, where ``t`` is the step as a floating 0-d array of
            namespace ``xp``; written with ``xp`` only.
        hyperparameters: its parameters as plain Python values, for reports.
    """

    def __init__(self, name: str, rate: Callable[[Any, Any], Any], **hyperparameters: Any):
        self.name = name
        self._rate = rate
        self._hyperparameters = hyperparameters

    @property
    def hyperparameters(self) -> dict:
        """``{"schedule": name, **parameters}``, plain Python values (nested for joins)."""
        return {"schedule": self.name, **self._hyperparameters}

    def __call__(self, step: Any) -> Any:
        if _is_python_number(step):
            if step < 0:
                raise ValueError(f"{self.name} schedule: the step must be >= 0, got {step!r}")
            xp = backend("numpy").xp
            return float(self._rate(xp.asarray(float(step), dtype=xp.float64), xp))
        xp, t = _floating_step(step)
        return self._rate(t, xp)

    def __repr__(self) -> str:
        shown = ", ".join(f"{key}={value!r}" for key, value in self._hyperparameters.items())
        return f"{self.name}({shown})"


def as_schedule(schedule_or_lr: float | Callable) -> Schedule:
    """A :class:`Schedule` from a schedule, a constant rate, or any callable ``step -> lr``."""
    if isinstance(schedule_or_lr, Schedule):
        return schedule_or_lr
    if callable(schedule_or_lr):
        function = schedule_or_lr

        def rate(t: Any, xp: Any) -> Any:
            value = function(t)
            return xp.astype(value, t.dtype) if hasattr(value, "dtype") else xp.full_like(t, value)

        return Schedule("custom", rate, function=getattr(function, "__name__", repr(function)))
    return constant(schedule_or_lr)


# ------------------------------------------------------------------------ schedules
def constant(lr: float) -> Schedule:
    """:math:`\\eta_s = \\text{lr}` at every step."""
    lr = _non_negative("constant", "lr", lr)
    return Schedule("constant", lambda t, xp: xp.full_like(t, lr), lr=lr)


def step_decay(lr: float, step_size: int, gamma: float = 0.1) -> Schedule:
    """:math:`\\eta_s = \\text{lr} \\cdot \\gamma^{\\lfloor s / \\text{step\\_size} \\rfloor}`: the
    rate multiplied by ``gamma`` every ``step_size`` steps (``torch.optim.lr_scheduler.StepLR``)."""
    lr = _non_negative("step_decay", "lr", lr)
    step_size = _positive_int("step_decay", "step_size", step_size)
    gamma = _non_negative("step_decay", "gamma", gamma)

    def rate(t: Any, xp: Any) -> Any:
        return lr * xp.pow(xp.full_like(t, gamma), xp.floor(t / step_size))

    return Schedule("step_decay", rate, lr=lr, step_size=step_size, gamma=gamma)


def exponential(lr: float, gamma: float) -> Schedule:
    """:math:`\\eta_s = \\text{lr} \\cdot \\gamma^s` (``torch.optim.lr_scheduler.ExponentialLR``)."""
    lr = _non_negative("exponential", "lr", lr)
    gamma = _non_negative("exponential", "gamma", gamma)
    return Schedule("exponential", lambda t, xp: lr * xp.pow(xp.full_like(t, gamma), t), lr=lr, gamma=gamma)


def cosine(lr: float, total_steps: int, min_lr: float = 0.0) -> Schedule:
    """Cosine annealing from ``lr`` to ``min_lr`` over ``total_steps`` steps, then ``min_lr``:

    .. math:: \\eta_s = \\eta_{min} + \\tfrac12 (\\text{lr} - \\eta_{min})
              \\left(1 + \\cos\\left(\\pi \\min(s, T) / T\\right)\\right)

    As ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=T, eta_min=min_lr)`` up to step
    :math:`T`; torch's then climbs back up, this one stays at ``min_lr`` (as optax's
    ``cosine_decay_schedule``).
    """
    lr = _non_negative("cosine", "lr", lr)
    total_steps = _positive_int("cosine", "total_steps", total_steps)
    min_lr = _non_negative("cosine", "min_lr", min_lr)

    def rate(t: Any, xp: Any) -> Any:
        progress = xp.minimum(t, xp.full_like(t, total_steps)) / total_steps
        return min_lr + 0.5 * (lr - min_lr) * (1.0 + xp.cos(math.pi * progress))

    return Schedule("cosine", rate, lr=lr, total_steps=total_steps, min_lr=min_lr)


def linear_warmup(schedule_or_lr: float | Callable, warmup_steps: int) -> Schedule:
    """A linear ramp to a schedule's first rate over ``warmup_steps`` steps, then the schedule
    from its own step 0:

    .. math:: \\eta_s = \\begin{cases} \\eta^{inner}_0 \\cdot (s + 1) / W & s < W \\\\
              \\eta^{inner}_{s - W} & s \\ge W \\end{cases}

    The first update already moves (rate :math:`\\eta_0 / W`, not 0), and the last warm-up
    step reaches the full rate. ``schedule_or_lr``: a schedule, a callable, or a constant.
    """
    inner = as_schedule(schedule_or_lr)
    warmup_steps = _positive_int("linear_warmup", "warmup_steps", warmup_steps)

    def rate(t: Any, xp: Any) -> Any:
        zero = xp.zeros_like(t)
        ramp = inner._rate(zero, xp) * (t + 1.0) / warmup_steps
        after = inner._rate(xp.maximum(t - warmup_steps, zero), xp)
        return xp.where(xp.less(t, float(warmup_steps)), ramp, after)

    return Schedule("linear_warmup", rate, inner=inner.hyperparameters, warmup_steps=warmup_steps)


def join(schedules: Sequence[float | Callable], boundaries: Sequence[int]) -> Schedule:
    """Schedules one after another: ``schedules[i]`` from step ``boundaries[i - 1]`` (0 for the
    first) to ``boundaries[i]``, each started at its own step 0 (as optax's ``join_schedules``).

    Args:
        schedules: ``k`` schedules, callables or constant rates.
        boundaries: ``k - 1`` strictly increasing positive ints.
    """
    parts = [as_schedule(s) for s in schedules]
    boundaries = [_positive_int("join", "a boundary", b) for b in boundaries]
    if not parts or len(boundaries) != len(parts) - 1:
        raise ValueError(
            f"join needs k schedules and k - 1 boundaries, got {len(parts)} schedules and {len(boundaries)} boundaries"
        )
    if any(b <= a for a, b in zip(boundaries, boundaries[1:])):
        raise ValueError(f"join: boundaries must increase strictly, got {boundaries}")

    def rate(t: Any, xp: Any) -> Any:
        zero = xp.zeros_like(t)
        value = parts[0]._rate(t, xp)
        for boundary, part in zip(boundaries, parts[1:]):
            later = part._rate(xp.maximum(t - boundary, zero), xp)
            value = xp.where(xp.less(t, float(boundary)), value, later)
        return value

    return Schedule("join", rate, schedules=[p.hyperparameters for p in parts], boundaries=boundaries)


# --------------------------------------------------------------------------- helpers
def _floating_step(step: Any) -> tuple[Any, Any]:
    """``(xp, t)``: the step as a floating array of its own backend. An integer step becomes
    float64 where the backend computes in it, else float32."""
    owner = backend_of(step)
    xp = owner.xp
    if xp.isdtype(step.dtype, "real floating"):
        return xp, step
    floating = "float64" if owner.supports("float64") else "float32"
    return xp, xp.astype(step, owner.dtype(floating))


def _is_python_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not hasattr(value, "dtype")


def _non_negative(schedule: str, name: str, value: Any) -> float:
    if not _is_python_number(value) or not math.isfinite(float(value)) or value < 0:
        raise ValueError(f"{schedule}: {name} must be a non-negative finite number, got {value!r}")
    return float(value)


def _positive_int(schedule: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{schedule}: {name} must be a positive int, got {value!r}")
    return int(value)
