"""Where the time of one ``fit`` step goes at batch 10 (the textbook MNIST experiment of
bench/mnist_epoch.py: MLP[784, 16, 16, 10] relu, cross-entropy, SGD, float32, compiled step).

At batch 10 a step's arithmetic takes microseconds, so a step costs what ``fit`` and the
framework spend around it. Each part below is timed alone, in interleaved blocks
(``bench/_timing.py``: a block is ``--steps`` calls and one synchronization at the end), on
random MNIST-shaped data, and reported in microseconds per step (wall clock and this
process's CPU time, the steadier on a shared machine):

==================  ==========================================================================
part                what one call runs
==================  ==========================================================================
``cut``             fit's batches (``fit_batches.epoch_calls`` over ``HostData``): the rows
                    gathered and cast in NumPy, moved with ``backend.asarray``, a chunk of
                    calls at a time
``step``            the compiled ``step(params, opt_state, batch)`` fit builds, on batches cut
                    beforehand, its outputs fed to the next call
``loss sum``        the loop's bookkeeping on the device: ``loss * examples`` added to the sum
                    (``examples`` a 0-d array made once)
``floor``           ``backend.compile`` of a function taking the same arguments and returning
                    them with ``sum(x)``: the portable compiled call's fixed cost
``native floor``    the same function compiled by the framework's own compiler, called directly
``fit``             a warm step of ``fit`` itself: its epochs after the first (which traces and
                    compiles) timed inside one fit call, the median over ``--fits`` calls
==================  ==========================================================================

``fit - (cut + step + loss sum)`` is what fit's Python loop adds per step; ``floor - native
floor`` what the portable wrapper around the compiled call adds; ``step - floor`` is the
step's own work (arithmetic, autodiff, the optimizer) inside the compiled call.

    python bench/profile_fit.py --backends jax,tensorflow,mlx,torch
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

import numpy as np
from _timing import Runner, compare, format_number, split_names, table
from mnist_epoch import BATCH_SIZE, LAYERS, LEARNING_RATE, thread_environment

import portable_dl as pdl
from portable_dl import losses, nn, optimizers, training
from portable_dl.fit_batches import HostData, epoch_calls

BACKENDS = ("numpy", "torch", "tensorflow", "mlx", "jax")
PARTS = ("cut", "step", "loss sum", "floor", "native floor", "fit")


def native_compile(backend: pdl.Backend, f: Any) -> Any:
    """``f`` compiled by the framework's own compiler, without portable_dl's wrapper."""
    if backend.name == "jax":
        import jax

        return jax.jit(f)
    if backend.name == "tensorflow":
        import tensorflow as tf

        return tf.function(f, jit_compile=True, autograph=False)
    if backend.name == "mlx":
        import mlx.core as mx

        return mx.compile(f)
    if backend.name == "torch":
        import torch

        return torch.compile(f)
    return f


def profile(backend_name: str, examples: int, steps: int, blocks: int, fits: int, warm_epochs: int) -> dict:
    """``part -> (wall µs, cpu µs)`` per step on ``backend_name``; see the module docstring."""
    backend = pdl.backend(backend_name)
    xp = backend.xp
    generator = np.random.default_rng(0)
    x = generator.random((examples, LAYERS[0]), dtype=np.float32)
    y = generator.integers(0, LAYERS[-1], examples)
    model = nn.MLP(LAYERS, activation="relu")
    params0 = model.init(0, backend=backend, dtype="float32")

    def objective(params: Any, batch: Any) -> Any:
        return losses.cross_entropy(model.apply(params, batch[0]), batch[1])

    step = pdl.make_train_step(objective, optimizers.SGD(LEARNING_RATE), backend, compile=True)
    data = HostData(x, y, backend, "float32")
    order = generator.permutation(examples)
    batches = [data.cut(order, start * BATCH_SIZE, 1, BATCH_SIZE) for start in range(min(100, examples // BATCH_SIZE))]
    state = {"params": params0, "opt": step.init(params0), "sum": None, "i": 0}

    def next_batch() -> Any:
        state["i"] = (state["i"] + 1) % len(batches)
        return batches[state["i"]]

    def cut() -> Any:
        try:
            return next(state["calls"]).batch
        except (KeyError, StopIteration):
            state["calls"] = epoch_calls(data, BATCH_SIZE, 1, shuffle=True, generator=generator)
            return next(state["calls"]).batch

    def run_step() -> Any:
        state["params"], state["opt"], loss = step(state["params"], state["opt"], next_batch())
        return state["params"], loss

    loss0 = step(params0, state["opt"], batches[0])[2]
    weight = backend.asarray(float(BATCH_SIZE), "float32")  # as fit's loop holds it

    def loss_sum() -> Any:
        weighted = xp.multiply(loss0, weight)
        state["sum"] = weighted if state["sum"] is None else xp.add(state["sum"], weighted)
        return state["sum"]

    def empty(params: Any, opt_state: Any, batch: Any) -> Any:
        return params, opt_state, xp.sum(batch[0])

    floors = {"floor": backend.compile(empty), "native floor": native_compile(backend, empty)}

    def floor_runner(compiled: Any) -> Runner:
        return Runner(lambda: compiled(params0, state["opt"], next_batch()), backend.synchronize)

    runners = {
        "cut": Runner(cut, backend.synchronize),
        "step": Runner(run_step, backend.synchronize),
        "loss sum": Runner(loss_sum, backend.synchronize),
        **{name: floor_runner(compiled) for name, compiled in floors.items()},
    }
    timings = compare(runners, blocks=blocks, steps=steps)
    result = {
        name: (statistics.median(t.seconds_per_step) * 1e6, statistics.median(t.cpu_seconds_per_step) * 1e6)
        for name, t in timings.items()
    }

    # fit's own epochs, timed inside one fit call (the first epoch, which traces and compiles
    # the step, left out): the loop of _FitLoop.run_epoch, wrapped.
    epoch_times: list[tuple[float, float]] = []
    run_epoch = training._FitLoop.run_epoch

    def timed_epoch(loop: Any) -> None:
        cpu, start = time.process_time(), time.perf_counter()
        run_epoch(loop)
        epoch_times.append((time.perf_counter() - start, time.process_time() - cpu))

    training._FitLoop.run_epoch = timed_epoch
    try:
        for _ in range(fits):
            pdl.fit(
                model,
                params0,
                losses.cross_entropy,
                optimizers.SGD(LEARNING_RATE),
                backend,
                x,
                y,
                epochs=1 + warm_epochs,
                batch_size=BATCH_SIZE,
                verbose=0,
            )
            del epoch_times[-1 - warm_epochs]
    finally:
        training._FitLoop.run_epoch = run_epoch
    per_epoch = examples // BATCH_SIZE
    walls = [wall / per_epoch * 1e6 for wall, _ in epoch_times]
    cpus = [cpu / per_epoch * 1e6 for _, cpu in epoch_times]
    result["fit"] = (statistics.median(walls), statistics.median(cpus))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="jax,tensorflow,mlx,torch")
    parser.add_argument("--examples", type=int, default=3000)
    parser.add_argument("--steps", type=int, default=200, help="calls per block")
    parser.add_argument("--blocks", type=int, default=7)
    parser.add_argument("--fits", type=int, default=3, help="fit calls for the fit row")
    parser.add_argument("--warm-epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: profile one backend, print a row
    arguments = parser.parse_args(argv)
    if arguments.one:
        result = profile(
            arguments.one, arguments.examples, arguments.steps, arguments.blocks, arguments.fits, arguments.warm_epochs
        )
        print("ROW", repr(result))
        return
    import ast
    import subprocess

    environment = {**os.environ, **thread_environment(arguments.threads)}
    rows = []
    for name in split_names(arguments.backends, BACKENDS):
        # A fresh process per backend: each framework keeps its threads and caches.
        command = [sys.executable, __file__, "--one", name, *(argv if argv is not None else sys.argv[1:])]
        done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
        line = next((line for line in done.stdout.splitlines() if line.startswith("ROW ")), None)
        if line is None:
            print(f"{name}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        result = ast.literal_eval(line[4:])
        rows.append([name, *(f"{format_number(result[p][0])} / {format_number(result[p][1])}" for p in PARTS)])
    print("µs per step at batch 10, wall / cpu (median over blocks)")
    print(table(["backend", *PARTS], rows))


if __name__ == "__main__":
    main()
