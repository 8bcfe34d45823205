"""Where the milliseconds of an eager PyTorch training step go: the step of bench/train_step.py
(MLP[784, 256, 256, 10] relu, cross-entropy, Adam, batch 128, float32) on the CPU, portable
against native, whole and part by part.

The parts: the forward and backward pass (``value_and_grad`` of the loss; the native side
``torch.autograd.grad`` of ``nn.Sequential`` + ``F.cross_entropy``), the same pass written
with the pure forms of relu and cross-entropy (what the step ran before ``Backend.kernel``),
and the Adam update: the fused path (``Backend.fused_update``), the pure per-parameter rule,
and ``torch.optim.Adam`` (its default single-tensor loop on the CPU, and ``foreach=True``).

Each part is called in blocks (``--steps`` calls) after five warm calls; the median over
``--blocks`` blocks of the wall-clock and the CPU time per call is printed. Blocks of the
parts are interleaved, so that a change in the machine's load touches them all alike.

    python bench/profile_eager_torch.py
    python bench/profile_eager_torch.py --threads 1 --blocks 9
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import train_step as bench_step
from _timing import format_number, table

import portable_dl as pdl
from portable_dl import activations, losses, nn, optimizers


def parts(layers: tuple[int, ...], batch_size: int) -> dict[str, Callable[[], Any]]:
    """``name -> call``: whole steps first, then each part alone."""
    import torch
    import torch.nn.functional as F

    problem = bench_step.make_problem(layers, batch_size, 0)
    backend = pdl.backend("torch")
    portable = bench_step.portable_runner(backend, problem, False)
    native = bench_step.native_torch(problem, "cpu", False)

    model = nn.MLP(layers, activation="relu")
    pure_model = nn.MLP(layers, activation=activations.pure_relu)
    params = {"layers": [{"W": backend.asarray(W), "b": backend.asarray(b)} for W, b in problem.weights]}
    x, y = backend.asarray(problem.x), backend.asarray(problem.y)
    gradient = backend.value_and_grad(lambda p: losses.cross_entropy(model.apply(p, x), y))
    pure_gradient = backend.value_and_grad(lambda p: losses.pure_cross_entropy(pure_model.apply(p, x), y))

    adam = optimizers.Adam(bench_step.LEARNING_RATE, betas=bench_step.BETAS, eps=bench_step.EPS)
    state = adam.init(params)
    _, grads = gradient(params)

    # The native pass: the same weights as torch tensors that autograd records.
    weights = [torch.from_numpy(W.T.copy()).requires_grad_() for W, _ in problem.weights]
    biases = [torch.from_numpy(b.copy()).requires_grad_() for _, b in problem.weights]

    def native_pass() -> Any:
        h = x
        for index, (W, b) in enumerate(zip(weights, biases)):
            h = F.linear(h, W, b)
            if index < len(weights) - 1:
                h = torch.relu(h)
        return torch.autograd.grad(F.cross_entropy(h, y), weights + biases)

    def torch_adam(foreach: bool) -> Callable[[], Any]:
        tensors = [torch.zeros_like(t, requires_grad=True) for t in weights + biases]
        for tensor, grad in zip(tensors, native_pass()):
            tensor.grad = grad.clone()
        optimizer = torch.optim.Adam(
            tensors, lr=bench_step.LEARNING_RATE, betas=bench_step.BETAS, eps=bench_step.EPS, foreach=foreach
        )
        return optimizer.step

    return {
        "portable make_train_step(compile=False)": portable.step,
        "native step (train_step.py)": native.step,
        "forward + backward, portable": lambda: gradient(params),
        "forward + backward, pure relu and cross-entropy": lambda: pure_gradient(params),
        "forward + backward, native": native_pass,
        "Adam update, portable fused": lambda: adam.update(grads, state, params),
        "Adam update, portable pure rule": lambda: adam.update(grads, state, params, fused=False),
        "Adam update, torch.optim.Adam": torch_adam(False),
        "Adam update, torch.optim.Adam(foreach=True)": torch_adam(True),
    }


def measure_interleaved(calls: dict[str, Callable[[], Any]], steps: int, blocks: int) -> dict[str, tuple[float, float]]:
    """``name -> (median wall ms, median CPU ms)`` per call, blocks of the calls interleaved."""
    for call in calls.values():
        for _ in range(5):
            call()
    walls: dict[str, list[float]] = {name: [] for name in calls}
    cpus: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(blocks):
        for name, call in calls.items():
            cpu, start = time.process_time(), time.perf_counter()
            for _ in range(steps):
                call()
            walls[name].append((time.perf_counter() - start) / steps * 1e3)
            cpus[name].append((time.process_time() - cpu) / steps * 1e3)
    return {name: (statistics.median(walls[name]), statistics.median(cpus[name])) for name in calls}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", default="784,256,256,10")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=100, help="calls per block")
    parser.add_argument("--blocks", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    arguments = parser.parse_args(argv)
    import torch

    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    layers = tuple(int(size) for size in arguments.layers.split(","))
    results = measure_interleaved(parts(layers, arguments.batch_size), arguments.steps, arguments.blocks)
    rows = [[name, format_number(wall), format_number(cpu)] for name, (wall, cpu) in results.items()]
    print(table(["part", "wall ms per call", "cpu ms per call"], rows))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
