"""The trees of a checkpoint: tensor names, the structure as JSON, and matching ``like`` trees.

A leaf's tensor is named ``<section>/<path>``: ``params/layers.0.W``. ``"/"`` separates the
section from the path and ``"."`` the keys and list positions of the path; a dict key
containing ``"."``, ``"/"`` or ``"%"`` has them written ``%2E``, ``%2F``, ``%25``, so no two
leaves share a name. A structure (a :class:`~portable_dl.tree.TreeDef`) is stored as JSON
that keeps dict key order, lists, tuples and None exactly.
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from ..backend import Backend
from ..errors import CheckpointError, DTypeError
from ..tree import TreeDef, tree_flatten
from .tensors import TensorEntry, dtype_matches

#: The two trees a checkpoint holds, in the order their tensors are named.
SECTIONS = ("params", "opt_state")
_SECTION_SEPARATOR = "/"
_PATH_SEPARATOR = "."
#: Characters of dict keys escaped in tensor names; "%" first, so escaping is reversible.
_ESCAPES = (("%", "%25"), (".", "%2E"), ("/", "%2F"))


# ------------------------------------------------------------------- tensor names
def tensor_name(section: str, path: tuple) -> str:
    """``params`` for the root, ``params/layers.0.W`` below it: the path's dict keys escaped,
    its list positions as numbers."""
    if not path:
        return section
    return section + _SECTION_SEPARATOR + _PATH_SEPARATOR.join(_escape(key) for key in path)


def leaf_names(treedef: TreeDef, section: str) -> list[str]:
    """The tensor names of the leaves, in flattening order."""
    return [tensor_name(section, path) for path in treedef.leaf_paths()]


def check_keys(treedef: TreeDef, section: str) -> None:
    """CheckpointError for a dict key that is not a string: JSON would turn ``1`` into ``"1"``."""
    for path, node in treedef.nodes():
        for key in node.keys:
            if not isinstance(key, str):
                raise CheckpointError(
                    f"{tensor_name(section, path)}: the dict key {key!r} is a {type(key).__name__}; "
                    "checkpoints hold dicts with string keys only"
                )


def _escape(key: Any) -> str:
    text = str(key)
    for character, escaped in _ESCAPES:
        text = text.replace(character, escaped)
    return text


# ------------------------------------------------------------ structures as JSON
def structure_to_json(treedef: TreeDef) -> dict:
    """A TreeDef as JSON-able data: ``{"kind": "dict", "keys": [...], "children": [...]}``,
    ``{"kind": "list" | "tuple", "children": [...]}``, ``{"kind": "leaf"}``, ``{"kind": "none"}``."""
    encoded: dict[str, Any] = {"kind": treedef.kind}
    if treedef.kind == "dict":
        encoded["keys"] = list(treedef.keys)
    if treedef.kind in ("dict", "list", "tuple"):
        encoded["children"] = [structure_to_json(child) for child in treedef.children]
    return encoded


def structure_from_json(encoded: Any, section: str, path: pathlib.Path) -> TreeDef:
    """The TreeDef that :func:`structure_to_json` gave ``encoded``; CheckpointError naming the
    file ``path`` for anything no tree encodes to."""

    def build(node: Any) -> TreeDef:
        kind = node.get("kind") if isinstance(node, dict) else None
        if kind in ("leaf", "none"):
            return TreeDef(kind)
        if kind not in ("dict", "list", "tuple") or not isinstance(node.get("children"), list):
            raise ValueError(f"a node {str(node)[:80]}")
        children = tuple(build(child) for child in node["children"])
        if kind != "dict":
            return TreeDef(kind, (), children)
        keys = node.get("keys")
        if not (
            isinstance(keys, list)
            and len(keys) == len(children)
            and all(isinstance(k, str) for k in keys)
            and len(set(keys)) == len(keys)
        ):
            raise ValueError(f"the dict keys {str(keys)[:80]}")
        return TreeDef(kind, tuple(keys), children)

    try:
        return build(encoded)
    except (ValueError, RecursionError) as error:
        raise CheckpointError(
            f"the checkpoint {path} has a corrupted header: its {section} structure has {error} that no tree has"
        ) from error


# -------------------------------------------------------- matching ``like`` trees
def mismatches(
    stored_tree: TreeDef, tensors: dict[str, TensorEntry], section: str, expected: Any, backend: Backend
) -> list[str]:
    """Every difference between the checkpoint's ``section`` tree (``stored_tree``, whose
    leaves ``tensors`` describes by name) and the tree ``expected``, loaded on ``backend``.

    Nodes are matched by path (dict keys by name, in any order); below a node that is
    missing, extra or of another kind nothing more is listed."""
    leaves, expected_def = tree_flatten(expected)
    expected_leaves = dict(zip(leaf_names(expected_def, section), leaves))
    stored_nodes, wanted_nodes = dict(stored_tree.nodes()), dict(expected_def.nodes())
    problems: list[str] = []
    reported: list[tuple] = []  # paths below which the trees are no longer compared
    for path in list(wanted_nodes) + [path for path in stored_nodes if path not in wanted_nodes]:
        if any(path[: len(prefix)] == prefix for prefix in reported):
            continue
        problem = _difference(
            stored_nodes.get(path),
            wanted_nodes.get(path),
            tensors,
            tensor_name(section, path),
            expected_leaves,
            backend,
        )
        if problem:
            problems.append(problem)
            reported.append(path)
    return problems


def _difference(
    stored: TreeDef | None,
    wanted: TreeDef | None,
    tensors: dict[str, TensorEntry],
    name: str,
    expected_leaves: dict[str, Any],
    backend: Backend,
) -> str | None:
    """What differs at the node ``name`` between the checkpoint and the expected tree, or None."""
    if stored is None:
        return f"{name}: missing from the checkpoint"
    if wanted is None:
        return f"{name}: in the checkpoint but not expected"
    if stored.kind != wanted.kind:
        return f"{name}: the checkpoint has {_describe_node(stored)}, expected {_describe_node(wanted)}"
    if stored.kind == "leaf":
        entry = tensors[name]
        shape, dtype = _shape_and_dtype(expected_leaves[name], backend)
        if entry.shape != shape or not dtype_matches(entry.dtype, dtype, backend):
            return f"{name}: the checkpoint has {entry.dtype} {entry.shape}, expected {dtype} {shape}"
    return None


def _describe_node(treedef: TreeDef) -> str:
    if treedef.kind == "leaf":
        return "an array"
    if treedef.kind == "none":
        return "None"
    return f"a {treedef.kind} of {len(treedef.children)}"


def _shape_and_dtype(leaf: Any, backend: Backend) -> tuple[tuple[int, ...], str]:
    """The shape and dtype name of an expected leaf: an array of any backend, a NumPy array,
    a Python scalar, or anything with ``.shape`` and ``.dtype``."""
    if not (hasattr(leaf, "shape") and hasattr(leaf, "dtype")):
        leaf = np.asarray(leaf)
    try:
        dtype = backend.dtype_name(leaf.dtype)
    except DTypeError:
        dtype = str(leaf.dtype)
    return tuple(int(d) for d in leaf.shape), dtype
