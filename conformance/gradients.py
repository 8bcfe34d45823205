"""The gradients family: ``value_and_grad`` on every backend against the reference and
against central finite differences.

- every differentiable namespace function, through a weighted sum so each input element
  gets its own cotangent;
- every activation, loss and layer of the front end, and a whole MLP;
- the conventions at kinks (relu'(0) = 0, ties split evenly, clip's bounds), against
  hand-derived values, since finite differences mean nothing there;
- frozen parameters: no gradient is computed for them and no update is applied.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from portable_dl.backend import Backend

from .cases import Case, Outputs, with_half_precision
from .numerics import as_float64, scalar_function_case

FAMILY = "gradients"

#: Differentiable unary functions: (NumPy form, input bounds away from singularities).
UNARY = {
    "exp": (np.exp, (-2, 2)),
    "expm1": (np.expm1, (-2, 2)),
    "log": (np.log, (0.2, 3)),
    "log1p": (np.log1p, (-0.5, 3)),
    "log2": (np.log2, (0.2, 3)),
    "log10": (np.log10, (0.2, 3)),
    "sqrt": (np.sqrt, (0.2, 3)),
    "square": (np.square, (-2, 2)),
    "reciprocal": (np.reciprocal, (0.5, 2)),
    "sin": (np.sin, (-3, 3)),
    "cos": (np.cos, (-3, 3)),
    "tan": (np.tan, (-1, 1)),
    "asin": (np.arcsin, (-0.8, 0.8)),
    "acos": (np.arccos, (-0.8, 0.8)),
    "atan": (np.arctan, (-3, 3)),
    "sinh": (np.sinh, (-2, 2)),
    "cosh": (np.cosh, (-2, 2)),
    "tanh": (np.tanh, (-3, 3)),
    "asinh": (np.arcsinh, (-2, 2)),
    "acosh": (np.arccosh, (1.2, 3)),
    "atanh": (np.arctanh, (-0.8, 0.8)),
    "abs": (np.abs, (0.2, 2)),
    "negative": (np.negative, (-2, 2)),
}

#: Differentiable binary functions: (NumPy form, bounds of the first and second inputs).
BINARY = {
    "add": (np.add, (-2, 2), (-2, 2)),
    "subtract": (np.subtract, (-2, 2), (-2, 2)),
    "multiply": (np.multiply, (-2, 2), (-2, 2)),
    "divide": (np.divide, (-2, 2), (0.5, 2)),
    "pow": (np.power, (0.5, 2), (-2, 2)),
    "atan2": (np.arctan2, (-2, 2), (0.5, 2)),
    "hypot": (np.hypot, (0.5, 2), (0.5, 2)),
    "logaddexp": (np.logaddexp, (-3, 3), (-3, 3)),
    "maximum": (np.maximum, (-2, 2), (-2, 2)),
    "minimum": (np.minimum, (-2, 2), (-2, 2)),
}


def unary_cases() -> list[Case]:
    cases = []
    for name, (numpy_form, bounds) in UNARY.items():
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        x, w = rng.uniform(*bounds, (3, 4)), rng.uniform(0.5, 1.5, (3, 4))

        # sum(w f(x)^2) with w > 0: every element gets its own cotangent, and the loss is
        # a sum of positive terms, so its size is not lost to cancellation.
        def backend_loss(backend, a, dtype, name=name, w=w):
            xp = backend.xp
            return xp.sum(xp.multiply(xp.square(getattr(xp, name)(a["x"])), backend.asarray(w, dtype)))

        def numpy_loss(a, numpy_form=numpy_form, w=w):
            return float(np.sum(numpy_form(a["x"]) ** 2 * w))

        cases.append(scalar_function_case(name, {"x": x}, backend_loss, numpy_loss))
    return cases


def binary_cases() -> list[Case]:
    cases = []
    for name, (numpy_form, bounds1, bounds2) in BINARY.items():
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        # The second input broadcasts, so its gradient also sums over the broadcast axis.
        x, y, w = rng.uniform(*bounds1, (3, 4)), rng.uniform(*bounds2, (4,)), rng.uniform(0.5, 1.5, (3, 4))
        if name in ("maximum", "minimum"):  # keep clear of ties, where finite differences mean nothing
            y = np.where(np.abs(x - y).min(axis=0) < 0.1, y + 0.3, y)

        def backend_loss(backend, a, dtype, name=name, w=w):
            xp = backend.xp
            return xp.sum(xp.multiply(xp.square(getattr(xp, name)(a["x"], a["y"])), backend.asarray(w, dtype)))

        def numpy_loss(a, numpy_form=numpy_form, w=w):
            return float(np.sum(numpy_form(a["x"], a["y"]) ** 2 * w))

        cases.append(scalar_function_case(name, {"x": x, "y": y}, backend_loss, numpy_loss, reduction_size=3))
    return cases


def structured_cases() -> list[Case]:
    """Reductions, linear algebra and manipulation, each inside a small loss."""
    rng = np.random.default_rng(11)
    x = rng.uniform(0.5, 1.5, (3, 4))
    m = rng.uniform(-1, 1, (4, 5))
    forms: dict[str, tuple[Callable, Callable, int]] = {
        "sum axis=1": (
            lambda xp, a: xp.sum(xp.square(xp.sum(a["x"], axis=1))),
            lambda a: np.sum(np.sum(a["x"], axis=1) ** 2),
            4,
        ),
        "mean": (lambda xp, a: xp.square(xp.mean(a["x"])), lambda a: np.mean(a["x"]) ** 2, 12),
        "max without ties": (lambda xp, a: xp.sum(xp.max(a["x"], axis=0)), lambda a: np.sum(np.max(a["x"], axis=0)), 1),
        "min without ties": (lambda xp, a: xp.sum(xp.min(a["x"], axis=1)), lambda a: np.sum(np.min(a["x"], axis=1)), 1),
        "prod": (lambda xp, a: xp.sum(xp.prod(a["x"], axis=1)), lambda a: np.sum(np.prod(a["x"], axis=1)), 4),
        "var": (
            lambda xp, a: xp.sum(xp.var(a["x"], axis=0, correction=1)),
            lambda a: np.sum(np.var(a["x"], axis=0, ddof=1)),
            3,
        ),
        "std": (lambda xp, a: xp.sum(xp.std(a["x"], axis=1)), lambda a: np.sum(np.std(a["x"], axis=1)), 4),
        "matmul": (
            lambda xp, a: xp.sum(xp.square(xp.matmul(a["x"], a["m"]))),
            lambda a: np.sum((a["x"] @ a["m"]) ** 2),
            4,
        ),
        "tensordot": (
            lambda xp, a: xp.sum(xp.tanh(xp.tensordot(a["x"], a["m"], axes=1))),
            lambda a: np.sum(np.tanh(np.tensordot(a["x"], a["m"], axes=1))),
            4,
        ),
        "vecdot": (
            lambda xp, a: xp.sum(xp.square(xp.vecdot(a["x"], a["m"][:, 0]))),
            lambda a: np.sum((a["x"] @ a["m"][:, 0]) ** 2),
            4,
        ),
        "matrix_transpose and reshape": (
            lambda xp, a: xp.sum(
                xp.multiply(xp.reshape(xp.matrix_transpose(a["x"]), (2, 6)), xp.reshape(a["m"][:3, :4], (2, 6)))
            ),
            lambda a: np.sum(a["x"].T.reshape(2, 6) * a["m"][:3, :4].reshape(2, 6)),
            1,
        ),
        "concat, stack, flip": (
            lambda xp, a: xp.sum(
                xp.square(
                    xp.flip(
                        xp.stack([xp.concat([a["x"], a["x"]], axis=0), xp.square(xp.concat([a["x"], a["x"]], axis=0))]),
                        axis=1,
                    )
                )
            ),
            lambda a: np.sum(np.stack([np.concatenate([a["x"]] * 2), np.concatenate([a["x"]] * 2) ** 2]) ** 2),
            1,
        ),
        "take with repeated indices": (
            lambda xp, a: xp.sum(xp.square(xp.take(a["x"], a["_indices"], axis=1))),
            lambda a: np.sum(np.take(a["x"], [0, 2, 2], axis=1) ** 2),
            1,
        ),
        "where, expand_dims, broadcast_to": (
            lambda xp, a: xp.sum(
                xp.where(
                    xp.greater(a["x"], 1.0),
                    xp.broadcast_to(xp.expand_dims(a["m"][0, :4], axis=0), (3, 4)),
                    xp.square(a["x"]),
                )
            ),
            lambda a: np.sum(np.where(a["x"] > 1.0, np.broadcast_to(a["m"][0, :4][None], (3, 4)), a["x"] ** 2)),
            1,
        ),
        "permute_dims and squeeze": (
            lambda xp, a: xp.sum(
                xp.multiply(xp.squeeze(xp.permute_dims(xp.expand_dims(a["x"], axis=0), (1, 0, 2)), axis=1), a["x"])
            ),
            lambda a: np.sum(a["x"] * a["x"]),
            1,
        ),
    }
    cases = []
    for name, (backend_form, numpy_form, size) in forms.items():

        def backend_loss(backend, a, dtype, backend_form=backend_form):
            arrays = dict(a, _indices=backend.asarray(np.array([0, 2, 2])))
            return backend_form(backend.xp, arrays)

        def numpy_loss(a, numpy_form=numpy_form):
            return float(numpy_form(a))

        cases.append(scalar_function_case(name, {"x": x, "m": m}, backend_loss, numpy_loss, reduction_size=size))
    return cases


def convention_cases() -> list[Case]:
    """Kinks, where frameworks disagree and portable_dl fixes one answer; hand-derived."""

    def case(name, inputs, backend_loss, expected: dict[str, list]):
        def compute(backend: Backend, dtype: str) -> Outputs:
            arrays = {key: backend.asarray(np.array(value), dtype) for key, value in inputs.items()}
            grads = backend.grad(lambda a: backend_loss(backend.xp, a))(arrays)
            outputs = {f"grad {key}": as_float64(backend, grads[key]) for key in inputs}
            # Exact: the convention is a statement about these numbers, not an approximation.
            outputs["matches the convention"] = all(
                np.array_equal(outputs[f"grad {k}"], np.array(v, dtype=float)) for k, v in expected.items()
            )
            return outputs

        return Case(FAMILY, name, compute, gradient=True)

    return [
        case(
            "relu'(0) = 0 (where(x > 0, x, 0))",
            {"x": [-1.0, 0.0, 2.0]},
            lambda xp, a: xp.sum(xp.where(xp.greater(a["x"], 0.0), a["x"], 0.0)),
            {"x": [0, 0, 1]},
        ),
        case(
            "maximum splits ties evenly",
            {"x": [1.0, 2.0, 3.0], "y": [2.0, 2.0, 2.0]},
            lambda xp, a: xp.sum(xp.maximum(a["x"], a["y"])),
            {"x": [0, 0.5, 1], "y": [1, 0.5, 0]},
        ),
        case(
            "minimum splits ties evenly",
            {"x": [1.0, 2.0, 3.0], "y": [2.0, 2.0, 2.0]},
            lambda xp, a: xp.sum(xp.minimum(a["x"], a["y"])),
            {"x": [1, 0.5, 0], "y": [0, 0.5, 1]},
        ),
        case(
            "max reduction splits ties evenly",
            {"x": [[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]]},
            lambda xp, a: xp.sum(xp.max(a["x"], axis=1)),
            {"x": [[0, 0.5, 0.5, 0], [0.25, 0.25, 0.25, 0.25]]},
        ),
        case(
            "min reduction splits ties evenly",
            {"x": [1.0, 0.0, 0.0]},
            lambda xp, a: xp.min(a["x"]),
            {"x": [0, 0.5, 0.5]},
        ),
        case(
            "clip passes gradient at its bounds",
            {"x": [-2.0, -1.0, 0.0, 1.0, 2.0]},
            lambda xp, a: xp.sum(xp.clip(a["x"], min=-1.0, max=1.0)),
            {"x": [0, 1, 1, 1, 0]},
        ),
        case("abs'(0) = 0", {"x": [-1.0, 0.0, 1.0]}, lambda xp, a: xp.sum(xp.abs(a["x"])), {"x": [-1, 0, 1]}),
        case(
            "sign, floor, round have zero gradient",
            {"x": [-1.5, 0.3, 2.7]},
            lambda xp, a: xp.sum(xp.add(xp.add(xp.sign(a["x"]), xp.floor(a["x"])), xp.round(a["x"]))),
            {"x": [0, 0, 0]},
        ),
    ]


def cases(quick: bool = False, seed: int = 0) -> list[Case]:
    """Every gradients case; ``quick`` keeps one element-wise function in eight, one
    structured case in five, and every convention (each is a few tiny operations, and each
    checks a rule no other case does: ties, bounds, kinks)."""
    element_wise, structured, conventions = unary_cases() + binary_cases(), structured_cases(), convention_cases()
    if quick:
        element_wise, structured, conventions = element_wise[::8], structured[::5], conventions
    from . import autodiff_contract
    from .standard_functions import gradient_cases as standard_function_cases  # issue 14: the functions 2024.12 added

    return with_half_precision(
        element_wise
        + structured
        + conventions
        + autodiff_contract.cases(quick)
        + front_end_cases(quick)
        + standard_function_cases(quick, seed)
    )


def front_end_cases(quick: bool) -> list[Case]:
    """Activations, losses, layers, a whole MLP, and frozen parameters."""
    from .front_end import cases as front_end

    return front_end(quick)
