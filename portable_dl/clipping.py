"""Gradient clipping over pytrees, written once with the array namespace.

Both functions are pure and take no Python decision on array values, so they run inside a
compiled training step. None leaves (frozen parameters) are skipped and kept. Optimizers
apply them through their ``clip_value=`` and ``clip_norm=`` options
(:class:`portable_dl.optimizers.Optimizer`); they can also be called on their own.
"""

from __future__ import annotations

import math
import numbers
from functools import reduce
from typing import Any

from .registry import backend_of
from .tree import tree_leaves, tree_map

__all__ = ["clip_by_global_norm", "clip_by_value", "global_norm"]

#: Added to the norm before dividing, as ``torch.nn.utils.clip_grad_norm_`` does, so that
#: all-zero gradients do not divide by zero.
NORM_EPSILON = 1e-6


def global_norm(grads: Any) -> Any:
    """The Euclidean norm of all arrays of ``grads`` taken together,
    :math:`\\sqrt{\\sum_i \\sum_j g_{ij}^2}`: a 0-d array of the arrays' promoted floating dtype."""
    leaves = tree_leaves(grads)
    if not leaves:
        raise ValueError("global_norm needs at least one array, got a tree without arrays")
    xp = backend_of(*leaves).xp
    dtype = xp.result_type(*leaves)
    squares = [xp.sum(xp.square(xp.astype(leaf, dtype))) for leaf in leaves]
    return xp.sqrt(reduce(xp.add, squares))


def clip_by_global_norm(grads: Any, max_norm: float) -> tuple[Any, Any]:
    """Scale all of ``grads`` by one factor so that their global norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: with :math:`n` the global norm,

    .. math:: g \\leftarrow g \\cdot \\min\\left(1, \\frac{\\text{max\\_norm}}{n + 10^{-6}}\\right)

    Args:
        grads: a pytree of floating arrays (None leaves are kept).
        max_norm: a positive finite float.

    Returns:
        ``(clipped, norm)``: the tree of the same structure, shapes and dtypes, and the
        global norm *before* clipping as a 0-d array (to log it).
    """
    max_norm = _positive("clip_by_global_norm", "max_norm", max_norm)
    norm = global_norm(grads)
    xp = backend_of(norm).xp
    factor = max_norm / (norm + NORM_EPSILON)
    factor = xp.minimum(factor, xp.ones_like(factor))
    return tree_map(lambda g: g * xp.astype(factor, g.dtype), grads), norm


def clip_by_value(grads: Any, limit: float) -> Any:
    """Clamp every element of ``grads`` to ``[-limit, limit]``; same structure, shapes and
    dtypes (as ``torch.nn.utils.clip_grad_value_`` and Keras' ``clipvalue``)."""
    limit = _positive("clip_by_value", "limit", limit)
    leaves = tree_leaves(grads)
    if not leaves:
        return grads
    xp = backend_of(*leaves).xp  # once, not per leaf: this runs at every step
    return tree_map(lambda g: xp.clip(g, min=-limit, max=limit), grads)


def _positive(function: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)) or value <= 0:
        raise ValueError(f"{function}: {name} must be a positive finite number, got {value!r}")
    return float(value)
