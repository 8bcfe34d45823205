"""The trees of a checkpoint: tensor names, the structure as JSON, and matching ``like`` trees.

A leaf's tensor is named ``<section>/<path>``: ``params/layers.0.W``. ``"/"`` separates the
section from the path and ``"."`` the keys and list positions of the path; a dict key
containing ``"."``, ``"/"`` or ``"%"`` has them written ``%2E``, ``%2F``, ``%25``, so no two
leaves share a name. A structure (a :class:`~portable_dl.tree.TreeDef`) is stored as JSON
that keeps dict key order, lists, tuples and None exactly.
"""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backend import Backend
from ..errors import CheckpointError, DTypeError
from ..tree import TreeDef, tree_flatten
from .tensors import dtype_matches

if TYPE_CHECKING:
    from .header import TensorEntry

#: The two trees a checkpoint holds, in the order their tensors are named.
SECTIONS = ("params", "opt_state")
_SECTION_SEPARATOR = "/"
_PATH_SEPARATOR = "."
#: Characters of dict keys escaped in tensor names; "%" first, so escaping is reversible.
_ESCAPES = (("%", "%25"), (".", "%2E"), ("/", "%2F"))


# ------------------------------------------------------------------- tensor names
def tensor_name(section: str, path: tuple[str, ...]) -> str:
    """``params`` for the root, ``params/layers.0.W`` below it (``path`` already escaped)."""
    return section if not path else section + _SECTION_SEPARATOR + _PATH_SEPARATOR.join(path)


def leaf_names(treedef: TreeDef, section: str) -> list[str]:
    """The tensor names of the leaves, in flattening order."""
    names: list[str] = []

    def walk(node: TreeDef, path: tuple[str, ...]) -> None:
        if node.kind == "leaf":
            names.append(tensor_name(section, path))
        for key, child in zip(_child_keys(node), node.children):
            walk(child, path + (key,))

    walk(treedef, ())
    return names


def check_keys(treedef: TreeDef, section: str, path: tuple[str, ...] = ()) -> None:
    """CheckpointError for a dict key that is not a string: JSON would turn ``1`` into ``"1"``."""
    if treedef.kind == "dict":
        for key in treedef.keys:
            if not isinstance(key, str):
                raise CheckpointError(
                    f"{tensor_name(section, path)}: the dict key {key!r} is a {type(key).__name__}; "
                    "checkpoints hold dicts with string keys only"
                )
    for key, child in zip(_child_keys(treedef), treedef.children):
        check_keys(child, section, path + (key,))


def _child_keys(treedef: TreeDef) -> list[str]:
    """The path components of a node's children: escaped dict keys, or list positions."""
    if treedef.kind == "dict":
        return [_escape(key) for key in treedef.keys]
    return [str(index) for index in range(len(treedef.children))]


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
        if not (isinstance(keys, list) and len(keys) == len(children) and all(isinstance(k, str) for k in keys)
                and len(set(keys)) == len(keys)):
            raise ValueError(f"the dict keys {str(keys)[:80]}")
        return TreeDef(kind, tuple(keys), children)

    try:
        return build(encoded)
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"the checkpoint {path} has a corrupted header: its {section} structure has "
                              f"{error} that no tree has") from error


# -------------------------------------------------------- matching ``like`` trees
def mismatches(stored_tree: TreeDef, tensors: dict[str, TensorEntry], section: str, expected: Any,
               backend: Backend) -> list[str]:
    """Every difference between the checkpoint's ``section`` tree (``stored_tree``, whose
    leaves ``tensors`` describes by name) and the tree ``expected``, loaded on ``backend``."""
    leaves, expected_def = tree_flatten(expected)
    expected_leaves = dict(zip(leaf_names(expected_def, section), leaves))
    problems: list[str] = []

    def compare(stored: TreeDef, wanted: TreeDef, path: tuple[str, ...]) -> None:
        name = tensor_name(section, path)
        if stored.kind != wanted.kind:
            problems.append(f"{name}: the checkpoint has {_describe_node(stored)}, expected {_describe_node(wanted)}")
            return
        if stored.kind == "leaf":
            entry = tensors[name]
            shape, dtype = _shape_and_dtype(expected_leaves[name], backend)
            if entry.shape != shape or not dtype_matches(entry.dtype, dtype, backend):
                problems.append(f"{name}: the checkpoint has {entry.dtype} {entry.shape}, expected {dtype} {shape}")
            return
        stored_children = dict(zip(_child_keys(stored), stored.children))
        wanted_children = dict(zip(_child_keys(wanted), wanted.children))
        for key in wanted_children:
            if key not in stored_children:
                problems.append(f"{tensor_name(section, path + (key,))}: missing from the checkpoint")
        for key, child in stored_children.items():
            if key not in wanted_children:
                problems.append(f"{tensor_name(section, path + (key,))}: in the checkpoint but not expected")
            else:
                compare(child, wanted_children[key], path + (key,))

    compare(stored_tree, expected_def, ())
    return problems


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
