"""What every optimizer shares: the state layout, the walk over the parameters, clipping,
the learning rate at a step, and the checks on hyperparameters.

An optimizer is two pure functions over pytrees of backend arrays::

    state = optimizer.init(params)
    params, state = optimizer.update(grads, state, params)

Its state is ``{"step": s, "slots": slots}``: ``s`` is an int32 scalar array, the number of
updates done so far (an array, not a Python int, so that a compiled training step sees the
same input types at every step and is traced once), and ``slots`` has the structure of
``params`` with, in place of each array, a dict of that parameter's own arrays (``{"exp_avg":
m, "exp_avg_sq": v}`` for Adam), named as ``torch.optim`` names them in its state dict.

A subclass is written like one of MLX's optimizers, two small methods:
``init_single(param) -> slots`` and ``update_single(param, grad, slots, lr, t) -> (param,
slots)``, with the update rule as math in the class docstring. Both are written once with
the array namespace ``xp`` and take no Python decision on array values, so they run eagerly,
under every backend's autodiff, and inside ``jax.jit``, ``tf.function``, ``mx.compile`` and
``torch.compile``. Nothing is mutated: ``update`` returns new arrays, and the old state stays
valid (a failed step can be retried from it).

Frozen parameters: where ``params`` or ``grads`` holds None in place of an array (the
trainable part from :func:`portable_dl.nn.partition`), the parameter and its slots are
passed through untouched.

Gradient clipping belongs to the optimizer (``clip_value=``, ``clip_norm=``), so a training
step that knows only ``optimizer.update`` clips too: first each element to
``[-clip_value, clip_value]``, then all gradients together to global norm ``clip_norm``
(:mod:`portable_dl.clipping`), before weight decay is added, as when ``torch.nn.utils.
clip_grad_norm_`` is called between ``backward()`` and ``step()``.
"""

from __future__ import annotations

import abc
import math
import numbers
from typing import Any, Callable

from .. import clipping
from ..errors import DTypeError, ShapeError
from ..registry import backend_of
from ..tree import tree_leaves

__all__ = ["Optimizer", "power", "one_minus_power"]

#: The dtype of the step count: the one integer dtype every backend has on every device
#: (JAX without x64 has no int64), exact up to two billion updates.
STEP_DTYPE = "int32"


class Optimizer(abc.ABC):
    """Base class: holds the learning rate and the clipping options, and turns the
    per-parameter rule of a subclass into ``init`` and ``update`` over pytrees.

    Args:
        lr: the learning rate, a non-negative float or a schedule ``schedule(step) -> lr``
            (:mod:`portable_dl.schedules`), evaluated at the number of updates done before
            this one (0 at the first update), as ``torch.optim.lr_scheduler``, optax, Keras
            and MLX do.
        clip_value: if given, gradients are first clamped element-wise to
            ``[-clip_value, clip_value]``.
        clip_norm: if given, gradients are then scaled together so that their global norm is
            at most ``clip_norm`` (as ``torch.nn.utils.clip_grad_norm_``).
    """

    #: The optimizer's name, as ``torch.optim`` spells its class.
    name = "Optimizer"

    def __init__(self, lr: float | Callable, *, clip_norm: float | None = None, clip_value: float | None = None):
        self.lr = learning_rate(self.name, lr)
        self.clip_norm = None if clip_norm is None else positive(self.name, "clip_norm", clip_norm)
        self.clip_value = None if clip_value is None else positive(self.name, "clip_value", clip_value)

    # ----------------------------------------------------------- what subclasses write
    def init_single(self, param: Any) -> dict:
        """The slots of one parameter: a dict of arrays of the parameter's shape, dtype and
        device (or scalars of its dtype)."""
        return {}

    @abc.abstractmethod
    def update_single(self, param: Any, grad: Any, slots: dict, lr: Any, t: Any) -> tuple[Any, dict]:
        """One update of one parameter.

        Args:
            param, grad: arrays of one shape and floating dtype.
            slots: the dict :meth:`init_single` made, as left by the previous update.
            lr: the learning rate of this update: a Python float, or a 0-d array of the
                parameter's dtype when a schedule gives it.
            t: the number of this update (1 at the first), a 0-d array of the parameter's dtype.

        Returns:
            ``(new_param, new_slots)``.
        """

    def own_hyperparameters(self) -> dict:
        """The subclass's hyperparameters beyond ``lr`` and clipping, as plain Python values."""
        return {}

    # ---------------------------------------------------------------- the public pair
    @property
    def hyperparameters(self) -> dict:
        """Every hyperparameter as a plain Python value: ``{"lr": 0.001, "betas": (0.9,
        0.999), ...}``; a schedule is described by a dict (``{"schedule": "cosine", ...}``)."""
        return {
            "lr": describe_learning_rate(self.lr),
            **self.own_hyperparameters(),
            "clip_norm": self.clip_norm,
            "clip_value": self.clip_value,
        }

    def init(self, params: Any) -> dict:
        """The state before the first update: ``{"step": 0, "slots": ...}`` (see the module
        docstring), on the parameters' backend and device."""
        leaves = tree_leaves(params)
        if not leaves:
            raise ValueError(f"{self.name}.init needs parameters with at least one array, got {params!r}")
        backend = backend_of(*leaves)
        step = backend.asarray(0, STEP_DTYPE)
        return {"step": step, "slots": _map_structure(self.init_single, params)}

    def update(self, grads: Any, state: dict, params: Any) -> tuple[Any, dict]:
        """Apply one update.

        Args:
            grads: a pytree of the structure of ``params``; arrays of the parameters'
                shapes (None skips a parameter).
            state: what :meth:`init` or the previous ``update`` returned.
            params: the parameters (None marks a frozen one, which is skipped).

        Returns:
            ``(new_params, new_state)``; ``state`` itself is left as it was.

        Raises:
            ShapeError: a gradient whose shape differs from its parameter's, or ``grads``
                whose structure differs from ``params``.
            DTypeError: a parameter or gradient that is not floating-point.
            ValueError: a ``state`` that was not made by this optimizer for these params.
        """
        _check_state(self.name, state)
        leaves = tree_leaves(params)
        if not leaves:
            return params, state
        xp = backend_of(*leaves).xp
        grads = self.clip_gradients(grads)
        step = state["step"]
        t = xp.add(step, 1)
        # The learning rate and t in each parameter dtype, and the dtype pairs found
        # floating: worked out once per update, not once per parameter, because in eager
        # mode every array operation here is a dispatch that costs as much as a small kernel.
        scalars: dict[str, tuple[Any, Any]] = {}
        floating_pairs: set[tuple[str, str]] = set()

        def update_leaf(path: str, param: Any, grad: Any, slots: Any) -> tuple[Any, Any]:
            _check_gradient_shape(self.name, path, param, grad)
            key = str(param.dtype)
            if (key, str(grad.dtype)) not in floating_pairs:
                if not (xp.isdtype(param.dtype, "real floating") and xp.isdtype(grad.dtype, "real floating")):
                    raise DTypeError(f"{self.name}.update: parameter {path!r} of dtype {param.dtype} with a gradient "
                                     f"of dtype {grad.dtype}; optimizers update floating-point parameters only")
                floating_pairs.add((key, str(grad.dtype)))
            if not isinstance(slots, dict):
                raise ValueError(f"{self.name}.update: the state has no slots for parameter {path!r}; "
                                 "was it made by this optimizer's init for these params?")
            if key not in scalars:
                scalars[key] = (self.learning_rate_at(step, param, xp), xp.astype(t, param.dtype))
            lr, t_in_dtype = scalars[key]
            return self.update_single(param, grad, slots, lr, t_in_dtype)

        new_params, new_slots = _map_parameters(self.name, update_leaf, params, grads, state["slots"])
        return new_params, {"step": t, "slots": new_slots}

    # ------------------------------------------------------------------ shared pieces
    def clip_gradients(self, grads: Any) -> Any:
        """``grads`` clamped to ``clip_value`` and scaled to global norm ``clip_norm``, as
        configured; unchanged when neither is set or every gradient is None."""
        if not tree_leaves(grads):
            return grads
        if self.clip_value is not None:
            grads = clipping.clip_by_value(grads, self.clip_value)
        if self.clip_norm is not None:
            grads, _ = clipping.clip_by_global_norm(grads, self.clip_norm)
        return grads

    def learning_rate_at(self, step: Any, like: Any, xp: Any) -> Any:
        """The learning rate after ``step`` updates: a constant rate as the Python float it is
        (it takes the parameters' dtype in arithmetic); a schedule's as a 0-d array of
        ``like``'s dtype and device, evaluated on ``step`` cast to that dtype, so float32
        training stays float32 and a compiled step reads the step count from the state."""
        if not callable(self.lr):
            return self.lr
        t = xp.astype(step, like.dtype)
        value = self.lr(t)
        if hasattr(value, "dtype"):
            return xp.astype(value, like.dtype)
        return xp.full_like(t, value)

    def __repr__(self) -> str:
        shown = ", ".join(f"{key}={value!r}" for key, value in self.hyperparameters.items()
                          if not (key.startswith("clip_") and value is None))
        return f"{self.name}({shown})"


# --------------------------------------------------------------- powers of a decay
def power(base: float, t: Any, xp: Any) -> Any:
    """``base ** t`` for a Python float ``0 <= base`` and an array ``t >= 1``, in ``t``'s dtype.

    Computed as ``exp(t log(base))`` with the logarithm taken in double precision: a float32
    ``0.999`` is off by 1.3e-8, which ``1 - 0.999 ** t`` would magnify to a relative error of
    1e-5, where torch (which computes these in Python floats) has none.
    """
    if base == 0.0:
        return xp.zeros_like(t)
    return xp.exp(t * math.log(base))


def one_minus_power(base: float, t: Any, xp: Any) -> Any:
    """``1 - base ** t`` (Adam's bias correction), accurate also where ``base ** t`` is near 1:
    ``-expm1(t log(base))``, see :func:`power`."""
    if base == 0.0:
        return xp.ones_like(t)
    return -xp.expm1(t * math.log(base))


# ------------------------------------------------------------------ walking the trees
def _map_structure(function: Callable, params: Any) -> Any:
    """``params`` with ``function(array)`` in place of each array; None stays None."""
    if params is None:
        return None
    if isinstance(params, dict):
        return {key: _map_structure(function, value) for key, value in params.items()}
    if isinstance(params, (list, tuple)):
        mapped = [_map_structure(function, value) for value in params]
        return mapped if isinstance(params, list) else tuple(mapped)
    return function(params)


def _map_parameters(owner: str, function: Callable, params: Any, grads: Any, slots: Any, path: str = "") -> tuple[Any, Any]:
    """Walk ``params``, ``grads`` and ``slots`` together; at each array call
    ``function(path, param, grad, slots) -> (param, slots)``. Where the parameter or its
    gradient is None, parameter and slots come back unchanged. Returns the two new trees."""
    if params is None or grads is None:
        return params, slots
    if isinstance(params, dict):
        if not isinstance(grads, dict) or set(grads) != set(params):
            raise ShapeError(f"{owner}.update: the gradients do not match the parameters at {path or 'the root'}: "
                             f"parameters have keys {sorted(map(str, params))}, gradients "
                             f"{sorted(map(str, grads)) if isinstance(grads, dict) else type(grads).__name__}")
        if not isinstance(slots, dict) or set(slots) != set(params):
            raise ValueError(f"{owner}.update: the optimizer state does not match the parameters at "
                             f"{path or 'the root'}; was it made by this optimizer's init for these params?")
        new_params, new_slots = {}, {}
        for key in params:
            new_params[key], new_slots[key] = _map_parameters(owner, function, params[key], grads[key], slots[key], _join(path, key))
        return new_params, new_slots
    if isinstance(params, (list, tuple)):
        if not isinstance(grads, (list, tuple)) or len(grads) != len(params):
            raise ShapeError(f"{owner}.update: the gradients do not match the parameters at {path or 'the root'}: "
                             f"{len(params)} parameters, gradients {_describe_node(grads)}")
        if not isinstance(slots, (list, tuple)) or len(slots) != len(params):
            raise ValueError(f"{owner}.update: the optimizer state does not match the parameters at "
                             f"{path or 'the root'}; was it made by this optimizer's init for these params?")
        pairs = [_map_parameters(owner, function, p, g, s, _join(path, i)) for i, (p, g, s) in enumerate(zip(params, grads, slots))]
        kind = list if isinstance(params, list) else tuple
        return kind(p for p, _ in pairs), kind(s for _, s in pairs)
    if isinstance(grads, (dict, list, tuple)):
        raise ShapeError(f"{owner}.update: parameter {path!r} is an array but its gradient is a {type(grads).__name__}")
    return function(path, params, grads, slots)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _describe_node(node: Any) -> str:
    if isinstance(node, (list, tuple)):
        return f"a {type(node).__name__} of {len(node)}"
    return f"a {type(node).__name__}"


def _check_gradient_shape(owner: str, path: str, param: Any, grad: Any) -> None:
    """ShapeError when the gradient's shape differs from its parameter's. Sizes unknown
    while tracing (None inside tf.function) are taken to agree."""
    param_shape, grad_shape = _shape(param), _shape(grad)
    agree = len(param_shape) == len(grad_shape) and all(
        p is None or g is None or p == g for p, g in zip(param_shape, grad_shape)
    )
    if not agree:
        raise ShapeError(f"{owner}.update: the gradient of parameter {path!r} has shape {grad_shape}, "
                         f"but the parameter has shape {param_shape}")


def _shape(x: Any) -> tuple:
    shape = getattr(x, "shape", None)
    if shape is None:
        raise ShapeError(f"expected an array, got {type(x).__name__}")
    return tuple(None if d is None else int(d) for d in shape)


def _check_state(owner: str, state: Any) -> None:
    if not (isinstance(state, dict) and "step" in state and "slots" in state):
        raise ValueError(f"{owner}.update needs the state that {owner}.init returned, a dict with 'step' "
                         f"and 'slots'; got {type(state).__name__}")


# ------------------------------------------------------------ hyperparameter checks
def number(owner: str, name: str, value: Any) -> float:
    """``value`` as a finite Python float; ValueError naming the optimizer and the option."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{owner}: {name} must be a finite real number, got {value!r}")
    return float(value)


def non_negative(owner: str, name: str, value: Any) -> float:
    value = number(owner, name, value)
    if value < 0:
        raise ValueError(f"{owner}: {name} must be >= 0, got {value!r}")
    return value


def positive(owner: str, name: str, value: Any) -> float:
    value = number(owner, name, value)
    if value <= 0:
        raise ValueError(f"{owner}: {name} must be > 0, got {value!r}")
    return value


def decay_rate(owner: str, name: str, value: Any, closed: bool = False) -> float:
    """A decay rate in ``[0, 1)`` (``[0, 1]`` when ``closed``)."""
    value = number(owner, name, value)
    if not (0.0 <= value < 1.0 or (closed and value == 1.0)):
        interval = "[0, 1]" if closed else "[0, 1)"
        raise ValueError(f"{owner}: {name} must lie in {interval}, got {value!r}")
    return value


def flag(owner: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: {name} must be True or False, got {value!r}")
    return value


def learning_rate(owner: str, value: Any) -> float | Callable:
    """A learning rate: a non-negative finite float, or a schedule (any callable)."""
    if callable(value):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{owner}: lr must be a non-negative number or a schedule (a callable step -> lr), got {value!r}")
    return non_negative(owner, "lr", value)


def describe_learning_rate(lr: float | Callable) -> Any:
    """A float as itself; a schedule by its own description, or its name."""
    if not callable(lr):
        return lr
    described = getattr(lr, "hyperparameters", None)
    if isinstance(described, dict):
        return dict(described)
    return getattr(lr, "__name__", repr(lr))
