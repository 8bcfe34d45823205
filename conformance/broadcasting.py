"""The broadcasting family: which shapes combine, into what, and what fails.

- The classic exercise: ``(5, 3, 2)`` against seven shapes, and ``(m, n)`` against three.
- Random shape pairs drawn with hypothesis, compatible and incompatible, for the binary
  element-wise functions and for ``matmul``'s batch dimensions.
- Gradients through broadcasting come back in each input's shape, summed over the
  broadcast dimensions (the bias gradient of a dense layer sums over the batch).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from portable_dl.backend import Backend

from .cases import Case, Outputs, outcome_of, with_half_precision
from .numerics import central_differences

FAMILY = "broadcasting"

#: The classic exercise, with the answer a person should predict.
CLASSIC = [
    ((5, 3, 2), (3, 2), "works"),
    ((5, 3, 2), (5, 2), "fails"),
    ((5, 3, 2), (5, 3), "fails"),
    ((5, 3, 2), (5, 1, 2), "works"),
    ((5, 3, 2), (1, 3, 2), "works"),
    ((5, 3, 2), (5, 3, 1), "works"),
    ((5, 3, 2), (), "works"),
    ((4, 3), (3,), "works"),  # (m, n) + (n,)
    ((4, 3), (4,), "fails"),  # (m, n) + (m,)
    ((4, 3), (4, 1), "works"),  # (m, n) + (m, 1)
]

#: Binary element-wise functions checked on random shapes, and the domain of their
#: second argument (division by values near zero would only measure conditioning).
BINARY_FUNCTIONS = {
    "add": "any",
    "subtract": "any",
    "multiply": "any",
    "divide": "away_from_zero",
    "maximum": "any",
    "minimum": "any",
    "pow": "any",
    "logaddexp": "any",
    "atan2": "away_from_zero",
}


def _values(rng: np.random.Generator, shape: tuple, domain: str) -> np.ndarray:
    if domain == "positive":
        return rng.uniform(0.5, 2.0, shape)
    if domain == "away_from_zero":
        return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 2.0, shape)
    return rng.uniform(-2.0, 2.0, shape)


def binary_outcome(
    backend: Backend, dtype: str, function: str, shape1: tuple, shape2: tuple, case_seed: int
) -> Outputs:
    """The outcome of ``xp.<function>(a, b)`` for arrays of the two shapes."""
    rng = np.random.default_rng(case_seed)
    first_domain = "positive" if function == "pow" else "any"
    a = backend.asarray(_values(rng, shape1, first_domain), dtype)
    b = backend.asarray(_values(rng, shape2, BINARY_FUNCTIONS.get(function, "any")), dtype)
    return outcome_of(lambda: getattr(backend.xp, function)(a, b), backend)


def classic_cases() -> list[Case]:
    cases = []
    for shape1, shape2, answer in CLASSIC:
        name = f"classic {shape1}+{shape2} {answer}"

        def compute(backend, dtype, shape1=shape1, shape2=shape2):
            return binary_outcome(backend, dtype, "add", shape1, shape2, 0)

        cases.append(Case(FAMILY, name, compute))
    return cases


# ------------------------------------------------------------------ random shapes

dimension = st.integers(min_value=1, max_value=4)


@st.composite
def shape_pairs(draw) -> tuple[tuple, tuple]:
    """Two shapes of rank 0 to 4; about half of the pairs broadcast."""
    first = tuple(draw(st.lists(dimension, max_size=4)))
    rank = draw(st.integers(min_value=0, max_value=4))
    second = []
    for axis in range(-rank, 0):
        aligned = first[axis] if len(first) >= -axis else None
        choice = draw(st.sampled_from(["same", "one", "other"]))
        if aligned is None or choice == "other":
            second.append(draw(dimension))
        elif choice == "one":
            second.append(1)
        else:
            second.append(aligned)
    if draw(st.booleans()):
        return first, tuple(second)
    return tuple(second), first


@st.composite
def matmul_pairs(draw) -> tuple[tuple, tuple]:
    """Shapes (..., m, k) and (..., k, n) whose batch dimensions may or may not broadcast."""
    batch1, batch2 = draw(shape_pairs())
    m, k, n = draw(dimension), draw(dimension), draw(dimension)
    return batch1[:2] + (m, k), batch2[:2] + (k, n)


def draw_examples(strategy, count: int, seed: int) -> list:
    """``count`` examples of ``strategy``, the same for the same seed and hypothesis version."""
    examples: list = []

    @hypothesis_seed(seed)
    @settings(
        max_examples=count, database=None, deadline=None, phases=["generate"], suppress_health_check=list(HealthCheck)
    )
    @given(strategy)
    def collect(example):
        examples.append(example)

    collect()
    unique = list(dict.fromkeys(examples))
    return unique[:count]


def random_cases(count: int, seed: int, functions: Sequence[str] = tuple(BINARY_FUNCTIONS)) -> list[Case]:
    pairs = draw_examples(shape_pairs(), count, seed)
    cases = []
    for function in functions:

        def compute(backend, dtype, function=function):
            outputs: Outputs = {}
            for index, (shape1, shape2) in enumerate(pairs):
                for key, value in binary_outcome(backend, dtype, function, shape1, shape2, index).items():
                    outputs[f"{shape1}+{shape2} {key}"] = value
            return outputs

        cases.append(Case(FAMILY, f"random shapes {function}", compute))

    matmul_shapes = draw_examples(matmul_pairs(), count, seed + 1)

    def compute_matmul(backend, dtype):
        outputs: Outputs = {}
        rng = np.random.default_rng(seed)
        for shape1, shape2 in matmul_shapes:
            a = backend.asarray(rng.uniform(-1, 1, shape1), dtype)
            b = backend.asarray(rng.uniform(-1, 1, shape2), dtype)
            for key, value in outcome_of(lambda: backend.xp.matmul(a, b), backend).items():
                outputs[f"{shape1}@{shape2} {key}"] = value
        return outputs

    cases.append(Case(FAMILY, "random shapes matmul batch dimensions", compute_matmul, reduction_size=4))
    return cases


# ----------------------------------------------------------- gradients of broadcasts


def broadcast_gradient_case(shape1: tuple, shape2: tuple) -> Case:
    """d/da and d/db of sum(w * (a + b)^2): each gradient in its input's shape."""
    rng = np.random.default_rng(7)
    a0, b0 = rng.uniform(-1, 1, shape1), rng.uniform(-1, 1, shape2)
    out_shape = np.broadcast_shapes(shape1, shape2)
    w0 = rng.uniform(0.5, 1.5, out_shape)  # positive: the loss has no cancellation to measure

    def numpy_loss(a, b):
        return float(np.sum(w0 * (a + b) ** 2))

    def compute(backend, dtype):
        xp = backend.xp
        w = backend.asarray(w0, dtype)
        loss = lambda a, b: xp.sum(xp.multiply(w, xp.square(xp.add(a, b))))
        value, (grad_a, grad_b) = backend.value_and_grad(loss, argnums=(0, 1))(
            backend.asarray(a0, dtype), backend.asarray(b0, dtype)
        )
        return {
            "value": np.asarray(backend.to_numpy(value), np.float64),
            "grad_a": np.asarray(backend.to_numpy(grad_a), np.float64),
            "grad_b": np.asarray(backend.to_numpy(grad_b), np.float64),
            "grad_a shape": tuple(int(d) for d in grad_a.shape),
            "grad_b shape": tuple(int(d) for d in grad_b.shape),
        }

    def finite_differences():
        return {
            "grad_a": central_differences(lambda a: numpy_loss(a, b0), a0),
            "grad_b": central_differences(lambda b: numpy_loss(a0, b), b0),
        }

    size = int(np.prod(out_shape)) // max(int(np.prod(shape2)), 1)
    return Case(
        FAMILY,
        f"gradient {shape1}+{shape2}",
        compute,
        reduction_size=max(size, 1) * 2,
        gradient=True,
        finite_differences=finite_differences,
    )


def dense_bias_gradient_case() -> Case:
    """The bias gradient of x W + b sums the output gradient over the batch."""
    rng = np.random.default_rng(8)
    x0, W0, b0, t0 = rng.normal(size=(16, 5)), rng.normal(size=(5, 3)), rng.normal(size=(3,)), rng.normal(size=(16, 3))

    def numpy_loss(W, b):
        return float(np.mean((x0 @ W + b - t0) ** 2))

    def compute(backend, dtype):
        xp = backend.xp
        x, t = backend.asarray(x0, dtype), backend.asarray(t0, dtype)
        loss = lambda p: xp.mean(xp.square(xp.subtract(xp.add(xp.matmul(x, p["W"]), p["b"]), t)))
        value, grads = backend.value_and_grad(loss)({"W": backend.asarray(W0, dtype), "b": backend.asarray(b0, dtype)})
        return {
            "value": np.asarray(backend.to_numpy(value), np.float64),
            "grad_W": np.asarray(backend.to_numpy(grads["W"]), np.float64),
            "grad_b": np.asarray(backend.to_numpy(grads["b"]), np.float64),
            "grad_b shape": tuple(int(d) for d in grads["b"].shape),
        }

    def finite_differences():
        return {
            "grad_W": central_differences(lambda W: numpy_loss(W, b0), W0),
            "grad_b": central_differences(lambda b: numpy_loss(W0, b), b0),
        }

    return Case(
        FAMILY,
        "dense layer bias gradient sums over the batch",
        compute,
        reduction_size=16 * 5,
        gradient=True,
        finite_differences=finite_differences,
    )


def cases(quick: bool = False, seed: int = 0) -> list[Case]:
    """Every broadcasting case; ``quick``: the classic exercise, 10 random shape pairs for
    add and matmul, two gradient cases."""
    working = [(s1, s2) for s1, s2, answer in CLASSIC if answer == "works"]
    return with_half_precision(
        classic_cases()
        + random_cases(count=10 if quick else 60, seed=seed, functions=("add",) if quick else tuple(BINARY_FUNCTIONS))
        + [broadcast_gradient_case(s1, s2) for s1, s2 in (working[:1] if quick else working)]
        + [dense_bias_gradient_case()]
    )
