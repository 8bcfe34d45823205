"""The compile family: ``Backend.compile`` on synthetic inputs, in every mode (``--quick`` too).

One compiled training-like step (front-end activation, ``value_and_grad``, an update) over
a nested pytree of parameters, a tuple batch and Python scalars, called several times:

1. first call: the compiled function equals the eager one (both against the reference);
2. new values of the same shapes: the result follows them (nothing stale is replayed);
3. a new batch shape: traced again or reused, but right;
4. a new value of a Python float and int argument: not frozen at its first value;
5. an integer array argument passes through with its dtype, and every output keeps its dtype.

Each call's outputs (values, dtypes, the output's tree structure) are judged against the
same calls on the NumPy reference in float64; the eager call of the same function is
judged too, so a compiler that differs from its own eager mode shows as one failing row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from portable_dl.backend import Backend
from portable_dl.tree import tree_flatten

from .cases import Case, Outputs
from .numerics import as_float64

FAMILY = "compile"


def _inputs(seed: int, batch: int) -> tuple[dict, tuple]:
    rng = np.random.default_rng(seed)
    params = {
        "dense": [{"W": rng.uniform(-1, 1, (3, 4)), "b": rng.uniform(-0.5, 0.5, (4,))}],
        "head": (rng.uniform(-1, 1, (4, 2)),),
    }
    x, y = rng.uniform(-1, 1, (batch, 3)), rng.uniform(-1, 1, (batch, 2))
    return params, (x, y)


#: The calls: (seed of the values, batch size, learning rate (Python float), steps (Python int)).
# The third call brings a new shape and new Python scalars at once: in --quick too, a compiler
# that froze the first call's Python numbers into its graph is caught.
QUICK_CALLS = [(1, 5, 0.1, 1), (2, 5, 0.1, 1), (3, 7, 0.35, 2)]
FULL_CALLS = QUICK_CALLS + [(3, 7, 0.2, 3), (4, 7, 0.35, 3)]


def make_step(backend: Backend):
    """``step(params, batch, lr, steps, counts) -> {"params", "loss", "counts"}``: one
    gradient step of a two-layer tanh network, ``lr / steps`` as the step size, and an
    integer array ``counts`` incremented, so that an integer input and output are carried."""
    from portable_dl import activations

    xp = backend.xp

    def loss(params: dict, x: Any, y: Any) -> Any:
        layer = params["dense"][0]
        hidden = activations.tanh(xp.add(xp.matmul(x, layer["W"]), layer["b"]))
        return xp.mean(xp.square(xp.subtract(xp.matmul(hidden, params["head"][0]), y)))

    value_and_grad = backend.value_and_grad(loss)

    def step(params: dict, batch: tuple, lr: float, steps: int, counts: Any) -> dict:
        value, grads = value_and_grad(params, *batch)
        size = lr / steps
        updated = {
            "dense": [
                {
                    key: xp.subtract(params["dense"][0][key], xp.multiply(grads["dense"][0][key], size))
                    for key in ("W", "b")
                }
            ],
            "head": (xp.subtract(params["head"][0], xp.multiply(grads["head"][0], size)),),
        }
        return {"params": updated, "loss": value, "counts": xp.add(counts, 1)}

    return step


def _describe(backend: Backend, result: dict, prefix: str) -> Outputs:
    leaves, treedef = tree_flatten(result["params"])
    outputs: Outputs = {
        f"{prefix}loss": as_float64(backend, result["loss"]),
        f"{prefix}counts": as_float64(backend, result["counts"]),
        f"{prefix}dtypes": tuple(backend.dtype_name(leaf.dtype) for leaf in leaves)
        + (backend.dtype_name(result["loss"].dtype), backend.dtype_name(result["counts"].dtype)),
        f"{prefix}structure": str(treedef),
    }
    for index, leaf in enumerate(leaves):
        outputs[f"{prefix}param {index}"] = as_float64(backend, leaf)
    return outputs


def compile_case(quick: bool) -> Case:
    calls = QUICK_CALLS if quick else FULL_CALLS

    def compute(backend: Backend, dtype: str) -> Outputs:
        step = make_step(backend)
        compiled = backend.compile(step)
        outputs: Outputs = {}
        for number, (seed, batch, lr, steps) in enumerate(calls):
            params, (x, y) = _inputs(seed, batch)
            args = (
                backend.tree_asarray(params, dtype),
                (backend.asarray(x, dtype), backend.asarray(y, dtype)),
                lr,
                steps,
                backend.asarray(np.array([seed, 7], dtype=np.int32)),
            )
            call = f"call {number + 1} (values {seed}, batch {batch}, lr {lr}, steps {steps}) "
            outputs.update(_describe(backend, backend.synchronize(compiled(*args)), call + "compiled "))
            if number == 0:
                outputs.update(_describe(backend, step(*args), call + "eager "))
        return outputs

    names = "new values, a new shape, new Python scalars"
    # --quick compiles in float32 only: each dtype is a compilation of its own, and
    # torch.compile's take seconds each.
    return Case(
        FAMILY,
        f"compiled step on a pytree with Python scalars: {names}",
        compute,
        gradient=True,
        reduction_size=7 * 4,
        dtypes=("float32",) if quick else ("float32", "float64"),
    )


def cases(quick: bool = False, seed: int = 0) -> list[Case]:
    """The compile case (three calls in float32 in ``quick``, five in both dtypes otherwise)."""
    return [compile_case(quick)]
