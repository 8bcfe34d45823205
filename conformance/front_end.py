"""Gradient cases of the front end: every activation and loss, the Dense layer, a whole
MLP, and frozen parameters.

Each case differentiates front-end code with the backend's own autodiff. Its finite
differences come from NumPy float64 formulas written here, independently of the front
end, so a wrong formula in an activation or a loss fails on every backend, the NumPy one
included.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable

import numpy as np

from portable_dl.backend import Backend

from .cases import Case, Outputs
from .gradients import FAMILY
from .numerics import as_float64, scalar_function_case
from .numerics import central_differences as central

_erf = np.vectorize(math.erf)


def _log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _activations() -> dict[str, tuple[Callable, Callable]]:
    """name -> (the front end's activation, its formula in NumPy float64)."""
    from portable_dl import activations as a

    return {
        "relu": (a.relu, lambda x: np.where(x > 0, x, 0.0)),
        "leaky_relu": (lambda x: a.leaky_relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
        "sigmoid": (a.sigmoid, lambda x: 0.5 * (1 + np.tanh(x / 2))),
        "tanh": (a.tanh, np.tanh),
        "gelu": (a.gelu, lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2)))),
        "gelu tanh approximation": (
            lambda x: a.gelu(x, approximate="tanh"),
            lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
        ),
        "softplus": (a.softplus, lambda x: np.logaddexp(0.0, x)),
        "softmax": (lambda x: a.softmax(x, axis=-1), lambda x: np.exp(_log_softmax(x))),
        "log_softmax": (lambda x: a.log_softmax(x, axis=-1), _log_softmax),
        "logsumexp": (
            lambda x: a.logsumexp(x, axis=1, keepdims=True),
            lambda x: np.logaddexp.reduce(x, axis=1, keepdims=True),
        ),
    }


def activation_cases(quick: bool) -> list[Case]:
    cases = []
    for name, (front_end, numpy_form) in _activations().items():
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        x = rng.uniform(-3, 3, (4, 5))
        x = np.where(np.abs(x) < 0.05, 0.3, x)  # away from relu's kink
        w = rng.uniform(0.5, 1.5, (4, 5) if name != "logsumexp" else (4, 1))

        def backend_loss(backend, a, dtype, front_end=front_end, w=w):  # sum(w f(x)^2), as in .gradients
            xp = backend.xp
            return xp.sum(xp.multiply(xp.square(front_end(a["x"])), backend.asarray(w, dtype)))

        def numpy_loss(a, numpy_form=numpy_form, w=w):
            return float(np.sum(numpy_form(a["x"]) ** 2 * w))

        cases.append(scalar_function_case(f"activation {name}", {"x": x}, backend_loss, numpy_loss, reduction_size=5))
        if quick:
            continue
        # Stability: +-1000 must give finite values and gradients in float32 too.
        extreme = np.array([[-1000.0, -100.0, -10.0, -1.0, 1.0, 10.0, 100.0, 1000.0]])
        cases.append(
            scalar_function_case(
                f"activation {name} at +-1000",
                {"x": extreme},
                lambda backend, a, dtype, front_end=front_end: backend.xp.sum(front_end(a["x"])),
                None,
                reduction_size=8,
            )
        )
    return cases


def loss_cases() -> list[Case]:
    from portable_dl import losses

    rng = np.random.default_rng(30)
    predictions, targets = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    probabilities, binary = rng.uniform(0.05, 0.95, (6, 3)), (rng.uniform(size=(6, 3)) > 0.5).astype(float)
    logits, labels = rng.normal(size=(6, 4)), np.array([0, 3, 1, 2, 3, 0])
    soft_targets = np.exp(_log_softmax(rng.normal(size=(6, 4))))
    residual_safe = np.where(np.abs(predictions - targets) < 0.05, predictions + 0.2, predictions)
    huber_numpy = lambda r: np.where(np.abs(r) < 1.0, 0.5 * r**2, np.abs(r) - 0.5)

    def label_array(backend):
        return backend.asarray(labels)

    table = {
        "mse": (
            lambda be, a, dt: losses.mse(a["p"], be.asarray(targets, dt)),
            lambda a: np.mean((a["p"] - targets) ** 2),
            residual_safe,
        ),
        "mae": (
            lambda be, a, dt: losses.mae(a["p"], be.asarray(targets, dt)),
            lambda a: np.mean(np.abs(a["p"] - targets)),
            residual_safe,
        ),
        "huber": (
            lambda be, a, dt: losses.huber(a["p"], be.asarray(targets, dt)),
            lambda a: np.mean(huber_numpy(a["p"] - targets)),
            residual_safe,
        ),
        "mse sum": (
            lambda be, a, dt: losses.mse(a["p"], be.asarray(targets, dt), reduction="sum"),
            lambda a: np.sum((a["p"] - targets) ** 2),
            residual_safe,
        ),
        "binary_cross_entropy": (
            lambda be, a, dt: losses.binary_cross_entropy(a["p"], be.asarray(binary, dt)),
            lambda a: np.mean(-(binary * np.log(a["p"]) + (1 - binary) * np.log(1 - a["p"]))),
            probabilities,
        ),
        "binary_cross_entropy_with_logits": (
            lambda be, a, dt: losses.binary_cross_entropy_with_logits(a["p"], be.asarray(binary, dt)),
            lambda a: np.mean(np.logaddexp(0, a["p"]) - binary * a["p"]),
            predictions,
        ),
        "cross_entropy integer labels": (
            lambda be, a, dt: losses.cross_entropy(a["p"], label_array(be)),
            lambda a: -np.mean(_log_softmax(a["p"])[np.arange(6), labels]),
            logits,
        ),
        "cross_entropy probabilities": (
            lambda be, a, dt: losses.cross_entropy(a["p"], be.asarray(soft_targets, dt)),
            lambda a: -np.mean(np.sum(soft_targets * _log_softmax(a["p"]), axis=1)),
            logits,
        ),
        "cross_entropy label_smoothing 0.1": (
            lambda be, a, dt: losses.cross_entropy(a["p"], label_array(be), label_smoothing=0.1),
            lambda a: -np.mean(np.sum((0.9 * np.eye(4)[labels] + 0.1 / 4) * _log_softmax(a["p"]), axis=1)),
            logits,
        ),
        "nll": (
            lambda be, a, dt: losses.nll(a["p"], label_array(be)),
            lambda a: -np.mean(a["p"][np.arange(6), labels]),
            _log_softmax(logits),
        ),
        "l2_penalty": (
            lambda be, a, dt: losses.l2_penalty({"W": a["p"]}, 0.01),
            lambda a: 0.01 * np.sum(a["p"] ** 2),
            predictions,
        ),
    }
    return [
        scalar_function_case(f"loss {name}", {"p": inputs}, backend_loss, numpy_loss, reduction_size=24)
        for name, (backend_loss, numpy_loss, inputs) in table.items()
    ]


def _relu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, 0.0)


def mlp_case() -> Case:
    """A whole MLP([6, 8, 8, 3]) with softmax cross-entropy: every parameter's gradient."""
    from portable_dl import losses, nn

    model = nn.MLP([6, 8, 8, 3])
    rng = np.random.default_rng(31)
    x, labels = rng.normal(size=(10, 6)), rng.integers(0, 3, size=10)
    initial = model.init(5, "numpy", "float64")

    def numpy_loss(params: dict) -> float:
        h = x
        for index, layer in enumerate(params["layers"]):
            h = h @ layer["W"] + layer["b"]
            if index < 2:
                h = _relu(h)
        return float(-np.mean(_log_softmax(h)[np.arange(10), labels]))

    def compute(backend: Backend, dtype: str) -> Outputs:
        params = model.init(5, backend, dtype)
        bx, by = backend.asarray(x, dtype), backend.asarray(labels)
        value, grads = backend.value_and_grad(lambda p: losses.cross_entropy(model.apply(p, bx), by))(params)
        outputs: Outputs = {"value": as_float64(backend, value)}
        for index, layer in enumerate(grads["layers"]):
            for key in ("W", "b"):
                outputs[f"grad layers.{index}.{key}"] = as_float64(backend, layer[key])
        return outputs

    def finite_differences() -> Outputs:
        result: Outputs = {}
        for index, layer in enumerate(initial["layers"]):
            for key in ("W", "b"):

                def partial(v, index=index, key=key):
                    params = {"layers": [dict(layer) for layer in initial["layers"]]}
                    params["layers"][index][key] = v
                    return numpy_loss(params)

                result[f"grad layers.{index}.{key}"] = central(partial, layer[key])
        return result

    return Case(
        FAMILY,
        "MLP([6, 8, 8, 3]) with cross_entropy",
        compute,
        reduction_size=10 * 8,
        gradient=True,
        finite_differences=finite_differences,
    )


def dense_case() -> Case:
    """One Dense layer, x W + b, with a mean squared error."""
    from portable_dl import losses, nn

    layer = nn.Dense(4, 3, init="glorot_uniform")
    rng = np.random.default_rng(32)
    x, t = rng.normal(size=(7, 4)), rng.normal(size=(7, 3))
    initial = layer.init(6, "numpy", "float64")

    def compute(backend: Backend, dtype: str) -> Outputs:
        params = layer.init(6, backend, dtype)
        bx, bt = backend.asarray(x, dtype), backend.asarray(t, dtype)
        value, grads = backend.value_and_grad(lambda p: losses.mse(layer.apply(p, bx), bt))(params)
        return {
            "value": as_float64(backend, value),
            "grad W": as_float64(backend, grads["W"]),
            "grad b": as_float64(backend, grads["b"]),
        }

    def finite_differences() -> Outputs:
        loss = lambda W, b: float(np.mean((x @ W + b - t) ** 2))
        return {
            "grad W": central(lambda W: loss(W, initial["b"]), initial["W"]),
            "grad b": central(lambda b: loss(initial["W"], b), initial["b"]),
        }

    return Case(
        FAMILY, "Dense(4, 3)", compute, reduction_size=7 * 4, gradient=True, finite_differences=finite_differences
    )


def frozen_case() -> Case:
    """Freezing the first layer: no gradient is computed for it, an update leaves it
    bit-identical, and the other layers move as without freezing."""
    from portable_dl import losses, nn, optimizers

    model = nn.MLP([5, 6, 2])
    rng = np.random.default_rng(33)
    x, labels = rng.normal(size=(8, 5)), rng.integers(0, 2, size=8)

    def compute(backend: Backend, dtype: str) -> Outputs:
        params = model.init(7, backend, dtype)
        mask = nn.trainable_mask(params, frozen=["layers.0"])
        trainable, frozen = nn.partition(params, mask)
        bx, by = backend.asarray(x, dtype), backend.asarray(labels)
        loss = lambda t: losses.cross_entropy(model.apply(nn.merge(t, frozen), bx), by)
        value, grads = backend.value_and_grad(loss)(trainable)
        optimizer = optimizers.SGD(lr=0.5)
        updated, _ = optimizer.update(grads, optimizer.init(trainable), trainable)
        after = nn.merge(updated, frozen)
        before_first = backend.to_numpy(params["layers"][0]["W"])
        return {
            "value": as_float64(backend, value),
            "frozen layer has no gradient": grads["layers"][0]["W"] is None and grads["layers"][0]["b"] is None,
            "frozen layer unchanged": bool(np.array_equal(backend.to_numpy(after["layers"][0]["W"]), before_first)),
            "trained layer moved": not np.array_equal(
                backend.to_numpy(after["layers"][1]["W"]), backend.to_numpy(params["layers"][1]["W"])
            ),
            "grad layers.1.W": as_float64(backend, grads["layers"][1]["W"]),
            "updated layers.1.b": as_float64(backend, after["layers"][1]["b"]),
        }

    return Case(FAMILY, "frozen parameters get no gradient and no update", compute, reduction_size=8 * 6, gradient=True)


def cases(quick: bool) -> list[Case]:
    """Every front-end gradient case; ``quick`` keeps one activation and one loss in three
    and leaves out the +-1000 activations, the layers and freezing (the quick training run
    differentiates a whole MLP: on JAX, whose eager mode compiles every operation on a new
    shape, a second MLP would cost a fifth of the quick run)."""
    activations, losses = activation_cases(quick), loss_cases()
    if quick:
        return activations[::3] + losses[::3]
    return activations + losses + [dense_case(), mlp_case(), frozen_case()]
