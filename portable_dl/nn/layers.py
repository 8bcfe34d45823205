"""Models as pairs of pure functions: ``init(seed, backend, dtype) -> params`` and
``apply(params, x) -> y``.

A model object holds only its architecture (sizes, activation names); the parameters are
a pytree of backend arrays that the caller passes in and gets back, so a whole training
step can be differentiated and compiled by each framework as one function.

Initial values are drawn from ``numpy.random.default_rng(seed)`` in float64 NumPy, cast
with ``astype(dtype)`` in NumPy and moved with ``backend.asarray``: the same seed gives
bit-identical weights on every backend.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..activations import get_activation
from ..backend import Backend
from ..errors import ShapeError
from ..registry import backend as backend_named
from ..registry import backend_of
from ..tree import tree_leaves
from .initializers import Initializer, get_initializer, zeros

__all__ = ["Dense", "MLP", "count_parameters"]


def _resolve(backend: Backend | str | None) -> Backend:
    return backend if isinstance(backend, Backend) else backend_named(backend)


def _known_shape(x: Any) -> tuple:
    return tuple(None if d is None else int(d) for d in x.shape)


class Dense:
    """A fully connected layer ``y = x @ W + b``.

    ``x``: floating ``(N, in_features)``; ``W``: ``(in_features, out_features)``; ``b``:
    ``(out_features,)``; ``y``: ``(N, out_features)`` in the dtype of ``x`` and the params.
    Params are ``{"W": W, "b": b}``, or ``{"W": W}`` with ``bias=False``. ``W`` is drawn by
    ``init`` (a name from :data:`~portable_dl.nn.initializers.INITIALIZERS` or a callable),
    ``b`` starts at zero.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init: str | Initializer = "he_normal"):
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Dense: {name} must be a positive int, got {value!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.bias = bool(bias)
        self.initializer = get_initializer(init)
        self.layer_sizes = (self.in_features, self.out_features)

    def init(
        self, seed: int | np.random.Generator, backend: Backend | str | None = None, dtype: Any = "float32"
    ) -> dict:
        """Fresh params on ``backend`` (a Backend or a name) in ``dtype``; ``seed`` is an int
        or a ``numpy.random.Generator`` to draw from (an MLP passes one along its layers)."""
        backend = _resolve(backend)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        backend.dtype(dtype)  # DTypeError now, before drawing, where the backend lacks dtype
        numpy_dtype = np.dtype(backend.dtype_name(dtype))
        shape = (self.in_features, self.out_features)
        params = {"W": self.initializer(rng, shape, self.in_features, self.out_features)}
        if self.bias:
            params["b"] = zeros(rng, (self.out_features,), self.in_features, self.out_features)
        return {name: backend.asarray(value.astype(numpy_dtype), dtype) for name, value in params.items()}

    def apply(self, params: dict, x: Any) -> Any:
        """``x @ W + b`` for ``x`` of shape ``(N, in_features)``; ShapeError naming the shapes
        when ``x`` or the params do not fit this layer."""
        shape_x = _known_shape(x)
        if len(shape_x) < 1 or shape_x[-1] not in (None, self.in_features):
            raise ShapeError(
                f"Dense({self.in_features}, {self.out_features}) needs inputs of shape "
                f"(N, {self.in_features}), got {shape_x}"
            )
        shape_w = _known_shape(params["W"])
        if shape_w != (self.in_features, self.out_features):
            raise ShapeError(
                f"Dense({self.in_features}, {self.out_features}) needs W of shape "
                f"{(self.in_features, self.out_features)}, got {shape_w}"
            )
        xp = backend_of(x).xp
        y = xp.matmul(x, params["W"])
        return xp.add(y, params["b"]) if self.bias else y

    __call__ = apply

    def __repr__(self) -> str:
        return f"Dense({self.in_features}, {self.out_features}, bias={self.bias})"


class MLP:
    """A multilayer perceptron: Dense layers of ``sizes = (in, hidden..., out)``, the
    ``activation`` after each hidden layer and ``output_activation`` (default none) after
    the last.

    ``x``: ``(N, sizes[0])``; ``y``: ``(N, sizes[-1])``. Params are
    ``{"layers": [{"W": ..., "b": ...}, ...]}``, one dict per layer, in order; all weights
    are drawn from one generator seeded by ``seed``, layer after layer.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str | Callable | None = "relu",
        output_activation: str | Callable | None = None,
        init: str | Initializer = "he_normal",
        bias: bool = True,
    ):
        sizes = tuple(sizes)
        if len(sizes) < 2:
            raise ValueError(f"MLP needs at least an input and an output size, got sizes {sizes}")
        self.layers = [Dense(a, b, bias=bias, init=init) for a, b in zip(sizes[:-1], sizes[1:])]
        self.layer_sizes = tuple(int(s) for s in sizes)
        self.in_features = self.layer_sizes[0]
        self.out_features = self.layer_sizes[-1]
        self.activation = get_activation(activation)
        self.output_activation = get_activation(output_activation)

    def init(
        self, seed: int | np.random.Generator, backend: Backend | str | None = None, dtype: Any = "float32"
    ) -> dict:
        """Fresh params ``{"layers": [...]}`` on ``backend`` in ``dtype``."""
        backend = _resolve(backend)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return {"layers": [layer.init(rng, backend, dtype) for layer in self.layers]}

    def apply(self, params: dict, x: Any) -> Any:
        """The network's output ``(N, out_features)`` for ``x`` of shape ``(N, in_features)``."""
        layer_params = params["layers"]
        if len(layer_params) != len(self.layers):
            raise ShapeError(
                f"MLP{self.layer_sizes} has {len(self.layers)} layers, the params hold {len(layer_params)}"
            )
        last = len(self.layers) - 1
        for index, (layer, p) in enumerate(zip(self.layers, layer_params)):
            x = layer.apply(p, x)
            x = self.output_activation(x) if index == last else self.activation(x)
        return x

    __call__ = apply

    def __repr__(self) -> str:
        return f"MLP({list(self.layer_sizes)})"


def count_parameters(params: Any) -> int:
    """The number of scalars in a pytree of arrays (None leaves count nothing)."""
    return sum(math.prod(int(d) for d in leaf.shape) for leaf in tree_leaves(params))
