"""The TensorFlow backend: tensors on a CPU or a GPU, differentiated by ``tf.GradientTape``
and compiled by ``tf.function(jit_compile=True)`` (XLA).

Nothing here changes TensorFlow's global state: no NumPy behaviour switch, no device
policy, no float64 default.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from portable_dl.backend import Backend
from portable_dl.tree import tree_flatten, tree_flatten_with_path, tree_leaves, tree_unflatten

from . import namespace
from .compiled_step import FlatCompiled


class TensorFlowBackend(Backend):
    name = "tensorflow"

    @property
    def version(self) -> str:
        return tf.__version__

    def devices(self) -> list[str]:
        """``["gpu:0", ..., "cpu"]`` where TensorFlow sees GPUs (it places work on the first
        by default), else ``["cpu"]``."""
        return namespace._device_strings()

    def canonical_device(self, device: str) -> str:
        """``"/device:GPU:0"``, ``"GPU:0"``, ``"gpu"`` -> ``"gpu:0"``; ``"cpu:0"`` -> ``"cpu"``."""
        kind, _, index = str(device).lower().lstrip("/").replace("device:", "").partition(":")
        if kind == "cpu":
            return "cpu"
        return f"{kind}:{index or 0}"

    @property
    def xp(self) -> Any:
        return namespace.xp

    def owns(self, x: Any) -> bool:
        """Eager tensors, variables, and symbolic tensors inside ``tf.function``."""
        return isinstance(x, (tf.Tensor, tf.Variable))

    # ------------------------------------------------------------ data in and out
    def asarray(self, x: Any, dtype: Any = None) -> tf.Tensor:
        target = None if dtype is None else self.dtype(dtype)
        if isinstance(x, tf.Tensor) and self._is_here(x) and (target is None or x.dtype == target):
            return x
        with tf.device(namespace._tf_device_name(self.device)):
            tensor = namespace.asarray(x, dtype=target)
            # A tensor made elsewhere is copied onto this backend's device.
            return (
                tf.identity(tensor) if isinstance(x, (tf.Tensor, tf.Variable)) and not self._is_here(tensor) else tensor
            )

    def _is_here(self, x: tf.Tensor) -> bool:
        """Whether ``x`` lives on this backend's device (symbolic tensors count as here:
        placement inside a traced function is TensorFlow's)."""
        if not tf.executing_eagerly() or not hasattr(x, "device") or not x.device:
            return True
        return self.canonical_device(x.device.rsplit("device:", 1)[-1]) == self.device

    def is_concrete(self, x: Any) -> bool:
        # Inside tf.function tensors are symbolic: no values until the graph runs.
        return tf.executing_eagerly() and hasattr(x, "numpy")

    def to_numpy(self, x: Any) -> np.ndarray:
        if isinstance(x, (tf.Tensor, tf.Variable)) and hasattr(x, "numpy"):
            try:
                return np.asarray(x.numpy())
            except (AttributeError, NotImplementedError, TypeError) as error:
                raise TypeError(
                    f"to_numpy needs a computed tensor; a symbolic tensor inside tf.function has no value yet: {x}"
                ) from error
        return np.asarray(x)

    # ------------------------------------------------------------------ autodiff
    def _value_and_grad_of_leaves(self, f: Callable, leaves: list) -> tuple[Any, Any, list]:
        """Reverse mode with ``tf.GradientTape``, eagerly or inside ``tf.function``.

        Leaves are read into tensors and watched; leaves the value does not depend on get
        zeros (``UnconnectedGradients.ZERO``); sparse gradients (``IndexedSlices`` from
        ``take``) are made dense, in the leaf's dtype and shape.
        """
        tensors = [tf.convert_to_tensor(leaf) for leaf in leaves]
        with tf.device(namespace._tf_device_name(self.device)):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                for tensor in tensors:
                    tape.watch(tensor)
                value, aux = f(tensors)
            gradients = tape.gradient(value, tensors, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            dense = [tf.cast(tf.convert_to_tensor(g), t.dtype) for g, t in zip(gradients, tensors)]
        return value, aux, dense

    # ----------------------------------------------------------- compile and sync
    def compile(self, f: Callable) -> Callable:
        """``f`` traced by ``tf.function`` and compiled by XLA (``jit_compile=True``), run on
        this backend's device.

        AutoGraph is off: functions written against ``xp`` branch on Python values
        (shapes, flags), never on tensor values, so rewriting their source into graph
        control flow would only cost tracing time (and warnings about lambdas).

        Calls skip ``tf.function``'s dispatch (:class:`.compiled_step.FlatCompiled`): binding
        the arguments, typing and casting each tensor and packing the outputs cost over a
        millisecond for a training step that passes 20 parameter and state arrays, as long as
        its arithmetic; the flat path's own Python side is about 70 us a call (its module's
        docstring says where it goes). The trace is picked by the nesting of the arguments,
        each tensor's dtype and shape and each Python scalar's value, as ``tf.function`` would
        pick it, and called with the flat list of tensors. A new shape costs one trace and one
        XLA compilation; traces keep every dimension known, so code that reads shapes sees the
        same numbers as eagerly. Arguments of any other kind (variables, NumPy arrays,
        symbolic tensors inside another traced function) go through ``tf.function`` as usual."""
        compiled = FlatCompiled(f, jit_compile=True)
        device = namespace._tf_device_name(self.device)

        @functools.wraps(f)
        def run_compiled(*args: Any, **kwargs: Any) -> Any:
            with tf.device(device):
                return compiled(*args, **kwargs)

        return self._compiled_as_current(run_compiled, f)

    def scan(self, f: Callable, carry: Any, xs: Any) -> tuple[Any, Any]:
        """Eagerly the Python loop; inside ``tf.function`` a ``tf.while_loop`` that XLA keeps
        as one loop. A ``TensorArray`` needs the dtypes of ``f``'s outputs before the loop, so
        the first step runs ahead of it (traced twice, run once per step)."""
        if tf.executing_eagerly():
            return super().scan(f, carry, xs)
        x_leaves, x_def = tree_flatten(xs)
        length = x_leaves[0].shape[0] if x_leaves[0].shape[0] is not None else tf.shape(x_leaves[0])[0]

        def step(carry_tree: Any, i: Any) -> tuple[list, list]:
            new_carry, y = f(carry_tree, tree_unflatten(x_def, [leaf[i] for leaf in x_leaves]))
            # The new carry's leaves in the incoming carry's order (dicts matched by key).
            entries, _ = tree_flatten_with_path(carry_tree, new_carry)
            return [entry[2] for entry in entries], y

        carry_leaves, y = step(carry, 0)
        carry_def = tree_flatten(carry)[1]
        y_leaves, y_def = tree_flatten(y)
        arrays = [tf.TensorArray(leaf.dtype, size=length, element_shape=leaf.shape).write(0, leaf) for leaf in y_leaves]

        def body(i: Any, carry_leaves: list, arrays: list) -> tuple:
            carry_leaves, y = step(tree_unflatten(carry_def, carry_leaves), i)
            return i + 1, carry_leaves, [array.write(i, leaf) for array, leaf in zip(arrays, tree_leaves(y))]

        _, carry_leaves, arrays = tf.while_loop(lambda i, *_: i < length, body, (tf.constant(1), carry_leaves, arrays))
        return tree_unflatten(carry_def, carry_leaves), tree_unflatten(y_def, [array.stack() for array in arrays])

    def distributed_engine(self, placement: Any, timeout: float) -> Any:
        """``MultiWorkerMirroredStrategy``'s collective all-reduce, from ``TF_CONFIG`` (:mod:`.distributed`)."""
        from .distributed import TensorFlowEngine

        return TensorFlowEngine(self, placement, timeout)

    def synchronize(self, tree: Any = None) -> Any:
        """Wait for every queued op on every device (GPU kernels run asynchronously)."""
        if tf.executing_eagerly():  # inside a traced function there is nothing to wait for
            try:
                tf.test.experimental.sync_devices()
            except tf.errors.InternalError:
                # Under MultiWorkerMirroredStrategy (a data-parallel run) the eager context
                # refuses a device-wide sync; reading the arrays waits for what they need.
                for leaf in tree_leaves(tree):
                    if isinstance(leaf, tf.Tensor):
                        leaf.numpy()
        return tree
