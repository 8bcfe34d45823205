"""Freezing parameters: a mask of which leaves train, and a split of params by it.

A mask is a pytree of Python bools with the structure of the params: True where the leaf
is trained. :func:`partition` splits params into ``(trainable, frozen)``, two trees of the
params' structure holding ``None`` (an empty subtree) where the leaf belongs to the other
part; a training step differentiates and updates only ``trainable`` and puts the two back
together with :func:`merge`.

Paths are those of :func:`portable_dl.tree.tree_paths`: ``"layers.0.W"``. A path names a
leaf or every leaf below it (``"layers.0"`` freezes the first layer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..errors import TreeStructureError
from ..tree import (
    path_string,
    tree_flatten_with_path,
    tree_map,
    tree_map_with_path,
    tree_unflatten,
)

__all__ = ["merge", "partition", "trainable_mask"]


def _names(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".")


def trainable_mask(params: Any, frozen: Iterable[str] | str | Callable[[str], bool] = ()) -> Any:
    """A pytree of bools shaped like ``params``: False for the frozen leaves.

    ``frozen``: paths (a string or an iterable of strings), each naming a leaf or a subtree;
    or a predicate ``frozen(path) -> bool``. A path that names no leaf raises ValueError
    listing the paths there are, so a typo cannot silently freeze nothing.
    """
    entries, treedef = tree_flatten_with_path(params)
    paths = [path_string(path) for path, _ in entries]
    if callable(frozen):
        is_frozen = [bool(frozen(path)) for path in paths]
    else:
        prefixes = [frozen] if isinstance(frozen, str) else list(frozen)
        unknown = [p for p in prefixes if not any(_names(path, p) for path in paths)]
        if unknown:
            raise ValueError(f"trainable_mask: no parameters at {unknown}; the paths are {paths}")
        is_frozen = [any(_names(path, p) for p in prefixes) for path in paths]
    return tree_unflatten(treedef, [not f for f in is_frozen])


def partition(params: Any, mask: Any) -> tuple[Any, Any]:
    """``(trainable, frozen)``: ``params`` with None in place of the frozen leaves, and
    with None in place of the trainable ones. ``mask`` from :func:`trainable_mask`."""
    trainable = tree_map(lambda leaf, train: leaf if train else None, params, mask)
    frozen = tree_map(lambda leaf, train: None if train else leaf, params, mask)
    return trainable, frozen


def merge(trainable: Any, frozen: Any) -> Any:
    """The params :func:`partition` split: each leaf from whichever part holds it.

    Raises:
        TreeStructureError: (a ValueError) parts of different structure, or a leaf present
            in both parts; naming the path.
    """

    def pick(path: tuple, mine: Any, theirs: Any) -> Any:
        if mine is None:
            return theirs
        if theirs is not None:
            raise TreeStructureError(
                f"merge: both parts hold a value at {path_string(path)!r} ({type(mine).__name__} and "
                f"{type(theirs).__name__}); each leaf must be in exactly one part",
                path=path,
            )
        return mine

    # None is a leaf of the trainable part here, so that the frozen part's value (or subtree) fills it.
    return tree_map_with_path(pick, trainable, frozen, is_leaf=lambda node: node is None)
