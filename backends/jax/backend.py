"""The JAX backend: ``jax.Array`` on a CPU or an accelerator, differentiated by
``jax.value_and_grad`` and compiled by ``jax.jit``.

float64 (and int64, uint64) only where the user enabled JAX's 64-bit mode
(``jax.config.update("jax_enable_x64", True)``): otherwise :meth:`supports` says False and
asking for them raises DTypeError saying how to enable it, rather than computing in 32 bits
unseen. Nothing here changes JAX's configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from portable_dl.backend import Backend
from portable_dl.errors import DTypeError
from portable_dl.tree import tree_flatten, tree_flatten_with_path, tree_unflatten

from . import namespace

#: Device kinds JAX names by vendor, spelled as the platform JAX groups them under.
_GPU_ALIASES = ("cuda", "rocm", "gpu")


class JaxBackend(Backend):
    name = "jax"

    @property
    def version(self) -> str:
        return jax.__version__

    def devices(self) -> list[str]:
        """JAX's default device first (its default backend's first device), then every
        other device: ``"cpu"`` and ``"gpu:N"`` (``"tpu:N"``) as JAX has them here."""
        return list(self._devices_by_name())

    def _devices_by_name(self) -> dict[str, Any]:
        # This process's devices: in a multi-process run (jax.distributed) jax.devices() lists every process's.
        found = list(jax.local_devices())
        if found[0].platform != "cpu":
            found += jax.local_devices(backend="cpu")
        by_name: dict[str, Any] = {}
        cpus = [device for device in found if device.platform == "cpu"]
        for device in found:
            if device.platform == "cpu":
                name = "cpu" if device is cpus[0] else f"cpu:{cpus.index(device)}"
            else:
                name = f"{device.platform}:{device.id}"
            by_name.setdefault(name, device)
        return by_name

    def canonical_device(self, device: str) -> str:
        """``"cuda:0"``, ``"rocm:0"``, ``"gpu"`` -> ``"gpu:0"``; ``"cpu:0"`` -> ``"cpu"``."""
        kind, _, index = str(device).lower().partition(":")
        if kind == "cpu":
            return "cpu" if index in ("", "0") else f"cpu:{index}"
        if kind in _GPU_ALIASES:
            kind = "gpu"
        return f"{kind}:{index or 0}"

    @property
    def jax_device(self) -> Any:
        """The ``jax.Device`` this backend places arrays on."""
        return self._devices_by_name()[self.device]

    @property
    def xp(self) -> Any:
        return namespace.xp

    def owns(self, x: Any) -> bool:
        """``jax.Array``, which tracers of ``jax.grad`` and ``jax.jit`` also are."""
        return isinstance(x, jax.Array)

    def is_concrete(self, x: Any) -> bool:
        # Tracers of jax.jit and jax.grad carry shapes, not values.
        return not isinstance(x, jax.core.Tracer)

    def _unsupported_dtype_reason(self, name: str) -> str | None:
        return namespace._unsupported_dtype_reason(name)

    # ------------------------------------------------------------ data in and out
    def asarray(self, x: Any, dtype: Any = None) -> jax.Array:
        """A ``jax.Array`` on this backend's device, of a strong (not weak) dtype.

        With ``dtype=None``: Python floats and ints become the default float and integer
        (float32 and int32 without x64); a NumPy int64/uint64 array becomes int32/uint32
        when its values fit (NumPy's default integer must stay usable), and a NumPy
        float64 array without x64 raises DTypeError rather than lose precision unseen.
        """
        target = None if dtype is None else self.dtype(dtype)
        if isinstance(x, jax.core.Tracer):  # inside jit or grad: placement is JAX's
            return x if target is None else namespace.astype(x, target)
        if target is None and not isinstance(x, jax.Array):
            x, target = self._numpy_with_dtype(x)
        if isinstance(x, (np.ndarray, np.generic)):
            # NumPy data goes to the device in one transfer, already in its dtype: half
            # the time of jnp.asarray (which first makes an array on the default device).
            return jax.device_put(np.asarray(x, dtype=np.dtype(target)), self.jax_device)
        return jax.device_put(jnp.asarray(x, dtype=target), self.jax_device)

    def _numpy_with_dtype(self, x: Any) -> tuple[np.ndarray, Any]:
        """``x`` as NumPy and the JAX dtype it goes in when none was asked for."""
        if isinstance(x, (np.ndarray, np.generic)):
            values = np.asarray(x)
        else:  # Python scalars and nested lists take the namespace's default dtypes
            values = np.asarray(x)
            defaults = namespace.__array_namespace_info__().default_dtypes()
            if values.dtype.kind == "f":
                return values, defaults["real floating"]
            if values.dtype.kind in "iu":
                return values, defaults["integral"]
        name = values.dtype.name
        if name in ("int64", "uint64") and self._unsupported_dtype_reason(name):
            narrow = np.int32 if name == "int64" else np.uint32
            if values.size and (values.min() < np.iinfo(narrow).min or values.max() > np.iinfo(narrow).max):
                raise DTypeError(
                    f"{name} values outside the {np.dtype(narrow).name} range: {self._unsupported_dtype_reason(name)}"
                )
            return values, narrow
        return values, self.dtype(values.dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    # ------------------------------------------------------------------ autodiff
    def _value_and_grad_of_leaves(self, f: Callable, leaves: list) -> tuple[Any, Any, list]:
        """Reverse mode with ``jax.value_and_grad(has_aux=True)`` over the list of leaves;
        works eagerly and under ``jax.jit``; leaves the value does not use get zeros."""
        (value, aux), gradients = jax.value_and_grad(f, has_aux=True)(list(leaves))
        return value, aux, list(gradients)

    # ----------------------------------------------------------- compile and sync
    def compile(self, f: Callable) -> Callable:
        """``f`` compiled by ``jax.jit`` (XLA), autodiff included. Every argument is traced,
        Python scalars too, so a new float learning rate does not recompile; a new input
        shape or dtype (an int where a float was) traces and compiles once more, and each
        compilation is cached. Arguments must be pytrees of arrays and Python scalars."""
        return self._compiled_as_current(jax.jit(f), f)

    def scan(self, f: Callable, carry: Any, xs: Any) -> tuple[Any, Any]:
        """``jax.lax.scan``: one traced body, looped by XLA (eagerly too, compiled once).

        The carry and the outputs cross ``lax.scan`` as flat lists: JAX's own pytrees sort
        dict keys, and the carry must come back in the order the caller wrote."""
        carry_leaves, carry_def = tree_flatten(carry)
        output_def = []

        def body(leaves: list, x: Any) -> tuple[list, list]:
            carry_in = tree_unflatten(carry_def, leaves)
            new_carry, y = f(carry_in, x)
            y_leaves, y_def = tree_flatten(y)
            output_def[:] = [y_def]
            # The new carry's leaves in the incoming carry's order (dicts matched by key).
            entries, _ = tree_flatten_with_path(carry_in, new_carry)
            return [entry[2] for entry in entries], y_leaves

        carry_leaves, y_leaves = jax.lax.scan(body, carry_leaves, xs)
        return tree_unflatten(carry_def, carry_leaves), tree_unflatten(output_def[0], y_leaves)

    def distributed_engine(self, placement: Any, timeout: float) -> Any:
        """``jax.distributed`` with gloo CPU collectives (:mod:`.distributed`)."""
        from .distributed import JaxEngine

        return JaxEngine(self, placement, timeout)

    def synchronize(self, tree: Any = None) -> Any:
        """Wait until every array in ``tree`` is computed (JAX dispatches asynchronously)."""
        return jax.block_until_ready(tree)
