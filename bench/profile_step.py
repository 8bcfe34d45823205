"""Where the milliseconds of a compiled JAX training step go: the step of bench/train_step.py
(MLP[784, 256, 256, 10] relu, cross-entropy, Adam, batch 128, float32) and each of its parts
jitted alone, against the rate of one large GEMM.

Each part is called in blocks (``--steps`` calls, one ``jax.block_until_ready`` at the end)
after two warm calls; the median over ``--blocks`` blocks of the wall-clock and the CPU time
per call is printed (on a machine shared with other work the CPU time is the steadier).

    python bench/profile_step.py
    python bench/profile_step.py --steps-per-call 10 --blocks 9
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import train_step as bench_step
from _timing import format_number, table

import portable_dl as pdl


def measure(fn: Callable[[], Any], steps: int, blocks: int) -> tuple[float, float]:
    """Median wall-clock and CPU milliseconds per call of ``fn`` over ``blocks`` blocks."""
    import jax

    for _ in range(2):
        jax.block_until_ready(fn())
    walls, cpus = [], []
    for _ in range(blocks):
        cpu, start = time.process_time(), time.perf_counter()
        for _ in range(steps):
            result = fn()
        jax.block_until_ready(result)
        walls.append((time.perf_counter() - start) / steps * 1e3)
        cpus.append((time.process_time() - cpu) / steps * 1e3)
    return statistics.median(walls), statistics.median(cpus)


def parts(layers: tuple[int, ...], batch_size: int, steps_per_call: int) -> dict[str, tuple[Callable[[], Any], int]]:
    """``name -> (call, steps it runs)``: the whole steps, then each part jitted alone."""
    import jax
    import jax.numpy as jnp

    problem = bench_step.make_problem(layers, batch_size, 0)
    backend = pdl.backend("jax")
    portable = bench_step.portable_runner(backend, problem, True)
    multi = bench_step.portable_runner(backend, problem, True, steps_per_call)
    native = bench_step.native_jax(problem, "cpu", True)
    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in problem.weights]
    x, y = jnp.asarray(problem.x), jnp.asarray(problem.y.astype(np.int32))

    def loss(weights: Any, inputs: Any, labels: Any) -> Any:
        h = inputs
        for index, (W, b) in enumerate(weights):
            h = h @ W + b
            if index < len(weights) - 1:
                h = jax.nn.relu(h)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(h), labels[:, None], axis=1))

    forward, gradient = jax.jit(loss), jax.jit(jax.value_and_grad(loss))
    # The GEMMs of a step: each layer's forward product, its weight gradient, and (but the
    # first layer) its input gradient, on operands of the step's shapes.
    weights = [W for W, _ in params]
    inputs = [x] + [jnp.ones((batch_size, size), jnp.float32) for size in layers[1:-1]]
    deltas = [jnp.ones((batch_size, size), jnp.float32) for size in layers[1:]]

    @jax.jit
    def gemms(weights: list, inputs: list, deltas: list) -> list:
        products = [h @ W for h, W in zip(inputs, weights)] + [h.T @ d for h, d in zip(inputs, deltas)]
        return products + [d @ W.T for d, W in zip(deltas[1:], weights[1:])]

    leaves = [array for pair in params for array in pair]
    zeros = [jnp.zeros_like(array) for array in leaves]

    @jax.jit
    def adam(values: list, first: list, second: list, grads: list) -> tuple:
        first = [0.9 * m + 0.1 * g for m, g in zip(first, grads)]
        second = [0.999 * v + 0.001 * g * g for v, g in zip(second, grads)]
        return [p - 1e-3 * m / (jnp.sqrt(v) + 1e-8) for p, m, v in zip(values, first, second)], first, second

    identity = jax.jit(lambda *arrays: arrays)
    state = leaves * 3 + [x, y]  # params, two Adam moments, the batch: what a step passes
    square = jnp.ones((1024, 1024), jnp.float32)
    matmul = jax.jit(lambda a: a @ a)
    return {
        "portable make_train_step(compile=True)": (portable.step, 1),
        f"portable steps_per_call={steps_per_call}": (multi.step, steps_per_call),
        "native jax.jit step (train_step.py)": (native.step, 1),
        "forward + loss": (lambda: forward(params, x, y), 1),
        "forward + backward (value_and_grad)": (lambda: gradient(params, x, y), 1),
        "the GEMMs of a step alone": (lambda: gemms(weights, inputs, deltas), 1),
        "Adam update alone": (lambda: adam(leaves, zeros, zeros, leaves), 1),
        f"jit identity on {len(state)} arrays (a call's fixed cost)": (lambda: identity(*state), 1),
        "one 1024 x 1024 x 1024 GEMM": (lambda: matmul(square), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", default="784,256,256,10")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps-per-call", type=int, default=10)
    parser.add_argument("--steps", type=int, default=200, help="calls per block")
    parser.add_argument("--blocks", type=int, default=7)
    arguments = parser.parse_args(argv)
    layers = tuple(int(size) for size in arguments.layers.split(","))
    rows = []
    for name, (call, steps) in parts(layers, arguments.batch_size, arguments.steps_per_call).items():
        calls = max(1, arguments.steps // steps)
        wall, cpu = measure(call, calls, arguments.blocks)
        rows.append([name, format_number(wall / steps), format_number(cpu / steps)])
    print(table(["part", "wall ms per step", "cpu ms per step"], rows))
    products = [a * b for a, b in zip(layers, layers[1:])]
    flops = 2 * arguments.batch_size * (2 * sum(products) + sum(products[1:]))  # no input gradient for the data
    print(f"GEMM work of one step: {flops / 1e9:.3g} GFLOP (forward, weight and input gradients)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
