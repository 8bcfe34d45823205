"""Pytrees: flattening order, rebuilding, mapping, paths."""

import pytest

from portable_dl.errors import ShapeError, TreeStructureError
from portable_dl.tree import (
    path_string,
    tree_flatten,
    tree_flatten_with_path,
    tree_map,
    tree_map_with_path,
    tree_paths,
    tree_unflatten,
)


def test_flatten_and_unflatten_round_trip():
    tree = {"layers": [{"W": 1, "b": 2}, {"W": 3}], "extra": (4, None, [5])}
    leaves, treedef = tree_flatten(tree)
    assert leaves == [1, 2, 3, 4, 5]
    assert treedef.num_leaves == 5
    rebuilt = tree_unflatten(treedef, [10, 20, 30, 40, 50])
    assert rebuilt == {"layers": [{"W": 10, "b": 20}, {"W": 30}], "extra": (40, None, [50])}
    assert isinstance(rebuilt["extra"], tuple) and isinstance(rebuilt["extra"][2], list)


def test_tree_map_over_several_trees_and_none():
    assert tree_map(lambda a, b: a + b, {"x": 1, "y": None}, {"x": 2, "y": None}) == {"x": 3, "y": None}
    with pytest.raises(ValueError, match=r"differ in structure"):
        tree_map(lambda a, b: a, {"x": 1}, {"y": 1})


def test_unflatten_checks_the_leaf_count():
    _, treedef = tree_flatten([1, 2])
    with pytest.raises(ValueError, match=r"2 leaves, got 3"):
        tree_unflatten(treedef, [1, 2, 3])


def test_paths_name_the_leaves_in_order():
    assert tree_paths({"layers": [{"W": 1, "b": 2}], "s": 3}) == ["layers.0.W", "layers.0.b", "s"]


# ------------------------------------------------------- several trees, one walk
def test_a_mismatch_deep_in_the_tree_names_its_path():
    first = {"layers": [{"W": 1, "b": 2}, {"W": 3, "b": 4}]}
    second = {"layers": [{"W": 1, "b": 2}, {"W": 3, "c": 4}]}
    with pytest.raises(TreeStructureError) as raised:
        tree_map(lambda a, b: a, first, second)
    error = raised.value
    assert isinstance(error, ShapeError) and isinstance(error, ValueError)
    assert error.path == ("layers", 1) and error.argument == 1
    assert str(error) == (
        "trees differ in structure at 'layers.1': the first tree has a dict with keys ['W', 'b'], "
        "tree 2 has a dict with keys ['W', 'c']"
    )


def test_the_error_names_which_of_several_trees_differs():
    with pytest.raises(
        TreeStructureError, match=r"at 'a': the first tree has a list of 2, tree 3 has a list of 3"
    ) as raised:
        tree_map(lambda *leaves: 0, {"a": [1, 2]}, {"a": [1, 2]}, {"a": [1, 2, 3]})
    assert raised.value.argument == 2


def test_dicts_are_matched_by_key_and_keep_the_first_trees_order():
    result = tree_map(lambda a, b: (a, b), {"z": 1, "a": 2}, {"a": 20, "z": 10}, is_leaf=lambda x: isinstance(x, int))
    assert result == {"z": (1, 10), "a": (2, 20)} and list(result) == ["z", "a"]
    _, treedef = tree_flatten(result, is_leaf=lambda x: isinstance(x, tuple))
    assert treedef.keys == ("z", "a")


def test_lists_and_tuples_do_not_match_each_other():
    with pytest.raises(
        TreeStructureError, match="at the root: the first tree has a list of 2, tree 2 has a tuple of 2"
    ):
        tree_map(lambda a, b: a, [1, 2], (1, 2))
    with pytest.raises(TreeStructureError, match=r"at 'x': the first tree has a tuple of 1, tree 2 has a list of 1"):
        tree_map(lambda a, b: a, {"x": (1,)}, {"x": [1]})
    with pytest.raises(
        TreeStructureError,
        match=r"at '0': the first tree has a dict with keys \['k'\], tree 2 has a "
        r"leaf \(int\)",
    ):
        tree_map(lambda a, b: a, [{"k": 1}], [1])


def test_none_rules():
    # None in the first tree: no leaf, and the others must hold None there too.
    assert tree_map(lambda a, b: a + b, {"x": 1, "y": None}, {"x": 2, "y": None}) == {"x": 3, "y": None}
    with pytest.raises(TreeStructureError, match=r"at 'y': the first tree has None, tree 2 has a leaf \(int\)"):
        tree_map(lambda a, b: a, {"x": 1, "y": None}, {"x": 2, "y": 5})
    # None in another tree where the first has a subtree: None at each of its leaves.
    assert tree_map(lambda a, b: (a, b), {"l": [1, 2]}, {"l": None}, is_leaf=lambda x: isinstance(x, int)) == {
        "l": [(1, None), (2, None)]
    }
    # None as a leaf when asked for.
    assert tree_map(lambda a: "none" if a is None else a, [None, 1], is_leaf=lambda x: x is None) == ["none", 1]


def test_other_trees_may_hold_subtrees_below_the_first_trees_leaves():
    params = {"W": 1.0, "layers": [2.0]}
    slots = {"W": {"m": 10.0, "v": 11.0}, "layers": [{"m": 20.0, "v": 21.0}]}
    assert tree_map(lambda p, s: p + s["m"] * s["v"], params, slots) == {"W": 111.0, "layers": [422.0]}


def test_map_and_flatten_with_path():
    tree = {"layers": [{"W": "a"}, ("b", None)], "s": "c"}
    assert tree_map_with_path(lambda path, leaf: (path, leaf), tree) == {
        "layers": [{"W": (("layers", 0, "W"), "a")}, ((("layers", 1, 0), "b"), None)],
        "s": (("s",), "c"),
    }
    entries, treedef = tree_flatten_with_path(tree, tree)
    assert entries == [(("layers", 0, "W"), "a", "a"), (("layers", 1, 0), "b", "b"), (("s",), "c", "c")]
    assert treedef.leaf_paths() == [path for path, *_ in entries] and treedef.num_leaves == 3
    assert [path for path, node in treedef.nodes()] == [
        (),
        ("layers",),
        ("layers", 0),
        ("layers", 0, "W"),
        ("layers", 1),
        ("layers", 1, 0),
        ("layers", 1, 1),
        ("s",),
    ]
    assert path_string(("layers", 0, "W")) == "layers.0.W" and path_string(()) == ""
    assert tree_paths(tree, separator="/") == ["layers/0/W", "layers/1/0", "s"]
