"""Several training steps in one compiled call: ``make_train_step(..., steps_per_call=k)``.

:class:`MultiStep` runs

    step(params, opt_state, (xs, ys)) -> (params, opt_state, losses)

with ``xs`` of shape ``(k, b, ...)`` and ``ys`` of shape ``(k, b, ...)``: the k batches in
order, k updates, and the k losses, shape ``(k,)``. The loop is ``backend.scan``, the
framework's own (``jax.lax.scan``, a ``tf.while_loop`` inside ``tf.function``, a Python
loop unrolled by ``torch.compile`` and ``mx.compile``), so one compiled call pays the fixed
cost of a call (dispatch, argument passing) once per k steps. The trajectory is that of k
single steps: each update is the single step's own code.

This module imports no framework.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import ShapeError
from .train_step import TrainStep
from .tree import tree_leaves

__all__ = ["MultiStep", "check_steps_per_call"]


def check_steps_per_call(steps_per_call: Any) -> int:
    """``steps_per_call`` as an int >= 1, or ValueError naming it."""
    if isinstance(steps_per_call, bool) or not isinstance(steps_per_call, int) or steps_per_call < 1:
        raise ValueError(f"steps_per_call must be an int >= 1, got {steps_per_call!r}")
    return steps_per_call


class MultiStep(TrainStep):
    """``steps_per_call`` single steps of :class:`TrainStep` in one (compiled) call; see the module docstring.

    ``init(params)`` is the single step's: the state does not depend on ``k``.
    """

    def __init__(
        self,
        loss_fn: Callable[[Any, Any], Any],
        optimizer: Any,
        backend: Any,
        steps_per_call: int,
        *,
        compile: bool = True,
        trainable: Any = None,
        precision: Any = "float32",
    ):
        # The single step, uncompiled: it is the loop's body, and the loop is what compiles.
        super().__init__(loss_fn, optimizer, backend, compile=False, trainable=trainable, precision=precision)
        self.steps_per_call = check_steps_per_call(steps_per_call)
        self.compiled = bool(compile)
        self._single_step = self._step
        self._step = self.backend.compile(self._steps) if compile else self._steps

    def __call__(self, params: Any, opt_state: Any, batch: Any) -> tuple[Any, Any, Any]:
        self._check_stacked(batch)  # before anything runs: a wrong k changes nothing
        return self._step(params, opt_state, batch)

    def _steps(self, params: Any, opt_state: Any, batches: Any) -> tuple[Any, Any, Any]:
        def one_step(carry: tuple, batch: Any) -> tuple[tuple, Any]:
            params_, opt_state_, loss = self._single_step(*carry, batch)
            return (params_, opt_state_), loss

        (params, opt_state), losses = self.backend.scan(one_step, (params, opt_state), batches)
        return params, opt_state, losses

    def _check_stacked(self, batch: Any) -> None:
        k = self.steps_per_call
        for leaf in tree_leaves(batch):
            shape = tuple(getattr(leaf, "shape", ()))
            if not shape or shape[0] != k:
                leading = shape[0] if shape else "none (a scalar)"
                raise ShapeError(
                    f"with steps_per_call={k} each batch array must have a leading axis of length {k} "
                    f"(k stacked batches), got leading length {leading} (shape {shape})"
                )
