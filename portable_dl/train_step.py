"""One training step, as one pure function the backend can compile.

:func:`make_train_step` builds

    step(params, opt_state, (x, y)) -> (params, opt_state, loss)

from a loss, an optimizer and a backend: the backend's own ``value_and_grad`` gives the
loss and its gradient, the optimizer's ``update`` the new parameters and state, and the
backend's own compiler (``jax.jit``, ``tf.function``, ``mx.compile``, ``torch.compile``)
takes the whole step as one function. Nothing is mutated, so a step that fails leaves its
inputs as they were.

``precision`` (:mod:`portable_dl.precision`) chooses the dtype the step computes in: the
parameters' own (``"float32"``, the default), or bfloat16 / float16 with float32 master
parameters (``"mixed_bfloat16"``, ``"mixed_float16"``), the latter with dynamic loss scaling
whose scale lives in the optimizer state.

This module imports no framework.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .nn import merge, partition
from .precision import HALF_DTYPES, LOSS_SCALE_KEY, get_policy
from .registry import backend as get_backend
from .tree import tree_map

__all__ = ["TrainStep", "make_train_step"]


class TrainStep:
    """``step(params, opt_state, (x, y)) -> (params, opt_state, loss)``; see :func:`make_train_step`.

    ``init(params)`` gives the optimizer state this step expects: the state of the trainable
    parameters only, when a ``trainable`` mask is set, and with loss scaling the scale and its
    good-step count under ``"loss_scale"`` (see :mod:`portable_dl.precision`).
    """

    def __init__(
        self,
        loss_fn: Callable[[Any, Any], Any],
        optimizer: Any,
        backend: Any,
        *,
        compile: bool = True,
        trainable: Any = None,
        precision: Any = "float32",
    ):
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.backend = get_backend(backend)
        self.trainable = trainable
        self.compiled = bool(compile)
        self.policy = get_policy(precision)
        # The framework dtype, looked up now: a backend without it raises DTypeError here,
        # before anything is traced.
        compute = self.policy.compute_dtype
        self._compute_dtype = None if compute is None else self.backend.dtype(compute)
        # The default policy differentiates loss_fn itself: today's step, bit for bit.
        self._objective = loss_fn if self.policy.is_default else self._policy_objective
        step = self._step_of_all if trainable is None else self._step_of_trainable
        self._step = self.backend.compile(step) if compile else step
        self._value_and_grad = self.backend.value_and_grad(self._objective, has_aux=self._scaled)

    @property
    def _scaled(self) -> bool:
        return self.policy.loss_scale is not None

    def init(self, params: Any) -> Any:
        """The optimizer's initial state for ``params`` (only their trainable leaves), with the
        loss-scaling state under ``"loss_scale"`` when the policy scales the loss."""
        state = self.optimizer.init(self._split(params)[0])
        if not self._scaled:
            return state
        if not isinstance(state, dict) or LOSS_SCALE_KEY in state:
            raise ValueError(
                f"precision {self.policy.name!r} keeps its loss scale in the optimizer state, which must be "
                f"a dict without a {LOSS_SCALE_KEY!r} key; {type(self.optimizer).__name__}.init gave "
                f"{type(state).__name__}"
            )
        return {**state, LOSS_SCALE_KEY: self.policy.loss_scale.init(self.backend)}

    def __call__(self, params: Any, opt_state: Any, batch: Any) -> tuple[Any, Any, Any]:
        return self._step(params, opt_state, batch)

    def _step_of_all(self, params: Any, opt_state: Any, batch: Any) -> tuple[Any, Any, Any]:
        if self._scaled:
            return self._scaled_update(self._value_and_grad, params, opt_state, batch)
        loss, grads = self._value_and_grad(params, batch)
        params, opt_state = self.optimizer.update(grads, opt_state, params)
        return params, opt_state, loss

    def _step_of_trainable(self, params: Any, opt_state: Any, batch: Any) -> tuple[Any, Any, Any]:
        # Frozen leaves leave the differentiated argument altogether (None in their place),
        # so no framework computes a gradient for them and no optimizer touches them.
        trainable, frozen = self._split(params)
        value_and_grad = self.backend.value_and_grad(
            lambda trainable_part, batch_, *scale: self._objective(merge(trainable_part, frozen), batch_, *scale),
            has_aux=self._scaled,
        )
        if self._scaled:
            trainable, opt_state, loss = self._scaled_update(value_and_grad, trainable, opt_state, batch)
            return merge(trainable, frozen), opt_state, loss
        loss, grads = value_and_grad(trainable, batch)
        trainable, opt_state = self.optimizer.update(grads, opt_state, trainable)
        return merge(trainable, frozen), opt_state, loss

    # ---------------------------------------------------------------- precision
    def _policy_objective(self, params: Any, batch: Any, *scale: Any) -> Any:
        """``loss_fn`` of the parameters and inputs cast to the compute dtype, as a float32
        loss; with a ``scale``, ``(loss * scale, loss)`` (the scaled loss is differentiated,
        the loss itself rides along as the auxiliary output)."""
        xp = self.backend.xp
        if self._compute_dtype is not None:
            params = self.policy.cast(params, self._compute_dtype, xp)
            batch = self.policy.cast_batch(batch, self._compute_dtype, xp)
        loss = self.loss_fn(params, batch)
        if self.backend.dtype_name(loss.dtype) in HALF_DTYPES:
            loss = xp.astype(loss, xp.float32)
        if not scale:
            return loss
        return xp.multiply(loss, xp.astype(scale[0], loss.dtype)), loss

    def _scaled_update(self, value_and_grad: Any, params: Any, opt_state: Any, batch: Any) -> tuple[Any, Any, Any]:
        """One update with dynamic loss scaling: differentiate ``loss * scale``, unscale the
        gradients, and keep the update only where every gradient is finite (or the scale is at
        its floor), choosing with ``where`` so the step compiles; see :mod:`portable_dl.precision`."""
        xp = self.backend.xp
        scaling = self.policy.loss_scale
        scale_state = opt_state[LOSS_SCALE_KEY]
        state = {key: value for key, value in opt_state.items() if key != LOSS_SCALE_KEY}
        (_, loss), grads = value_and_grad(params, batch, scale_state["scale"])
        grads, finite = scaling.unscale(grads, scale_state["scale"], xp)
        applied = scaling.applies(finite, scale_state["scale"], xp)
        # A skipped step's gradients are zeroed before the optimizer sees them, so no inf or
        # NaN arithmetic runs (NumPy would warn about it); its result is discarded anyway.
        grads = tree_map(lambda grad: None if grad is None else xp.where(applied, grad, xp.zeros_like(grad)), grads)
        new_params, new_state = self.optimizer.update(grads, state, params)
        params = _select(applied, new_params, params, xp)
        state = _select(applied, new_state, state, xp)
        return params, {**state, LOSS_SCALE_KEY: scaling.next_state(scale_state, finite, xp)}, loss

    def _split(self, params: Any) -> tuple[Any, Any]:
        if self.trainable is None:
            return params, None
        return partition(params, self.trainable)


def _select(condition: Any, new: Any, old: Any, xp: Any) -> Any:
    """``new`` where the 0-d bool ``condition`` holds, else ``old``, leaf by leaf: the old
    leaves bit for bit (``where`` copies, it does no arithmetic). None leaves stay None."""
    return tree_map(lambda a, b: a if a is None else xp.where(condition, a, b), new, old)


def make_train_step(
    loss_fn: Callable[[Any, Any], Any],
    optimizer: Any,
    backend: Any,
    compile: bool = True,
    trainable: Any = None,
    *,
    world: Any = None,
    steps_per_call: int = 1,
    precision: Any = "float32",
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

    ``precision`` is a name (``"float32"``, the default: the parameters' own dtype, no cast;
    ``"mixed_bfloat16"``; ``"mixed_float16"``, with dynamic loss scaling) or a
    :class:`~portable_dl.precision.Policy`; see :mod:`portable_dl.precision`. A backend
    without the compute dtype raises DTypeError. Mixed precision is not yet supported with a
    ``world`` of more than one process (ValueError).
    """
    policy = get_policy(precision)
    if not policy.is_default and world is not None and world.size > 1:
        raise ValueError(
            f"precision {policy.name!r} is not yet supported with a world of more than one process; "
            "use precision='float32' for data-parallel training"
        )
    if type(steps_per_call) is not int or steps_per_call != 1:  # True and 1.0 are errors, not 1
        from .multi_step import MultiStep, check_steps_per_call

        check_steps_per_call(steps_per_call)
        if world is not None and world.size > 1:
            raise ValueError(
                "steps_per_call > 1 is not yet supported with a world of more than one process; "
                "use steps_per_call=1 for data-parallel training"
            )
        return MultiStep(
            loss_fn, optimizer, backend, steps_per_call, compile=compile, trainable=trainable, precision=policy
        )
    if world is not None and world.size > 1:
        from .distributed.step import DataParallelStep

        return DataParallelStep(loss_fn, optimizer, get_backend(backend), world, compile=compile, trainable=trainable)
    return TrainStep(loss_fn, optimizer, backend, compile=compile, trainable=trainable, precision=policy)
