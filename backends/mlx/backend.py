"""The MLX backend: ``mx.array`` values, differentiated by ``mx.value_and_grad`` and
compiled by ``mx.compile``.

Devices. MLX arrays live in unified memory and belong to no device; what has a device is
the stream an operation runs on. A backend on ``"cpu"`` or ``"gpu"`` therefore runs its own
work (``asarray``, ``value_and_grad``, compiled functions) inside ``mx.stream(device)``;
namespace calls made directly by user code run on MLX's default device. float64 exists on
the CPU only: on the GPU ``supports("float64")`` is False and says why.

Laziness. MLX builds a graph and computes it when a value is needed; :meth:`synchronize`
calls ``mx.eval`` on every array of a pytree, which blocks until they are computed.

Nothing here changes MLX's global state: no ``mx.set_default_device``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import mlx.core as mx
import numpy as np

from portable_dl.backend import Backend
from portable_dl.errors import DTypeError
from portable_dl.tree import tree_leaves

from . import namespace


class NamespaceOnDevice:
    """The MLX namespace with every function run inside ``mx.stream(device)``.

    MLX functions compute on the default device unless told otherwise, and the namespace is
    one module for every device; a backend on a device that is not MLX's default hands out
    this view instead, so that ``xp.exp(x)`` computes where the backend lives. Dtypes,
    constants and classes are the namespace's own.
    """

    def __init__(self, device: mx.Device):
        self._device = device

    def __getattr__(self, name: str) -> Any:
        value = getattr(namespace.xp, name)
        if not callable(value) or isinstance(value, type):
            return value
        device = self._device

        @functools.wraps(value)
        def on_device(*args: Any, **kwargs: Any) -> Any:
            with mx.stream(device):
                return value(*args, **kwargs)

        setattr(self, name, on_device)  # wrapped once per name
        return on_device

    def __dir__(self) -> list[str]:
        return dir(namespace.xp)

    def __repr__(self) -> str:
        return f"<portable_dl MLX namespace on {self._device}>"


class MLXBackend(Backend):
    name = "mlx"

    def __init__(self, device: str | None = None):
        self._namespace_on_device: NamespaceOnDevice | None = None
        super().__init__(device)

    @property
    def version(self) -> str:
        return mx.__version__

    def devices(self) -> list[str]:
        """``["gpu", "cpu"]`` where MLX has a Metal or CUDA GPU, else ``["cpu"]``."""
        return namespace._device_strings()

    def default_device(self) -> str:
        """MLX's own default: the GPU where there is one."""
        return "gpu" if mx.default_device().type == mx.gpu else "cpu"

    def canonical_device(self, device: str) -> str:
        """``"gpu:0"``, ``"Device(gpu, 0)"``, ``"cuda"``, ``"metal"`` -> ``"gpu"``; ``"cpu:0"`` -> ``"cpu"``.
        MLX addresses one GPU, so no index is kept."""
        text = str(device).lower().replace("device(", "").replace(")", "")
        kind = text.replace(",", ":").split(":")[0].strip()
        return "gpu" if kind in ("gpu", "cuda", "metal") else kind

    @property
    def _stream(self) -> mx.Device:
        return namespace._mx_device(self.device)

    @property
    def xp(self) -> Any:
        """The namespace; on a device other than MLX's default, the namespace with every
        function run on this backend's device (so float64 works on a CPU backend of a Mac)."""
        if self.device == self.default_device():
            return namespace.xp
        if self._namespace_on_device is None:
            self._namespace_on_device = NamespaceOnDevice(self._stream)
        return self._namespace_on_device

    def owns(self, x: Any) -> bool:
        """Any ``mx.array``: arrays being traced by ``mx.value_and_grad`` or ``mx.compile``
        are ``mx.array`` too."""
        return isinstance(x, mx.array)

    def _unsupported_dtype_reason(self, name: str) -> str | None:
        if name == "float64" and self.device == "gpu":
            return namespace._float64_on_gpu_message()
        return None

    # ------------------------------------------------------------ data in and out
    def asarray(self, x: Any, dtype: Any = None) -> mx.array:
        """An ``mx.array`` from ``x``, keeping its dtype when ``dtype`` is None (NumPy
        float64 stays float64; Python floats become float32, ints int32)."""
        target = None if dtype is None else self.dtype(dtype)
        with mx.stream(self._stream):
            return namespace.asarray(x, dtype=target)

    def to_numpy(self, x: Any) -> np.ndarray:
        """A NumPy copy of ``x``, computed first (MLX is lazy). Arrays being traced inside
        ``compile`` have no value yet: TypeError. bfloat16 gives an ``ml_dtypes.bfloat16`` array
        (MLX hands no bfloat16 buffer to NumPy: its bits are read as uint16, exactly)."""
        if isinstance(x, mx.array):
            if x.dtype == mx.bfloat16:
                return _bfloat16_to_numpy(x)
            try:
                return np.array(x, copy=True)
            except ValueError as error:
                raise TypeError(
                    f"to_numpy needs a computed array; an array traced inside mx.compile has no value yet: {error}"
                ) from error
        return np.asarray(x)

    # ------------------------------------------------------------------ autodiff
    def _value_and_grad_of_leaves(self, f: Callable, leaves: list) -> tuple[Any, Any, list]:
        """Reverse mode with ``mx.value_and_grad`` over the list of leaves, eagerly or inside
        ``mx.compile``. MLX differentiates the first element of the ``(scalar, aux)`` pair
        ``f`` returns and hands ``aux`` back untouched; leaves the scalar does not depend on
        get zeros of their shape."""
        arrays = [leaf if isinstance(leaf, mx.array) else self.asarray(leaf) for leaf in leaves]
        with mx.stream(self._stream):
            (value, aux), gradients = mx.value_and_grad(f)(arrays)
            gradients = [g if g.dtype == a.dtype else g.astype(a.dtype) for g, a in zip(gradients, arrays)]
        return value, aux, gradients

    # ----------------------------------------------------------- compile and sync
    def compile(self, f: Callable) -> Callable:
        """``f`` compiled by ``mx.compile``, run on this backend's device.

        MLX's rules, which we keep as they are: inputs and outputs are pytrees (lists,
        tuples, dicts) of arrays; a new shape, dtype or tree structure of the inputs traces
        and compiles again. Python scalars among the inputs are compile-time constants:
        each new value compiles again, so pass a learning rate that changes every step as an
        array. Arrays ``f`` reads from an enclosing scope rather than from its arguments are
        captured as constants when it is first traced: pass everything that changes as an
        argument (portable_dl's front end is made of pure functions, so it does).
        """
        compiled = mx.compile(f)
        stream = self._stream

        @functools.wraps(f)
        def run_compiled(*args: Any, **kwargs: Any) -> Any:
            with mx.stream(stream):
                return compiled(*args, **kwargs)

        return self._compiled_as_current(run_compiled, f)

    def distributed_engine(self, placement: Any, timeout: float) -> Any:
        """``mlx.distributed`` over its ring backend (:mod:`.distributed`)."""
        from .distributed import MLXEngine

        return MLXEngine(self, placement, timeout)

    def synchronize(self, tree: Any = None) -> Any:
        """Compute every array in ``tree`` (``mx.eval`` blocks until they are done). Inside
        ``mx.compile`` or ``mx.value_and_grad`` there is nothing to wait for, and MLX forbids
        ``mx.eval`` there: the tree comes back as it is."""
        arrays = [leaf for leaf in tree_leaves(tree) if isinstance(leaf, mx.array)]
        if arrays:
            try:
                mx.eval(*arrays)
            except ValueError as error:
                if "transformation" not in str(error):
                    raise
        return tree


def _bfloat16_to_numpy(x: mx.array) -> np.ndarray:
    """A bfloat16 array as NumPy's ``ml_dtypes.bfloat16``, bit for bit, through a uint16 view.
    Without ml_dtypes NumPy has no bfloat16: DTypeError saying what to install."""
    try:
        import ml_dtypes
    except ImportError:
        raise DTypeError(
            "to_numpy of a bfloat16 array needs ml_dtypes (NumPy has no bfloat16 of its own): pip install ml_dtypes"
        ) from None
    try:
        bits = np.array(x.view(mx.uint16), copy=True)
    except ValueError as error:
        raise TypeError(
            f"to_numpy needs a computed array; an array traced inside mx.compile has no value yet: {error}"
        ) from error
    return bits.view(ml_dtypes.bfloat16)
