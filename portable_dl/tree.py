"""Pytrees: nested dicts, lists and tuples whose leaves are arrays.

Parameters, gradients and optimizer state are pytrees. Flattening gives the leaves in a
fixed order (dicts in insertion order, sequences by position) and a ``TreeDef`` that
rebuilds the same structure, so a backend can hand its autodiff a flat list of arrays
and give the gradients back in the shape of the parameters.

``None`` is an empty subtree: it has no leaves and comes back as ``None``. Anything that
is not a dict, list, tuple or None is a leaf (``is_leaf=`` can stop the walk earlier).

A leaf's *path* is the tuple of keys from the root: dict keys and list or tuple positions,
``("layers", 0, "W")``; :func:`path_string` writes it ``"layers.0.W"``.

**Several trees at once** (:func:`tree_map`, :func:`tree_map_with_path`,
:func:`tree_flatten_with_path`): the leaves of the *first* tree say where the function is
called. Every other tree must have the first one's structure down to those leaves:

- a dict where the first has a dict, with the same keys; the order may differ (values are
  matched by key, and the result follows the first tree's order);
- a list where the first has a list, a tuple where it has a tuple, of the same length;
- None where the first has None.

Below a leaf of the first tree another tree may hold anything, handed to the function
whole (an optimizer's dict of slots per parameter). None in another tree where the first
has a dict, list or tuple stands for that subtree with None at every leaf (the gradients
of a frozen layer). Any other difference raises :class:`~portable_dl.errors.TreeStructureError`
(a ``ShapeError``, so also a ``ValueError``) naming the path where the trees differ and what
each holds there. This is the one walk over trees in portable_dl; optimizers, freezing,
checkpoints and parameter names are built on it.

Written here rather than taken from ``optree`` or a framework's own pytree module because
the front end must not import a framework, and both sort dict keys, while a checkpoint's
names and a model's layers keep the order the user wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import TreeStructureError

__all__ = [
    "TreeDef",
    "path_string",
    "tree_flatten",
    "tree_flatten_with_path",
    "tree_leaves",
    "tree_map",
    "tree_map_with_path",
    "tree_paths",
    "tree_unflatten",
]


@dataclass(frozen=True)
class TreeDef:
    """The structure of a pytree without its leaves.

    ``kind`` is "leaf", "none", "dict", "list" or "tuple"; ``keys`` holds a dict's keys in
    order; ``children`` the TreeDefs of the items.
    """

    kind: str
    keys: tuple = ()
    children: tuple = ()

    #: how many leaves the tree has; computed once, at construction, because unflattening asks
    #: at every step and ``functools.cached_property`` takes a lock on Python 3.11, which
    #: breaks a ``torch.compile`` graph at every ``tree_unflatten``
    num_leaves: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        count = 1 if self.kind == "leaf" else sum(child.num_leaves for child in self.children)
        object.__setattr__(self, "num_leaves", count)

    def child_keys(self) -> tuple:
        """The path components of the children: a dict's keys, or a sequence's positions."""
        return self.keys if self.kind == "dict" else tuple(range(len(self.children)))

    def nodes(self, path: tuple = ()) -> Iterator[tuple[tuple, TreeDef]]:
        """Every node with its path, parents before children, in flattening order."""
        yield path, self
        for key, child in zip(self.child_keys(), self.children):
            yield from child.nodes(path + (key,))

    def leaf_paths(self) -> list[tuple]:
        """The paths of the leaves, in flattening order."""
        return [path for path, node in self.nodes() if node.kind == "leaf"]


LEAF = TreeDef("leaf")
NONE = TreeDef("none")


# ------------------------------------------------------------------------ the walk
def tree_flatten_with_path(
    tree: Any, *rest: Any, is_leaf: Callable[[Any], bool] | None = None
) -> tuple[list[tuple], TreeDef]:
    """Walk ``tree`` and the trees of ``rest`` together (matched as the module docstring says).

    Returns:
        ``(entries, treedef)``: one tuple ``(path, leaf, *others)`` per leaf of ``tree`` in
        flattening order, ``others`` being what each tree of ``rest`` holds at that place;
        and the TreeDef of ``tree``.

    Raises:
        TreeStructureError: a tree of ``rest`` differs from ``tree``; the message names the path.
    """
    entries: list[tuple] = []
    return entries, _walk(tree, rest, (), entries, is_leaf)


def _walk(node: Any, others: Sequence[Any], path: tuple | None, entries: list, is_leaf: Callable | None) -> TreeDef:
    """Append ``node``'s entries (its leaves alone when ``path`` is None) and return its TreeDef."""
    if is_leaf is not None and is_leaf(node):
        entries.append(node if path is None else (path, node, *others))
        return LEAF
    if node is None:
        for argument, other in enumerate(others, start=1):
            if other is not None:
                raise _mismatch(path, argument, node, other)
        return NONE
    if isinstance(node, dict):
        kind, keys, items = "dict", tuple(node), node.items()
    elif isinstance(node, (list, tuple)):
        kind, keys, items = ("list" if isinstance(node, list) else "tuple"), (), enumerate(node)
    else:
        entries.append(node if path is None else (path, node, *others))
        return LEAF
    if path is None:  # leaves only (tree_flatten): one tree, no paths
        return TreeDef(kind, keys, tuple([_walk(value, (), None, entries, is_leaf) for _, value in items]))
    if not others:  # the common case, flattening one tree: no bookkeeping for the others
        return TreeDef(kind, keys, tuple([_walk(value, (), path + (key,), entries, is_leaf) for key, value in items]))
    matched = [_children_like(node, kind, other, path, argument) for argument, other in enumerate(others, start=1)]
    return TreeDef(
        kind,
        keys,
        tuple(
            [
                _walk(value, [children[index] for children in matched], path + (key,), entries, is_leaf)
                for index, (key, value) in enumerate(items)
            ]
        ),
    )


def _children_like(node: Any, kind: str, other: Any, path: tuple, argument: int) -> Sequence[Any]:
    """The children of ``other`` in the order of ``node``'s, or TreeStructureError."""
    if other is None:  # stands for the subtree with None at every leaf
        return [None] * len(node)
    if kind == "dict":
        if isinstance(other, dict) and len(other) == len(node) and all(key in other for key in node):
            return [other[key] for key in node]
    elif isinstance(other, list if kind == "list" else tuple) and len(other) == len(node):
        return list(other)
    raise _mismatch(path, argument, node, other)


def _mismatch(path: tuple, argument: int, node: Any, other: Any) -> TreeStructureError:
    expected, found = _describe(node), _describe(other)
    return TreeStructureError(
        f"trees differ in structure at {_where(path)}: the first tree has {expected}, tree {argument + 1} has {found}",
        path=path,
        argument=argument,
        expected=expected,
        found=found,
    )


def _describe(node: Any) -> str:
    if node is None:
        return "None"
    if isinstance(node, dict):
        return f"a dict with keys {[str(key) for key in node]}"
    if isinstance(node, (list, tuple)):
        return f"a {'list' if isinstance(node, list) else 'tuple'} of {len(node)}"
    return f"a leaf ({type(node).__name__})"


def _where(path: tuple) -> str:
    return repr(path_string(path)) if path else "the root"


def path_string(path: tuple, separator: str = ".") -> str:
    """``("layers", 0, "W")`` as ``"layers.0.W"``; the root, ``()``, as ``""``."""
    return separator.join(str(key) for key in path)


# ------------------------------------------------------------- built on the walk
def tree_flatten(tree: Any, is_leaf: Callable[[Any], bool] | None = None) -> tuple[list, TreeDef]:
    """Return ``(leaves, treedef)``; ``tree_unflatten(treedef, leaves)`` rebuilds ``tree``."""
    leaves: list = []
    # The same walk without paths (None): flattening runs at every eager step, and building
    # a path tuple per node made it half as slow again.
    return leaves, _walk(tree, (), None, leaves, is_leaf)


def tree_leaves(tree: Any) -> list:
    """The leaves of ``tree`` in flattening order."""
    return tree_flatten(tree)[0]


def tree_map_with_path(function: Callable, tree: Any, *rest: Any, is_leaf: Callable[[Any], bool] | None = None) -> Any:
    """``function(path, leaf, *others)`` at each leaf of ``tree``, with ``others`` what the
    trees of ``rest`` hold there; returns a tree of ``tree``'s structure. TreeStructureError
    where the trees differ (see the module docstring)."""
    entries, treedef = tree_flatten_with_path(tree, *rest, is_leaf=is_leaf)
    return tree_unflatten(treedef, [function(*entry) for entry in entries])


def tree_map(function: Callable, tree: Any, *rest: Any, is_leaf: Callable[[Any], bool] | None = None) -> Any:
    """``function(leaf, *others)`` at each leaf of ``tree``: :func:`tree_map_with_path`
    without the path."""
    entries, treedef = tree_flatten_with_path(tree, *rest, is_leaf=is_leaf)
    return tree_unflatten(treedef, [function(*entry[1:]) for entry in entries])


def tree_paths(tree: Any, separator: str = ".") -> list[str]:
    """Dotted names of the leaves in flattening order: ``{"W": a, "b": [c]}`` gives
    ``["W", "b.0"]``. Used to name parameters in messages and checkpoints."""
    return [path_string(path, separator) for path, _ in tree_flatten_with_path(tree)[0]]


# ------------------------------------------------------------------ the inverse
def tree_unflatten(treedef: TreeDef, leaves: list) -> Any:
    """Rebuild a pytree of structure ``treedef`` from ``leaves`` in flattening order."""
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(f"treedef has {treedef.num_leaves} leaves, got {len(leaves)}")
    return _build(treedef, iter(leaves))


def _build(treedef: TreeDef, leaves: Iterator) -> Any:
    if treedef.kind == "leaf":
        return next(leaves)
    if treedef.kind == "none":
        return None
    items = [_build(child, leaves) for child in treedef.children]
    if treedef.kind == "dict":
        return dict(zip(treedef.keys, items))
    return items if treedef.kind == "list" else tuple(items)
