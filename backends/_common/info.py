"""The inspection object ``__array_namespace_info__()`` of the namespaces that take the
framework's own (array_api_compat's for NumPy and PyTorch, ``jax.numpy``'s), corrected where
it departs from the standard: ``devices()`` is a list, not a tuple."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Info", "info_function"]


class Info:
    """``capabilities``, ``default_device``, ``default_dtypes``, ``devices``, ``dtypes`` of
    the standard, answered by the framework's own inspection object ``inner``."""

    def __init__(self, inner: Any):
        self._inner = inner

    def capabilities(self) -> dict:
        return self._inner.capabilities()

    def default_device(self) -> Any:
        return self._inner.default_device()

    def default_dtypes(self, *, device: Any = None) -> dict:
        return self._inner.default_dtypes(device=device)

    def dtypes(self, *, device: Any = None, kind: Any = None) -> dict:
        return self._inner.dtypes(device=device, kind=kind)

    def devices(self) -> list:
        """Every device, as a list (the standard's type)."""
        return list(self._inner.devices())


def info_function(framework_info: Callable[[], Any]) -> Callable[[], Info]:
    """A namespace's ``__array_namespace_info__``: :class:`Info` over ``framework_info()``,
    made once (it holds no state)."""
    info = Info(framework_info())

    def __array_namespace_info__() -> Info:
        return info

    return __array_namespace_info__
