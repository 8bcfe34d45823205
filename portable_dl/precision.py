"""Precision policies for training: which dtype the step computes in, and loss scaling.

``make_train_step(..., precision=...)`` and ``fit(..., precision=...)`` take a name or a
:class:`Policy`:

=================== ============== ============================================================
name                compute dtype  what happens
=================== ============== ============================================================
``"float32"``       (parameters')  the default: no cast at all, the step computes in the
                                   parameters' own dtype (float32 as the models make them;
                                   float64 parameters stay float64); today's step, bit for bit
``"mixed_bfloat16"`` bfloat16      float32 master parameters and optimizer state; forward and
                                   backward in bfloat16; no loss scaling (bfloat16 has float32's
                                   exponent range)
``"mixed_float16"`` float16        as mixed_bfloat16 in float16, with dynamic loss scaling
=================== ============== ============================================================

Mixed precision, as Keras's ``mixed_*`` policies and ``torch.autocast`` with float32
weights: inside the differentiated function every floating parameter and every floating
leaf of the inputs ``x`` of the batch ``(x, y)`` is cast to the compute dtype, so the model
runs in bfloat16 or float16 while the gradient with respect to the float32 master parameters
comes out float32 through the cast's own derivative. The targets ``y`` are not cast. The
losses of :mod:`portable_dl.losses` and :func:`~portable_dl.activations.softmax`,
``log_softmax`` and ``logsumexp`` compute in float32 when given half-precision inputs and
return float32, and the step casts any half-precision loss to float32 before scaling it.
The optimizer then updates the float32 parameters and state with the float32 gradients.

Pure half precision (bfloat16 parameters and optimizer state) needs no policy: pass bfloat16
parameters with ``"float32"``, which computes in the parameters' dtype. It is rarely what one
wants (updates smaller than bfloat16's spacing vanish), so it has no name here.

Dynamic loss scaling (:class:`LossScale`, on by default for ``mixed_float16``) has the rules
of ``torch.amp.GradScaler`` (read in torch 2.x ``torch/amp/grad_scaler.py`` and checked
against ``torch._amp_update_scale_``): the loss is multiplied by the scale (initially 2**16)
before differentiating and the float32 gradients are multiplied by ``1 / scale``. If any
unscaled gradient is NaN or infinite the update is skipped (parameters and optimizer state,
its step count included, are bit-exactly those before the step), the scale is multiplied by
``backoff_factor`` (0.5) and the count of good steps reset to 0. Otherwise the count goes up
by one, and when it reaches ``growth_interval`` (2000) the scale is multiplied by
``growth_factor`` (2.0), unless that would make it infinite, and the count restarts at 0.
The choice is made with ``xp.where``, never a Python branch on array values, so the whole
step compiles on every backend.

Two differences from GradScaler, both deliberate. Finiteness is checked on the unscaled
gradients (torch checks the scaled ones): with a scale below 1 an unscaled gradient can
overflow where the scaled one did not, and it must not reach the parameters. And there is a
floor, ``min_scale`` (default 1.0): a non-finite gradient at a scale at or below the floor
is not skipped but applied, so the parameters become non-finite and :func:`~portable_dl.fit`
raises :class:`~portable_dl.training.TrainingDiverged` at its next read of the losses. A
scale of 1 means the float16 gradients overflow without any scaling, or the gradient is NaN
for another reason (a sqrt at 0): skipping would then go on for ever and train nothing,
where torch would quietly halve the scale towards 0. From the default 2**16 that is the
seventeenth consecutive bad step. A NaN or infinite *loss* (the forward pass overflowed)
makes fit raise TrainingDiverged at once, with or without scaling.

The scale and the count live in the optimizer state that the step's ``init(params)`` returns,
under the key ``"loss_scale"``: ``{"scale": float32 0-d, "good_steps": int32 0-d}`` next to
the optimizer's own ``"step"`` and ``"slots"``, so that checkpoints carry them and
``fit(resume=True)`` continues them. Loss scaling therefore needs an optimizer whose state is
a dict (every portable_dl optimizer's is).

This module imports no framework.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .tree import tree_leaves, tree_map

__all__ = ["LossScale", "Policy", "POLICIES", "get_policy", "LOSS_SCALE_KEY"]

#: The key of the loss-scaling state in a step's optimizer state.
LOSS_SCALE_KEY = "loss_scale"

#: Dtypes too narrow for a loss or a softmax: promoted to float32 there.
HALF_DTYPES = ("float16", "bfloat16")


@dataclass(frozen=True)
class LossScale:
    """Dynamic loss scaling with ``torch.amp.GradScaler``'s rules (see the module docstring).

    ``initial`` scale (2**16), ``growth_factor`` (> 1), ``backoff_factor`` (in (0, 1)),
    ``growth_interval`` (good steps before growing, an int >= 1) and ``min_scale``, the floor
    at and below which a non-finite gradient is applied instead of skipped (> 0).
    """

    initial: float = 2.0**16
    growth_factor: float = 2.0
    backoff_factor: float = 0.5
    growth_interval: int = 2000
    min_scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ("initial", "growth_factor", "backoff_factor", "min_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"LossScale {name} must be a finite number > 0, got {value!r}")
        if self.growth_factor <= 1.0:
            raise ValueError(f"LossScale growth_factor must be > 1, got {self.growth_factor!r}")
        if self.backoff_factor >= 1.0:
            raise ValueError(f"LossScale backoff_factor must be < 1, got {self.backoff_factor!r}")
        interval = self.growth_interval
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f"LossScale growth_interval must be an int >= 1, got {interval!r}")

    # ------------------------------------------------------------------ the state
    def init(self, backend: Any) -> dict:
        """``{"scale": float32 0-d, "good_steps": int32 0-d}`` on ``backend``."""
        return {"scale": backend.asarray(self.initial, "float32"), "good_steps": backend.asarray(0, "int32")}

    # ------------------------------------------------------------- one step's parts
    def unscale(self, grads: Any, scale: Any, xp: Any) -> tuple[Any, Any]:
        """``(grads / scale, finite)``: ``finite`` a 0-d bool, whether every unscaled
        floating gradient is finite. ``1 / scale`` is exact for the powers of two the default
        rules produce, so unscaling changes no digit of a gradient."""
        inverse = xp.divide(1.0, scale)
        unscaled = tree_map(
            lambda grad: None if grad is None else xp.multiply(grad, xp.astype(inverse, grad.dtype)), grads
        )
        finite = None
        for grad in tree_leaves(unscaled):
            all_finite = xp.all(xp.isfinite(grad))
            finite = all_finite if finite is None else xp.logical_and(finite, all_finite)
        if finite is None:
            finite = xp.astype(xp.ones_like(scale), xp.bool)
        return unscaled, finite

    def applies(self, finite: Any, scale: Any, xp: Any) -> Any:
        """0-d bool: whether this step's update is applied: the gradients are finite, or the
        scale is at or below the floor, where skipping cannot recover."""
        return xp.logical_or(finite, xp.less_equal(scale, self.min_scale))

    def next_state(self, state: dict, finite: Any, xp: Any) -> dict:
        """The scale and good-step count after a step whose gradients were ``finite`` or not,
        by ``torch._amp_update_scale_``'s rules, selected with ``where``."""
        scale, good = state["scale"], state["good_steps"]
        counted = xp.add(good, 1)
        grow = xp.logical_and(finite, xp.greater_equal(counted, self.growth_interval))
        grown = xp.multiply(scale, self.growth_factor)
        grown = xp.where(xp.isfinite(grown), grown, scale)  # never grow into inf
        backed_off = xp.multiply(scale, self.backoff_factor)
        # At the floor a bad step is applied and fit diverges: the scale is left there.
        backed_off = xp.where(xp.less_equal(scale, self.min_scale), scale, backed_off)
        new_scale = xp.where(finite, xp.where(grow, grown, scale), backed_off)
        zero = xp.zeros_like(good)
        new_good = xp.where(xp.logical_and(finite, xp.logical_not(grow)), counted, zero)
        return {"scale": new_scale, "good_steps": new_good}


@dataclass(frozen=True)
class Policy:
    """A precision policy: ``name``, ``compute_dtype`` (a dtype name, or None for no cast: the
    parameters' own dtype) and ``loss_scale`` (:class:`LossScale` or None).

    ``Policy("mixed_float16_fast_growth", "float16", LossScale(growth_interval=100))`` makes
    one of your own; the named ones are in :data:`POLICIES`.
    """

    name: str
    compute_dtype: str | None = None
    loss_scale: LossScale | None = field(default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a Policy's name must be a non-empty string, got {self.name!r}")
        if self.compute_dtype is not None and self.compute_dtype not in ("float16", "bfloat16", "float32", "float64"):
            raise ValueError(
                f"Policy {self.name!r}: compute_dtype must be float16, bfloat16, float32, float64 or None, "
                f"got {self.compute_dtype!r}"
            )
        if self.loss_scale is not None and not isinstance(self.loss_scale, LossScale):
            raise ValueError(
                f"Policy {self.name!r}: loss_scale must be a LossScale or None, got {type(self.loss_scale).__name__}"
            )

    @property
    def is_default(self) -> bool:
        """Whether the step is today's plain step: no cast and no loss scaling."""
        return self.compute_dtype is None and self.loss_scale is None

    def cast(self, tree: Any, dtype: Any, xp: Any) -> Any:
        """``tree`` with every real floating leaf cast to ``dtype`` (None leaves kept)."""

        def cast_leaf(leaf: Any) -> Any:
            if leaf is None or not hasattr(leaf, "dtype") or not xp.isdtype(leaf.dtype, "real floating"):
                return leaf
            return leaf if leaf.dtype == dtype else xp.astype(leaf, dtype)

        return tree_map(cast_leaf, tree)

    def cast_batch(self, batch: Any, dtype: Any, xp: Any) -> Any:
        """The batch ``(x, y)`` with the floating leaves of ``x`` cast to ``dtype``; the
        targets ``y`` are left in their dtype (losses compute in float32). Any other batch
        has all its floating leaves cast."""
        if isinstance(batch, (tuple, list)) and len(batch) == 2:
            return type(batch)((self.cast(batch[0], dtype, xp), batch[1]))
        return self.cast(batch, dtype, xp)


#: The named policies.
POLICIES: dict[str, Policy] = {
    "float32": Policy("float32"),
    "mixed_bfloat16": Policy("mixed_bfloat16", "bfloat16"),
    "mixed_float16": Policy("mixed_float16", "float16", LossScale()),
}


def get_policy(precision: str | Policy) -> Policy:
    """The :class:`Policy` called ``precision``, or ``precision`` itself when it is one;
    ValueError naming the known names otherwise."""
    if isinstance(precision, Policy):
        return precision
    if isinstance(precision, str) and precision in POLICIES:
        return POLICIES[precision]
    raise ValueError(f"unknown precision {precision!r}; known: {', '.join(POLICIES)} (or a portable_dl.Policy)")


def policy_name(precision: str | Policy) -> str:
    """The name a checkpoint records for ``precision``."""
    return get_policy(precision).name
