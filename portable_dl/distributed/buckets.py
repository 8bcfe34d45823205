"""Many arrays as few flat buffers, so that one collective carries them all.

A gradient is a pytree of dozens of arrays; one collective call per array pays the
engine's fixed cost (a round trip between processes) dozens of times. :class:`Buckets`
lays the arrays end to end in one 1-D buffer per dtype (one buffer in the usual all-float32
model) and cuts them back out after the collective. It works on concrete and on traced
arrays alike (``jax.jit``, ``torch.compile``, ``mx.compile``), with ``xp`` calls only.

This module imports no framework.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["Buckets"]


class Buckets:
    """The layout of arrays of the given ``shapes`` and dtype names ``dtypes`` (one entry per
    array, in order) in one flat buffer per dtype, dtypes in order of first appearance."""

    def __init__(self, shapes: list[tuple[int, ...]], dtypes: list[str]):
        self.shapes = [tuple(int(d) for d in shape) for shape in shapes]
        self.dtypes = list(dict.fromkeys(dtypes))
        # where each array lives: (buffer index, start, stop)
        self.places: list[tuple[int, int, int]] = []
        filled = [0] * len(self.dtypes)
        for shape, dtype in zip(self.shapes, dtypes):
            bucket = self.dtypes.index(dtype)
            size = math.prod(shape)
            self.places.append((bucket, filled[bucket], filled[bucket] + size))
            filled[bucket] += size
        self.sizes = filled

    @classmethod
    def of(cls, leaves: list, backend: Any) -> Buckets:
        """The layout of the arrays ``leaves`` of ``backend``."""
        return cls([tuple(leaf.shape) for leaf in leaves], [backend.dtype_name(leaf.dtype) for leaf in leaves])

    def pack(self, leaves: list, xp: Any) -> list:
        """One 1-D buffer per dtype holding ``leaves`` end to end."""
        parts: list[list] = [[] for _ in self.dtypes]
        for leaf, (bucket, _, _) in zip(leaves, self.places):
            parts[bucket].append(xp.reshape(leaf, (-1,)))
        return [xp.concat(part) if len(part) > 1 else part[0] for part in parts]

    def unpack(self, buffers: list, xp: Any) -> list:
        """The arrays that :meth:`pack` laid out, cut from ``buffers``."""
        return [
            xp.reshape(buffers[bucket][start:stop], shape)
            for (bucket, start, stop), shape in zip(self.places, self.shapes)
        ]

    def nbytes(self, itemsizes: dict[str, int]) -> int:
        """Bytes in all buffers, given the item size of each dtype name."""
        return sum(size * itemsizes[dtype] for size, dtype in zip(self.sizes, self.dtypes))
