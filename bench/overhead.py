"""The fixed cost per call of the portable layer, on inputs so small that the framework's
own work is negligible.

For each backend, each case calls a portable_dl function and the framework's own
equivalent on the same tiny arrays (4 elements; 2 x 2 for matmul), in interleaved blocks
(``bench/_timing.py``), and reports microseconds per call and their ratio:

==============  ======================================  =====================================
case            portable                                native
==============  ======================================  =====================================
add             ``xp.add(a, b)``                        ``torch.add``, ``tf.add``, ``mx.add``,
                                                        ``jnp.add``, ``np.add``
matmul          ``xp.matmul(A, B)``                     the framework's ``matmul``
sum             ``xp.sum(a)``                           the framework's ``sum``
asarray         ``backend.asarray(numpy_array)``        ``torch.tensor``, ``tf.convert_to_tensor``,
                                                        ``mx.array``, ``jnp.asarray``, ``np.asarray``
to_numpy        ``backend.to_numpy(a)``                 ``a.numpy()``, ``np.array(a)``, ``np.asarray(a)``
value_and_grad  ``backend.value_and_grad(f)(a)`` with   ``torch.autograd.grad``, ``tf.GradientTape``,
                ``f = sum(a * a)`` written with ``xp``  ``mx.value_and_grad``, ``jax.value_and_grad``,
                                                        ``autograd.value_and_grad`` (NumPy)
tree_flatten    ``pdl.tree_flatten(params)`` of an      the framework's pytree flatten (torch,
                MLP([784, 256, 256, 10])'s params       ``tf.nest``, ``mlx.utils``, ``jax.tree_util``)
tree_unflatten  ``pdl.tree_unflatten(treedef, leaves)`` the framework's unflatten
==============  ======================================  =====================================

Lazy and asynchronous work (MLX graphs, JAX dispatch) is waited for once at the end of each
block, on both sides alike. NumPy has no pytree module of its own: its tree rows are absent.

    python bench/overhead.py
    python bench/overhead.py --backends torch,jax --blocks 9
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _timing import Runner, compare, document, format_number, ratio, results_per_backend, split_names, table, write_json

import portable_dl as pdl
from portable_dl import nn

BENCH = Path(__file__).resolve().parent
DEFAULT_OUTPUT = BENCH / "results" / "overhead.json"
BACKENDS = ("numpy", "torch", "tensorflow", "mlx", "jax")
CASES = ("add", "matmul", "sum", "asarray", "to_numpy", "value_and_grad", "tree_flatten", "tree_unflatten")

#: A case: (portable call, native call); each takes no argument and returns what to wait for.
Pair = tuple[Callable[[], Any], Callable[[], Any]]


def tiny_inputs() -> dict[str, np.ndarray]:
    """The NumPy inputs every case starts from: 4-element vectors and 2 x 2 matrices."""
    generator = np.random.default_rng(0)
    return {
        "a": generator.standard_normal(4).astype(np.float32),
        "b": generator.standard_normal(4).astype(np.float32),
        "A": generator.standard_normal((2, 2)).astype(np.float32),
        "B": generator.standard_normal((2, 2)).astype(np.float32),
    }


def portable_calls(backend: pdl.Backend, inputs: dict[str, np.ndarray]) -> dict[str, Callable[[], Any]]:
    """The portable side of every case, on arrays of ``backend``."""
    xp = backend.xp
    a, b, A, B = (backend.asarray(inputs[key]) for key in ("a", "b", "A", "B"))
    params = nn.MLP([784, 256, 256, 10]).init(0, backend=backend, dtype="float32")
    leaves, treedef = pdl.tree_flatten(params)
    value_and_grad = backend.value_and_grad(lambda x: xp.sum(xp.multiply(x, x)))
    return {
        "add": lambda: xp.add(a, b),
        "matmul": lambda: xp.matmul(A, B),
        "sum": lambda: xp.sum(a),
        "asarray": lambda: backend.asarray(inputs["a"]),
        "to_numpy": lambda: backend.to_numpy(a),
        "value_and_grad": lambda: value_and_grad(a),
        "tree_flatten": lambda: pdl.tree_flatten(params),
        "tree_unflatten": lambda: pdl.tree_unflatten(treedef, leaves),
    }


# ----------------------------------------------------------------- the native sides
def native_numpy(inputs: dict[str, np.ndarray], params: Any) -> dict[str, Callable[[], Any]]:
    import autograd
    import autograd.numpy as anp

    a, b, A, B = (inputs[key].copy() for key in ("a", "b", "A", "B"))
    value_and_grad = autograd.value_and_grad(lambda x: anp.sum(x * x))
    return {
        "add": lambda: np.add(a, b),
        "matmul": lambda: np.matmul(A, B),
        "sum": lambda: np.sum(a),
        "asarray": lambda: np.asarray(inputs["a"]),
        "to_numpy": lambda: np.asarray(a),
        "value_and_grad": lambda: value_and_grad(a),
    }


def native_torch(inputs: dict[str, np.ndarray], params: Any) -> dict[str, Callable[[], Any]]:
    import torch
    import torch.utils._pytree as pytree

    a, b, A, B = (torch.tensor(inputs[key]) for key in ("a", "b", "A", "B"))
    leaves, spec = pytree.tree_flatten(params)

    def value_and_grad() -> Any:
        x = a.detach().requires_grad_()
        value = torch.sum(x * x)
        (gradient,) = torch.autograd.grad(value, x)
        return value.detach(), gradient

    return {
        "add": lambda: torch.add(a, b),
        "matmul": lambda: torch.matmul(A, B),
        "sum": lambda: torch.sum(a),
        "asarray": lambda: torch.tensor(inputs["a"]),
        "to_numpy": lambda: a.numpy(),
        "value_and_grad": value_and_grad,
        "tree_flatten": lambda: pytree.tree_flatten(params),
        "tree_unflatten": lambda: pytree.tree_unflatten(leaves, spec),
    }


def native_tensorflow(inputs: dict[str, np.ndarray], params: Any) -> dict[str, Callable[[], Any]]:
    import tensorflow as tf

    a, b, A, B = (tf.constant(inputs[key]) for key in ("a", "b", "A", "B"))
    leaves = tf.nest.flatten(params)

    def value_and_grad() -> Any:
        with tf.GradientTape() as tape:
            tape.watch(a)
            value = tf.reduce_sum(a * a)
        return value, tape.gradient(value, a)

    return {
        "add": lambda: tf.add(a, b),
        "matmul": lambda: tf.matmul(A, B),
        "sum": lambda: tf.reduce_sum(a),
        "asarray": lambda: tf.convert_to_tensor(inputs["a"]),
        "to_numpy": lambda: a.numpy(),
        "value_and_grad": value_and_grad,
        "tree_flatten": lambda: tf.nest.flatten(params),
        "tree_unflatten": lambda: tf.nest.pack_sequence_as(params, leaves),
    }


def native_mlx(inputs: dict[str, np.ndarray], params: Any) -> dict[str, Callable[[], Any]]:
    import mlx.core as mx
    import mlx.utils

    a, b, A, B = (mx.array(inputs[key]) for key in ("a", "b", "A", "B"))
    flat = mlx.utils.tree_flatten(params)
    value_and_grad = mx.value_and_grad(lambda x: mx.sum(x * x))
    return {
        "add": lambda: mx.add(a, b),
        "matmul": lambda: mx.matmul(A, B),
        "sum": lambda: mx.sum(a),
        "asarray": lambda: mx.array(inputs["a"]),
        "to_numpy": lambda: np.array(a),
        "value_and_grad": lambda: value_and_grad(a),
        "tree_flatten": lambda: mlx.utils.tree_flatten(params),
        "tree_unflatten": lambda: mlx.utils.tree_unflatten(flat),
    }


def native_jax(inputs: dict[str, np.ndarray], params: Any) -> dict[str, Callable[[], Any]]:
    import jax
    import jax.numpy as jnp

    a, b, A, B = (jnp.asarray(inputs[key]) for key in ("a", "b", "A", "B"))
    leaves, treedef = jax.tree_util.tree_flatten(params)
    value_and_grad = jax.value_and_grad(lambda x: jnp.sum(x * x))
    return {
        "add": lambda: jnp.add(a, b),
        "matmul": lambda: jnp.matmul(A, B),
        "sum": lambda: jnp.sum(a),
        "asarray": lambda: jnp.asarray(inputs["a"]),
        "to_numpy": lambda: np.asarray(a),
        "value_and_grad": lambda: value_and_grad(a),
        "tree_flatten": lambda: jax.tree_util.tree_flatten(params),
        "tree_unflatten": lambda: jax.tree_util.tree_unflatten(treedef, leaves),
    }


NATIVE: dict[str, Callable[[dict, Any], dict[str, Callable[[], Any]]]] = {
    "numpy": native_numpy,
    "torch": native_torch,
    "tensorflow": native_tensorflow,
    "mlx": native_mlx,
    "jax": native_jax,
}


# ----------------------------------------------------------------------- the benchmark
def measure_backend(name: str, arguments: argparse.Namespace) -> dict:
    """Every case of one backend, portable and native interleaved; its JSON section."""
    backend = pdl.backend(name)
    inputs = tiny_inputs()
    portable = portable_calls(backend, inputs)
    params = nn.MLP([784, 256, 256, 10]).init(0, backend=backend, dtype="float32")
    native = NATIVE[name](inputs, params)
    measured = [case for case in arguments.cases if case in native]
    runners = {
        f"{side} {case}": Runner(calls[case], backend.synchronize)
        for case in measured
        for side, calls in (("portable", portable), ("native", native))
    }
    timings = compare(runners, blocks=arguments.blocks, block_seconds=arguments.block_seconds, warmup=arguments.warmup)
    cases = []
    for case in arguments.cases:
        if case not in native:
            cases.append({"case": case, "skipped": f"{name} has no native equivalent"})
            continue
        mine, theirs = timings[f"portable {case}"], timings[f"native {case}"]
        cases.append(
            {
                "case": case,
                "unit": "us per call",
                "portable": mine.as_json(unit=1e6),
                "native": theirs.as_json(unit=1e6),
                "ratio": ratio(mine, theirs),
            }
        )
    return {"backend": name, "device": backend.device, "version": backend.version, "cases": cases}


def print_results(results: list[dict]) -> None:
    rows = []
    for result in results:
        if "skipped" in result:
            rows.append([result["backend"], "-", "-", "-", "-", f"skipped: {result['skipped']}"])
            continue
        for case in result["cases"]:
            if "skipped" in case:
                rows.append([result["backend"], case["case"], "-", "-", "-", case["skipped"]])
                continue
            rows.append(
                [
                    result["backend"],
                    case["case"],
                    format_number(case["portable"]["median"]),
                    format_number(case["native"]["median"]),
                    format_number(case["ratio"]),
                    "",
                ]
            )
    print(table(["backend", "case", "portable us", "native us", "ratio", "note"], rows))


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--backends",
        default=None,
        help="comma-separated names, or all (a backend not installed is reported as skipped)",
    )
    parser.add_argument("--cases", default=None, help=f"comma-separated, from {', '.join(CASES)} (default: all)")
    parser.add_argument("--blocks", type=int, default=None, help="timed blocks per call (default 7; --quick 3)")
    parser.add_argument(
        "--block-seconds", type=float, default=None, help="time budget of a block (default 0.1; --quick 0.02)"
    )
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls first")
    parser.add_argument("--quick", action="store_true", help="3 blocks of 0.02 s")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="the JSON file written")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="time every backend in this process (default: a fresh process per backend)",
    )
    arguments = parser.parse_args(argv)
    arguments.cases = split_names(arguments.cases, CASES)
    if arguments.blocks is None:
        arguments.blocks = 3 if arguments.quick else 7
    if arguments.block_seconds is None:
        arguments.block_seconds = 0.02 if arguments.quick else 0.1
    if arguments.blocks < 1 or arguments.warmup < 1:
        parser.error("--blocks and --warmup must be at least 1")
    return arguments


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    arguments = parse_arguments(argv)
    names = split_names(arguments.backends, BACKENDS)
    print(
        f"overhead per call on tiny inputs; {arguments.blocks} interleaved blocks of {arguments.block_seconds} s",
        flush=True,
    )
    results = results_per_backend(
        __file__,
        argv,
        names,
        arguments.in_process,
        lambda name: measure_backend(name, arguments),
        pdl.BackendUnavailable,
    )
    print_results(results)
    settings = {
        "cases": arguments.cases,
        "blocks": arguments.blocks,
        "block_seconds": arguments.block_seconds,
        "warmup": arguments.warmup,
        "inputs": "float32 vectors of 4, matrices 2 x 2; MLP[784, 256, 256, 10] params",
    }
    path = write_json(arguments.output, document("overhead", settings, results=results))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
