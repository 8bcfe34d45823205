"""Pytrees: flattening order, rebuilding, mapping, paths."""

import pytest

from portable_dl.tree import tree_flatten, tree_map, tree_paths, tree_unflatten


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
