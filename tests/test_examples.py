"""The example programs, run as a user runs them: ``python examples/<name>.py`` in a
subprocess from the repository root, with small settings.

Each program runs once per module over the installed backends (a process start and the
framework imports cost seconds); the tests then read its output backend by backend, through
the ``backend`` fixture, and check the numbers against values derived here by hand.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKEND_NAMES, require_mnist
from helpers import assert_close

REPOSITORY = Path(__file__).resolve().parents[1]
EXAMPLES = ["compare_backends.py", "gemm_flops.py", "backprop_by_hand.py", "broadcasting_tour.py", "mnist_textbook.py"]
#: The examples that train on MNIST, and so take --data-dir and --download.
ON_MNIST = ["compare_backends.py", "mnist_textbook.py"]
#: The examples that draw a figure, and so take --output and --no-plot.
DRAWING = ["compare_backends.py", "gemm_flops.py", "backprop_by_hand.py", "broadcasting_tour.py"]


def no_plot(example: str) -> list[str]:
    """``--no-plot`` for an example that draws; nothing for one that does not."""
    return ["--no-plot"] if example in DRAWING else []


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def start_example(name: str, *arguments: str, environment: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPOSITORY / "examples" / name), *arguments],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run_example(name: str, *arguments: str, environment: dict | None = None) -> subprocess.CompletedProcess:
    return finish(start_example(name, *arguments, environment=environment))


@pytest.fixture(scope="module")
def every_backend_runs():
    """backprop_by_hand and broadcasting_tour over the installed backends, started together:
    most of their time is importing the frameworks, which overlaps on two cores."""
    backends = ",".join(BACKEND_NAMES)
    started = {
        name: start_example(name, "--backends", backends, "--no-plot")
        for name in ("backprop_by_hand.py", "broadcasting_tour.py")
    }
    return {name: finish(process) for name, process in started.items()}


def succeeded(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit status {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def assert_png(path: Path) -> None:
    assert path.is_file(), f"no figure at {path}"
    content = path.read_bytes()
    assert content[:8] == PNG_SIGNATURE and len(content) > 1000, f"{path} is not a PNG image"


def table_rows(output: str, *first_cells: str) -> list[list[str]]:
    """The rows, as lists of cells, of the tables in ``output`` (columns separated by two or
    more spaces) whose first cells are ``first_cells``."""
    rows = [re.split(r"\s{2,}", line.strip()) for line in output.splitlines()]
    return [cells for cells in rows if tuple(cells[: len(first_cells)]) == first_cells]


def table_row(output: str, *first_cells: str) -> list[str]:
    """The one row whose first cells are ``first_cells``."""
    rows = table_rows(output, *first_cells)
    assert len(rows) == 1, f"expected one row starting {first_cells}, found {len(rows)} in:\n{output}"
    return rows[0]


# ------------------------------------------------------------------ every example
@pytest.mark.parametrize("example", EXAMPLES)
def test_help_lists_the_common_options(example):
    result = succeeded(run_example(example, "--help"))
    assert result.stdout.startswith("usage:")
    options = set(re.findall(r"^  (--[a-z-]+)", result.stdout, flags=re.MULTILINE))
    assert {"--backends", "--device", "--dtype"} <= options, options
    assert ({"--data-dir", "--download"} <= options) == (example in ON_MNIST), options
    assert ({"--output", "--no-plot"} <= options) == (example in DRAWING), options
    assert "--dtypes" not in options


@pytest.mark.parametrize("example", EXAMPLES)
def test_unknown_dtype_is_a_usage_error(example):
    result = run_example(example, "--backends", "numpy", "--dtype", "float16", *no_plot(example))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stdout + result.stderr
    assert "--dtype" in result.stderr.splitlines()[-1] and "float16" in result.stderr.splitlines()[-1]


@pytest.mark.parametrize("example", EXAMPLES)
def test_unknown_backend_is_a_usage_error(example):
    result = run_example(example, "--backends", "numpy,no_such_backend", *no_plot(example))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "unknown backend no_such_backend" in result.stderr and "known backends: numpy" in result.stderr


def test_absent_device_is_skipped_with_the_reason():
    result = run_example("backprop_by_hand.py", "--backends", "numpy", "--device", "cuda", "--no-plot")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "skipped numpy on cuda: device 'cuda' is not available to the numpy backend" in result.stdout
    assert "no backend to run" in result.stderr


# ------------------------------------------------------------------ backprop_by_hand
@pytest.fixture(scope="module")
def backprop_output(every_backend_runs):
    return succeeded(every_backend_runs["backprop_by_hand.py"]).stdout


def sigmoid_neuron_values() -> list[float]:
    """f and its gradient in the order w0, w1, w2, x0, x1, at w = (2, -3, -3), x = (-1, -2):
    z = 2 (-1) + (-3)(-2) - 3 = 1, f = sigmoid(1), df/dz = f (1 - f); dz/dw = (x0, x1, 1),
    dz/dx = (w0, w1)."""
    f = 1.0 / (1.0 + math.exp(-1.0))
    local = f * (1.0 - f)
    return [f, -1.0 * local, -2.0 * local, local, 2.0 * local, -3.0 * local]


HAND_VALUES = [
    [-12.0, -4.0, -4.0, 3.0],  # (x + y) z: q = 3, f = 3 (-4); df/dx = df/dy = z, df/dz = q
    [-18.0, -3.0, -6.0, 3.0],  # (x + y)(x + z): 3 (-6); df/dx = (x + z) + (x + y), df/dy = x + z, df/dz = x + y
    sigmoid_neuron_values(),
]


def test_backprop_by_hand_prints_the_hand_derivations(backprop_output):
    rows = [line for line in backprop_output.splitlines() if line.startswith("by hand (float64)")]
    assert len(rows) == len(HAND_VALUES)
    for row, expected in zip(rows, HAND_VALUES):
        printed = [float(cell) for cell in re.split(r"\s{2,}", row.strip())[1:]]
        np.testing.assert_allclose(printed, expected, rtol=1e-8)
    # The intermediate values of the sigmoid neuron's chain rule, to the digits printed.
    for step in [
        "z = a + b + w2 = -2 + 6 + -3 = 1",
        "e = exp(-z) = 0.367879",
        "f = 1 / d = 0.731059",
        "df/dz = df/de * (-e) = -0.534447 * -0.367879 = 0.196612",
        "df/dx1 = df/dz * db/dx1",
    ]:
        assert step in backprop_output
    assert "df/dx = df/dq * dq/dx + df/dr * dr/dx = -6 * 1 + 3 * 1 = -3" in backprop_output


def test_backprop_by_hand_agrees_on_every_backend(backend, backprop_output):
    label = f"{backend.name} ({backend.device}, float32)"
    rows = [line for line in backprop_output.splitlines() if line.startswith(label + " ")]
    assert len(rows) == len(HAND_VALUES), backprop_output
    printed = []
    for row, expected in zip(rows, HAND_VALUES):
        cells = re.split(r"\s{2,}", row.strip())
        printed.append([float(cell) for cell in cells[1 : 1 + len(expected)]])
        assert_close(printed[-1], expected, "float32", what=row)
        assert cells[-1] == "ok"
    sigmoid_neuron = printed[2]  # to the textbook's four digits
    np.testing.assert_allclose(sigmoid_neuron, [0.7311, -0.1966, -0.3932, 0.1966, 0.3932, -0.5898], atol=5e-5)


# ------------------------------------------------------------------ broadcasting_tour
@pytest.fixture(scope="module")
def broadcasting_blocks(every_backend_runs):
    output = succeeded(every_backend_runs["broadcasting_tour.py"]).stdout
    assert "align" in output.lower() and "must be 1" in output  # the rule is explained first
    return {block.splitlines()[0]: block for block in output.split("\n\n") if block.strip()}


# Shape pairs and the result by the rule (None: they do not broadcast), worked out by hand.
BROADCAST_CASES = [
    ((5, 3, 2), (3, 2), (5, 3, 2)),
    ((5, 3, 2), (5, 2), None),  # 3 vs 5
    ((5, 3, 2), (5, 3), None),  # 2 vs 3 and 3 vs 5
    ((5, 3, 2), (5, 1, 2), (5, 3, 2)),
    ((5, 3, 2), (1, 3, 2), (5, 3, 2)),
    ((5, 3, 2), (5, 3, 1), (5, 3, 2)),
    ((5, 3, 2), (), (5, 3, 2)),
    ((4, 3), (3,), (4, 3)),
    ((4, 3), (4,), None),  # 3 vs 4
    ((4, 3), (4, 1), (4, 3)),
]


@pytest.mark.parametrize("shape_a, shape_b, expected", BROADCAST_CASES, ids=lambda v: str(v))
def test_broadcasting_tour_result_on_every_backend(backend, broadcasting_blocks, shape_a, shape_b, expected):
    block = broadcasting_blocks[f"{shape_a} with {shape_b}"]
    rows = [line for line in block.splitlines() if line.split(" | ")[0].strip() == f"{backend.name} ({backend.device})"]
    assert len(rows) == 1, block
    _, through_portable_dl, directly = (cell.strip() for cell in rows[0].split(" | "))
    if expected is None:
        assert through_portable_dl == f"BroadcastError: shapes {shape_a} and {shape_b} do not broadcast in add"
        assert directly and directly != str(expected)  # the framework's own error, whatever its words
        assert "\n" not in directly and len(directly) <= 110
    else:
        assert through_portable_dl == str(expected)
        assert directly == str(expected)


# ------------------------------------------------------------------ compare_backends
@pytest.fixture(scope="module")
def mnist_dir():
    return str(require_mnist())


#: Largest divergence of a float32 loss curve from the float64 reference that we accept after
#: 10 steps from the same weights and batches. Each step's loss carries float32 rounding,
#: about 1e-7 relative (measured: 6e-8 to 2e-7 over 50 steps), passed on by the updates;
#: 1e-4 leaves a factor of 500 for that, and is still 100 times below what a different
#: batch, a wrong gradient or a skipped update gives (the losses of two batches differ by
#: 1e-2 or more).
DIVERGENCE_BOUND = 1e-4


def test_compare_backends_table_and_figure(mnist_dir, tmp_path):
    pytest.importorskip("matplotlib")
    names = [name for name in ("numpy", "torch") if name in BACKEND_NAMES]
    figure = tmp_path / "compare.png"
    # 320 images in batches of 32: 10 steps. Eager, since compiling takes longer than training here.
    result = succeeded(
        run_example(
            "compare_backends.py",
            "--backends",
            ",".join(names),
            "--train-size",
            "320",
            "--batch-size",
            "32",
            "--epochs",
            "1",
            "--sizes",
            "784,16,10",
            "--no-compile",
            "--data-dir",
            mnist_dir,
            "--output",
            str(figure),
        )
    )
    assert_png(figure)
    assert str(figure) in result.stdout
    reference = table_row(result.stdout, "numpy (reference)")
    assert reference[1:4] == ["cpu", "float64", "no compiler"] and float(reference[8]) == 0.0
    for name in names:
        device, dtype, compiled, accuracy, last_loss, ms_per_step, steps_per_second, divergence = table_row(
            result.stdout, name
        )[1:9]
        assert dtype == "float32" and compiled in ("no", "no compiler")
        assert 0.0 <= float(accuracy) <= 1.0
        # 10 SGD steps from random weights leave the loss below log(10) = 2.30 (chance)
        # and above 0: a finite number in a narrow band, not just any float.
        assert 0.0 < float(last_loss) < math.log(10.0) + 0.5
        assert math.isfinite(float(ms_per_step)) and float(ms_per_step) > 0
        np.testing.assert_allclose(float(steps_per_second), 1e3 / float(ms_per_step), rtol=0.05)
        assert 0.0 <= float(divergence) <= DIVERGENCE_BOUND


def test_compare_backends_without_mnist_says_so(tmp_path):
    environment = {key: value for key, value in os.environ.items() if key != "PORTABLE_DL_DATA"}
    environment["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # no cached copy either
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_example(
        "compare_backends.py", "--backends", "numpy", "--data-dir", str(empty), "--no-plot", environment=environment
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "MNIST is not available" in result.stderr and "--download" in result.stderr
    assert "portable-dl data mnist" in result.stderr


def test_broken_mnist_file_is_named_without_a_traceback(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    broken = folder / "train-images-idx3-ubyte.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00" + bytes(20))  # a gzip header, then nothing that inflates
    result = run_example("compare_backends.py", "--backends", "numpy", "--data-dir", str(folder), "--no-plot")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"MNIST is not usable: {broken} ")
    assert f"portable-dl data mnist --dir {folder}" in result.stderr


# ------------------------------------------------------------------ mnist_textbook
def textbook_run(mnist_dir: str, dtype: str, *more: str) -> dict[str, float]:
    """One epoch on the first 300 images (30 SGD steps of 10, learning rate 0.1), eager, on NumPy:
    the summary row."""
    result = succeeded(
        run_example(
            "mnist_textbook.py",
            *more,
            "--backends",
            "numpy",
            "--dtype",
            dtype,
            "--epochs",
            "1",
            "--train-size",
            "300",
            "--lr",
            "0.1",
            "--no-compile",
            "--data-dir",
            mnist_dir,
        )
    )
    assert f"on 300 images, {dtype}" in result.stdout
    cells = table_row(result.stdout, "numpy (cpu)")
    return {"dtype": cells[2], "accuracy": float(cells[3]), "loss": float(cells[4])}


def test_mnist_textbook_trains_in_the_dtype_asked_for(mnist_dir):
    single, double = textbook_run(mnist_dir, "float32"), textbook_run(mnist_dir, "float64")
    assert (single["dtype"], double["dtype"]) == ("float32", "float64")  # of the trained parameters
    # 30 steps from the same weights and batches: the two dtypes agree to float32 rounding
    # carried through 30 updates, far below the 4 digits printed; another batch order or a
    # skipped update would move the loss by 1e-2 or more.
    assert single["loss"] == pytest.approx(double["loss"], abs=2e-4)
    # 30 steps learn something (measured: loss 2.11, 42% of the 10,000 test images) but far
    # from all: the epoch's mean loss under chance's log(10) = 2.30, accuracy over 2.5 times chance.
    assert 1.0 < single["loss"] < math.log(10.0) - 0.1
    assert 0.25 < single["accuracy"] < 0.9


def test_mnist_textbook_mixed_bfloat16_keeps_float32_weights(mnist_dir):
    mixed = textbook_run(mnist_dir, "float32", "--precision", "mixed_bfloat16")
    single = textbook_run(mnist_dir, "float32")
    assert mixed["dtype"] == "float32"  # the master weights; the steps computed in bfloat16
    # bfloat16 logits (2**-8 relative) move the epoch's mean loss by about 0.01 (measured 0.008);
    # an update lost or a wrong gradient scale would move it by 0.1 or more.
    assert mixed["loss"] == pytest.approx(single["loss"], abs=0.03)
    assert 0.25 < mixed["accuracy"] < 0.9


# ------------------------------------------------------------------ gemm_flops
def test_gemm_flops_table_budget_and_figure(tmp_path):
    pytest.importorskip("matplotlib")
    figure = tmp_path / "gemm.png"
    # A budget smaller than the first size's timing: N = 16 is measured, 32 and 64 are skipped.
    result = succeeded(
        run_example(
            "gemm_flops.py",
            "--backends",
            "numpy",
            "--min-size",
            "16",
            "--max-size",
            "64",
            "--budget-seconds",
            "0.1",
            "--output",
            str(figure),
        )
    )
    assert_png(figure)
    assert f"os.cpu_count() = {os.cpu_count()}" in result.stdout
    for dtype in ("float32", "float64"):
        cells = table_row(result.stdout, "numpy", "cpu", dtype)
        size, milliseconds, gflops = int(cells[3]), float(cells[4]), float(cells[5])
        assert size == 16 and milliseconds > 0
        # GFLOP/s = 2 N^3 / seconds / 1e9, to the digits printed.
        np.testing.assert_allclose(gflops, 2 * 16**3 / (milliseconds / 1e3) / 1e9, rtol=0.01, atol=0.051)
        assert f"numpy (cpu, {dtype}): N = 32, 64 skipped: N = 32 would take about" in result.stdout
