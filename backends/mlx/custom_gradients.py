"""Gradients MLX computes differently from our conventions, as ``mx.custom_function``s.

``mx.maximum``/``mx.minimum`` give the whole gradient to the second argument where the two
are equal; the design's convention splits it evenly (:func:`tie_splitting`).
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx

__all__ = ["sum_to_shape", "tie_splitting"]


def sum_to_shape(g: mx.array, shape: tuple[int, ...]) -> mx.array:
    """The cotangent ``g`` of a broadcast result, summed back to an operand's ``shape``."""
    if tuple(g.shape) == tuple(shape):
        return g
    leading = g.ndim - len(shape)
    axes = list(range(leading)) + [
        leading + i for i, size in enumerate(shape) if size == 1 and g.shape[leading + i] != 1
    ]
    return mx.sum(g, axis=axes, keepdims=True).reshape(shape) if axes else g.reshape(shape)


def tie_splitting(select: Any) -> Any:
    """``maximum`` or ``minimum`` with a gradient that splits evenly at ties.

    ``select(x1, x2)`` picks element-wise; where ``x1`` wins the whole cotangent goes to
    ``x1``, where ``x2`` wins to ``x2``, and where they are equal half to each (MLX's own
    rule gives it all to ``x2``).
    """

    @mx.custom_function
    def tie_splitting(x1: mx.array, x2: mx.array) -> mx.array:
        return select(x1, x2)

    @tie_splitting.vjp
    def tie_splitting_vjp(primals: tuple, cotangent: mx.array, output: mx.array) -> tuple:
        x1, x2 = primals
        wins = mx.equal(output, x1).astype(cotangent.dtype)
        loses = mx.equal(output, x2).astype(cotangent.dtype)
        share = wins / mx.maximum(wins + loses, 1)  # 1, 0 or 1/2 at a tie
        g1 = sum_to_shape(cotangent * share, x1.shape).astype(x1.dtype)
        g2 = sum_to_shape(cotangent * (1 - share), x2.shape).astype(x2.dtype)
        return g1, g2

    return tie_splitting
