"""What every optimizer shares: the declaration and checks of hyperparameters, the state
layout, the walk over the parameters, clipping, weight decay and the learning rate at a step.

An optimizer is two pure functions over pytrees of backend arrays::

    state = optimizer.init(params)
    params, state = optimizer.update(grads, state, params)

Its state is ``{"step": s, "slots": slots}``: ``s`` is an int32 scalar array, the number of
updates done so far (an array, not a Python int, so that a compiled training step sees the
same input types at every step and is traced once), and ``slots`` has the structure of
``params`` with, in place of each array, a dict of that parameter's own arrays (``{"exp_avg":
m, "exp_avg_sq": v}`` for Adam), named as ``torch.optim`` names them in its state dict. Each
class docstring states once which symbol of its formula each slot holds, and the code uses
the symbol's name for it.

A subclass is written like one of MLX's optimizers: its hyperparameters declared once, as
dataclass fields with their defaults and checks (``hyperparameter(0.9, decay_rate)``), which
make the constructor, validate it (:meth:`Optimizer.__post_init__`, in one place) and list
:attr:`Optimizer.hyperparameters`; and two small methods, ``init_single(param, xp) -> slots``
and ``update_single(param, grad, slots, lr, t, xp) -> (param, slots)``, with the update rule
as math in the class docstring. ``xp`` is the array namespace, looked up once per call of
``init`` or ``update``. Both are written once with ``xp`` and take no Python decision on
array values, so they run eagerly, under every backend's autodiff, and inside ``jax.jit``,
``tf.function``, ``mx.compile`` and ``torch.compile``. Nothing is mutated: ``update`` returns
new arrays, and the old state stays valid (a failed step can be retried from it).

Weight decay is applied here, once for every optimizer, before ``update_single``: the L2
penalty :math:`g \\leftarrow g + \\lambda\\theta` (torch's ``weight_decay``), or, for a class with
``decoupled_weight_decay`` (AdamW), :math:`\\theta \\leftarrow (1 - \\gamma\\lambda)\\theta`.

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
from collections.abc import Callable
from dataclasses import KW_ONLY, MISSING, dataclass, field, fields
from typing import Any, ClassVar

from .. import clipping
from ..errors import DTypeError, ShapeError, TreeStructureError
from ..registry import backend_of
from ..tree import (
    path_string,
    tree_flatten_with_path,
    tree_leaves,
    tree_map,
    tree_unflatten,
)

__all__ = ["Optimizer", "hyperparameter", "one_minus_power", "power"]

#: The dtype of the step count: the one integer dtype every backend has on every device
#: (JAX without x64 has no int64), exact up to two billion updates.
STEP_DTYPE = "int32"


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


def optional_positive(owner: str, name: str, value: Any) -> float | None:
    """None, or a positive finite float."""
    return None if value is None else positive(owner, name, value)


def decay_rate(owner: str, name: str, value: Any, closed: bool = False) -> float:
    """A decay rate in ``[0, 1)`` (``[0, 1]`` when ``closed``)."""
    value = number(owner, name, value)
    if not (0.0 <= value < 1.0 or (closed and value == 1.0)):
        interval = "[0, 1]" if closed else "[0, 1)"
        raise ValueError(f"{owner}: {name} must lie in {interval}, got {value!r}")
    return value


def fraction(owner: str, name: str, value: Any) -> float:
    """A number in ``[0, 1]`` (a decay rate that may be 1, a dampening)."""
    return decay_rate(owner, name, value, closed=True)


def pair_of_decay_rates(owner: str, name: str, value: Any) -> tuple[float, float]:
    """A pair of decay rates in ``[0, 1)``, such as Adam's betas; a tuple."""
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise ValueError(f"{owner}: {name} must be a pair ({name}[0], {name}[1]), got {value!r}")
    return decay_rate(owner, f"{name}[0]", value[0]), decay_rate(owner, f"{name}[1]", value[1])


def flag(owner: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: {name} must be True or False, got {value!r}")
    return value


def learning_rate(owner: str, name: str, value: Any) -> float | Callable:
    """A learning rate: a non-negative finite float, or a schedule (any callable)."""
    if callable(value):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"{owner}: {name} must be a non-negative number or a schedule (a callable step -> lr), got {value!r}"
        )
    return non_negative(owner, name, value)


def hyperparameter(default: Any = MISSING, check: Callable[[str, str, Any], Any] | None = None) -> Any:
    """Declare a hyperparameter: a dataclass field with its ``default`` and ``check``, a
    function ``check(optimizer_name, field_name, value) -> value`` that raises ValueError
    for a bad value and returns it normalized (a float, a tuple)."""
    return field(default=default, metadata={"check": check})


@dataclass(eq=False, repr=False, frozen=True)
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

    Optimizers are frozen dataclasses compared by identity: set a different hyperparameter
    by making a new one (``dataclasses.replace(adam, lr=0.01)``).
    """

    #: The optimizer's name, as ``torch.optim`` spells its class.
    name: ClassVar[str] = "Optimizer"
    # The two below are plain class attributes, not ClassVar annotations: a subclass declares
    # them as hyperparameters in its own place of the constructor's order (a ClassVar's place
    # in the base would be kept by the dataclass machinery, ahead of lr).
    #: Whether weight decay shrinks the parameters directly (AdamW) instead of adding
    #: :math:`\\lambda\\theta` to the gradient.
    decoupled_weight_decay = False
    #: The L2 penalty :math:`\\lambda`; subclasses that offer weight decay declare it.
    weight_decay = 0.0

    lr: float | Callable = hyperparameter(check=learning_rate)
    _: KW_ONLY
    clip_norm: float | None = hyperparameter(None, optional_positive)
    clip_value: float | None = hyperparameter(None, optional_positive)

    def __post_init__(self) -> None:
        """Check every hyperparameter with the check its declaration names, in one place."""
        for declared in fields(self):
            check = declared.metadata.get("check")
            if check is not None:
                # object.__setattr__: the dataclass is frozen; this is its constructor.
                object.__setattr__(self, declared.name, check(self.name, declared.name, getattr(self, declared.name)))

    # ----------------------------------------------------------- what subclasses write
    def init_single(self, param: Any, xp: Any) -> dict:
        """The slots of one parameter: a dict of arrays of the parameter's shape, dtype and
        device (or scalars of its dtype); ``xp`` is the parameter's array namespace."""
        return {}

    @abc.abstractmethod
    def update_single(self, param: Any, grad: Any, slots: dict, lr: Any, t: Any, xp: Any) -> tuple[Any, dict]:
        """One update of one parameter, after weight decay (see the module docstring).

        Args:
            param, grad: arrays of one shape and floating dtype.
            slots: the dict :meth:`init_single` made, as left by the previous update.
            lr: the learning rate of this update: a Python float, or a 0-d array of the
                parameter's dtype when a schedule gives it.
            t: the number of this update (1 at the first), a 0-d array of the parameter's dtype.
            xp: the array namespace of ``param``.

        Returns:
            ``(new_param, new_slots)``.
        """

    # ---------------------------------------------------------------- the public pair
    @property
    def hyperparameters(self) -> dict:
        """Every hyperparameter as a plain Python value, in the constructor's order with the
        clipping options last: ``{"lr": 0.001, "betas": (0.9, 0.999), ..., "clip_norm": None,
        "clip_value": None}``; a schedule is described by a dict (``{"schedule": "cosine", ...}``)."""
        declared = sorted(fields(self), key=lambda item: item.kw_only)  # stable: positional ones first
        values = {item.name: getattr(self, item.name) for item in declared}
        return {**values, "lr": describe_learning_rate(self.lr)}

    def init(self, params: Any) -> dict:
        """The state before the first update: ``{"step": 0, "slots": ...}`` (see the module
        docstring), on the parameters' backend and device."""
        leaves = tree_leaves(params)
        if not leaves:
            raise ValueError(f"{self.name}.init needs parameters with at least one array, got {params!r}")
        backend = backend_of(*leaves)
        xp = backend.xp
        step = backend.asarray(0, STEP_DTYPE)
        return {"step": step, "slots": tree_map(lambda param: self.init_single(param, xp), params)}

    def update(self, grads: Any, state: dict, params: Any, *, fused: bool = True) -> tuple[Any, dict]:
        """Apply one update.

        In eager code, where the backend has a fused implementation of this optimizer
        (:meth:`portable_dl.Backend.fused_update`: torch's multi-tensor kernels for Adam, AdamW
        and SGD), it computes the same numbers with fewer dispatches and allocations; under a
        compiler, and for every other optimizer, the per-parameter rule runs.

        Args:
            grads: a pytree of the structure of ``params``; arrays of the parameters'
                shapes (None skips a parameter).
            state: what :meth:`init` or the previous ``update`` returned.
            params: the parameters (None marks a frozen one, which is skipped).
            fused: False runs the pure per-parameter rule even where a fused one exists
                (the reference the fused path is checked against).

        Returns:
            ``(new_params, new_state)``; ``state`` itself is left as it was.

        Raises:
            ShapeError: a gradient whose shape differs from its parameter's, or ``grads``
                whose structure differs from ``params`` (a TreeStructureError naming the path).
            DTypeError: a parameter or gradient that is not floating-point.
            ValueError: a ``state`` that was not made by this optimizer for these params.
        """
        _check_state(self.name, state)
        try:
            # None in params is a leaf here: a frozen parameter keeps whatever slots it has.
            entries, treedef = tree_flatten_with_path(params, grads, state["slots"], is_leaf=_is_none)
        except TreeStructureError as error:
            raise self._mismatch(error) from None
        leaves = [param for _, param, _, _ in entries if param is not None]
        if not leaves:
            return params, state
        backend = backend_of(*leaves)
        xp = backend.xp
        # Clipped as the flat list the walk gave (a list is a pytree too): no second walk.
        clipped = self.clip_gradients([grad for _, _, grad, _ in entries])
        step = state["step"]
        t = xp.add(step, 1)
        # The learning rate and t in each parameter dtype, and the dtype pairs found
        # floating: worked out once per update, not once per parameter, because in eager
        # mode every array operation here is a dispatch that costs as much as a small kernel.
        scalars: dict[str, tuple[Any, Any]] = {}
        floating_pairs: set[tuple[str, str]] = set()
        active = []  # the positions of the parameters to update, all checked first
        for index, ((path, param, _, slots), grad) in enumerate(zip(entries, clipped)):
            if param is None or grad is None:  # a frozen parameter
                continue
            _check_gradient_shape(self.name, path, param, grad)
            key = str(param.dtype)
            if (key, str(grad.dtype)) not in floating_pairs:
                if not (xp.isdtype(param.dtype, "real floating") and xp.isdtype(grad.dtype, "real floating")):
                    raise DTypeError(
                        f"{self.name}.update: parameter {path_string(path)!r} of dtype {param.dtype} "
                        f"with a gradient of dtype {grad.dtype}; optimizers update floating-point "
                        "parameters only"
                    )
                floating_pairs.add((key, str(grad.dtype)))
            if not isinstance(slots, dict):
                raise ValueError(
                    f"{self.name}.update: the state has no slots for parameter {path_string(path)!r}; "
                    "was it made by this optimizer's init for these params?"
                )
            if key not in scalars:
                scalars[key] = (self.learning_rate_at(step, param, xp), xp.astype(t, param.dtype))
            active.append(index)
        updated = [(param, slots) for _, param, _, slots in entries]  # frozen ones stay as they are
        if not (fused and self._update_fused(backend, entries, clipped, active, scalars, floating_pairs, updated)):
            for index in active:
                _, param, _, slots = entries[index]
                grad = clipped[index]
                lr, t_in_dtype = scalars[str(param.dtype)]
                if self.weight_decay:
                    param, grad = self.apply_weight_decay(param, grad, lr)
                updated[index] = self.update_single(param, grad, slots, lr, t_in_dtype, xp)
        new_params = tree_unflatten(treedef, [param for param, _ in updated])
        new_slots = tree_unflatten(treedef, [slots for _, slots in updated])
        return new_params, {"step": t, "slots": new_slots}

    # ------------------------------------------------------------------ shared pieces
    def _update_fused(
        self,
        backend: Any,
        entries: list,
        clipped: list,
        active: list,
        scalars: dict,
        floating_pairs: set,
        updated: list,
    ) -> bool:
        """Update the ``active`` parameters by the backend's fused kernels, writing the results
        into ``updated``; False (nothing written) where the backend has none for this optimizer,
        the arrays are traced by a compiler, the parameters and gradients do not all share one
        dtype, or the fused function declines (:meth:`portable_dl.Backend.fused_update`)."""
        if not active or len(floating_pairs) != 1:
            return False
        [(param_dtype, grad_dtype)] = floating_pairs
        if param_dtype != grad_dtype:
            return False
        if not backend.is_concrete(entries[active[0]][1]):  # traced: the compiler fuses the pure rule itself
            return False
        fused = backend.fused_update(self)
        if fused is None:
            return False
        lr, t_in_dtype = scalars[param_dtype]
        result = fused(
            [entries[index][1] for index in active],
            [clipped[index] for index in active],
            [entries[index][3] for index in active],
            lr,
            t_in_dtype,
        )
        if result is None:
            return False
        for index, param, slots in zip(active, *result):
            updated[index] = (param, slots)
        return True

    def apply_weight_decay(self, param: Any, grad: Any, lr: Any) -> tuple[Any, Any]:
        """``(param, grad)`` after weight decay :math:`\\lambda`: the L2 term
        :math:`\\lambda\\theta` added to the gradient, or, decoupled (AdamW), the parameter
        shrunk to :math:`(1 - \\gamma\\lambda)\\theta`; unchanged without weight decay."""
        if not self.weight_decay:
            return param, grad
        if self.decoupled_weight_decay:
            return param * (1.0 - lr * self.weight_decay), grad
        return param, grad + self.weight_decay * param

    def clip_gradients(self, grads: Any) -> Any:
        """``grads`` clamped to ``clip_value`` and scaled to global norm ``clip_norm``, as
        configured; unchanged when neither is set or every gradient is None."""
        if (self.clip_value is None and self.clip_norm is None) or not tree_leaves(grads):
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

    def _mismatch(self, error: TreeStructureError) -> TreeStructureError:
        """The walk's structure error, said in terms of gradients or optimizer state."""
        where = repr(path_string(error.path)) if error.path else "the root"
        if error.argument == 1:
            return TreeStructureError(
                f"{self.name}.update: the gradients do not match the parameters at {where}: "
                f"the parameters have {error.expected}, the gradients {error.found}",
                path=error.path,
                argument=1,
                expected=error.expected,
                found=error.found,
            )
        return TreeStructureError(
            f"{self.name}.update: the optimizer state does not match the parameters at {where} "
            f"(the parameters have {error.expected}, the state {error.found}); was it made by "
            "this optimizer's init for these params?",
            path=error.path,
            argument=2,
            expected=error.expected,
            found=error.found,
        )

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{key}={value!r}"
            for key, value in self.hyperparameters.items()
            if not (key.startswith("clip_") and value is None)
        )
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


# ------------------------------------------------------------------ checks of input
def _check_gradient_shape(owner: str, path: tuple, param: Any, grad: Any) -> None:
    """ShapeError when the gradient is not an array or its shape differs from its parameter's.
    Sizes unknown while tracing (None inside tf.function) are taken to agree."""
    if getattr(grad, "shape", None) is None:
        raise ShapeError(
            f"{owner}.update: the gradient of parameter {path_string(path)!r} is a {type(grad).__name__}, not an array"
        )
    param_shape, grad_shape = _shape(param), _shape(grad)
    agree = len(param_shape) == len(grad_shape) and all(
        p is None or g is None or p == g for p, g in zip(param_shape, grad_shape)
    )
    if not agree:
        raise ShapeError(
            f"{owner}.update: the gradient of parameter {path_string(path)!r} has shape {grad_shape}, "
            f"but the parameter has shape {param_shape}"
        )


def _shape(x: Any) -> tuple:
    if getattr(x, "shape", None) is None:
        raise ShapeError(f"expected an array, got {type(x).__name__}")
    return tuple(None if d is None else int(d) for d in x.shape)


def _is_none(node: Any) -> bool:
    return node is None


def _check_state(owner: str, state: Any) -> None:
    if not (isinstance(state, dict) and "step" in state and "slots" in state):
        raise ValueError(
            f"{owner}.update needs the state that {owner}.init returned, a dict with 'step' "
            f"and 'slots'; got {type(state).__name__}"
        )


def describe_learning_rate(lr: float | Callable) -> Any:
    """A float as itself; a schedule by its own description, or its name."""
    if not callable(lr):
        return lr
    described = getattr(lr, "hyperparameters", None)
    if isinstance(described, dict):
        return dict(described)
    return getattr(lr, "__name__", repr(lr))
