"""The PyTorch backend: tensors on a CPU, a CUDA GPU or an Apple GPU (MPS), differentiated
by ``torch.autograd.grad`` in eager code and ``torch.func.grad_and_value`` where that
composes better (under ``torch.compile``, nested gradients), compiled by ``torch.compile``.

Nothing here changes PyTorch's global state (default dtype, default device, grad mode).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from portable_dl.backend import Backend
from portable_dl.tree import tree_flatten, tree_unflatten

from .._common import dtypes
from . import namespace
from .fused_update import fused_update_for
from .kernels import KERNELS

#: dtypes torch has as tensors but whose arithmetic it implements only in part
#: (``add`` on uint64 raises NotImplementedError in torch 2.13).
_PARTIAL_UNSIGNED = ("uint16", "uint32", "uint64")


class TorchBackend(Backend):
    name = "torch"

    @property
    def version(self) -> str:
        return torch.__version__

    def devices(self) -> list[str]:
        """torch's default device first, then ``"cpu"``, every ``"cuda:N"`` and ``"mps"``
        that exists here."""
        found = ["cpu"]
        if torch.cuda.is_available():
            found += [f"cuda:{index}" for index in range(torch.cuda.device_count())]
        if torch.backends.mps.is_available():
            found.append("mps")
        default = self.default_device()
        return [default] + [device for device in found if device != default]

    def default_device(self) -> str:
        """torch's own default device (``torch.get_default_device()``): the CPU unless the
        user chose otherwise with ``torch.set_default_device``."""
        return self.canonical_device(str(torch.get_default_device()))

    def canonical_device(self, device: str) -> str:
        """``"cuda"`` -> ``"cuda:0"``, ``"mps:0"`` -> ``"mps"``, ``torch.device`` objects too."""
        kind, _, index = str(device).lower().partition(":")
        if kind == "cuda":
            return f"cuda:{index or 0}"
        return kind

    @property
    def xp(self) -> Any:
        return namespace.xp

    def owns(self, x: Any) -> bool:
        """Tensors, including those traced by ``torch.func`` (wrapped tensors) and by
        ``torch.compile`` (fake tensors): all are ``torch.Tensor``."""
        return isinstance(x, torch.Tensor)

    def is_concrete(self, x: Any) -> bool:
        # Under torch.compile tensors are fake: reading values would break the graph.
        return not torch.compiler.is_compiling()

    def fused_update(self, optimizer: Any) -> Callable | None:
        """Adam, AdamW and SGD by multi-tensor ``torch._foreach_*`` kernels, bit-identical to
        their pure rules (:mod:`.fused_update`); None for the other optimizers, and for a
        subclass that brings its own namespace: the kernels are torch's, and would bypass it."""
        if self.xp is not namespace.xp:
            return None
        return fused_update_for(optimizer)

    def kernel(self, name: str) -> Callable | None:
        """relu and cross-entropy by torch's own fused kernels (:mod:`.kernels`), which
        compute the pure expressions' values and gradients; None for a subclass that brings
        its own namespace (the kernels would bypass it), and while ``torch.compile`` traces:
        Inductor fuses the pure expressions into its own loops, so the kernels would only
        change the compiled graph (measured no faster), not speed it up."""
        if self.xp is not namespace.xp or torch.compiler.is_compiling():
            return None
        return KERNELS.get(name)

    def _unsupported_dtype_reason(self, name: str) -> str | None:
        if name in _PARTIAL_UNSIGNED:
            return (
                f"PyTorch {torch.__version__} stores {name} tensors but implements arithmetic on them "
                "only in part; use uint8 or a signed integer dtype"
            )
        if name == "float64" and self.device == "mps":
            return "the MPS device (Apple GPU) has no float64; use float32, or the backend on device 'cpu'"
        return None

    # ------------------------------------------------------------ data in and out
    def asarray(self, x: Any, dtype: Any = None) -> torch.Tensor:
        """A tensor on this backend's device. NumPy arrays are copied (a tensor never shares
        memory with a NumPy array the caller may change later); Python floats become
        float32, Python ints int64."""
        target = None if dtype is None else self.dtype(dtype)
        if isinstance(x, torch.Tensor):
            return x.to(device=self.device, dtype=target)
        if isinstance(x, (np.ndarray, np.generic)):
            self.dtype(x.dtype)  # DTypeError for NumPy dtypes torch cannot compute in
            return namespace.tensor_from_numpy(np.asarray(x), dtype=target, device=self.device)
        return torch.asarray(x, dtype=target, device=self.device)

    def to_numpy(self, x: Any) -> np.ndarray:
        """A NumPy array of ``x``'s values and dtype; bfloat16 as ``ml_dtypes.bfloat16``, bit
        for bit (torch's ``.numpy()`` refuses bfloat16: the bits go out as int16)."""
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu()
            if x.dtype == torch.bfloat16:
                return x.view(torch.int16).numpy().view(dtypes.numpy_bfloat16())
            return x.numpy()
        return np.asarray(x)

    # ------------------------------------------------------------------ autodiff
    def _value_and_grad_of_leaves(self, f: Callable, leaves: list) -> tuple[Any, Any, list]:
        """Reverse mode, with zeros for leaves the value does not depend on; the caller's
        tensors are left untouched.

        Under ``torch.compile``, inside another ``torch.func`` transform, or on leaves that
        are already part of an autograd graph (a gradient of a gradient), by
        ``torch.func.grad_and_value``, which composes with all three. Otherwise, in plain
        eager code, by ``torch.autograd.grad`` on detached copies of the leaves: the same
        numbers, without functorch's per-call wrapping of every tensor, which costs 1.3 ms
        of a 5 ms MLP gradient (batch 128, 784-256-256-10, torch 2.13 on a CPU)."""
        if _plain_eager(leaves):
            return _value_and_grad_by_autograd(f, leaves)
        return _value_and_grad_by_func(f, leaves)

    # ----------------------------------------------------------- compile and sync
    def compile(self, f: Callable) -> Callable:
        """``f`` compiled by ``torch.compile`` (TorchDynamo + Inductor), autodiff included:
        Dynamo traces through ``torch.func.grad_and_value``, so a whole training step
        ``params -> value_and_grad -> params - lr * grads`` becomes one compiled graph.

        The first call compiles (about 4 s for a small step on a CPU). Then, as measured
        with torch 2.13: the first change of an input's shape recompiles once and marks
        that size dynamic, so further sizes reuse the graph; likewise the first change of
        a Python scalar argument (a new learning rate, or an int where a float was)
        recompiles once and later values do not. Code Dynamo cannot trace falls back to
        Python (a graph break), never to an error; the training step above traces as one
        graph with no break.

        When tracing fails, Dynamo reports every error as its own ``TorchRuntimeError``;
        ``f`` is then run once eagerly, so that a shape or dtype mistake raises the same
        :mod:`portable_dl.errors` exception as uncompiled code. Should ``f`` run eagerly
        without error, the compiler's own error is raised: nothing falls back silently.
        """
        import torch._dynamo  # here, not at the top: importing Dynamo costs 1.8 s, paid only by who compiles

        compiled = torch.compile(f)

        @functools.wraps(f)
        def run_compiled(*args: Any, **kwargs: Any) -> Any:
            try:
                return compiled(*args, **kwargs)
            except torch._dynamo.exc.TorchRuntimeError as compiler_error:
                f(*args, **kwargs)  # raises the error of eager code, if there is one
                raise compiler_error

        return self._compiled_as_current(run_compiled, f)

    def distributed_engine(self, placement: Any, timeout: float) -> Any:
        """``torch.distributed``: gloo on the CPU, NCCL on CUDA (:mod:`.distributed`)."""
        from .distributed import TorchEngine

        return TorchEngine(self, placement, timeout)

    def synchronize(self, tree: Any = None) -> Any:
        """Wait for the kernels queued on a CUDA or MPS device; CPU work is synchronous."""
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)
        elif self.device == "mps":
            torch.mps.synchronize()
        return tree


# ---------------------------------------------------------------------- autodiff
def _plain_eager(leaves: list) -> bool:
    """Whether ``leaves`` are differentiated in plain eager code: not while Dynamo traces,
    not inside a torch.func transform, and no leaf already recorded by autograd."""
    if torch.compiler.is_compiling() or torch._C._functorch.maybe_current_level() is not None:
        return False
    return not any(leaf.requires_grad for leaf in leaves)


def _value_and_grad_by_autograd(f: Callable, leaves: list) -> tuple[Any, Any, list]:
    """``torch.autograd.grad`` of ``f(leaves) -> (scalar, aux)``; value and aux come back
    detached (as from torch.func), so no graph outlives the call."""
    inputs = [leaf.detach().requires_grad_() for leaf in leaves]
    with torch.enable_grad():  # as torch.func.grad, whatever the caller's grad mode
        value, aux = f(inputs)
        if value.requires_grad:
            gradients = torch.autograd.grad(value, inputs, allow_unused=True, materialize_grads=True)
        else:  # the value depends on no leaf at all (a constant loss)
            gradients = [torch.zeros_like(leaf) for leaf in leaves]
    detach = lambda x: x.detach() if isinstance(x, torch.Tensor) else x
    aux_leaves, treedef = tree_flatten(aux)
    return value.detach(), tree_unflatten(treedef, [detach(leaf) for leaf in aux_leaves]), list(gradients)


def _value_and_grad_by_func(f: Callable, leaves: list) -> tuple[Any, Any, list]:
    """``torch.func.grad_and_value`` of ``f(leaves) -> (scalar, aux)``."""
    # torch.func passes only tensors out as aux; the other leaves of aux (ints, strings)
    # go around it, and the tree is rebuilt from both.
    aux_parts: dict[str, Any] = {}

    def value_of_leaves(leaf_tuple: tuple) -> tuple[Any, list]:
        value, aux = f(list(leaf_tuple))
        aux_leaves, aux_parts["treedef"] = tree_flatten(aux)
        aux_parts["leaves"] = [None if isinstance(leaf, torch.Tensor) else leaf for leaf in aux_leaves]
        return value, [leaf for leaf in aux_leaves if isinstance(leaf, torch.Tensor)]

    gradients, (value, aux_tensors) = torch.func.grad_and_value(value_of_leaves, has_aux=True)(tuple(leaves))
    tensors = iter(aux_tensors)
    aux_leaves = [next(tensors) if leaf is None else leaf for leaf in aux_parts["leaves"]]
    return value, tree_unflatten(aux_parts["treedef"], aux_leaves), list(gradients)
