"""Dtype information for namespaces that name the standard's dtypes with their own objects
(MLX, TensorFlow): ``finfo``, ``iinfo``, ``isdtype`` and ``can_cast``, written once.

A namespace binds a :class:`DtypeTable` with its mapping from the standard's names to its
dtype objects and a function that names any of its dtypes, then exports the bound methods.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from portable_dl.errors import DTypeError

from .promotion import KIND_OF, promote_names

__all__ = ["FloatInfo", "IntegerInfo", "DtypeTable", "KINDS"]

#: The standard's dtype kinds and the kinds of KIND_OF each covers.
KINDS = {
    "bool": ("bool",),
    "signed integer": ("signed integer",),
    "unsigned integer": ("unsigned integer",),
    "integral": ("signed integer", "unsigned integer"),
    "real floating": ("real floating",),
    "complex floating": ("complex floating",),
    "numeric": ("signed integer", "unsigned integer", "real floating", "complex floating"),
}


@dataclass(frozen=True)
class FloatInfo:
    """Machine limits of a floating dtype, as the standard's ``finfo`` describes them."""

    bits: int
    eps: float
    max: float
    min: float
    smallest_normal: float
    dtype: Any


@dataclass(frozen=True)
class IntegerInfo:
    """Limits of an integer dtype, as the standard's ``iinfo`` describes them."""

    bits: int
    max: int
    min: int
    dtype: Any


class DtypeTable:
    """The dtype functions of one namespace.

    ``native``: standard name -> the framework's dtype object; ``name_of``: any dtype of the
    framework -> its standard name (raising DTypeError for others).
    """

    def __init__(self, native: dict[str, Any], name_of: Callable[[Any], str]):
        self.native = native
        self.name_of = name_of

    def _name(self, dtype_or_array: Any) -> str:
        is_array = hasattr(dtype_or_array, "shape") and hasattr(dtype_or_array, "dtype")
        return self.name_of(dtype_or_array.dtype if is_array else dtype_or_array)

    def finfo(self, type: Any, /) -> FloatInfo:
        """Limits of a floating dtype (or of an array's dtype): IEEE 754, so NumPy's numbers.
        A complex dtype gives the limits of its real components (``dtype`` float32 for complex64)."""
        name = self._name(type)
        if KIND_OF[name] == "complex floating":
            name = {"complex64": "float32", "complex128": "float64"}[name]
        if KIND_OF[name] != "real floating":
            raise DTypeError(f"finfo needs a floating dtype, got {name}")
        info = np.finfo(name)
        return FloatInfo(
            info.bits, float(info.eps), float(info.max), float(info.min), float(info.smallest_normal), self.native[name]
        )

    def iinfo(self, type: Any, /) -> IntegerInfo:
        """Limits of an integer dtype (or of an array's dtype)."""
        name = self._name(type)
        if KIND_OF[name] not in ("signed integer", "unsigned integer"):
            raise DTypeError(f"iinfo needs an integer dtype, got {name}")
        info = np.iinfo(name)
        return IntegerInfo(info.bits, int(info.max), int(info.min), self.native[name])

    def isdtype(self, dtype: Any, kind: Any) -> builtins.bool:
        """Whether ``dtype`` is of ``kind``: a kind name, a dtype, or a tuple of them."""
        if isinstance(kind, tuple):
            return builtins.any(self.isdtype(dtype, k) for k in kind)
        name = self.name_of(dtype)
        if isinstance(kind, str):
            if kind not in KINDS:
                raise ValueError(f"unknown dtype kind {kind!r}; kinds are {', '.join(KINDS)}")
            return KIND_OF[name] in KINDS[kind]
        return name == self.name_of(kind)

    def can_cast(self, from_: Any, to: Any, /) -> builtins.bool:
        """Whether type promotion takes ``from_`` (a dtype or an array) to ``to``.

        Only promotions within the standard's lattice count (bool, the integers, the
        floats, each among themselves, and signed with unsigned): a cast across kinds
        (int to float) is a conversion, not a promotion, as array-api-strict reads it.
        """
        source, target = self._name(from_), self.name_of(to)
        if source == target:
            return True
        kinds = {KIND_OF[source], KIND_OF[target]}
        if len(kinds) == 2 and kinds not in (
            {"signed integer", "unsigned integer"},
            {"real floating", "complex floating"},
        ):
            return False
        try:
            return promote_names(source, target) == target
        except DTypeError:
            return False


def standard_finfo(info: Any, dtype: Any) -> FloatInfo:
    """The standard's ``finfo`` object from a framework's own (``numpy.finfo``, ``torch.finfo``,
    ``jax.numpy.finfo``): Python floats, as the standard says, and ``dtype`` the namespace's
    dtype object (``torch.finfo`` names it with a string, NumPy's eps is a ``numpy.float32``)."""
    return FloatInfo(
        int(info.bits), float(info.eps), float(info.max), float(info.min), float(info.smallest_normal), dtype
    )


def standard_iinfo(info: Any, dtype: Any) -> IntegerInfo:
    """The standard's ``iinfo`` object from a framework's own: Python ints and the namespace's dtype."""
    return IntegerInfo(int(info.bits), int(info.max), int(info.min), dtype)


def dtype_namer(
    native: dict[str, Any], missing: dict[str, str] | None = None, stand_ins: dict[Any, str] | None = None
) -> Callable[[Any], str]:
    """The ``_dtype_name`` of a namespace whose dtypes are its framework's own objects (MLX,
    TensorFlow): the standard's name of a dtype spelled as one of ``native``'s objects, a
    string, a NumPy dtype or a Python type; :class:`DTypeError` for anything else.

    ``missing`` maps standard names the framework lacks to the reason (MLX's complex128), and
    ``stand_ins`` the namespace's stand-in objects for them to their names.
    """
    by_object = {dtype: name for name, dtype in native.items()}
    by_object.update(stand_ins or {})
    missing = missing or {}

    def name_of(dtype: Any) -> str:
        try:
            name = by_object.get(dtype)
        except TypeError:  # unhashable: not a dtype object
            name = None
        if name is None:
            if isinstance(dtype, str):
                name = dtype
            else:
                try:
                    name = np.dtype(dtype).name
                except TypeError:
                    raise DTypeError(f"{dtype!r} is not a dtype") from None
        if name in missing:
            raise DTypeError(f"{name}: {missing[name]}")
        if name not in native:
            raise DTypeError(f"{dtype!r} is not one of the dtypes portable_dl supports here: {', '.join(native)}")
        return name

    return name_of
