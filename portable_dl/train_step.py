"""One training step, as one pure function the backend can compile.

:func:`make_train_step` builds

    step(params, opt_state, (x, y)) -> (params, opt_state, loss)

from a loss, an optimizer and a backend: the backend's own ``value_and_grad`` gives the
loss and its gradient, the optimizer's ``update`` the new parameters and state, and the
backend's own compiler (``jax.jit``, ``tf.function``, ``mx.compile``, ``torch.compile``)
takes the whole step as one function. Nothing is mutated, so a step that fails leaves its
inputs as they were.

This module imports no framework.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .nn import merge, partition
from .registry import backend as get_backend

__all__ = ["TrainStep", "make_train_step"]


class TrainStep:
    """``step(params, opt_state, (x, y)) -> (params, opt_state, loss)``; see :func:`make_train_step`.

    ``init(params)`` gives the optimizer state this step expects: the state of the trainable
    parameters only, when a ``trainable`` mask is set.
    """

    def __init__(
        self,
        loss_fn: Callable[[Any, Any], Any],
        optimizer: Any,
        backend: Any,
        *,
        compile: bool = True,
        trainable: Any = None,
    ):
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.backend = get_backend(backend)
        self.trainable = trainable
        self.compiled = bool(compile)
        step = self._step_of_all if trainable is None else self._step_of_trainable
        self._step = self.backend.compile(step) if compile else step
        self._value_and_grad = self.backend.value_and_grad(loss_fn)

    def init(self, params: Any) -> Any:
        """The optimizer's initial state for ``params`` (only their trainable leaves)."""
        return self.optimizer.init(self._split(params)[0])

    def __call__(self, params: Any, opt_state: Any, batch: Any) -> tuple[Any, Any, Any]:
        return self._step(params, opt_state, batch)

    def _step_of_all(self, params: Any, opt_state: Any, batch: Any) -> tuple[Any, Any, Any]:
        loss, grads = self._value_and_grad(params, batch)
        params, opt_state = self.optimizer.update(grads, opt_state, params)
        return params, opt_state, loss

    def _step_of_trainable(self, params: Any, opt_state: Any, batch: Any) -> tuple[Any, Any, Any]:
        # Frozen leaves leave the differentiated argument altogether (None in their place),
        # so no framework computes a gradient for them and no optimizer touches them.
        trainable, frozen = self._split(params)
        loss, grads = self.backend.value_and_grad(
            lambda trainable_part, batch_: self.loss_fn(merge(trainable_part, frozen), batch_)
        )(trainable, batch)
        trainable, opt_state = self.optimizer.update(grads, opt_state, trainable)
        return merge(trainable, frozen), opt_state, loss

    def _split(self, params: Any) -> tuple[Any, Any]:
        if self.trainable is None:
            return params, None
        return partition(params, self.trainable)


def make_train_step(
    loss_fn: Callable[[Any, Any], Any],
    optimizer: Any,
    backend: Any,
    compile: bool = True,
    trainable: Any = None,
    *,
    world: Any = None,
    steps_per_call: int = 1,
) -> TrainStep:
    """A pure training step ``(params, opt_state, batch) -> (params, opt_state, loss)``.

    ``loss_fn(params, batch) -> scalar`` with ``batch = (x, y)``; ``optimizer`` has
    ``init(params)`` and ``update(grads, state, params)``; ``backend`` is a Backend or its
    name. The gradient comes from ``backend.value_and_grad``; with ``compile`` the whole step
    is compiled by ``backend.compile``. ``trainable`` is a mask from
    ``nn.trainable_mask``: frozen leaves are neither differentiated nor updated, and come back
    as the very same arrays. Create the optimizer state with the step's ``init(params)``.

    With a ``world`` of more than one process (:func:`portable_dl.distributed.init`), each
    rank passes its slice of the global batch and the gradients (and the loss) are averaged
    over the ranks in one collective per step, inside the compiled step where the
    framework's compiler can hold it (:mod:`portable_dl.distributed.step`); the step then
    takes an optional fourth argument, ``share``, this rank's fraction of the global batch
    (default ``1 / world.size``). A world of one changes nothing.

    With ``steps_per_call=k`` greater than 1 the step runs k updates in one (compiled) call
    (:mod:`portable_dl.multi_step`): ``step(params, opt_state, (xs, ys)) -> (params,
    opt_state, losses)`` with the k batches stacked on a new leading axis, ``xs`` of shape
    ``(k, b, ...)``, and ``losses`` of shape ``(k,)``: the trajectory of k single steps.
    Not yet with a ``world`` of more than one process.
    """
    if type(steps_per_call) is not int or steps_per_call != 1:  # True and 1.0 are errors, not 1
        from .multi_step import MultiStep, check_steps_per_call

        check_steps_per_call(steps_per_call)
        if world is not None and world.size > 1:
            raise ValueError(
                "steps_per_call > 1 is not yet supported with a world of more than one process; "
                "use steps_per_call=1 for data-parallel training"
            )
        return MultiStep(loss_fn, optimizer, backend, steps_per_call, compile=compile, trainable=trainable)
    if world is not None and world.size > 1:
        from .distributed.step import DataParallelStep

        return DataParallelStep(loss_fn, optimizer, get_backend(backend), world, compile=compile, trainable=trainable)
    return TrainStep(loss_fn, optimizer, backend, compile=compile, trainable=trainable)
