"""The whole ``value_and_grad``/``grad`` contract, not only its common path.

- ``argnums`` out of order (``(1, 0)`` gives ``(d/d arg1, d/d arg0)``), negative
  (``-1``: the last positional argument, as in JAX), and repeated (TypeError, however the
  repetition is spelled: ``(0, 0)`` or ``(0, -2)`` of two arguments);
- ``has_aux``, for ``value_and_grad`` (``((value, aux), gradient)``) and for ``grad``
  (``(gradient, aux)``);
- gradients of nested dict/list/tuple pytrees come back in the same structure;
- batched ``matmul`` (rank >= 3, broadcast batch axes): gradients in each input's shape.

Every expected output is derived here, independently of every backend (``Case.expected``):
values in NumPy float64, structures and shapes written out, and gradients by central
differences in float64 (:mod:`.numerics`), judged by the finite-difference tolerance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from portable_dl.backend import Backend
from portable_dl.tree import tree_flatten, tree_unflatten

from .cases import Case, Outputs, error_name
from .numerics import as_float64, central_differences

FAMILY = "gradients"

_rng = np.random.default_rng(2024)
#: Three operands of different shapes and sizes, so that a swapped gradient cannot pass.
A, B, C = _rng.uniform(0.5, 1.5, (2, 3)), _rng.uniform(-1.5, 1.5, (3,)), _rng.uniform(-1, 1, (4,))


def _loss_numpy(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """sum(a * b^2) + sum(sin(c)) * sum(a): each operand enters differently."""
    return float(np.sum(a * b**2) + np.sum(np.sin(c)) * np.sum(a))


def _loss(xp: Any, a: Any, b: Any, c: Any) -> Any:
    return xp.add(xp.sum(xp.multiply(a, xp.square(b))), xp.multiply(xp.sum(xp.sin(c)), xp.sum(a)))


_FD = {
    "a": lambda: central_differences(lambda a: _loss_numpy(a, B, C), A),
    "b": lambda: central_differences(lambda b: _loss_numpy(A, b, C), B),
    "c": lambda: central_differences(lambda c: _loss_numpy(A, B, c), C),
}


def _shape(x: Any) -> tuple:
    return tuple(int(d) for d in x.shape)


def argnums_case(argnums: Any, names: tuple[str, ...]) -> Case:
    """value_and_grad(loss, argnums)(a, b, c): the gradients of ``names``, in that order."""

    def compute(backend: Backend, dtype: str) -> Outputs:
        args = [backend.asarray(v, dtype) for v in (A, B, C)]
        value, grads = backend.value_and_grad(lambda a, b, c: _loss(backend.xp, a, b, c), argnums=argnums)(*args)
        grads = grads if isinstance(argnums, tuple) else (grads,)
        outputs: Outputs = {"value": as_float64(backend, value), "gradients": len(grads)}
        for position, (name, grad) in enumerate(zip(names, grads)):
            outputs[f"grad {position}: d/d{name}"] = as_float64(backend, grad)
            outputs[f"grad {position} shape"] = _shape(grad)
        return outputs

    def expected(backend: Backend, dtype: str) -> Outputs:
        outputs: Outputs = {"value": np.float64(_loss_numpy(A, B, C)), "gradients": len(names)}
        for position, name in enumerate(names):
            outputs[f"grad {position} shape"] = {"a": A, "b": B, "c": C}[name].shape
        return outputs

    def finite_differences() -> Outputs:
        return {f"grad {position}: d/d{name}": _FD[name]() for position, name in enumerate(names)}

    return Case(
        FAMILY,
        f"value_and_grad argnums={argnums!r}",
        compute,
        gradient=True,
        reduction_size=6,
        expected=expected,
        finite_differences=finite_differences,
    )


def repeated_argnums_case() -> Case:
    """Naming an argument twice is a TypeError, when value_and_grad is built or called."""

    def compute(backend: Backend, dtype: str) -> Outputs:
        a, b = backend.asarray(A, dtype), backend.asarray(B, dtype)
        f = lambda a, b: backend.xp.sum(backend.xp.multiply(a, b))
        outputs: Outputs = {}
        for argnums in ((0, 0), (0, -2), (1, -1)):
            try:
                backend.value_and_grad(f, argnums=argnums)(a, b)
                outputs[f"argnums={argnums}"] = "nothing raised"
            except Exception as error:
                outputs[f"argnums={argnums}"] = error_name(error)
        return outputs

    expected = lambda backend, dtype: {
        f"argnums={argnums}": "foreign builtins.TypeError" for argnums in ((0, 0), (0, -2), (1, -1))
    }
    return Case(FAMILY, "value_and_grad repeated argnums raise TypeError", compute, expected=expected)


def has_aux_case() -> Case:
    """has_aux=True: value_and_grad gives ((value, aux), gradient), grad gives (gradient, aux);
    aux comes back as computed, a pytree of arrays and Python values."""

    def f(backend: Backend) -> Callable:
        xp = backend.xp
        return lambda a, c: (
            _loss(xp, a, backend.asarray(B, a.dtype), c),
            {"squares": xp.square(c), "label": "aux", "n": 3},
        )

    def compute(backend: Backend, dtype: str) -> Outputs:
        a, c = backend.asarray(A, dtype), backend.asarray(C, dtype)
        (value, aux), (grad_a, grad_c) = backend.value_and_grad(f(backend), argnums=(0, 1), has_aux=True)(a, c)
        grad_c_only, aux_of_grad = backend.grad(f(backend), argnums=1, has_aux=True)(a, c)
        return {
            "value": as_float64(backend, value),
            "grad a": as_float64(backend, grad_a),
            "grad c": as_float64(backend, grad_c),
            "aux squares": as_float64(backend, aux["squares"]),
            "aux Python values": (aux["label"], aux["n"]),
            "grad with has_aux: gradient": as_float64(backend, grad_c_only),
            "grad with has_aux: aux squares": as_float64(backend, aux_of_grad["squares"]),
        }

    def expected(backend: Backend, dtype: str) -> Outputs:
        return {
            "value": np.float64(_loss_numpy(A, B, C)),
            "aux squares": C**2,
            "aux Python values": ("aux", 3),
            "grad with has_aux: aux squares": C**2,
        }

    def finite_differences() -> Outputs:
        return {"grad a": _FD["a"](), "grad c": _FD["c"](), "grad with has_aux: gradient": _FD["c"]()}

    return Case(
        FAMILY,
        "value_and_grad and grad with has_aux",
        compute,
        gradient=True,
        reduction_size=6,
        expected=expected,
        finite_differences=finite_differences,
    )


#: A nested pytree: dicts, lists and tuples, leaves of different shapes.
TREE = {"dense": [A, (B, {"deep": C})], "scale": (np.array([0.7, -1.3]),)}


def _tree_loss_numpy(tree: dict) -> float:
    a, (b, inner) = tree["dense"]
    return _loss_numpy(a, b, inner["deep"]) * float(np.sum(tree["scale"][0] ** 2))


def pytree_case() -> Case:
    """The gradient of a nested dict/list/tuple pytree has the same structure, leaf by leaf."""

    def compute(backend: Backend, dtype: str) -> Outputs:
        xp = backend.xp
        tree = {
            "dense": [backend.asarray(A, dtype), (backend.asarray(B, dtype), {"deep": backend.asarray(C, dtype)})],
            "scale": (backend.asarray(TREE["scale"][0], dtype),),
        }

        def loss(t):
            a, (b, inner) = t["dense"]
            return xp.multiply(_loss(xp, a, b, inner["deep"]), xp.sum(xp.square(t["scale"][0])))

        value, grads = backend.value_and_grad(loss)(tree)
        leaves, _ = tree_flatten(grads)
        outputs: Outputs = {"value": as_float64(backend, value), "structure": _structure(grads)}
        for index, leaf in enumerate(leaves):
            outputs[f"grad leaf {index}"] = as_float64(backend, leaf)
        return outputs

    def expected(backend: Backend, dtype: str) -> Outputs:
        return {"value": np.float64(_tree_loss_numpy(TREE)), "structure": _structure(TREE)}

    def finite_differences() -> Outputs:
        leaves, treedef = tree_flatten(TREE)
        outputs: Outputs = {}
        for index, leaf in enumerate(leaves):

            def partial(v, index=index):
                values = list(leaves)
                values[index] = v
                return _tree_loss_numpy(tree_unflatten(treedef, values))

            outputs[f"grad leaf {index}"] = central_differences(partial, leaf)
        return outputs

    return Case(
        FAMILY,
        "value_and_grad of a nested dict/list/tuple pytree",
        compute,
        gradient=True,
        reduction_size=6,
        expected=expected,
        finite_differences=finite_differences,
    )


def _structure(tree: Any) -> str:
    """The nesting of a pytree, leaves written as their shapes: ``{'a': [(3,), ...]}``."""
    if isinstance(tree, dict):
        return "{" + ", ".join(f"{key!r}: {_structure(tree[key])}" for key in sorted(tree)) + "}"
    if isinstance(tree, (list, tuple)):
        inner = ", ".join(_structure(item) for item in tree)
        return f"[{inner}]" if isinstance(tree, list) else f"({inner},)"
    return str(tuple(int(d) for d in np.shape(tree)))


#: Batched matmul shapes: rank 3 and 4 with broadcast batch axes, and a vector operand.
MATMUL_SHAPES = [((2, 1, 3, 4), (5, 4, 2)), ((3, 2, 4), (4, 3)), ((4,), (2, 4, 3)), ((2, 3, 4), (1, 4, 2))]


def batched_matmul_case(shape1: tuple, shape2: tuple) -> Case:
    """d/da and d/db of sum(w * (a @ b)^2) for broadcast batch axes: each gradient in
    its input's shape, summed over the batch axes it was broadcast along."""
    rng = np.random.default_rng(sum(shape1) * 31 + sum(shape2))
    a0, b0 = rng.uniform(-1, 1, shape1), rng.uniform(-1, 1, shape2)
    w0 = rng.uniform(0.5, 1.5, np.matmul(a0, b0).shape)

    def numpy_loss(a, b):
        return float(np.sum(w0 * np.matmul(a, b) ** 2))

    def compute(backend: Backend, dtype: str) -> Outputs:
        xp = backend.xp
        w = backend.asarray(w0, dtype)
        loss = lambda a, b: xp.sum(xp.multiply(w, xp.square(xp.matmul(a, b))))
        value, (grad_a, grad_b) = backend.value_and_grad(loss, argnums=(0, 1))(
            backend.asarray(a0, dtype), backend.asarray(b0, dtype)
        )
        return {
            "value": as_float64(backend, value),
            "grad a": as_float64(backend, grad_a),
            "grad b": as_float64(backend, grad_b),
            "grad a shape": _shape(grad_a),
            "grad b shape": _shape(grad_b),
        }

    def expected(backend: Backend, dtype: str) -> Outputs:
        return {"value": np.float64(numpy_loss(a0, b0)), "grad a shape": shape1, "grad b shape": shape2}

    def finite_differences() -> Outputs:
        return {
            "grad a": central_differences(lambda a: numpy_loss(a, b0), a0),
            "grad b": central_differences(lambda b: numpy_loss(a0, b), b0),
        }

    # The most terms in one gradient element: the inner dimension times the broadcast batch.
    size = max(shape1[-1], 1) * int(np.prod(np.matmul(a0, b0).shape))
    return Case(
        FAMILY,
        f"batched matmul gradient {shape1}@{shape2}",
        compute,
        gradient=True,
        reduction_size=size,
        expected=expected,
        finite_differences=finite_differences,
    )


def cases(quick: bool = False) -> list[Case]:
    """Every contract case; ``quick``: (1, 0), -1, repeated, has_aux, the pytree and the
    first batched matmul."""
    argnums = [
        argnums_case((1, 0), ("b", "a")),
        argnums_case(-1, ("c",)),
        argnums_case((2, -3), ("c", "a")),
        argnums_case(1, ("b",)),
    ]
    contract = [repeated_argnums_case(), has_aux_case(), pytree_case()]
    matmuls = [batched_matmul_case(s1, s2) for s1, s2 in MATMUL_SHAPES]
    if quick:
        return argnums[:2] + contract + matmuls[:1]
    return argnums + contract + matmuls
