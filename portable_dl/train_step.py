"""One training step, as one pure function the backend can compile.

:func:`make_train_step` builds

    step(params, opt_state, (x, y)) -> (params, opt_state, loss)

from a loss, an optimizer and a backend: the backend's own ``value_and_grad`` gives the
loss and its gradient, the optimizer's ``update`` the new parameters and state, and the
backend's own compiler (``jax.jit``, ``tf.function``, ``mx.compile``, ``torch.compile``)
takes the whole step as one function. Nothing is mutated, so a step that fails leaves its
inputs as they were.

:meth:`TrainStep.checked` is the same step with a fourth output that says, on the device,
whether every updated parameter is finite; :func:`portable_dl.fit` adds it to the loss sum
it reads anyway, so a NaN gradient under a finite loss is caught at no extra host read.

This module imports no framework.
"""

from __future__ import annotations

from typing import Any, Callable

from .nn import merge, partition
from .registry import backend as get_backend
from .tree import tree_leaves

__all__ = ["TrainStep", "make_train_step"]


class TrainStep:
    """``step(params, opt_state, (x, y)) -> (params, opt_state, loss)``; see :func:`make_train_step`.

    ``init(params)`` gives the optimizer state this step expects: the state of the trainable
    parameters only, when a ``trainable`` mask is set.
    """

    def __init__(self, loss_fn: Callable[[Any, Any], Any], optimizer: Any, backend: Any, *,
                 compile: bool = True, trainable: Any = None):
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.backend = get_backend(backend)
        self.trainable = trainable
        self.compiled = bool(compile)
        self._value_and_grad = self.backend.value_and_grad(loss_fn)
        self._step = self._compile(self._plain)
        self._checked = None  # compiled on first use: plain callers never pay for it

    def init(self, params: Any) -> Any:
        """The optimizer's initial state for ``params`` (only their trainable leaves)."""
        return self.optimizer.init(self._split(params)[0])

    def __call__(self, params: Any, opt_state: Any, batch: Any) -> tuple[Any, Any, Any]:
        return self._step(params, opt_state, batch)

    def checked(self, params: Any, opt_state: Any, batch: Any) -> tuple[Any, Any, Any, Any]:
        """``(params, opt_state, loss, health)``: the step, and ``health``, a scalar of the
        loss's dtype that is 0 when every updated parameter is finite and NaN when one is NaN
        or infinite.

        It is the sum over the updated leaves of ``sum(leaf * 0)``: one multiply and one sum
        per leaf, fused by the compilers, and no overflow (a sum of squares of large finite
        values could reach inf). The updated parameters, not the gradients, are checked: they
        are what training returns, and an optimizer that skips a non-finite gradient (dynamic
        loss scaling) must not be reported as diverged. ``loss + health`` is the loss exactly
        when healthy (``x + 0 == x``), so a loop can add it to the sum of losses it reads.
        """
        if self._checked is None:
            self._checked = self._compile(self._with_health)
        return self._checked(params, opt_state, batch)

    def _compile(self, step: Callable) -> Callable:
        return self.backend.compile(step) if self.compiled else step

    def _plain(self, params: Any, opt_state: Any, batch: Any) -> tuple[Any, Any, Any]:
        params, opt_state, loss, _ = self._update(params, opt_state, batch)
        return params, opt_state, loss

    def _with_health(self, params: Any, opt_state: Any, batch: Any) -> tuple[Any, Any, Any, Any]:
        params, opt_state, loss, updated = self._update(params, opt_state, batch)
        return params, opt_state, loss, _health(updated, loss, self.backend.xp)

    def _update(self, params: Any, opt_state: Any, batch: Any) -> tuple[Any, Any, Any, Any]:
        """``(params, opt_state, loss, updated)``, ``updated`` the trainable part of the new params."""
        if self.trainable is None:
            loss, grads = self._value_and_grad(params, batch)
            params, opt_state = self.optimizer.update(grads, opt_state, params)
            return params, opt_state, loss, params
        # Frozen leaves leave the differentiated argument altogether (None in their place),
        # so no framework computes a gradient for them and no optimizer touches them.
        trainable, frozen = self._split(params)
        loss, grads = self.backend.value_and_grad(
            lambda trainable_part, batch_: self.loss_fn(merge(trainable_part, frozen), batch_)
        )(trainable, batch)
        trainable, opt_state = self.optimizer.update(grads, opt_state, trainable)
        return merge(trainable, frozen), opt_state, loss, trainable

    def _split(self, params: Any) -> tuple[Any, Any]:
        if self.trainable is None:
            return params, None
        return partition(params, self.trainable)


def _health(tree: Any, loss: Any, xp: Any) -> Any:
    """0 in ``loss``'s dtype when every floating leaf of ``tree`` is finite, else NaN
    (``inf * 0`` and ``nan * 0`` are NaN, and NaN survives every sum)."""
    total = xp.multiply(loss, 0.0)  # a scalar of the loss's dtype on its device; NaN if the loss is
    for leaf in tree_leaves(tree):
        if xp.isdtype(leaf.dtype, "real floating"):
            total = xp.add(total, xp.astype(xp.sum(xp.multiply(leaf, 0.0)), loss.dtype))
    return total


def make_train_step(loss_fn: Callable[[Any, Any], Any], optimizer: Any, backend: Any,
                    compile: bool = True, trainable: Any = None) -> TrainStep:
    """A pure training step ``(params, opt_state, batch) -> (params, opt_state, loss)``.

    ``loss_fn(params, batch) -> scalar`` with ``batch = (x, y)``; ``optimizer`` has
    ``init(params)`` and ``update(grads, state, params)``; ``backend`` is a Backend or its
    name. The gradient comes from ``backend.value_and_grad``; with ``compile`` the whole step
    is compiled by ``backend.compile``. ``trainable`` is a mask from
    ``nn.trainable_mask``: frozen leaves are neither differentiated nor updated, and come back
    as the very same arrays. Create the optimizer state with the step's ``init(params)``.
    :meth:`TrainStep.checked` also says whether the updated parameters are finite.
    """
    return TrainStep(loss_fn, optimizer, backend, compile=compile, trainable=trainable)
