"""value_and_grad and compile on every backend, against hand-derived values and central
finite differences in NumPy float64."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close, central_difference, float_dtypes

import portable_dl


def scalars(backend, *values, dtype="float32"):
    return [backend.asarray(np.asarray(v, dtype=dtype)) for v in values]


def as_floats(backend, tree):
    return [float(backend.to_numpy(leaf)) for leaf in tree]


def test_worked_example_sum_times_product(backend):
    f = lambda x, y, z: backend.xp.multiply(backend.xp.add(x, y), z)
    value, grads = backend.value_and_grad(f, argnums=(0, 1, 2))(*scalars(backend, -2.0, 5.0, -4.0))
    assert float(backend.to_numpy(value)) == -12.0
    assert as_floats(backend, grads) == [-4.0, -4.0, 3.0]


def test_worked_example_shared_input(backend):
    xp = backend.xp
    f = lambda x, y, z: xp.multiply(xp.add(x, y), xp.add(x, z))
    value, grads = backend.value_and_grad(f, argnums=(0, 1, 2))(*scalars(backend, -2.0, 5.0, -4.0))
    assert float(backend.to_numpy(value)) == -18.0
    assert as_floats(backend, grads) == [-3.0, -6.0, 3.0]


def test_worked_example_sigmoid_neuron(backend):
    xp = backend.xp

    def neuron(w, x):
        z = xp.add(xp.add(xp.multiply(w[0], x[0]), xp.multiply(w[1], x[1])), w[2])
        return xp.divide(1.0, xp.add(1.0, xp.exp(xp.negative(z))))

    w = backend.asarray(np.array([2.0, -3.0, -3.0], dtype="float32"))
    x = backend.asarray(np.array([-1.0, -2.0], dtype="float32"))
    value, (dw, dx) = backend.value_and_grad(neuron, argnums=(0, 1))(w, x)
    # Hand-derived: z = 1, f = sigmoid(1) = 0.7311, f' = f (1 - f) = 0.1966.
    f = 1 / (1 + np.exp(-1.0))
    local = f * (1 - f)
    assert float(backend.to_numpy(value)) == pytest.approx(0.731, abs=5e-4)
    np.testing.assert_allclose(backend.to_numpy(dw), [-local, -2 * local, local], rtol=1e-6)
    np.testing.assert_allclose(backend.to_numpy(dw), [-0.197, -0.393, 0.197], atol=5e-4)
    np.testing.assert_allclose(backend.to_numpy(dx), [2 * local, -3 * local], rtol=1e-6)
    np.testing.assert_allclose(backend.to_numpy(dx), [0.393, -0.590], atol=5e-4)


def dense_loss_numpy(W, b, x, y):
    """Mean squared error of tanh(x W + b), in NumPy float64."""
    return np.mean((np.tanh(x @ W + b) - y) ** 2)


def test_pytree_gradient_against_finite_differences(backend):
    rng = np.random.default_rng(1)
    W, b = rng.normal(size=(4, 3)), rng.normal(size=(3,))
    x, y = rng.normal(size=(5, 4)), rng.normal(size=(5, 3))
    xp = backend.xp

    def loss(params, x, y):
        out = xp.tanh(xp.add(xp.matmul(x, params["W"]), params["b"]))
        return xp.mean(xp.square(xp.subtract(out, y)))

    expected_W = central_difference(lambda W_: dense_loss_numpy(W_, b, x, y), W)
    expected_b = central_difference(lambda b_: dense_loss_numpy(W, b_, x, y), b)
    for dtype in float_dtypes(backend):
        params = {"W": backend.asarray(W, dtype), "b": backend.asarray(b, dtype)}
        value, grads = backend.value_and_grad(loss)(params, backend.asarray(x, dtype), backend.asarray(y, dtype))
        assert set(grads) == {"W", "b"}
        assert backend.dtype_name(grads["W"].dtype) == dtype and tuple(grads["b"].shape) == (3,)
        assert_close(backend.to_numpy(value), dense_loss_numpy(W, b, x, y), dtype, scale=10)
        # Finite differences carry an error of about 1e-9; float32 arithmetic about 1e-6.
        tolerance = 1e-7 if dtype == "float64" else 1e-5
        np.testing.assert_allclose(backend.to_numpy(grads["W"]), expected_W, rtol=tolerance, atol=tolerance)
        np.testing.assert_allclose(backend.to_numpy(grads["b"]), expected_b, rtol=tolerance, atol=tolerance)


def test_nested_lists_tuples_and_unused_leaves(backend):
    xp = backend.xp
    params = [
        backend.asarray(np.array([1.0, 2.0], dtype="float32")),
        (backend.asarray(np.array(3.0, dtype="float32")), backend.asarray(np.array([5.0], dtype="float32"))),
    ]

    def f(p):  # p[1][1] is not used: its gradient is zero, of its shape
        return xp.sum(xp.multiply(p[0], p[1][0]))

    grads = backend.grad(f)(params)
    assert isinstance(grads, list) and isinstance(grads[1], tuple)
    np.testing.assert_array_equal(backend.to_numpy(grads[0]), [3.0, 3.0])
    assert float(backend.to_numpy(grads[1][0])) == 3.0
    np.testing.assert_array_equal(backend.to_numpy(grads[1][1]), [0.0])


def test_has_aux(backend):
    xp = backend.xp
    x = backend.asarray(np.array([1.0, -2.0, 3.0], dtype="float32"))

    def f(x):
        y = xp.multiply(x, x)
        return xp.sum(y), {"squares": y}

    (value, aux), grad = backend.value_and_grad(f, has_aux=True)(x)
    assert float(backend.to_numpy(value)) == 14.0
    np.testing.assert_array_equal(backend.to_numpy(aux["squares"]), [1.0, 4.0, 9.0])
    np.testing.assert_array_equal(backend.to_numpy(grad), [2.0, -4.0, 6.0])
    grad_only, aux_only = backend.grad(f, has_aux=True)(x)
    np.testing.assert_array_equal(backend.to_numpy(grad_only), [2.0, -4.0, 6.0])


def _three_operand_loss(xp):
    # sum(a * b^2) + sum(sin c) * sum(a): the three operands enter differently.
    return lambda a, b, c: xp.add(xp.sum(xp.multiply(a, xp.square(b))), xp.multiply(xp.sum(xp.sin(c)), xp.sum(a)))


def _three_operands():
    a = np.array([[0.5, 1.0, 2.0], [1.5, -1.0, 0.25]])
    b = np.array([1.0, -2.0, 0.5])
    c = np.array([0.1, -0.7, 1.2, 2.0])
    # Derived by hand: d/da = b^2 + sum(sin c), d/db = 2 b sum_rows(a), d/dc = cos(c) sum(a).
    grads = {"a": b**2 + np.sin(c).sum() + 0 * a, "b": 2 * b * a.sum(axis=0), "c": np.cos(c) * a.sum()}
    return (a, b, c), grads


@pytest.mark.parametrize("argnums, names", [((1, 0), "ba"), (-1, "c"), ((2, -3), "ca"), ((-2,), "b"), ([0, 2], "ac")])
def test_argnums_in_any_order_and_negative(backend, argnums, names):
    (a, b, c), expected = _three_operands()
    args = [backend.asarray(v, "float64" if backend.supports("float64") else "float32") for v in (a, b, c)]
    value, grads = backend.value_and_grad(_three_operand_loss(backend.xp), argnums=argnums)(*args)
    grads = grads if not isinstance(argnums, int) else (grads,)
    assert isinstance(grads, tuple) and len(grads) == len(names)
    dtype = backend.dtype_name(args[0].dtype)
    for name, grad in zip(names, grads):
        assert_close(backend.to_numpy(grad), expected[name], dtype, what=f"d/d{name}")
    assert_close(backend.to_numpy(value), np.sum(a * b**2) + np.sin(c).sum() * a.sum(), dtype)


def test_an_argument_named_twice_is_a_type_error_with_one_message(backend):
    x, y = backend.asarray(np.ones(3, dtype="float32")), backend.asarray(np.ones(3, dtype="float32"))
    f = lambda u, v: backend.xp.sum(backend.xp.multiply(u, v))
    with pytest.raises(TypeError, match=r"^argnums must not repeat an argument, got \(1, 1\)$"):
        backend.value_and_grad(f, argnums=(1, 1))
    with pytest.raises(TypeError, match=r"^argnums \(0, -2\) names the same argument twice among 2 arguments$"):
        backend.value_and_grad(f, argnums=(0, -2))(x, y)
    with pytest.raises(TypeError, match=r"^argnums -3 names argument -3, but only 2 were given$"):
        backend.grad(f, argnums=-3)(x, y)
    for bad in (True, (), (0, 1.0), "0"):
        with pytest.raises(TypeError, match=r"^argnums must be an int or a non-empty tuple of ints"):
            backend.grad(f, argnums=bad)


def test_grad_with_has_aux_and_a_nested_pytree(backend):
    xp = backend.xp
    tree = {
        "layers": [
            (
                backend.asarray(np.array([1.0, -2.0], dtype="float32")),
                {"bias": backend.asarray(np.array(0.5, dtype="float32"))},
            )
        ],
        "scale": (backend.asarray(np.array([3.0], dtype="float32")),),
    }

    def f(t):
        w, inner = t["layers"][0]
        # sum(w^2) * scale + bias^3: d/dw = 2 w scale, d/dscale = sum(w^2), d/dbias = 3 bias^2
        value = xp.add(
            xp.multiply(xp.sum(xp.square(w)), xp.sum(t["scale"][0])),
            xp.multiply(inner["bias"], xp.square(inner["bias"])),
        )
        return value, ("aux", [xp.square(w)])

    grads, aux = backend.grad(f, has_aux=True)(tree)
    assert (
        set(grads) == {"layers", "scale"}
        and isinstance(grads["layers"], list)
        and isinstance(grads["layers"][0], tuple)
    )
    assert isinstance(grads["layers"][0][1], dict) and isinstance(grads["scale"], tuple)
    np.testing.assert_allclose(backend.to_numpy(grads["layers"][0][0]), [6.0, -12.0], rtol=1e-6)
    np.testing.assert_allclose(backend.to_numpy(grads["layers"][0][1]["bias"]), 0.75, rtol=1e-6)
    np.testing.assert_allclose(backend.to_numpy(grads["scale"][0]), [5.0], rtol=1e-6)
    assert aux[0] == "aux" and isinstance(aux[1], list)
    np.testing.assert_array_equal(backend.to_numpy(aux[1][0]), [1.0, 4.0])


def test_gradient_through_broadcasting_sums_over_broadcast_axes(backend):
    xp = backend.xp
    rng = np.random.default_rng(2)
    x, b = rng.normal(size=(6, 3)).astype("float32"), rng.normal(size=(3,)).astype("float32")
    grad = backend.grad(lambda b: xp.sum(xp.square(xp.add(backend.asarray(x), b))))(backend.asarray(b))
    assert tuple(grad.shape) == (3,)
    assert_close(backend.to_numpy(grad), np.sum(2 * (x.astype(np.float64) + b), axis=0), "float32", scale=4)


DIFFERENTIABLE_UNARY = [
    ("exp", np.exp, (-2, 2)),
    ("expm1", np.expm1, (-2, 2)),
    ("log", np.log, (0.2, 3)),
    ("log1p", np.log1p, (0.1, 3)),
    ("sqrt", np.sqrt, (0.2, 3)),
    ("square", np.square, (-2, 2)),
    ("tanh", np.tanh, (-2, 2)),
    ("sin", np.sin, (-2, 2)),
    ("cos", np.cos, (-2, 2)),
    ("abs", np.abs, (0.1, 2)),
    ("reciprocal", np.reciprocal, (0.5, 2)),
    ("sinh", np.sinh, (-2, 2)),
    ("atan", np.arctan, (-2, 2)),
    ("negative", np.negative, (-2, 2)),
]


@pytest.mark.parametrize("name, reference, bounds", DIFFERENTIABLE_UNARY, ids=[d[0] for d in DIFFERENTIABLE_UNARY])
def test_unary_gradients_against_finite_differences(backend, name, reference, bounds):
    rng = np.random.default_rng(3)
    x = rng.uniform(*bounds, size=(5,))
    weights = rng.normal(size=(5,))
    expected = central_difference(lambda v: np.sum(reference(v) * weights), x)
    dtype = float_dtypes(backend)[-1]
    function = getattr(backend.xp, name)
    w = backend.asarray(weights, dtype)
    grad = backend.grad(lambda v: backend.xp.sum(backend.xp.multiply(function(v), w)))(backend.asarray(x, dtype))
    tolerance = 1e-6 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(backend.to_numpy(grad), expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("name", ["sum", "mean", "prod", "var", "std", "logsumexp_like"])
def test_reduction_gradients_against_finite_differences(backend, name):
    xp = backend.xp
    rng = np.random.default_rng(4)
    x = rng.uniform(0.5, 2.0, size=(3, 4))
    numpy_forms = {
        "sum": lambda v: np.sum(np.sum(v, axis=1) ** 2),
        "mean": lambda v: np.sum(np.mean(v, axis=0) ** 2),
        "prod": lambda v: np.sum(np.prod(v, axis=1)),
        "var": lambda v: np.sum(np.var(v, axis=1, ddof=1)),
        "std": lambda v: np.sum(np.std(v, axis=0)),
        "logsumexp_like": lambda v: np.sum(np.log(np.sum(np.exp(v), axis=1))),
    }
    backend_forms = {
        "sum": lambda v: xp.sum(xp.square(xp.sum(v, axis=1))),
        "mean": lambda v: xp.sum(xp.square(xp.mean(v, axis=0))),
        "prod": lambda v: xp.sum(xp.prod(v, axis=1)),
        "var": lambda v: xp.sum(xp.var(v, axis=1, correction=1)),
        "std": lambda v: xp.sum(xp.std(v, axis=0)),
        "logsumexp_like": lambda v: xp.sum(xp.log(xp.sum(xp.exp(v), axis=1))),
    }
    expected = central_difference(numpy_forms[name], x)
    dtype = float_dtypes(backend)[-1]
    grad = backend.grad(backend_forms[name])(backend.asarray(x, dtype))
    tolerance = 1e-6 if dtype == "float64" else 5e-5
    np.testing.assert_allclose(backend.to_numpy(grad), expected, rtol=tolerance, atol=tolerance)


def test_prod_gradient_is_exact_at_zero(backend):
    x = backend.asarray(np.array([2.0, 0.0, 3.0], dtype="float32"))
    np.testing.assert_array_equal(backend.to_numpy(backend.grad(backend.xp.prod)(x)), [0.0, 6.0, 0.0])


def test_matmul_and_take_gradients(backend):
    xp = backend.xp
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    dtype = float_dtypes(backend)[-1]
    ga, gb = backend.grad(lambda a, b: xp.sum(xp.matmul(a, b)), argnums=(0, 1))(
        backend.asarray(a, dtype), backend.asarray(b, dtype)
    )
    assert_close(backend.to_numpy(ga), np.ones((3, 2)) @ b.T, dtype, scale=4)
    assert_close(backend.to_numpy(gb), a.T @ np.ones((3, 2)), dtype, scale=4)
    indices = backend.asarray(np.array([0, 2, 2]))
    g = backend.grad(lambda a: xp.sum(xp.take(a, indices, axis=1)))(backend.asarray(a, dtype))
    np.testing.assert_array_equal(backend.to_numpy(g), np.tile([1.0, 0.0, 2.0, 0.0], (3, 1)))  # repeats add up


# ---------------------------------------------------------------- the conventions


def test_where_at_the_kink_gives_zero(backend):
    xp = backend.xp
    relu = lambda x: xp.sum(xp.where(xp.greater(x, 0.0), x, 0.0))
    grad = backend.grad(relu)(backend.asarray(np.array([-1.0, 0.0, 2.0], dtype="float32")))
    np.testing.assert_array_equal(backend.to_numpy(grad), [0.0, 0.0, 1.0])


def test_maximum_and_minimum_split_ties_evenly(backend):
    xp = backend.xp
    x = backend.asarray(np.array([1.0, 2.0, 3.0], dtype="float32"))
    y = backend.asarray(np.array([2.0, 2.0, 2.0], dtype="float32"))
    for function in (xp.maximum, xp.minimum):
        gx, gy = backend.grad(lambda a, b: xp.sum(function(a, b)), argnums=(0, 1))(x, y)
        gx, gy = backend.to_numpy(gx), backend.to_numpy(gy)
        assert gx[1] == 0.5 and gy[1] == 0.5, function
        np.testing.assert_array_equal(gx + gy, [1.0, 1.0, 1.0])


def test_max_and_min_reductions_split_ties_evenly(backend):
    xp = backend.xp
    x = backend.asarray(np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]], dtype="float32"))
    grad = backend.grad(lambda v: xp.sum(xp.max(v, axis=1)))(x)
    np.testing.assert_allclose(backend.to_numpy(grad), [[0, 0.5, 0.5, 0], [0.25, 0.25, 0.25, 0.25]])
    grad = backend.grad(lambda v: xp.min(v))(backend.asarray(np.array([1.0, 0.0, 0.0], dtype="float32")))
    np.testing.assert_allclose(backend.to_numpy(grad), [0, 0.5, 0.5])


def test_clip_passes_gradient_at_its_bounds_and_abs_at_zero(backend):
    xp = backend.xp
    x = backend.asarray(np.array([-2.0, -1.0, 0.0, 1.0, 2.0], dtype="float32"))
    grad = backend.grad(lambda v: xp.sum(xp.clip(v, min=-1.0, max=1.0)))(x)
    np.testing.assert_array_equal(backend.to_numpy(grad), [0.0, 1.0, 1.0, 1.0, 0.0])
    grad = backend.grad(lambda v: xp.sum(xp.abs(v)))(x)
    np.testing.assert_array_equal(backend.to_numpy(grad), [-1.0, -1.0, 0.0, 1.0, 1.0])


# ------------------------------------------------------------------------- errors


def test_non_scalar_output_is_a_shape_error(backend):
    x = backend.asarray(np.ones(3, dtype="float32"))
    with pytest.raises(portable_dl.ShapeError, match=r"scalar"):
        backend.value_and_grad(lambda v: backend.xp.multiply(v, 2.0))(x)


def test_integer_arguments_are_a_dtype_error(backend):
    x = backend.asarray(np.ones(3, dtype="int32"))
    with pytest.raises(portable_dl.DTypeError, match=r"floating"):
        backend.grad(lambda v: backend.xp.sum(v))(x)


def test_bad_argnums(backend):
    x = backend.asarray(np.ones(3, dtype="float32"))
    with pytest.raises(TypeError):
        backend.grad(lambda v: backend.xp.sum(v), argnums=(0, 0))(x)
    with pytest.raises(TypeError, match=r"argnums"):
        backend.grad(lambda v: backend.xp.sum(v), argnums=1)(x)


# ------------------------------------------------------------------------ compile


def test_compiled_training_step_matches_eager(backend):
    xp = backend.xp
    rng = np.random.default_rng(6)
    W, x, y = rng.normal(size=(4, 2)), rng.normal(size=(8, 4)), rng.normal(size=(8, 2))

    def loss(params, x, y):
        return xp.mean(xp.square(xp.subtract(xp.matmul(x, params["W"]), y)))

    value_and_grad = backend.value_and_grad(loss)

    def step(params, x, y):
        value, grads = value_and_grad(params, x, y)
        return {"W": xp.subtract(params["W"], xp.multiply(grads["W"], 0.1))}, value

    compiled = backend.compile(step)
    params = {"W": backend.asarray(W, "float32")}
    bx, by = backend.asarray(x, "float32"), backend.asarray(y, "float32")
    eager_params, compiled_params = params, params
    W64 = W.copy()
    for _ in range(3):
        eager_params, eager_loss = step(eager_params, bx, by)
        compiled_params, compiled_loss = backend.synchronize(compiled(compiled_params, bx, by))
        W64 = W64 - 0.1 * (2 / y.size) * x.T @ (x @ W64 - y)  # the gradient by hand
    assert_close(backend.to_numpy(eager_params["W"]), W64, "float32", scale=10)
    assert_close(backend.to_numpy(compiled_params["W"]), W64, "float32", scale=10)
    assert_close(backend.to_numpy(compiled_loss), backend.to_numpy(eager_loss), "float32", scale=10)


BROADCASTING_GRADIENTS = {
    # name: (backend form, NumPy form); u has shape (3, 4), v has shape (4,)
    "where with a lower-rank operand": (
        lambda xp, u, v: xp.sum(xp.square(xp.where(xp.greater(u, 0.0), v, u))),
        lambda u, v: np.sum(np.where(u > 0, v, u) ** 2),
    ),
    "broadcast_to adding a leading axis": (
        lambda xp, u, v: xp.sum(xp.multiply(xp.square(xp.broadcast_to(v, (3, 4))), u)),
        lambda u, v: np.sum(np.broadcast_to(v, (3, 4)) ** 2 * u),
    ),
    "sort along axis 0": (
        lambda xp, u, v: xp.sum(xp.multiply(xp.sort(u, axis=0), xp.reshape(xp.arange(12, dtype=u.dtype), (3, 4)))),
        lambda u, v: np.sum(np.sort(u, axis=0) * np.arange(12.0).reshape(3, 4)),
    ),
    "copysign and positive": (
        lambda xp, u, v: xp.sum(xp.square(xp.positive(xp.copysign(u, v)))) + xp.sum(xp.copysign(v, u)),
        lambda u, v: np.sum(np.copysign(u, v) ** 2) + np.sum(np.copysign(v, u)),
    ),
}


@pytest.mark.parametrize("name", list(BROADCASTING_GRADIENTS))
def test_gradients_come_back_in_each_input_shape(backend, name):
    backend_form, numpy_form = BROADCASTING_GRADIENTS[name]
    rng = np.random.default_rng(9)
    u, v = rng.uniform(-2, 2, (3, 4)), rng.uniform(0.5, 2, (4,)) * rng.choice([-1, 1], 4)
    dtype = float_dtypes(backend)[-1]
    grad_u, grad_v = backend.grad(lambda a, b: backend_form(backend.xp, a, b), argnums=(0, 1))(
        backend.asarray(u, dtype), backend.asarray(v, dtype)
    )
    assert tuple(grad_u.shape) == (3, 4) and tuple(grad_v.shape) == (4,)
    tolerance = 1e-6 if dtype == "float64" else 5e-5
    np.testing.assert_allclose(
        backend.to_numpy(grad_u), central_difference(lambda a: numpy_form(a, v), u), rtol=tolerance, atol=tolerance
    )
    np.testing.assert_allclose(
        backend.to_numpy(grad_v), central_difference(lambda b: numpy_form(u, b), v), rtol=tolerance, atol=tolerance
    )


def test_gradient_of_a_gradient(backend):
    """value_and_grad nested in value_and_grad: for f(x) = sum(x^3), f'(x) = 3 x^2, and the
    gradient of sum(f'(x)) is 6 x (by hand). Also the outer result and aux come back as plain
    values: no graph is kept from the inner differentiation."""
    xp = backend.xp
    inner = backend.grad(lambda x: xp.sum(xp.multiply(xp.multiply(x, x), x)))

    def outer(x):
        first = inner(x)
        return xp.sum(first), first

    x = np.array([-1.5, 0.5, 2.0])
    (value, first), second = backend.value_and_grad(outer, has_aux=True)(backend.asarray(x, "float32"))
    assert_close(backend.to_numpy(first), 3 * x**2, "float32", what="first derivative")
    assert_close(backend.to_numpy(value), np.sum(3 * x**2), "float32", what="value")
    assert_close(backend.to_numpy(second), 6 * x, "float32", what="second derivative")


def test_torch_gradients_ignore_grad_mode_and_leave_the_callers_tensors_alone(backend):
    """The torch backend differentiates plain eager code with torch.autograd and the rest
    with torch.func; either way the caller's grad mode, requires_grad and .grad do not
    matter and are not changed. d/dx sum(x^2) = 2x by hand."""
    if backend.name != "torch":
        pytest.skip("PyTorch's grad mode and requires_grad")
    import torch

    f = lambda x: backend.xp.sum(backend.xp.multiply(x, x))
    plain = backend.asarray(np.array([1.0, -2.0], dtype="float32"))
    parameter = torch.nn.Parameter(backend.asarray(np.array([3.0, 0.5], dtype="float32")))
    with torch.no_grad():
        value, grad = backend.value_and_grad(f)(plain)
    assert float(value) == 5.0 and grad.tolist() == [2.0, -4.0]
    assert not value.requires_grad and not grad.requires_grad and not plain.requires_grad
    value, grad = backend.value_and_grad(f)(parameter)  # already recorded by autograd: torch.func
    assert float(value) == 9.25 and grad.tolist() == [6.0, 1.0]
    assert parameter.grad is None
