"""An MLP's parameters to and from the frameworks' own models: PyTorch, MLX and Keras.

:class:`portable_dl.nn.MLP` keeps ``{"layers": [{"W": (in, out), "b": (out,)}, ...]}``
(``{"W": ...}`` alone with ``bias=False``) and computes ``x @ W + b``. The frameworks'
own dense layers keep the same numbers in their own layout:

==========  ===============================================  ==========================================
framework   model                                            one layer's parameters
==========  ===============================================  ==========================================
torch       ``nn.Sequential(Linear, ReLU(), Linear, ...)``   ``"0.weight"`` (out, in), ``"0.bias"`` (out,)
mlx         ``mlx.nn.Sequential(Linear, ReLU(), ...)``       ``"layers.0.weight"`` (out, in), ``"layers.0.bias"``
keras       ``keras.Sequential([Dense, Dense, ...])``        ``get_weights()``: kernel (in, out), bias (out,)
==========  ===============================================  ==========================================

Converting transposes (PyTorch, MLX) or copies (Keras): values are bit-exact and dtypes
are kept, float16 and bfloat16 included (a bfloat16 export to Keras is an
``ml_dtypes.bfloat16`` NumPy array, as Keras's own ``get_weights`` gives it). Every result
is a fresh copy that shares no memory with its source.

An MLP maps onto a model whose parameters are all dense layers, in order, with
parameter-free activations between them. A model holding anything else (a normalization
layer, a weight that is not 2-D) raises :class:`ShapeError` naming the entry, since it
computes something an MLP does not; so do params that are not an MLP's.

Framework arrays are made and read through the backends (``portable_dl.backend("torch")``),
so importing this module imports no framework, and a missing one raises
:class:`BackendUnavailable` naming the extra to install.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .backend import Backend
from .errors import DTypeError, ShapeError
from .registry import backend as backend_named
from .registry import backend_of
from .tree import path_string, tree_flatten_with_path

__all__ = [
    "to_torch_state_dict",
    "from_torch_state_dict",
    "to_mlx_weights",
    "from_mlx_weights",
    "to_keras_weights",
    "from_keras_weights",
]

#: One dense layer in portable_dl's layout: W (in, out) and b (out,), or None without a bias.
Layer = tuple[np.ndarray, "np.ndarray | None"]


# ----------------------------------------------------------------------- PyTorch
def to_torch_state_dict(params: dict, *, like: Any = None) -> dict:
    """A state dict for the ``torch.nn.Sequential(Linear, act, Linear, ..., Linear)`` that
    computes what the MLP with ``params`` computes: ``{"0.weight": (out, in), "0.bias":
    (out,), "2.weight": ...}`` (the Linear modules sit at even indices, the activations
    between them), contiguous ``torch.Tensor`` s in the params' dtype, on torch's default
    device. Layers without ``"b"`` give no ``".bias"`` (``Linear(..., bias=False)``).

    ``like``: a model (anything with ``.state_dict()``) or its state dict, whose Linear
    layers, in order, take the params' layers: their key names are used instead, so
    ``model.load_state_dict(result)`` (strict) works for any module made of Linear layers
    and activations. ShapeError naming the key when counts, shapes or biases differ.
    """
    layers = _mlp_layers(params)
    names = _names_like(layers, _torch_entries(like), "like") if like is not None else _sequential_names(layers, "")
    torch_backend = backend_named("torch")
    return {name: torch_backend.asarray(value) for name, value in _named_native_arrays(layers, names)}


def from_torch_state_dict(state_dict: Any, backend: Backend | str | None = None, *, dtype: Any = None) -> dict:
    """MLP params ``{"layers": [{"W": (in, out), "b": (out,)}, ...]}`` from a PyTorch
    model made of Linear layers (``weight`` (out, in), ``bias`` (out,)) and activations,
    or from its state dict; NumPy arrays as values work too. Layers without a bias give
    ``{"W": ...}`` (``MLP(..., bias=False)``).

    ``backend``: a Backend or a name (None: the default backend); ``dtype``: None keeps
    the model's dtype. ShapeError naming the key for an entry that is not a Linear
    layer's 2-D weight or its bias of length out_features.
    """
    return _params_from_entries(_torch_entries(state_dict), "torch", backend, dtype)


def _torch_entries(source: Any) -> list[tuple[str, Any]]:
    state = source.state_dict() if callable(getattr(source, "state_dict", None)) else source
    if not isinstance(state, Mapping):
        raise TypeError(f"expected a torch module or its state dict, got {type(source).__name__}")
    return list(state.items())


# --------------------------------------------------------------------------- MLX
def to_mlx_weights(params: dict, *, like: Any = None) -> list[tuple[str, Any]]:
    """Weights for the ``mlx.nn.Sequential(nn.Linear, nn.ReLU(), nn.Linear, ...)`` that
    computes what the MLP with ``params`` computes, as ``model.load_weights`` takes them:
    ``[("layers.0.weight", (out, in)), ("layers.0.bias", (out,)), ("layers.2.weight", ...)]``
    of ``mx.array`` in the params' dtype.

    ``like``: an ``mlx.nn.Module`` (or its ``parameters()``, or a list of (name, array)
    pairs) whose Linear layers, in order, take the params' layers and give their names, so
    that ``like.load_weights(result)`` (strict: every name and shape must match) works.
    ShapeError naming the entry when counts, shapes or biases differ.
    """
    layers = _mlp_layers(params)
    names = (
        _names_like(layers, _mlx_entries(like), "like") if like is not None else _sequential_names(layers, "layers.")
    )
    mlx_backend = backend_named("mlx")
    return [(name, mlx_backend.asarray(value)) for name, value in _named_native_arrays(layers, names)]


def from_mlx_weights(weights_or_module: Any, backend: Backend | str | None = None, *, dtype: Any = None) -> dict:
    """MLP params from an ``mlx.nn.Module`` made of Linear layers and activations, its
    ``parameters()``, or a list of (name, array) pairs as ``load_weights`` takes them
    (``weight`` (out, in), ``bias`` (out,)). ``backend`` and ``dtype`` as for
    :func:`from_torch_state_dict`; the same ShapeErrors."""
    return _params_from_entries(_mlx_entries(weights_or_module), "mlx", backend, dtype)


def _mlx_entries(source: Any) -> list[tuple[str, Any]]:
    if isinstance(source, (list, tuple)) and all(
        isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in source
    ):
        return list(source)
    # An mlx.nn.Module is itself a dict: ask for its parameters first, which leaves out
    # its submodules' non-array attributes. Parameter-free layers flatten to nothing.
    tree = source.parameters() if callable(getattr(source, "parameters", None)) else source
    if not isinstance(tree, Mapping):
        raise TypeError(
            f"expected an mlx.nn.Module, its parameters() or a list of (name, array) pairs, got {type(source).__name__}"
        )
    return [(path_string(path), leaf) for path, leaf in tree_flatten_with_path(dict(tree))[0]]


# ------------------------------------------------------------------------- Keras
def to_keras_weights(params: dict) -> list[np.ndarray]:
    """NumPy arrays for ``model.set_weights`` of a ``keras.Sequential`` of ``Dense``
    layers computing what the MLP with ``params`` computes: ``[W0 (in, out), b0 (out,),
    W1, b1, ...]`` (Keras keeps kernels as (in, out)), without the b's where the MLP has
    no bias (``Dense(..., use_bias=False)``); in the params' dtype."""
    return [array for layer in _mlp_layers(params) for array in _copies(layer)]


def from_keras_weights(weights_or_model: Any, backend: Backend | str | None = None, *, dtype: Any = None) -> dict:
    """MLP params from a Keras model whose layers with weights are all ``Dense`` (read with
    ``get_weights()``), or from the list ``model.get_weights()`` returns: kernels (in, out),
    each followed by its bias (out,) where the layer has one. ``backend`` and ``dtype`` as
    for :func:`from_torch_state_dict`. ShapeError naming the layer or the list index for
    anything that is not a Dense kernel or its bias."""
    arrays = _keras_arrays(weights_or_model)
    names, index = [], 0
    while index < len(arrays):
        if arrays[index].ndim != 2:
            raise ShapeError(
                f"weights[{index}] has shape {arrays[index].shape}: expected a Dense kernel of shape (in, out)"
            )
        has_bias = index + 1 < len(arrays) and arrays[index + 1].ndim == 1
        names.append((f"weights[{index}]", f"weights[{index + 1}]" if has_bias else None))
        index += 2 if has_bias else 1
    by_name = {f"weights[{i}]": array for i, array in enumerate(arrays)}
    layers = [(by_name[w], None if b is None else by_name[b]) for w, b in names]
    _check_mlp(layers, names)
    return _params_on(backend, dtype, [_copies(layer) for layer in layers])


def _keras_arrays(source: Any) -> list[np.ndarray]:
    if callable(getattr(source, "get_weights", None)) and hasattr(source, "layers"):
        arrays = []
        for layer in source.layers:
            weights = layer.get_weights()
            # Dense layers are recognized by what they hold, so keras need not be imported.
            if weights and not (hasattr(layer, "kernel") and hasattr(layer, "units")):
                raise ShapeError(
                    f"layer {layer.name!r} ({type(layer).__name__}) holds weights but is not a Dense layer: "
                    "an MLP converts to and from Dense layers only"
                )
            arrays.extend(weights)
        return [np.asarray(array) for array in arrays]
    if not isinstance(source, (list, tuple)):
        raise TypeError(f"expected a Keras model or a list of arrays, got {type(source).__name__}")
    return [np.asarray(array) for array in source]


# ------------------------------------------------------ portable_dl's side, shared
def _mlp_layers(params: Any) -> list[Layer]:
    """The layers of MLP params as NumPy (W, b) pairs, checked to make an MLP."""
    layer_list = params.get("layers") if isinstance(params, dict) else None
    if not isinstance(layer_list, (list, tuple)) or not layer_list:
        got = "an empty list of layers" if isinstance(layer_list, (list, tuple)) else _describe(params)
        raise ShapeError(f"MLP params are {{'layers': [{{'W': (in, out), 'b': (out,)}}, ...]}}, got {got}")
    layers, names = [], []
    for index, layer in enumerate(layer_list):
        if not isinstance(layer, dict) or "W" not in layer or set(layer) - {"W", "b"}:
            raise ShapeError(
                f"params['layers'][{index}] must be {{'W': (in, out), 'b': (out,)}} or {{'W': (in, out)}}, "
                f"got {_describe(layer)}"
            )
        layers.append((_leaf_to_numpy(layer["W"]), _leaf_to_numpy(layer["b"]) if "b" in layer else None))
        names.append((f"params['layers'][{index}]['W']", f"params['layers'][{index}]['b']"))
    _check_mlp(layers, names)
    return layers


def _leaf_to_numpy(leaf: Any) -> np.ndarray:
    return leaf if isinstance(leaf, np.ndarray) else backend_of(leaf).to_numpy(leaf)


def _check_mlp(layers: list[Layer], names: list[tuple[str, str | None]]) -> None:
    """ShapeError naming the entry unless ``layers`` (in portable_dl's layout) make an
    MLP: W 2-D, b of shape (out,), each layer's inputs the previous layer's outputs, and
    a bias on every layer or on none (MLP has one ``bias`` setting)."""
    if not layers:
        raise ShapeError("found no dense layer: an MLP has at least one")
    for index, ((weight, bias), (weight_name, bias_name)) in enumerate(zip(layers, names)):
        if weight.ndim != 2:
            raise ShapeError(f"{weight_name} has shape {weight.shape}: a dense layer's weight is 2-D")
        if bias is not None and bias.shape != (weight.shape[1],):
            raise ShapeError(f"{bias_name} has shape {bias.shape}, but its layer has {weight.shape[1]} outputs")
        if index and weight.shape[0] != layers[index - 1][0].shape[1]:
            raise ShapeError(
                f"{weight_name} takes {weight.shape[0]} inputs, "
                f"but the layer before gives {layers[index - 1][0].shape[1]}"
            )
    with_bias = [weight_name for (_, bias), (weight_name, _) in zip(layers, names) if bias is not None]
    if with_bias and len(with_bias) != len(layers):
        raise ShapeError(
            f"only some layers have a bias ({', '.join(with_bias)}): an MLP has a bias on every layer or on none"
        )


def _copies(layer: Layer) -> list[np.ndarray]:
    """Fresh C-contiguous copies of W and b (b left out when None)."""
    return [np.array(array, order="C", copy=True) for array in layer if array is not None]


def _params_on(backend: Backend | str | None, dtype: Any, layers: list[list[np.ndarray]]) -> dict:
    """``{"layers": [{"W": ..., "b": ...}, ...]}`` on ``backend`` from NumPy [W, b] lists."""
    backend = backend if isinstance(backend, Backend) else backend_named(backend)
    for name in {dtype} if dtype is not None else {array.dtype.name for layer in layers for array in layer}:
        backend.dtype(name)  # DTypeError before any array is made
    return {"layers": [dict(zip(("W", "b"), (backend.asarray(array, dtype) for array in layer))) for layer in layers]}


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))}"
    return f"a {type(value).__name__}"


# ------------------------------------------- the (out, in) layout of torch and MLX
def _linear_layout(shapes: dict[str, tuple[int, ...]], source: str) -> list[tuple[str, str | None]]:
    """(weight name, bias name or None) of every Linear layer among named entries, in
    order: each ``"<prefix>weight"`` (2-D) with its ``"<prefix>bias"`` where there is one.
    ShapeError naming the entry for anything else."""
    layout = []
    for name, shape in shapes.items():
        prefix, _, leaf = name.rpartition(".")
        prefix = prefix + "." if prefix else ""
        if leaf == "weight":
            if len(shape) != 2:
                raise ShapeError(
                    f"{source} entry {name!r} has shape {shape}: only Linear layers, with 2-D weights "
                    "(out_features, in_features), convert to and from an MLP"
                )
            layout.append((name, prefix + "bias" if prefix + "bias" in shapes else None))
        elif leaf == "bias":
            weight_shape = shapes.get(prefix + "weight")
            if weight_shape is None:
                raise ShapeError(f"{source} entry {name!r} is a bias without a weight {prefix + 'weight'!r}")
            if len(weight_shape) == 2 and shape != weight_shape[:1]:
                raise ShapeError(
                    f"{source} entry {name!r} has shape {shape}, but its layer has {weight_shape[0]} outputs"
                )
        else:
            raise ShapeError(
                f"{source} entry {name!r} is not a Linear layer's weight or bias: an MLP has only Linear layers"
            )
    return layout


def _native_shapes(entries: list[tuple[str, Any]], source: str) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for name, value in entries:
        if getattr(value, "shape", None) is None:
            raise ShapeError(f"{source} entry {name!r} is a {type(value).__name__}, not an array")
        shapes[str(name)] = tuple(int(d) for d in value.shape)
    return shapes


def _sequential_names(layers: list[Layer], prefix: str) -> list[tuple[str, str | None]]:
    """Names in a Sequential with an activation between Linear layers: indices 0, 2, 4..."""
    return [
        (f"{prefix}{2 * i}.weight", f"{prefix}{2 * i}.bias" if bias is not None else None)
        for i, (_, bias) in enumerate(layers)
    ]


def _names_like(layers: list[Layer], entries: list[tuple[str, Any]], source: str) -> list[tuple[str, str | None]]:
    """The names of ``entries``' Linear layers, checked to fit ``layers`` one to one."""
    shapes = _native_shapes(entries, source)
    layout = _linear_layout(shapes, source)
    if len(layout) != len(layers):
        listed = ", ".join(repr(weight) for weight, _ in layout) or "none"
        raise ShapeError(f"{source} has {len(layout)} Linear layers ({listed}), the params have {len(layers)}")
    for index, ((weight, bias), (weight_name, bias_name)) in enumerate(zip(layers, layout)):
        if shapes[weight_name] != weight.shape[::-1]:
            raise ShapeError(
                f"{source} entry {weight_name!r} has shape {shapes[weight_name]}, "
                f"but layer {index} of the params needs {weight.shape[::-1]} (out_features, in_features)"
            )
        if bias is not None and bias_name is None:
            raise ShapeError(
                f"layer {index} of the params has a bias, {source}'s Linear layer {weight_name!r} has none"
            )
        if bias is None and bias_name is not None:
            raise ShapeError(
                f"{source}'s Linear layer {weight_name!r} has a bias, layer {index} of the params has none"
            )
    return layout


def _named_native_arrays(layers: list[Layer], names: list[tuple[str, str | None]]) -> list[tuple[str, np.ndarray]]:
    """(name, NumPy array) pairs in the (out, in) layout, weight then bias, layer by layer."""
    pairs = []
    for (weight, bias), (weight_name, bias_name) in zip(layers, names):
        pairs.append((weight_name, np.ascontiguousarray(weight.T)))
        if bias is not None:
            pairs.append((bias_name, np.array(bias, copy=True)))
    return pairs


def _params_from_entries(
    entries: list[tuple[str, Any]], framework: str, backend: Backend | str | None, dtype: Any
) -> dict:
    """MLP params from named (out, in) entries of ``framework``, checked before any copy."""
    layout = _linear_layout(_native_shapes(entries, framework), framework)
    values = {str(name): value for name, value in entries}
    native = backend_named(framework) if any(not isinstance(v, np.ndarray) for v in values.values()) else None

    def to_numpy(name: str) -> np.ndarray:
        value = values[name]
        if isinstance(value, np.ndarray):
            return value
        try:
            native.dtype_name(value.dtype)
        except DTypeError as error:
            raise DTypeError(f"{framework} entry {name!r}: {error}") from None
        return native.to_numpy(value)

    layers = [(to_numpy(w).T, None if b is None else to_numpy(b)) for w, b in layout]
    _check_mlp(layers, [(f"{framework} entry {w!r}", f"{framework} entry {b!r}") for w, b in layout])
    return _params_on(backend, dtype, [_copies(layer) for layer in layers])
