"""portable_dl.native: an MLP's params to and from PyTorch, MLX and Keras models.

The references are independent of the code under test: each framework's own forward pass,
portable_dl's MLP applied by the NumPy backend in float64, and the arrays the frameworks
hold, compared bit for bit. The three frameworks are driven through one small adapter each
(``NATIVE``), so every test runs the same way on all three.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
from helpers import assert_close, float_dtypes

import portable_dl as pdl
from portable_dl import native
from portable_dl.nn import MLP

SIZES = [6, 5, 4, 3]
FRAMEWORK_MODULES = ("torch", "tensorflow", "mlx", "jax", "jaxlib", "keras")


# ------------------------------------------------------------ one adapter per framework
class TorchModels:
    module = "torch"

    def build(self, sizes, dtype, bias=True):
        """``Sequential(Linear, ReLU(), ..., Linear)`` with torch's own random init."""
        torch = pytest.importorskip("torch")
        torch.manual_seed(0)
        layers = []
        for index, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers += [torch.nn.ReLU()] if index else []
            layers.append(torch.nn.Linear(a, b, bias=bias, dtype=getattr(torch, dtype)))
        return torch.nn.Sequential(*layers)

    def load(self, model, params):
        model.load_state_dict(native.to_torch_state_dict(params), strict=True)

    def forward(self, model, x):
        torch = pytest.importorskip("torch")
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()

    def weights(self, model):
        """The model's weights in (out, in) layout and biases, as NumPy, layer by layer."""
        return [value.detach().numpy() for value in model.state_dict().values()]

    export, import_ = staticmethod(native.to_torch_state_dict), staticmethod(native.from_torch_state_dict)


class MLXModels:
    module = "mlx.core"

    def build(self, sizes, dtype, bias=True):
        """``mlx.nn.Sequential(Linear, ReLU(), ..., Linear)`` with MLX's own random init."""
        mx = pytest.importorskip("mlx.core")
        nn = pytest.importorskip("mlx.nn")
        if not pdl.backend("mlx").supports(dtype):
            pytest.skip(f"MLX on {pdl.backend('mlx').device} has no {dtype}")
        mx.random.seed(0)
        layers = []
        for index, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers += [nn.ReLU()] if index else []
            layers.append(nn.Linear(a, b, bias=bias))
        model = nn.Sequential(*layers)
        model.set_dtype(getattr(mx, dtype))
        return model

    def load(self, model, params):
        model.load_weights(native.to_mlx_weights(params), strict=True)

    def forward(self, model, x):
        # Through the backend: mx.array(x) would turn float64 NumPy into float32.
        mlx_backend = pdl.backend("mlx")
        return mlx_backend.to_numpy(model(mlx_backend.asarray(x)))

    def weights(self, model):
        from mlx.utils import tree_flatten

        return [np.array(value) for _, value in tree_flatten(model.parameters())]

    export, import_ = staticmethod(native.to_mlx_weights), staticmethod(native.from_mlx_weights)


class KerasModels:
    module = "keras"

    def build(self, sizes, dtype, bias=True):
        """``keras.Sequential([Input, Dense(relu), ..., Dense])`` with seeded random kernels
        and biases (Keras starts biases at zero, which would leave them untested)."""
        keras = pytest.importorskip("keras")
        layers = [keras.Input((sizes[0],), dtype=dtype)]
        for index, units in enumerate(sizes[1:]):
            layers.append(
                keras.layers.Dense(
                    units,
                    activation="relu" if index < len(sizes) - 2 else None,
                    use_bias=bias,
                    dtype=dtype,
                    kernel_initializer=keras.initializers.GlorotUniform(seed=index),
                    bias_initializer=keras.initializers.RandomNormal(seed=100 + index),
                )
            )
        return keras.Sequential(layers)

    def load(self, model, params):
        model.set_weights(native.to_keras_weights(params))

    def forward(self, model, x):
        keras = pytest.importorskip("keras")
        return keras.ops.convert_to_numpy(model(x))

    def weights(self, model):
        # Keras keeps kernels (in, out); transposed here to share the (out, in) layout of the others.
        return [w.T if w.ndim == 2 else w for w in model.get_weights()]

    export, import_ = staticmethod(native.to_keras_weights), staticmethod(native.from_keras_weights)


NATIVE = {"torch": TorchModels(), "mlx": MLXModels(), "keras": KerasModels()}


@pytest.fixture(params=list(NATIVE))
def framework(request):
    """The adapter of one framework's own models; skips where the framework is absent."""
    pytest.importorskip(NATIVE[request.param].module)
    return NATIVE[request.param]


# ---------------------------------------------------------------------------- helpers
def mlp_params(backend, dtype, sizes=SIZES, bias=True):
    """MLP params drawn with seed 0, biases then set to random values: init leaves them
    at zero, and a bias put in the wrong place would go unnoticed."""
    params = MLP(sizes, bias=bias).init(0, backend, dtype)
    if bias:
        rng = np.random.default_rng(1)
        for layer in params["layers"]:
            layer["b"] = backend.asarray(rng.normal(size=tuple(layer["b"].shape)).astype(dtype))
    return params


def inputs(dtype, in_features=SIZES[0]):
    return np.random.default_rng(2).normal(size=(7, in_features)).astype(dtype)


def reference_outputs(params_numpy, x, sizes=SIZES, bias=True):
    """The MLP's outputs by the NumPy backend in float64, from the params' values."""
    numpy64 = pdl.backend("numpy")
    params64 = pdl.tree_map(lambda leaf: numpy64.asarray(np.asarray(leaf, np.float64)), params_numpy)
    return MLP(sizes, bias=bias).apply(params64, numpy64.asarray(np.asarray(x, np.float64)))


def assert_same_params(actual, expected):
    """Same structure, dtypes and values, bit for bit (NumPy trees)."""
    assert [sorted(layer) for layer in actual["layers"]] == [sorted(layer) for layer in expected["layers"]]
    for got, want in zip(pdl.tree_leaves(actual), pdl.tree_leaves(expected)):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


# ------------------------------------------------------- exports give the same model
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_native_model_computes_what_the_mlp_computes(framework, backend, dtype):
    if dtype not in float_dtypes(backend):
        pytest.skip(f"{backend.name} on {backend.device} has no {dtype}")
    params = mlp_params(backend, dtype)
    model = framework.build(SIZES, dtype)
    framework.load(model, params)
    x = inputs(dtype)
    # float32: inputs and weights are the same float32 numbers on both sides; each output
    # goes through three dot products of at most 6 terms, a few float32 roundings of O(1)
    # values, far inside the float32 tolerance; float64 agrees to rounding (1e-12).
    assert_close(framework.forward(model, x), reference_outputs(backend.tree_to_numpy(params), x), dtype)


def test_layers_without_bias_convert_both_ways(framework):
    numpy_backend = pdl.backend("numpy")
    params = mlp_params(numpy_backend, "float64", bias=False)
    model = framework.build(SIZES, "float64", bias=False)
    framework.load(model, params)
    x = inputs("float64")
    assert_close(framework.forward(model, x), reference_outputs(params, x, bias=False), "float64")
    assert_same_params(framework.import_(model, numpy_backend), params)


# -------------------------------------------------------------------- round trips
def test_round_trip_is_bit_exact(framework, backend):
    for dtype in float_dtypes(backend):
        params = mlp_params(backend, dtype)
        back = framework.import_(framework.export(params), backend)
        assert all(backend.owns(leaf) for leaf in pdl.tree_leaves(back))
        assert_same_params(backend.tree_to_numpy(back), backend.tree_to_numpy(params))


def test_native_initialization_imports_exactly(framework, backend):
    dtype = "float64" if "float64" in float_dtypes(backend) else "float32"
    model = framework.build(SIZES, dtype)
    params = framework.import_(model, backend)
    # Bit for bit: each weight is the native one transposed, each bias the native one.
    native_arrays = framework.weights(model)
    ours = [leaf.T if leaf.ndim == 2 else leaf for leaf in pdl.tree_leaves(backend.tree_to_numpy(params))]
    assert len(ours) == len(native_arrays) == 6
    for got, want in zip(ours, native_arrays):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    x = inputs(dtype)
    assert_close(backend.to_numpy(MLP(SIZES).apply(params, backend.asarray(x))), framework.forward(model, x), dtype)


def test_import_keeps_or_casts_the_dtype_and_copies(backend):
    torch = pytest.importorskip("torch")
    model = TorchModels().build(SIZES, "float32")
    expected = [value.numpy().copy() for value in model.state_dict().values()]
    wider = "float64" if "float64" in float_dtypes(backend) else "float32"
    imported = {
        "float32": native.from_torch_state_dict(model, backend),
        wider: native.from_torch_state_dict(model, backend, dtype=wider),
    }
    with torch.no_grad():  # the params must not see later changes to the model
        for parameter in model.parameters():
            parameter.add_(1.0)
    for dtype, params in imported.items():
        for got, want in zip(pdl.tree_leaves(backend.tree_to_numpy(params)), expected):
            assert got.dtype == dtype
            np.testing.assert_array_equal(got.T if got.ndim == 2 else got, want.astype(got.dtype))


# ----------------------------------------------------------------------------- like=
def test_torch_like_takes_the_models_key_names():
    torch = pytest.importorskip("torch")
    numpy_backend = pdl.backend("numpy")
    params = mlp_params(numpy_backend, "float64", sizes=[6, 5, 3])

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = torch.nn.Linear(6, 5, dtype=torch.float64)
            self.out = torch.nn.Linear(5, 3, dtype=torch.float64)

        def forward(self, x):
            return self.out(torch.relu(self.hidden(x)))

    sequential = torch.nn.Sequential(
        OrderedDict(
            fc1=torch.nn.Linear(6, 5, dtype=torch.float64),
            act=torch.nn.ReLU(),
            fc2=torch.nn.Linear(5, 3, dtype=torch.float64),
        )
    )
    x = inputs("float64")
    for model, keys in (
        (sequential, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]),
        (Net(), ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]),
    ):
        state_dict = native.to_torch_state_dict(params, like=model)
        assert list(state_dict) == keys
        assert list(native.to_torch_state_dict(params, like=model.state_dict())) == keys
        model.load_state_dict(state_dict, strict=True)
        assert_close(TorchModels().forward(model, x), reference_outputs(params, x, sizes=[6, 5, 3]), "float64")


def test_torch_like_that_does_not_fit_raises_shape_error():
    torch = pytest.importorskip("torch")
    numpy_backend = pdl.backend("numpy")
    like = torch.nn.Sequential(OrderedDict(fc1=torch.nn.Linear(6, 5), act=torch.nn.ReLU(), fc2=torch.nn.Linear(5, 3)))
    with pytest.raises(
        pdl.ShapeError, match=r"like has 2 Linear layers \('fc1.weight', 'fc2.weight'\), the params have 3"
    ):
        native.to_torch_state_dict(mlp_params(numpy_backend, "float32"), like=like)
    with pytest.raises(
        pdl.ShapeError, match=r"'fc1.weight' has shape \(5, 6\), but layer 0 of the params needs \(4, 6\)"
    ):
        native.to_torch_state_dict(mlp_params(numpy_backend, "float32", sizes=[6, 4, 3]), like=like)
    with pytest.raises(pdl.ShapeError, match=r"'fc1.weight' has a bias, layer 0 of the params has none"):
        native.to_torch_state_dict(mlp_params(numpy_backend, "float32", sizes=[6, 5, 3], bias=False), like=like)
    with_norm = torch.nn.Sequential(
        OrderedDict(fc1=torch.nn.Linear(6, 5), norm=torch.nn.LayerNorm(5), fc2=torch.nn.Linear(5, 3))
    )
    with pytest.raises(pdl.ShapeError, match=r"'norm.weight' has shape \(5,\)"):
        native.to_torch_state_dict(mlp_params(numpy_backend, "float32", sizes=[6, 5, 3]), like=with_norm)


def test_mlx_like_takes_the_modules_names():
    pytest.importorskip("mlx.core")
    nn = pytest.importorskip("mlx.nn")
    numpy_backend = pdl.backend("numpy")

    class Net(nn.Module):
        def __init__(self, hidden):
            super().__init__()
            self.first = nn.Linear(6, hidden)
            self.second = nn.Linear(hidden, 3)

        def __call__(self, x):
            return self.second(nn.relu(self.first(x)))

    params = mlp_params(numpy_backend, "float32", sizes=[6, 5, 3])
    model = Net(5)
    weights = native.to_mlx_weights(params, like=model)
    assert [name for name, _ in weights] == ["first.weight", "first.bias", "second.weight", "second.bias"]
    model.load_weights(weights, strict=True)
    x = inputs("float32")
    assert_close(MLXModels().forward(model, x), reference_outputs(params, x, sizes=[6, 5, 3]), "float32")
    with pytest.raises(
        pdl.ShapeError, match=r"'first.weight' has shape \(4, 6\), but layer 0 of the params needs \(5, 6\)"
    ):
        native.to_mlx_weights(params, like=Net(4))


# ------------------------------------------------------------------------ bad input
LAYER = {"W": np.ones((6, 5)), "b": np.zeros(5)}
BAD_PARAMS = [
    ({"weights": [LAYER]}, r"MLP params are \{'layers'.*got a dict with keys \['weights'\]"),
    ([LAYER], r"MLP params are .*got a list"),
    ({"layers": []}, r"got an empty list of layers"),
    ({"layers": [{"w": np.ones((6, 5)), "b": np.zeros(5)}]}, r"params\['layers'\]\[0\] must be .*keys \['b', 'w'\]"),
    ({"layers": [{**LAYER, "scale": np.ones(5)}]}, r"params\['layers'\]\[0\] must be"),
    ({"layers": [{"W": np.ones(6), "b": np.zeros(5)}]}, r"params\['layers'\]\[0\]\['W'\] has shape \(6,\)"),
    (
        {"layers": [{"W": np.ones((6, 5)), "b": np.zeros(4)}]},
        r"params\['layers'\]\[0\]\['b'\] has shape \(4,\), but its layer has 5 outputs",
    ),
    (
        {"layers": [LAYER, {"W": np.ones((4, 3)), "b": np.zeros(3)}]},
        r"params\['layers'\]\[1\]\['W'\] takes 4 inputs, but the layer before gives 5",
    ),
    ({"layers": [LAYER, {"W": np.ones((5, 3))}]}, r"only some layers have a bias"),
]


@pytest.mark.parametrize("export", [native.to_torch_state_dict, native.to_mlx_weights, native.to_keras_weights])
@pytest.mark.parametrize("params, message", BAD_PARAMS)
def test_params_that_are_not_an_mlps_raise_shape_error(export, params, message):
    # The params are checked before any framework is asked for: no framework needed here.
    with pytest.raises(pdl.ShapeError, match=message):
        export(params)


BAD_ENTRIES = [
    (
        [("0.weight", np.ones((5, 6, 3))), ("0.bias", np.ones(5))],
        r"entry '0.weight' has shape \(5, 6, 3\): only Linear layers",
    ),
    (
        [("0.weight", np.ones((5, 6))), ("0.bias", np.ones(6))],
        r"entry '0.bias' has shape \(6,\), but its layer has 5 outputs",
    ),
    ([("0.weight", np.ones((5, 6))), ("1.bias", np.ones(5))], r"entry '1.bias' is a bias without a weight '1.weight'"),
    (
        [("0.weight", np.ones((5, 6))), ("0.running_mean", np.ones(5))],
        r"entry '0.running_mean' is not a Linear layer's weight or bias",
    ),
    (
        [("0.weight", np.ones((5, 6))), ("2.weight", np.ones((3, 4)))],
        r"entry '2.weight' takes 4 inputs, but the layer before gives 5",
    ),
    (
        [("0.weight", np.ones((5, 6))), ("0.bias", np.ones(5)), ("2.weight", np.ones((3, 5)))],
        r"only some layers have a bias",
    ),
    ([], r"found no dense layer"),
]


@pytest.mark.parametrize(
    "import_",
    [
        lambda entries: native.from_torch_state_dict(OrderedDict(entries), "numpy"),
        lambda entries: native.from_mlx_weights(entries, "numpy"),
    ],
    ids=["torch", "mlx"],
)
@pytest.mark.parametrize("entries, message", BAD_ENTRIES)
def test_native_weights_that_are_not_an_mlps_raise_shape_error_naming_the_key(import_, entries, message):
    # NumPy values, which both importers take (a safetensors file read with NumPy).
    with pytest.raises(pdl.ShapeError, match=message):
        import_(entries)


def test_keras_weights_that_are_not_an_mlps_raise_shape_error():
    with pytest.raises(pdl.ShapeError, match=r"weights\[0\] has shape \(3, 3, 2\): expected a Dense kernel"):
        native.from_keras_weights([np.ones((3, 3, 2)), np.ones(2)])
    with pytest.raises(pdl.ShapeError, match=r"weights\[1\] has shape \(4,\), but its layer has 5 outputs"):
        native.from_keras_weights([np.ones((6, 5)), np.ones(4)])
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5), keras.layers.BatchNormalization(name="norm")])
    with pytest.raises(
        pdl.ShapeError, match=r"layer 'norm' \(BatchNormalization\) holds weights but is not a Dense layer"
    ):
        native.from_keras_weights(model)


# ---------------------------------------------------------------------- frameworks
def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ), timeout=300
    )


def test_import_loads_no_framework():
    result = run_python(
        f"import sys, portable_dl.native\nprint(','.join(m for m in {FRAMEWORK_MODULES!r} if m in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"import portable_dl.native loaded {result.stdout.strip()}"


def test_missing_framework_names_the_extra_to_install():
    # sys.modules[name] = None makes a module look absent to the import system.
    result = run_python(
        "import sys\n"
        "sys.modules['torch'] = sys.modules['mlx'] = None\n"
        "import numpy as np, portable_dl\n"
        "from portable_dl import native\n"
        "params = {'layers': [{'W': np.ones((2, 3)), 'b': np.zeros(3)}]}\n"
        "for export in (native.to_torch_state_dict, native.to_mlx_weights):\n"
        "    try:\n"
        "        export(params)\n"
        "    except portable_dl.BackendUnavailable as error:\n"
        "        print(error)\n"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert (
        len(lines) == 2
        and 'pip install "portable-dl[torch]"' in lines[0]
        and 'pip install "portable-dl[mlx]"' in lines[1]
    )
