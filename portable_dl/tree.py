"""Pytrees: nested dicts, lists and tuples whose leaves are arrays.

Parameters, gradients and optimizer state are pytrees. Flattening gives the leaves in a
fixed order (dicts in insertion order, sequences by position) and a ``TreeDef`` that
rebuilds the same structure, so a backend can hand its autodiff a flat list of arrays
and give the gradients back in the shape of the parameters.

``None`` is an empty subtree: it has no leaves and comes back as ``None``. Anything that
is not a dict, list, tuple or None is a leaf.

Written here rather than taken from ``optree`` or a framework's own pytree module because
the front end must not import a framework, and these forty lines are the whole need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["TreeDef", "tree_flatten", "tree_unflatten", "tree_map", "tree_leaves", "tree_paths"]


@dataclass(frozen=True)
class TreeDef:
    """The structure of a pytree without its leaves.

    ``kind`` is "leaf", "none", "dict", "list" or "tuple"; ``keys`` holds a dict's keys in
    order; ``children`` the TreeDefs of the items.
    """

    kind: str
    keys: tuple = ()
    children: tuple = ()

    @property
    def num_leaves(self) -> int:
        if self.kind == "leaf":
            return 1
        return sum(child.num_leaves for child in self.children)


LEAF = TreeDef("leaf")
NONE = TreeDef("none")


def tree_flatten(tree: Any) -> tuple[list, TreeDef]:
    """Return ``(leaves, treedef)``; ``tree_unflatten(treedef, leaves)`` rebuilds ``tree``."""
    leaves: list = []
    return leaves, _flatten_into(tree, leaves)


def _flatten_into(tree: Any, leaves: list) -> TreeDef:
    if tree is None:
        return NONE
    if isinstance(tree, dict):
        keys = tuple(tree.keys())
        return TreeDef("dict", keys, tuple(_flatten_into(tree[k], leaves) for k in keys))
    if isinstance(tree, (list, tuple)):
        kind = "list" if isinstance(tree, list) else "tuple"
        return TreeDef(kind, (), tuple(_flatten_into(item, leaves) for item in tree))
    leaves.append(tree)
    return LEAF


def tree_unflatten(treedef: TreeDef, leaves: list) -> Any:
    """Rebuild a pytree of structure ``treedef`` from ``leaves`` in flattening order."""
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(f"treedef has {treedef.num_leaves} leaves, got {len(leaves)}")
    iterator = iter(leaves)
    return _build(treedef, iterator)


def _build(treedef: TreeDef, leaves) -> Any:
    if treedef.kind == "leaf":
        return next(leaves)
    if treedef.kind == "none":
        return None
    items = [_build(child, leaves) for child in treedef.children]
    if treedef.kind == "dict":
        return dict(zip(treedef.keys, items))
    return items if treedef.kind == "list" else tuple(items)


def tree_leaves(tree: Any) -> list:
    """The leaves of ``tree`` in flattening order."""
    return tree_flatten(tree)[0]


def tree_map(function: Callable, tree: Any, *rest: Any) -> Any:
    """Apply ``function`` leaf by leaf to ``tree`` and the trees in ``rest``, which must
    have the same structure; return a tree of that structure."""
    leaves, treedef = tree_flatten(tree)
    others = []
    for other in rest:
        other_leaves, other_def = tree_flatten(other)
        if other_def != treedef:
            raise ValueError(f"tree_map: trees differ in structure:\n  {treedef}\n  {other_def}")
        others.append(other_leaves)
    return tree_unflatten(treedef, [function(*args) for args in zip(leaves, *others)])


def tree_paths(tree: Any, separator: str = ".") -> list[str]:
    """Dotted names of the leaves in flattening order: ``{"W": a, "b": [c]}`` gives
    ``["W", "b.0"]``. Used to name parameters in messages and checkpoints."""
    paths: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        if node is None:
            return
        if isinstance(node, dict):
            items = ((str(k), v) for k, v in node.items())
        elif isinstance(node, (list, tuple)):
            items = ((str(i), v) for i, v in enumerate(node))
        else:
            paths.append(prefix)
            return
        for key, value in items:
            walk(value, f"{prefix}{separator}{key}" if prefix else key)

    walk(tree, "")
    return paths
