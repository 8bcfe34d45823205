"""Time per training step: portable_dl against the same model written natively.

The model: MLP([784, 256, 256, 10]) with relu, softmax cross-entropy on integer labels,
Adam(lr 1e-3, betas (0.9, 0.999), eps 1e-8), float32, one random batch of 128 (fixed seed)
reused at every step. Both sides start from the same weights (drawn by portable_dl's
initializer in NumPy) and see the same batch, and the loss each returns at its first step
is recorded to show that they compute the same thing.

The portable side is ``portable_dl.make_train_step(loss, Adam(1e-3), backend, compile=...)``.
The native side is what a user of the framework would write:

=============  ==========================================================================
numpy          hand-written backpropagation and Adam (eager only)
torch          ``nn.Sequential`` + ``torch.optim.Adam``; compiled: ``torch.compile`` of the step
tensorflow     Keras ``Dense`` layers, a ``tf.GradientTape`` step, ``keras.optimizers.Adam``;
               compiled: ``tf.function(jit_compile=True)`` of the step
mlx            ``mlx.nn`` + ``mlx.optimizers.Adam`` (bias-corrected); compiled: ``mx.compile``
               with the model's and the optimizer's state as inputs and outputs
jax            a pure step with hand-written Adam in ``jax.numpy``; compiled: ``jax.jit``
=============  ==========================================================================

Per backend, the four runners (portable and native, eager and compiled) are timed in
interleaved blocks (``bench/_timing.py``); a step is synchronized where the framework is
lazy (MLX: ``mx.eval`` of the new state at every step, as its training loops do) and each
block ends with a synchronization (JAX's asynchronous dispatch, CUDA).

    python bench/train_step.py                         # every installed backend
    python bench/train_step.py --backends torch,jax --blocks 9
    python bench/train_step.py --quick                 # a rough number in seconds
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _timing import (
    Runner,
    Timing,
    compare,
    document,
    format_number,
    ratio,
    results_per_backend,
    split_names,
    table,
    write_json,
)

import portable_dl as pdl
from portable_dl import losses, nn, optimizers

BENCH = Path(__file__).resolve().parent
DEFAULT_OUTPUT = BENCH / "results" / "train_step.json"
BACKENDS = ("numpy", "torch", "tensorflow", "mlx", "jax")
MODES = ("eager", "compiled")
LEARNING_RATE = 1e-3
BETAS = (0.9, 0.999)
EPS = 1e-8


@dataclass(frozen=True)
class Problem:
    """The shared starting point: float32 NumPy weights ``[(W (in, out), b (out,)), ...]``,
    a batch ``x`` (N, in) float32 and integer labels ``y`` (N,) int64."""

    layers: tuple[int, ...]
    weights: list[tuple[np.ndarray, np.ndarray]]
    x: np.ndarray
    y: np.ndarray


def make_problem(layers: tuple[int, ...], batch_size: int, seed: int, backend: pdl.Backend | None = None) -> Problem:
    """Weights from portable_dl's own initializer (He normal, zero biases), the same on
    every backend, as float32 NumPy arrays; a standard normal batch with uniform random
    labels. The weights are drawn through ``backend`` (default NumPy) so that timing one
    backend creates no other: every backend created adds a little to each
    ``backend_of`` lookup of the front end."""
    backend = backend if backend is not None else pdl.backend("numpy")
    params = nn.MLP(layers).init(seed, backend=backend, dtype="float32")
    weights = [(backend.to_numpy(layer["W"]), backend.to_numpy(layer["b"])) for layer in params["layers"]]
    generator = np.random.default_rng(seed + 1)
    x = generator.standard_normal((batch_size, layers[0])).astype(np.float32)
    y = generator.integers(0, layers[-1], size=batch_size).astype(np.int64)
    return Problem(tuple(layers), weights, x, y)


# ===================================================================== portable side
def portable_runner(
    backend: pdl.Backend, problem: Problem, compile: bool, steps_per_call: int = 1, precision: str | None = None
) -> Runner:
    """The step built by ``make_train_step``, its params and state carried between calls.

    With ``steps_per_call`` k > 1 one call runs k steps on k stacked copies of the batch
    (``make_train_step(..., steps_per_call=k)``) and returns the k losses; the runner says
    so, and :func:`_timing.compare` divides each call's time by k. ``precision`` (None: the
    keyword is not passed) goes to ``make_train_step(precision=...)``."""
    model = nn.MLP(problem.layers, activation="relu")

    def objective(params: Any, batch: tuple[Any, Any]) -> Any:
        inputs, labels = batch
        return losses.cross_entropy(model.apply(params, inputs), labels)

    options: dict[str, Any] = {"compile": compile}
    if steps_per_call != 1:
        options["steps_per_call"] = steps_per_call
    if precision is not None:
        options["precision"] = precision
    step = pdl.make_train_step(objective, optimizers.Adam(LEARNING_RATE, betas=BETAS, eps=EPS), backend, **options)
    params = {"layers": [{"W": backend.asarray(W), "b": backend.asarray(b)} for W, b in problem.weights]}
    state = [params, step.init(params)]
    x, y = (problem.x, problem.y) if steps_per_call == 1 else stacked(problem, steps_per_call)
    batch = (backend.asarray(x), backend.asarray(y))
    lazy = backend.name == "mlx"

    def one_step() -> Any:
        state[0], state[1], loss = step(state[0], state[1], batch)
        if lazy:
            backend.synchronize((state, loss))
        return loss

    def synchronized(loss: Any) -> Any:
        backend.synchronize((state, loss))
        return loss

    return Runner(one_step, synchronized, steps_per_call=steps_per_call)


def stacked(problem: Problem, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The batch repeated ``k`` times along a new leading axis: ``(k, N, in)`` and ``(k, N)``."""
    return np.stack([problem.x] * k), np.stack([problem.y] * k)


# ======================================================================= native sides
def native_numpy(problem: Problem, device: str, compile: bool, steps_per_call: int = 1) -> Runner:
    """Backpropagation and Adam written out in NumPy, updating arrays in place (one step
    per call: NumPy has no compiler to run several in)."""
    weights = [(W.copy(), b.copy()) for W, b in problem.weights]
    params = [array for pair in weights for array in pair]
    first_moments = [np.zeros_like(p) for p in params]
    second_moments = [np.zeros_like(p) for p in params]
    x, y = problem.x, problem.y
    rows = np.arange(len(y))
    count = [0]

    def one_step() -> float:
        # forward, keeping each layer's input and pre-activation
        inputs, pre_activations, h = [], [], x
        for index, (W, b) in enumerate(weights):
            inputs.append(h)
            z = h @ W + b
            pre_activations.append(z)
            h = np.maximum(z, 0) if index < len(weights) - 1 else z
        shifted = h - h.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(total[:, 0]) - shifted[rows, y]))
        # backward: d loss / d logits = (softmax - one_hot) / N
        delta = exp / total
        delta[rows, y] -= 1.0
        delta /= len(y)
        gradients: list[np.ndarray] = []
        for index in range(len(weights) - 1, -1, -1):
            W, _ = weights[index]
            gradients[:0] = [inputs[index].T @ delta, delta.sum(axis=0)]
            if index > 0:
                delta = (delta @ W.T) * (pre_activations[index - 1] > 0)
        # Adam, as torch.optim.Adam
        count[0] += 1
        beta1, beta2 = BETAS
        step_size = LEARNING_RATE / (1 - beta1 ** count[0])
        root_correction = np.sqrt(1 - beta2 ** count[0])
        for p, g, m, v in zip(params, gradients, first_moments, second_moments):
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            p -= step_size * m / (np.sqrt(v) / root_correction + EPS)
        return loss

    return Runner(one_step)


def native_torch(problem: Problem, device: str, compile: bool, steps_per_call: int = 1) -> Runner:
    """``nn.Sequential`` of ``nn.Linear`` and ``nn.ReLU``, ``F.cross_entropy``,
    ``torch.optim.Adam``; compiled: ``torch.compile`` of the whole step function."""
    import torch
    import torch.nn.functional as F

    layers: list[Any] = []
    for index, (W, b) in enumerate(problem.weights):
        linear = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T.copy()))
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear] if index == len(problem.weights) - 1 else [linear, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, betas=BETAS, eps=EPS)
    x = torch.from_numpy(problem.x).to(device)
    y = torch.from_numpy(problem.y).to(device)

    def train_step(inputs: Any, labels: Any) -> Any:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(inputs), labels)
        loss.backward()
        optimizer.step()
        return loss.detach()

    def synchronize(result: Any) -> Any:
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)
        return result

    if steps_per_call > 1:  # k steps in one compiled call: a Python loop, which torch.compile unrolls
        xs, ys = (torch.from_numpy(array).to(device) for array in stacked(problem, steps_per_call))

        def train_steps(inputs: Any, labels: Any) -> Any:
            return torch.stack([train_step(inputs[i], labels[i]) for i in range(steps_per_call)])

        run_steps = torch.compile(train_steps)
        return Runner(lambda: run_steps(xs, ys), synchronize, optional=True, steps_per_call=steps_per_call)

    run = torch.compile(train_step) if compile else train_step
    return Runner(lambda: run(x, y), synchronize, optional=compile)


def native_tensorflow(problem: Problem, device: str, compile: bool, steps_per_call: int = 1) -> Runner:
    """Keras ``Dense`` layers, a ``tf.GradientTape`` step, ``keras.optimizers.Adam``;
    compiled: the step under ``tf.function(jit_compile=True)``."""
    import keras
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"Keras runs on {keras.backend.backend()!r} here (KERAS_BACKEND), not TensorFlow")
    tf_device = "/CPU:0" if device == "cpu" else "/" + device.upper()
    with tf.device(tf_device):
        model = keras.Sequential(
            [keras.Input((problem.layers[0],))]
            + [
                keras.layers.Dense(W.shape[1], activation="relu" if index < len(problem.weights) - 1 else None)
                for index, (W, _) in enumerate(problem.weights)
            ]
        )
        model.set_weights([array for pair in problem.weights for array in pair])
        # Keras' default epsilon is 1e-7: use torch's, as the portable side does.
        optimizer = keras.optimizers.Adam(learning_rate=LEARNING_RATE, beta_1=BETAS[0], beta_2=BETAS[1], epsilon=EPS)
        optimizer.build(model.trainable_variables)
        loss_function = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        x, y = tf.constant(problem.x), tf.constant(problem.y)

    def train_step(inputs: Any, labels: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = loss_function(labels, model(inputs, training=True))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    def synchronize(result: Any) -> Any:
        tf.test.experimental.sync_devices()
        return result

    if steps_per_call > 1:  # k steps in one tf.function: a Python loop, unrolled when traced

        def train_steps(inputs: Any, labels: Any) -> Any:
            return tf.stack([train_step(inputs[i], labels[i]) for i in range(steps_per_call)])

        run_steps = tf.function(train_steps, jit_compile=True)
        with tf.device(tf_device):
            xs, ys = (tf.constant(array) for array in stacked(problem, steps_per_call))

        def steps() -> Any:
            with tf.device(tf_device):
                return run_steps(xs, ys)

        return Runner(steps, synchronize, optional=True, steps_per_call=steps_per_call)

    run = tf.function(train_step, jit_compile=True) if compile else train_step

    def one_step() -> Any:
        with tf.device(tf_device):
            return run(x, y)

    return Runner(one_step, synchronize, optional=compile)


def native_mlx(problem: Problem, device: str, compile: bool, steps_per_call: int = 1) -> Runner:
    """``mlx.nn`` layers, ``nn.value_and_grad``, ``mlx.optimizers.Adam`` with bias correction
    (as torch's); ``mx.eval`` of the parameters and optimizer state at every step. Compiled:
    ``mx.compile(step, inputs=state, outputs=state)`` with ``state = [model.state,
    optimizer.state]``, the documented way to compile a step that updates a model."""
    from functools import partial

    import mlx.core as mx
    import mlx.nn as mlx_nn
    import mlx.optimizers as mlx_optimizers

    mx.set_default_device(mx.cpu if device == "cpu" else mx.gpu)
    layers: list[Any] = []
    for index, (W, b) in enumerate(problem.weights):
        linear = mlx_nn.Linear(*W.shape)
        linear.weight = mx.array(W.T)
        linear.bias = mx.array(b)
        layers += [linear] if index == len(problem.weights) - 1 else [linear, mlx_nn.ReLU()]
    model = mlx_nn.Sequential(*layers)
    optimizer = mlx_optimizers.Adam(learning_rate=LEARNING_RATE, betas=list(BETAS), eps=EPS, bias_correction=True)
    optimizer.init(model.trainable_parameters())
    x, y = mx.array(problem.x), mx.array(problem.y)

    def loss_function(network: Any, inputs: Any, labels: Any) -> Any:
        return mlx_nn.losses.cross_entropy(network(inputs), labels, reduction="mean")

    loss_and_grad = mlx_nn.value_and_grad(model, loss_function)
    state = [model.state, optimizer.state]

    def train_step(inputs: Any, labels: Any) -> Any:
        loss, gradients = loss_and_grad(model, inputs, labels)
        optimizer.update(model, gradients)
        return loss

    if steps_per_call > 1:  # k steps in one mx.compile: a Python loop, unrolled when traced
        xs, ys = (mx.array(array) for array in stacked(problem, steps_per_call))

        def train_steps(inputs: Any, labels: Any) -> Any:
            return mx.stack([train_step(inputs[i], labels[i]) for i in range(steps_per_call)])

        run_steps = partial(mx.compile, inputs=state, outputs=state)(train_steps)

        def steps() -> Any:
            losses = run_steps(xs, ys)
            mx.eval(state, losses)
            return losses

        return Runner(steps, optional=True, steps_per_call=steps_per_call)

    run = partial(mx.compile, inputs=state, outputs=state)(train_step) if compile else train_step

    def one_step() -> Any:
        loss = run(x, y)
        mx.eval(state, loss)
        return loss

    return Runner(one_step, optional=compile)


def native_jax(problem: Problem, device: str, compile: bool, steps_per_call: int = 1) -> Runner:
    """A pure step ``(params, m, v, t, x, y) -> (params, m, v, t, loss)``: the MLP and the
    loss in ``jax.numpy``, ``jax.value_and_grad``, Adam written with ``jax.tree.map`` (optax
    is not a dependency); compiled: ``jax.jit`` of that step."""
    import jax
    import jax.numpy as jnp

    placement = jax.devices("cpu")[0] if device == "cpu" else jax.devices()[0]
    params = jax.device_put([(jnp.asarray(W), jnp.asarray(b)) for W, b in problem.weights], placement)
    first = jax.tree.map(jnp.zeros_like, params)
    second = jax.tree.map(jnp.zeros_like, params)
    count = jax.device_put(jnp.zeros((), jnp.int32), placement)
    x = jax.device_put(jnp.asarray(problem.x), placement)
    y = jax.device_put(jnp.asarray(problem.y.astype(np.int32)), placement)

    def loss_function(parameters: Any, inputs: Any, labels: Any) -> Any:
        h = inputs
        for index, (W, b) in enumerate(parameters):
            h = h @ W + b
            if index < len(parameters) - 1:
                h = jax.nn.relu(h)
        log_probs = jax.nn.log_softmax(h)
        return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1))

    def train_step(parameters: Any, m: Any, v: Any, t: Any, inputs: Any, labels: Any) -> tuple:
        loss, gradients = jax.value_and_grad(loss_function)(parameters, inputs, labels)
        t = t + 1
        beta1, beta2 = BETAS
        m = jax.tree.map(lambda m_, g: beta1 * m_ + (1 - beta1) * g, m, gradients)
        v = jax.tree.map(lambda v_, g: beta2 * v_ + (1 - beta2) * g * g, v, gradients)
        step_size = LEARNING_RATE / (1 - beta1**t)
        root_correction = jnp.sqrt(1 - beta2**t)
        parameters = jax.tree.map(
            lambda p, m_, v_: p - step_size * m_ / (jnp.sqrt(v_) / root_correction + EPS), parameters, m, v
        )
        return parameters, m, v, t, loss

    run = jax.jit(train_step) if compile else train_step
    state = [params, first, second, count]
    if steps_per_call > 1:  # k steps in one jitted call: jax.lax.scan over the stacked batches
        xs, ys = stacked(problem, steps_per_call)
        xs, ys = jax.device_put(jnp.asarray(xs), placement), jax.device_put(jnp.asarray(ys.astype(np.int32)), placement)

        def scanned(carry: tuple, batch: tuple) -> tuple:
            *new_carry, loss = train_step(*carry, *batch)
            return tuple(new_carry), loss

        def train_steps(parameters: Any, m: Any, v: Any, t: Any, inputs: Any, labels: Any) -> tuple:
            carry, losses = jax.lax.scan(scanned, (parameters, m, v, t), (inputs, labels))
            return (*carry, losses)

        run = jax.jit(train_steps)
        x, y = xs, ys

    def one_step() -> Any:
        *new_state, loss = run(*state, x, y)
        state[:] = new_state
        return loss

    def synchronize(loss: Any) -> Any:
        jax.block_until_ready((state, loss))
        return loss

    return Runner(one_step, synchronize, optional=compile or steps_per_call > 1, steps_per_call=steps_per_call)


NATIVE: dict[str, Callable[[Problem, str, bool, int], Runner]] = {
    "numpy": native_numpy,
    "torch": native_torch,
    "tensorflow": native_tensorflow,
    "mlx": native_mlx,
    "jax": native_jax,
}

#: What each native runner is, for the table's readers and the JSON.
NATIVE_DESCRIPTION = {
    "numpy": "hand-written backprop + Adam in NumPy",
    "torch": "nn.Sequential + torch.optim.Adam; compiled: torch.compile(step)",
    "tensorflow": "Keras Dense + GradientTape + keras Adam; compiled: tf.function(jit_compile=True)",
    "mlx": "mlx.nn + mlx.optimizers.Adam; compiled: mx.compile(inputs=state, outputs=state)",
    "jax": "jax.numpy MLP + hand-written Adam; compiled: jax.jit(step)",
}


# ====================================================================== the benchmark
def backend_on(name: str, device: str) -> pdl.Backend:
    """The backend ``name`` on the device ``--device`` asks for. ``auto``: torch and JAX on
    the first GPU where there is one, the others on their framework's default device;
    ``cpu``: every backend on the CPU; ``cuda``: torch and JAX on the first CUDA GPU.
    BackendUnavailable (with the reason) where that cannot be had."""
    if device == "cpu":
        return pdl.backend(name, device="cpu")
    if device == "cuda" and name not in ("torch", "jax"):
        raise pdl.BackendUnavailable("with --device cuda only torch and jax run (on the GPU)")
    backend = pdl.backend(name)
    gpus = [d for d in backend.devices() if d.startswith(("cuda", "gpu"))]
    if name in ("torch", "jax") and gpus:
        return pdl.backend(name, device=gpus[0])
    if device == "cuda":
        raise pdl.BackendUnavailable(f"no CUDA device for {name} here (devices: {', '.join(backend.devices())})")
    return backend


def variants(arguments: argparse.Namespace, name: str) -> list[dict]:
    """The (mode, steps per call, precision) rows to time on backend ``name``, each with its
    runners' names: k > 1 only in compiled mode (an eager call of k steps saves nothing),
    no compiled mode on NumPy, and a native side only in float32 (``precision`` None or
    "float32"): a mixed-precision row is portable only, and says so."""
    rows = []
    for precision in arguments.precision:
        for mode in arguments.modes:
            if mode == "compiled" and name == "numpy":
                continue
            for k in arguments.steps_per_call:
                if k > 1 and mode != "compiled":
                    continue
                native = precision in (None, "float32")  # float32 is the default: its rows are the plain ones
                label = mode + (f" k={k}" if k > 1 else "") + ("" if native else f" {precision}")
                rows.append(
                    {
                        "mode": mode,
                        "steps_per_call": k,
                        "precision": precision,
                        "label": label,
                        "portable": f"portable {label}",
                        "native": f"native {mode}" + (f" k={k}" if k > 1 else "") if native else None,
                    }
                )
    return rows


def measure_backend(name: str, arguments: argparse.Namespace) -> dict:
    """Time the portable and native runners of one backend; return its JSON section."""
    backend = backend_on(name, arguments.device)
    problem = make_problem(arguments.layers, arguments.batch_size, arguments.seed, backend)
    rows = variants(arguments, name)
    runners: dict[str, Runner] = {}
    for row in rows:
        compile, k = row["mode"] == "compiled", row["steps_per_call"]
        runners[row["portable"]] = portable_runner(backend, problem, compile, k, row["precision"])
        if row["native"] is None or row["native"] in runners:  # float32 and its default share a native side
            continue
        try:
            runners[row["native"]] = NATIVE[name](problem, backend.device, compile, k)
        except Exception as error:  # noqa: BLE001 - a native side that cannot be built is reported, not fatal
            if not compile:
                raise
            runners[row["native"]] = Runner(_raiser(error), optional=True)
    timings = compare(
        runners,
        blocks=arguments.blocks,
        steps=arguments.steps,
        block_seconds=arguments.block_seconds,
        warmup=arguments.warmup,
    )
    results = []
    for row in rows:
        portable = timings[row["portable"]]
        native = timings.get(row["native"]) if row["native"] else None
        single = timings.get(f"native {row['mode']}")  # the native step, one per call
        results.append(
            {
                "mode": row["mode"],
                "steps_per_call": row["steps_per_call"],
                "precision": row["precision"],
                "portable": _timing_json(portable),
                "native": _timing_json(native)
                if native is not None
                else {"status": "none", "reason": f"no native {row['precision']} step here"},
                "ratio": ratio(portable, native),
                "ratio_cpu": ratio(portable, native, cpu=True),
                "ratio_to_native_one_step_per_call": ratio(portable, single),
            }
        )
    return {
        "backend": name,
        "device": backend.device,
        "version": backend.version,
        "native": NATIVE_DESCRIPTION[name],
        "modes": results,
        "portable_compiled_over_native_eager": ratio(timings.get("portable compiled"), timings.get("native eager")),
    }


def _raiser(error: Exception) -> Callable[[], Any]:
    def raise_it() -> Any:
        raise error

    return raise_it


def _timing_json(timing: Timing) -> dict:
    content = timing.as_json(unit=1e3)
    if timing.ok:
        content["unit"] = "ms per step"
        content["first_loss"] = _as_float(timing.first_result)
    return content


def _as_float(value: Any) -> float:
    """The first loss a step returned (one loss, or the k losses of a k-step call) as a float."""
    if hasattr(value, "detach"):  # torch, perhaps on a GPU, perhaps in bfloat16 (which NumPy lacks)
        value = value.detach().float().cpu()
    return float(np.asarray(value, dtype=np.float64).reshape(-1)[0])


def print_results(results: list[dict]) -> None:
    """The table: one line per backend, mode, steps per call and precision. ``ratio`` is
    portable / native at the same k; ``vs k=1`` is portable / the native step run one per call."""
    rows = []
    for result in results:
        if "skipped" in result:
            rows.append([result["backend"], "-", "-", "-", "-", "-", "-", "-", "-", f"skipped: {result['skipped']}"])
            continue
        for row in result["modes"]:
            portable, native = row["portable"], row["native"]
            note = "" if native["status"] == "ok" else f"native {native['status']}: {native['reason']}"
            if native["status"] == "none":
                note = f"portable only ({native['reason']})"
            if native["status"] == "ok" and abs(portable["first_loss"] - native["first_loss"]) > 1e-4 * abs(
                native["first_loss"]
            ):
                note = f"first losses differ: {portable['first_loss']:.6g} vs {native['first_loss']:.6g}"
            k = row.get("steps_per_call", 1)
            rows.append(
                [
                    f"{result['backend']} ({result['device']})",
                    row["mode"] + (f" {row['precision']}" if row.get("precision") else ""),
                    k,
                    format_number(portable.get("median")),
                    format_number(native.get("median")),
                    format_number(row["ratio"]),
                    format_number(row["ratio_cpu"]),
                    format_number(row.get("ratio_to_native_one_step_per_call")) if k > 1 else "",
                    format_number(result["portable_compiled_over_native_eager"])
                    if row["mode"] == "compiled" and k == 1 and row.get("precision") in (None, "float32")
                    else "",
                    note,
                ]
            )
    headers = ["backend", "mode", "k", "portable ms", "native ms", "ratio", "cpu ratio", "vs native k=1"]
    print(table(headers + ["p.compiled/n.eager", "note"], rows))
    print("ms per step; k: steps per call (a call of k steps timed, divided by k); native at k > 1: the framework's")
    print("own loop of k steps in one compiled call (torch.compile and tf.function unroll it, jax.lax.scan)")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--backends",
        default=None,
        help="comma-separated names, or all (a backend not installed is reported as skipped)",
    )
    parser.add_argument("--modes", default="eager,compiled", help="eager, compiled or both")
    parser.add_argument("--blocks", type=int, default=None, help="timed blocks per runner (default 5; --quick 3)")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="steps per block (default: as many as fill --block-seconds, at most 1000)",
    )
    parser.add_argument(
        "--block-seconds",
        type=float,
        default=None,
        help="time budget of a block when --steps is not given (default 0.5; --quick 0.1)",
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before the blocks (the first compiles)")
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto: torch and jax on a GPU where there is one; cuda: only torch and jax, on the GPU",
    )
    parser.add_argument("--layers", default="784,256,256,10", help="MLP sizes, input first")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--steps-per-call",
        default="1",
        help="comma-separated k: compiled mode also runs k steps per call (make_train_step(steps_per_call=k) on "
        "k stacked batches; the native side: its own loop of k steps in one compiled call); times are per step",
    )
    parser.add_argument(
        "--precision",
        default=None,
        help="comma-separated names passed as make_train_step(precision=...), e.g. float32,mixed_bfloat16 "
        "(default: not passed); only float32 rows have a native side",
    )
    parser.add_argument("--quick", action="store_true", help="3 blocks of 0.1 s: a rough number quickly")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="the JSON file written")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="time every backend in this process (default: a fresh process per backend)",
    )
    arguments = parser.parse_args(argv)
    arguments.modes = split_names(arguments.modes, MODES)
    if arguments.blocks is None:
        arguments.blocks = 3 if arguments.quick else 5
    if arguments.block_seconds is None:
        arguments.block_seconds = 0.1 if arguments.quick else 0.5
    arguments.layers = tuple(int(size) for size in arguments.layers.split(","))
    try:
        arguments.steps_per_call = sorted({int(k) for k in arguments.steps_per_call.split(",") if k.strip()})
    except ValueError:
        parser.error(f"--steps-per-call takes comma-separated integers, got {arguments.steps_per_call!r}")
    if not arguments.steps_per_call or arguments.steps_per_call[0] < 1:
        parser.error("--steps-per-call needs integers of at least 1")
    if 1 not in arguments.steps_per_call:  # k > 1 is reported beside the single step
        arguments.steps_per_call.insert(0, 1)
    arguments.precision = parse_precisions(parser, arguments.precision)
    for name in ("blocks", "warmup", "batch_size"):
        if getattr(arguments, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if arguments.steps is not None and arguments.steps < 1:
        parser.error("--steps must be at least 1")
    if len(arguments.layers) < 2:
        parser.error("--layers needs at least an input and an output size")
    return arguments


def parse_precisions(parser: argparse.ArgumentParser, text: str | None) -> list[str | None]:
    """``--precision`` as a list of names, ``[None]`` (the keyword not passed) without it; a
    usage error where this portable_dl's ``make_train_step`` has no ``precision`` keyword."""
    if text is None:
        return [None]
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not names:
        parser.error("--precision needs at least one name")
    if "precision" not in inspect.signature(pdl.make_train_step).parameters:
        parser.error("--precision: this portable_dl's make_train_step has no precision= keyword")
    return names


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    arguments = parse_arguments(argv)
    names = split_names(arguments.backends, BACKENDS)
    print(
        f"train step: MLP{list(arguments.layers)} relu, cross-entropy, Adam lr {LEARNING_RATE}, batch "
        f"{arguments.batch_size}, float32; {arguments.blocks} interleaved blocks per runner",
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
        "layers": list(arguments.layers),
        "activation": "relu",
        "loss": "cross_entropy",
        "optimizer": "Adam",
        "lr": LEARNING_RATE,
        "betas": list(BETAS),
        "eps": EPS,
        "batch_size": arguments.batch_size,
        "dtype": "float32",
        "seed": arguments.seed,
        "blocks": arguments.blocks,
        "steps": arguments.steps,
        "block_seconds": arguments.block_seconds,
        "warmup": arguments.warmup,
        "device": arguments.device,
        "modes": arguments.modes,
        "steps_per_call": arguments.steps_per_call,
        "precision": arguments.precision,
    }
    path = write_json(arguments.output, document("train_step", settings, results=results))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
