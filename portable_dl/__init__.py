"""portable_dl: a model, its loss and its optimizer written once against the array API,
run and checked on NumPy, PyTorch, TensorFlow, MLX and JAX.

``import portable_dl`` imports no framework; a backend's framework is imported when that
backend is first asked for::

    import portable_dl as pdl
    be = pdl.backend("torch")          # or "numpy", "tensorflow", "mlx", "jax"
    model = pdl.nn.MLP([784, 128, 10])
    params = model.init(0, be, "float32")
    result = pdl.fit(model, params, pdl.losses.cross_entropy, pdl.optimizers.Adam(), be, x, y)
"""

from __future__ import annotations

# The front end, written once over the array API (none of it imports a framework).
# An MLP's parameters to and from PyTorch, MLX and Keras models (frameworks reached through backends).
# Checkpoints: safetensors files that load on any backend (no pickle).
from . import (
    activations,
    checkpoint,
    clipping,
    data,
    losses,
    metrics,
    native,
    nn,
    optimizers,
    precision,
    schedules,
    training,
)
from .backend import Backend
from .checkpoint import Checkpoint, load, read_metadata, save
from .errors import (
    BackendUnavailable,
    BroadcastError,
    CheckpointError,
    DataError,
    DistributedError,
    DTypeError,
    PortableDLError,
    ShapeError,
    TreeStructureError,
)
from .precision import LossScale, Policy
from .registry import available_backends, backend, backend_of, known_backends, register_backend, using
from .training import (
    EarlyStopping,
    FitConfig,
    FitResult,
    TrainingDiverged,
    TrainStep,
    evaluate,
    fit,
    make_train_step,
    predict,
)
from .tree import tree_flatten, tree_leaves, tree_map, tree_unflatten

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "backend",
    "backend_of",
    "using",
    "available_backends",
    "known_backends",
    "register_backend",
    "tree_flatten",
    "tree_unflatten",
    "tree_map",
    "tree_leaves",
    "activations",
    "clipping",
    "data",
    "losses",
    "metrics",
    "nn",
    "optimizers",
    "schedules",
    "training",
    "native",
    "checkpoint",
    "save",
    "load",
    "read_metadata",
    "Checkpoint",
    "fit",
    "evaluate",
    "predict",
    "make_train_step",
    "TrainStep",
    "FitConfig",
    "FitResult",
    "EarlyStopping",
    "TrainingDiverged",
    "precision",
    "Policy",
    "LossScale",
    "PortableDLError",
    "BackendUnavailable",
    "BroadcastError",
    "ShapeError",
    "TreeStructureError",
    "DTypeError",
    "CheckpointError",
    "DataError",
    "DistributedError",
    "__version__",
]
