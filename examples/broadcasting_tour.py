"""A tour of the broadcasting rules, on every installed backend, through portable_dl and
through each framework called directly.

The classic exercise: an array of shape (5, 3, 2) added to arrays of shapes (3, 2), (5, 2),
(5, 3), (5, 1, 2), (1, 3, 2), (5, 3, 1) and () (a scalar); and a matrix (m, n) = (4, 3)
added to (n,), (m,) and (m, 1). For each pair the rule is worked out (the shapes aligned on
their last axis, each axis judged), then every backend adds two arrays of ones of those
shapes with ``xp.add`` and prints the result's shape or portable_dl's ``BroadcastError``,
beside what the framework itself says when called without portable_dl (``np.add``,
``torch.add``, ``tf.add``, ``mx.add``, ``jnp.add`` on arrays of its default device): the
same rule everywhere, but five different exceptions and messages where portable_dl has one.

The figure draws each pair's alignment: which sizes match, which size-1 (or missing) axes
are stretched, and where the rule fails.

    python examples/broadcasting_tour.py                     # every installed backend
    python examples/broadcasting_tour.py --backends numpy,torch --no-plot

The program exits with status 1 when portable_dl's result on some backend differs from the
rule's.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable

import _shared
import numpy as np

import portable_dl

M, N = 4, 3  # the matrix of the second exercise: m != n, so that (m, n) + (m,) must fail

PAIRS = [((5, 3, 2), other) for other in [(3, 2), (5, 2), (5, 3), (5, 1, 2), (1, 3, 2), (5, 3, 1), ()]] + [
    ((M, N), (N,)),
    ((M, N), (M,)),
    ((M, N), (M, 1)),
]

RULE = """\
Broadcasting: two shapes are aligned on their LAST axis (a shape with fewer axes is padded
with size-1 axes on the left); then, axis by axis, the sizes must be equal or one of them
must be 1, and the result takes the larger. A size-1 axis is stretched (its values repeated)
to the other size; sizes such as 3 and 5 have no meaning together: an error."""

MESSAGE_WIDTH = 110  # a framework's message, cut to one line of this many characters


def parse_arguments(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_shared.HelpFormatter)
    _shared.add_backend_arguments(parser)
    _shared.add_dtype_argument(parser)
    _shared.add_plot_arguments(parser, "broadcasting_tour.png")
    arguments = parser.parse_args(argv)
    return arguments, _shared.requested_backend_names(parser, arguments.backends)


# ------------------------------------------------------------------ the rule
def align(shape_a: tuple[int, ...], shape_b: tuple[int, ...]) -> list[tuple[int | None, int | None]]:
    """The pairs of sizes axis by axis, aligned on the last axis; None where a shape has no such axis."""
    ndim = max(len(shape_a), len(shape_b))
    padded_a = (None,) * (ndim - len(shape_a)) + tuple(shape_a)
    padded_b = (None,) * (ndim - len(shape_b)) + tuple(shape_b)
    return list(zip(padded_a, padded_b))


def axis_result(size_a: int | None, size_b: int | None) -> int | None:
    """The result's size on one axis, or None when the two sizes do not broadcast."""
    sizes = [size for size in (size_a, size_b) if size is not None]
    if len(sizes) == 1 or sizes[0] == sizes[1] or 1 in sizes:
        return max(sizes)
    return None


def broadcast_by_rule(shape_a: tuple[int, ...], shape_b: tuple[int, ...]) -> tuple[int, ...] | None:
    """The broadcast shape by the rule above, or None when the shapes do not broadcast."""
    sizes = [axis_result(a, b) for a, b in align(shape_a, shape_b)]
    return None if None in sizes else tuple(sizes)


def print_alignment(shape_a: tuple[int, ...], shape_b: tuple[int, ...]) -> None:
    """The two shapes right-aligned, and the result axis by axis (X where it fails)."""
    pairs = align(shape_a, shape_b)

    def row(label: str, sizes: list) -> str:
        return f"    {label:>6}  " + "".join(f"{'' if size is None else size:>4}" for size in sizes)

    print(row("a", [a for a, _ in pairs]))
    print(row("b", [b for _, b in pairs]) + ("(no axes: a scalar)" if not shape_b else ""))
    results = [axis_result(a, b) for a, b in pairs]
    print(row("a + b", ["X" if size is None else size for size in results]))
    failures = [
        f"axis {axis - len(pairs)}: {a} vs {b}"
        for axis, ((a, b), size) in enumerate(zip(pairs, results))
        if size is None
    ]
    verdict = broadcast_by_rule(shape_a, shape_b)
    print(
        f"    rule: {verdict}"
        if verdict is not None
        else f"    rule: does not broadcast ({'; '.join(failures)}: neither is 1)"
    )


# ------------------------------------------------------------------ the frameworks directly
# Each adds two arrays of ones with the framework's own add, imported only when called.


def numpy_add(shape_a: tuple, shape_b: tuple) -> tuple:
    return np.add(np.ones(shape_a), np.ones(shape_b)).shape


def torch_add(shape_a: tuple, shape_b: tuple) -> tuple:
    import torch

    return tuple(torch.add(torch.ones(shape_a), torch.ones(shape_b)).shape)


def tensorflow_add(shape_a: tuple, shape_b: tuple) -> tuple:
    import tensorflow as tf

    return tuple(tf.add(tf.ones(shape_a), tf.ones(shape_b)).shape)


def mlx_add(shape_a: tuple, shape_b: tuple) -> tuple:
    import mlx.core as mx

    total = mx.add(mx.ones(shape_a), mx.ones(shape_b))
    mx.eval(total)  # MLX is lazy: compute, so that any error surfaces here
    return tuple(total.shape)


def jax_add(shape_a: tuple, shape_b: tuple) -> tuple:
    import jax.numpy as jnp

    return tuple(jnp.add(jnp.ones(shape_a), jnp.ones(shape_b)).shape)


DIRECT_ADD: dict[str, Callable[[tuple, tuple], tuple]] = {
    "numpy": numpy_add,
    "torch": torch_add,
    "tensorflow": tensorflow_add,
    "mlx": mlx_add,
    "jax": jax_add,
}


def one_line(error: Exception) -> str:
    """``"Type: message"`` on one line, at most MESSAGE_WIDTH characters."""
    # TensorFlow prefixes its messages with the name of the wrapped kernel in {{...}}: noise here.
    message = re.sub(r"^\{\{[^}]*\}\}\s*", "", str(error))
    text = " ".join(f"{type(error).__name__}: {message}".split())
    return text if len(text) <= MESSAGE_WIDTH else text[: MESSAGE_WIDTH - 3] + "..."


def directly(backend_name: str, shape_a: tuple, shape_b: tuple) -> str:
    add = DIRECT_ADD.get(backend_name)
    if add is None:
        return "(no direct call written for this framework)"
    try:
        return str(add(shape_a, shape_b))
    except Exception as error:  # whatever the framework raises is what this column shows
        return one_line(error)


# ------------------------------------------------------------------ through portable_dl
def through_portable_dl(
    backend: portable_dl.Backend, shape_a: tuple, shape_b: tuple, dtype: str = "float32"
) -> tuple[tuple | None, str]:
    """``xp.add`` of two arrays of ones in ``dtype``: (result shape, text), or (None, the BroadcastError)."""
    a = backend.asarray(np.ones(shape_a, dtype=dtype))
    b = backend.asarray(np.ones(shape_b, dtype=dtype))
    try:
        total = backend.xp.add(a, b)
    except portable_dl.BroadcastError as error:
        return None, f"BroadcastError: {error}"
    shape = tuple(int(size) for size in total.shape)
    return shape, str(shape)


def tour_pair(
    backends: list, shape_a: tuple, shape_b: tuple, dtype: str = "float32"
) -> tuple[bool, dict[str, tuple | None]]:
    """Print one pair's alignment and table; whether every backend followed the rule, and
    each backend's result shape (None: BroadcastError), by "name (device)"."""
    print(f"\n{shape_a} with {shape_b}")
    print_alignment(shape_a, shape_b)
    expected = broadcast_by_rule(shape_a, shape_b)
    rows, results, followed = [], {}, True
    for backend in backends:
        shape, text = through_portable_dl(backend, shape_a, shape_b, dtype)
        label = f"{backend.name} ({backend.device})"
        results[label] = shape
        followed = followed and shape == expected
        rows.append([label, text, directly(backend.name, shape_a, shape_b)])
    print(
        _shared.format_table(
            ["backend", "portable_dl xp.add", "the framework's own add"], rows, left_columns=3, separator=" | "
        )
    )
    return followed, results


# ------------------------------------------------------------------ the figure
def plot_alignments(pairs: list, disagreements: dict, output: str) -> None:
    """One panel per pair: the shapes as rows of boxes aligned on the last axis, coloured
    by what the rule does with each axis."""
    pyplot = _shared.load_pyplot()
    from matplotlib.patches import Patch, Rectangle

    colors = {"equal": "#9be29b", "stretched": "#ffe08a", "conflict": "#f4a0a0", "result": "#cfd8ff"}
    columns = 3
    rows = -(-len(pairs) // columns)
    widest = max(len(shape) for pair in pairs for shape in pair)
    figure, axes = pyplot.subplots(rows, columns, figsize=(12, 2.4 * rows))
    for panel, ((shape_a, shape_b), ax) in enumerate(zip(pairs, axes.flat)):
        pairs_of_sizes = align(shape_a, shape_b)
        ndim = len(pairs_of_sizes)
        for axis, (size_a, size_b) in enumerate(pairs_of_sizes):
            result = axis_result(size_a, size_b)
            x = widest - ndim + axis  # the last axis in the same column in every panel
            for row, size in ((2, size_a), (1, size_b)):
                kind = "conflict" if result is None else "equal" if size == result else "stretched"
                ax.add_patch(
                    Rectangle(
                        (x, row),
                        0.9,
                        0.8,
                        facecolor=colors[kind],
                        edgecolor="black",
                        linestyle="-" if size is not None else ":",
                    )
                )
                ax.text(x + 0.45, row + 0.4, "1" if size is None else str(size), ha="center", va="center")
            ax.add_patch(
                Rectangle(
                    (x, 0), 0.9, 0.8, facecolor=colors["conflict" if result is None else "result"], edgecolor="black"
                )
            )
            ax.text(x + 0.45, 0.4, "X" if result is None else str(result), ha="center", va="center")
        verdict = broadcast_by_rule(shape_a, shape_b)
        title = f"{shape_a} + {shape_b} -> {verdict if verdict is not None else 'BroadcastError'}"
        if disagreements.get(panel):
            title += f"\n(differs on {', '.join(disagreements[panel])})"
        ax.set_title(title, fontsize=9)
        ax.set_xlim(-0.2, widest + 0.1)
        ax.set_ylim(-0.1, 2.9)
        ax.set_xticks([widest - ndim + axis + 0.45 for axis in range(ndim)], [str(axis - ndim) for axis in range(ndim)])
        ax.set_yticks([0.4, 1.4, 2.4], ["a + b", "b", "a"])
        ax.set_xlabel("axis (counted from the last)", fontsize=8)
        ax.tick_params(labelsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    for ax in list(axes.flat)[len(pairs) :]:
        ax.set_visible(False)
    legend = [
        Patch(facecolor=colors["equal"], edgecolor="black", label="size equal to the result's"),
        Patch(facecolor=colors["stretched"], edgecolor="black", label="size 1 (dotted: missing axis) stretched"),
        Patch(facecolor=colors["conflict"], edgecolor="black", label="sizes differ and neither is 1: error"),
        Patch(facecolor=colors["result"], edgecolor="black", label="result size"),
    ]
    figure.legend(handles=legend, loc="lower right", bbox_to_anchor=(0.98, 0.04), fontsize=9)
    figure.suptitle("Broadcasting: shapes aligned on the last axis (sizes in elements)")
    figure.tight_layout()
    _shared.save_figure(figure, output)


def main(argv: list[str] | None = None) -> int:
    arguments, names = parse_arguments(argv)
    if not arguments.no_plot:
        _shared.load_pyplot()  # fail now, not after the work, when matplotlib is missing
    backends = _shared.computing_in(_shared.create_backends(names, arguments.device), arguments.dtype)
    if not backends:
        print("no backend to run", file=sys.stderr)
        return 1
    print(RULE)
    print(f"\nThe classic exercise: (5, 3, 2) with seven shapes; then (m, n) = ({M}, {N}) with (n,), (m,), (m, 1).")
    disagreements: dict[int, list[str]] = {}
    for index, (shape_a, shape_b) in enumerate(PAIRS):
        followed, results = tour_pair(backends, shape_a, shape_b, arguments.dtype)
        if not followed:
            expected = broadcast_by_rule(shape_a, shape_b)
            disagreements[index] = [name for name, shape in results.items() if shape != expected]
    if not arguments.no_plot:
        plot_alignments(PAIRS, disagreements, arguments.output)
    if disagreements:
        print(
            "\nportable_dl departs from the rule on: "
            + "; ".join(
                f"{PAIRS[index][0]} with {PAIRS[index][1]} ({', '.join(names_)})"
                for index, names_ in disagreements.items()
            )
        )
        return 1
    print("\nportable_dl follows the rule on every backend, with one exception type and one message.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
