"""Backpropagation by hand, checked against the autodiff of every installed backend.

Three worked examples of the chain rule:

1. f(x, y, z) = (x + y) z at x = -2, y = 5, z = -4: f = -12, gradient (-4, -4, 3);
2. f(x, y, z) = (x + y)(x + z) at the same point: x feeds two branches, so its gradient is
   the sum of what flows back along both: f = -18, gradient (-3, -6, 3);
3. a sigmoid neuron f = sigmoid(w0 x0 + w1 x1 + w2) at w = (2, -3, -3), x = (-1, -2):
   f = 0.7311, df/dw = (-0.1966, -0.3932, 0.1966), df/dx = (0.3932, -0.5898).

For each, the forward pass and then the backward pass are written out below as plain Python
arithmetic, one chain-rule step per line, and printed with their intermediate values: each
gradient is the gradient flowing into a node times that node's local derivative. Then each
backend computes the same function with its own reverse-mode autodiff
(``Backend.value_and_grad``), and a table puts its value and gradients beside the hand
values, with the largest difference. The program exits with status 1 when any backend
differs from the hand values by more than the tolerance of its dtype (the conformance
suite's, from ``portable_dl.conformance.tolerances``).

The figure: the sigmoid's derivative over z in [-6, 6] as each backend's autodiff computes
it, beside the hand formula sigmoid(z) (1 - sigmoid(z)), and each backend's difference
from that formula.

    python examples/backprop_by_hand.py                       # every installed backend, float32
    python examples/backprop_by_hand.py --backends numpy,jax --dtype float64 --no-plot
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import _shared
import numpy as np
from portable_dl.conformance.tolerances import value_tolerance


def parse_arguments(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_shared.HelpFormatter)
    _shared.add_backend_arguments(parser)
    _shared.add_dtype_argument(parser)
    _shared.add_plot_arguments(parser, "backprop_by_hand.png")
    arguments = parser.parse_args(argv)
    return arguments, _shared.requested_backend_names(parser, arguments.backends)


def number(value: float) -> str:
    """A value as the derivations print it: up to 6 significant digits."""
    return f"{value:.6g}"


# ------------------------------------------------------------------ the hand derivations
# Each derivation takes the input values, prints every step, and returns (f, {input: df/dinput}).
# Backward steps read: gradient into a node = gradient flowing out of it * its local derivative.


def sum_times_product_by_hand(x: float, y: float, z: float) -> tuple[float, dict[str, float]]:
    print("  forward:")
    q = x + y
    print(f"    q = x + y = {number(x)} + {number(y)} = {number(q)}")
    f = q * z
    print(f"    f = q z = {number(q)} * {number(z)} = {number(f)}")
    print("  backward (df/df = 1):")
    df_dq = z  # d(q z)/dq = z
    print(f"    df/dq = z = {number(df_dq)}")
    df_dz = q  # d(q z)/dz = q
    print(f"    df/dz = q = {number(df_dz)}")
    df_dx = df_dq * 1.0  # dq/dx = 1: an addition passes its gradient through unchanged
    print(f"    df/dx = df/dq * dq/dx = {number(df_dq)} * 1 = {number(df_dx)}")
    df_dy = df_dq * 1.0  # dq/dy = 1
    print(f"    df/dy = df/dq * dq/dy = {number(df_dq)} * 1 = {number(df_dy)}")
    return f, {"x": df_dx, "y": df_dy, "z": df_dz}


def shared_input_by_hand(x: float, y: float, z: float) -> tuple[float, dict[str, float]]:
    print("  forward:")
    q = x + y
    print(f"    q = x + y = {number(x)} + {number(y)} = {number(q)}")
    r = x + z
    print(f"    r = x + z = {number(x)} + {number(z)} = {number(r)}")
    f = q * r
    print(f"    f = q r = {number(q)} * {number(r)} = {number(f)}")
    print("  backward (df/df = 1):")
    df_dq = r  # d(q r)/dq = r
    print(f"    df/dq = r = {number(df_dq)}")
    df_dr = q  # d(q r)/dr = q
    print(f"    df/dr = q = {number(df_dr)}")
    # x reaches f along two paths, through q and through r: the gradients of both paths add.
    df_dx = df_dq * 1.0 + df_dr * 1.0
    print(
        f"    df/dx = df/dq * dq/dx + df/dr * dr/dx = {number(df_dq)} * 1 + {number(df_dr)} * 1 = {number(df_dx)}"
        "   (x feeds both q and r: the two paths add)"
    )
    df_dy = df_dq * 1.0
    print(f"    df/dy = df/dq * dq/dy = {number(df_dq)} * 1 = {number(df_dy)}")
    df_dz = df_dr * 1.0
    print(f"    df/dz = df/dr * dr/dz = {number(df_dr)} * 1 = {number(df_dz)}")
    return f, {"x": df_dx, "y": df_dy, "z": df_dz}


def sigmoid_neuron_by_hand(w0: float, w1: float, w2: float, x0: float, x1: float) -> tuple[float, dict[str, float]]:
    print("  forward:")
    a = w0 * x0
    print(f"    a = w0 x0 = {number(w0)} * {number(x0)} = {number(a)}")
    b = w1 * x1
    print(f"    b = w1 x1 = {number(w1)} * {number(x1)} = {number(b)}")
    z = a + b + w2
    print(f"    z = a + b + w2 = {number(a)} + {number(b)} + {number(w2)} = {number(z)}")
    e = math.exp(-z)
    print(f"    e = exp(-z) = {number(e)}")
    d = 1.0 + e
    print(f"    d = 1 + e = {number(d)}")
    f = 1.0 / d
    print(f"    f = 1 / d = {number(f)}")
    print("  backward (df/df = 1):")
    df_dd = -1.0 / d**2  # d(1/d)/dd = -1/d^2
    print(f"    df/dd = -1 / d^2 = {number(df_dd)}")
    df_de = df_dd * 1.0  # d(1 + e)/de = 1
    print(f"    df/de = df/dd * 1 = {number(df_de)}")
    df_dz = df_de * -e  # d exp(-z)/dz = -exp(-z)
    print(
        f"    df/dz = df/de * (-e) = {number(df_de)} * {number(-e)} = {number(df_dz)}"
        f"   (the same as f (1 - f) = {number(f * (1 - f))}: the sigmoid's derivative)"
    )
    # z = a + b + w2: the addition hands df/dz unchanged to a, b and w2.
    df_dw2 = df_dz * 1.0
    print(f"    df/dw2 = df/dz * 1 = {number(df_dw2)}")
    df_dw0 = df_dz * x0  # da/dw0 = x0
    print(f"    df/dw0 = df/dz * da/dw0 = {number(df_dz)} * x0 = {number(df_dz)} * {number(x0)} = {number(df_dw0)}")
    df_dx0 = df_dz * w0  # da/dx0 = w0
    print(f"    df/dx0 = df/dz * da/dx0 = {number(df_dz)} * w0 = {number(df_dz)} * {number(w0)} = {number(df_dx0)}")
    df_dw1 = df_dz * x1  # db/dw1 = x1
    print(f"    df/dw1 = df/dz * db/dw1 = {number(df_dz)} * x1 = {number(df_dz)} * {number(x1)} = {number(df_dw1)}")
    df_dx1 = df_dz * w1  # db/dx1 = w1
    print(f"    df/dx1 = df/dz * db/dx1 = {number(df_dz)} * w1 = {number(df_dz)} * {number(w1)} = {number(df_dx1)}")
    return f, {"w0": df_dw0, "w1": df_dw1, "w2": df_dw2, "x0": df_dx0, "x1": df_dx1}


# ------------------------------------------------------------------ the same functions on a backend
def sigmoid(xp: Any, z: Any) -> Any:
    """1 / (1 + exp(-z)), the form the hand derivation follows."""
    return xp.divide(1.0, xp.add(1.0, xp.exp(xp.negative(z))))


def sum_times_product(xp: Any) -> Callable[..., Any]:
    return lambda x, y, z: xp.multiply(xp.add(x, y), z)


def shared_input(xp: Any) -> Callable[..., Any]:
    return lambda x, y, z: xp.multiply(xp.add(x, y), xp.add(x, z))


def sigmoid_neuron(xp: Any) -> Callable[..., Any]:
    return lambda w0, w1, w2, x0, x1: sigmoid(xp, xp.add(xp.add(xp.multiply(w0, x0), xp.multiply(w1, x1)), w2))


@dataclass(frozen=True)
class WorkedExample:
    """A function at a point: its hand derivation, and its form over a backend's ``xp``."""

    title: str
    inputs: dict[str, float]  # argument name -> value, in argument order
    by_hand: Callable[..., tuple[float, dict[str, float]]]
    over_xp: Callable[[Any], Callable[..., Any]]


WORKED_EXAMPLES = (
    WorkedExample(
        "f(x, y, z) = (x + y) z", {"x": -2.0, "y": 5.0, "z": -4.0}, sum_times_product_by_hand, sum_times_product
    ),
    WorkedExample("f(x, y, z) = (x + y)(x + z)", {"x": -2.0, "y": 5.0, "z": -4.0}, shared_input_by_hand, shared_input),
    WorkedExample(
        "f = sigmoid(w0 x0 + w1 x1 + w2)",
        {"w0": 2.0, "w1": -3.0, "w2": -3.0, "x0": -1.0, "x1": -2.0},
        sigmoid_neuron_by_hand,
        sigmoid_neuron,
    ),
)


def by_backend(example: WorkedExample, backend: Any, dtype: str) -> tuple[float, dict[str, float]]:
    """The value and the gradient of every input, by the backend's own reverse-mode autodiff."""
    arguments = [backend.asarray(np.asarray(value, dtype=dtype)) for value in example.inputs.values()]
    value_and_grad = backend.value_and_grad(example.over_xp(backend.xp), argnums=tuple(range(len(arguments))))
    value, gradients = value_and_grad(*arguments)
    return (
        float(backend.to_numpy(value)),
        {name: float(backend.to_numpy(gradient)) for name, gradient in zip(example.inputs, gradients)},
    )


def check_example(example: WorkedExample, backends: list, dtype: str) -> bool:
    """Print the derivation and the table of one example; whether every backend agrees."""
    point = ", ".join(f"{name} = {number(value)}" for name, value in example.inputs.items())
    print(f"\n{example.title} at {point}")
    hand_value, hand_gradient = example.by_hand(*example.inputs.values())
    hand = [hand_value] + [hand_gradient[name] for name in example.inputs]
    scale = max(abs(v) for v in hand)
    # Norm-wise, as the conformance suite judges: the largest difference over the value and
    # every gradient, against the tolerance times the largest hand value.
    allowed = value_tolerance(dtype, gradient=True) * scale
    headers = ["", "f"] + [f"df/d{name}" for name in example.inputs] + ["largest |difference|", "verdict"]
    rows = [["by hand (float64)"] + [f"{v:.9g}" for v in hand] + ["", ""]]
    agree = True
    for backend in backends:
        value, gradient = by_backend(example, backend, dtype)
        computed = [value] + [gradient[name] for name in example.inputs]
        difference = max(abs(c - h) for c, h in zip(computed, hand))
        within = difference <= allowed
        agree = agree and within
        rows.append(
            [f"{backend.name} ({backend.device}, {dtype})"]
            + [f"{v:.9g}" for v in computed]
            + [f"{difference:.3g}", "ok" if within else f"DIFFERS (allowed {allowed:.2g})"]
        )
    print(_shared.format_table(headers, rows))
    return agree


# ------------------------------------------------------------------ the figure
def sigmoid_derivative_curves(backends: list, dtype: str, z: np.ndarray) -> dict[str, np.ndarray]:
    """d sigmoid(z) / dz at every point of ``z`` by each backend's autodiff: the gradient of
    sum(sigmoid(z)) is the element-wise derivative, since each term depends on one z only."""
    curves = {}
    for backend in backends:
        xp = backend.xp
        gradient = backend.grad(lambda points: xp.sum(sigmoid(xp, points)))(backend.asarray(z.astype(dtype)))
        curves[f"{backend.name} ({backend.device}, {dtype})"] = np.asarray(backend.to_numpy(gradient), np.float64)
    return curves


def plot_sigmoid_derivative(backends: list, dtype: str, output: str) -> None:
    pyplot = _shared.load_pyplot()
    z = np.linspace(-6.0, 6.0, 241)
    by_hand = 1.0 / (1.0 + np.exp(-z))
    by_hand = by_hand * (1.0 - by_hand)
    curves = sigmoid_derivative_curves(backends, dtype, z)
    # Where the difference panel's log axis starts, exact zeros drawn on it: 1e-4 of the
    # dtype's epsilon, far below any rounding of values of size 0.25.
    floor = 1e-4 * float(np.finfo(dtype).eps)
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(12, 4.5))
    for label, curve in curves.items():
        left.plot(z, curve, label=label, alpha=0.8)
        # A difference of exactly 0 has no place on a log axis: draw it on the axis floor.
        right.plot(z, np.maximum(np.abs(curve - by_hand), floor), label=label, alpha=0.8)
    left.plot(z, by_hand, "k--", linewidth=1, label="by hand: f (1 - f)")
    worked = 1.0 / (1.0 + math.exp(-1.0))
    left.plot([1.0], [worked * (1 - worked)], "ko", label="worked example: z = 1, df/dz = 0.1966")
    left.set(
        xlabel="z (dimensionless)",
        ylabel="d sigmoid / dz (dimensionless)",
        title="Sigmoid derivative: every backend's autodiff",
    )
    right.set(
        xlabel="z (dimensionless)",
        ylabel="|autodiff - hand formula| (absolute, log scale)",
        yscale="log",
        ylim=(floor / 2, None),
        title=f"Difference from the hand formula ({dtype}; 0 drawn at {floor:.0e})",
    )
    left.legend(fontsize=8, loc="upper left")
    right.legend(fontsize=8)
    figure.tight_layout()
    _shared.save_figure(figure, output)


def main(argv: list[str] | None = None) -> int:
    arguments, names = parse_arguments(argv)
    if not arguments.no_plot:
        _shared.load_pyplot()  # fail now, not after the work, when matplotlib is missing
    backends = _shared.computing_in(_shared.create_backends(names, arguments.device), arguments.dtype)
    if not backends:
        print("no backend to run", file=sys.stderr)
        return 1
    print("Backpropagation: the chain rule applied backwards from the output, one node at a time.")
    agree = [check_example(example, backends, arguments.dtype) for example in WORKED_EXAMPLES]
    if not arguments.no_plot:
        plot_sigmoid_derivative(backends, arguments.dtype, arguments.output)
    if all(agree):
        print(f"\nEvery backend agrees with the hand-derived values within the {arguments.dtype} tolerance.")
        return 0
    print(f"\nSome backend differs from the hand-derived values beyond the {arguments.dtype} tolerance.")
    return 1


if __name__ == "__main__":
    sys.exit(main())
