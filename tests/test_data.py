"""load_mnist against the real files (shapes, dtypes, class counts, checksums), its download
path against a local HTTP server, its error when nothing can be found; batches on every backend."""

from __future__ import annotations

import functools
import gzip
import http.server
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from portable_dl import ShapeError
from portable_dl.data import MNIST_FILES, ChecksumError, DatasetNotFound, batches, load_mnist, read_idx

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist"

# From the data set's README: examples per digit 0..9.
TRAIN_CLASS_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture
def mnist_dir():
    """The shared, gzip-compressed MNIST files; the test is skipped where they are absent."""
    if not all((SHARED_MNIST / f"{name}.gz").is_file() for name in MNIST_FILES):
        pytest.skip(f"MNIST files not found in {SHARED_MNIST}")
    return SHARED_MNIST


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No $PORTABLE_DL_DATA and an empty cache folder, so only what a test puts in place is found."""
    monkeypatch.delenv("PORTABLE_DL_DATA", raising=False)
    return tmp_path / "cache"


def test_load_mnist_shapes_dtypes_and_class_counts(mnist_dir, isolated):
    x_train, y_train, x_test, y_test = load_mnist(mnist_dir, cache_dir=isolated, download=False)
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_CLASS_COUNTS
    assert np.bincount(y_test, minlength=10).tolist() == TEST_CLASS_COUNTS
    assert x_train.min() == 0 and x_train.max() == 255


def test_environment_variable_and_uncompressed_files(mnist_dir, isolated, tmp_path, monkeypatch):
    folder = tmp_path / "from_env"
    folder.mkdir()
    for name in MNIST_FILES:
        if "labels" in name:  # uncompressed copies of the small files, compressed links to the large
            (folder / name).write_bytes(gzip.decompress((mnist_dir / f"{name}.gz").read_bytes()))
        else:
            (folder / f"{name}.gz").symlink_to(mnist_dir / f"{name}.gz")
    monkeypatch.setenv("PORTABLE_DL_DATA", str(folder))
    data = load_mnist(cache_dir=isolated, download=False)
    assert np.bincount(data.y_test, minlength=10).tolist() == TEST_CLASS_COUNTS
    assert data.x_test.shape == (10000, 28, 28)


def test_corrupted_file_raises_checksum_error(mnist_dir, isolated, tmp_path):
    root = tmp_path / "corrupt"
    root.mkdir()
    for name in MNIST_FILES:
        (root / f"{name}.gz").symlink_to(mnist_dir / f"{name}.gz")
    labels = bytearray(gzip.decompress((mnist_dir / "train-labels-idx1-ubyte.gz").read_bytes()))
    labels[100] = (labels[100] + 1) % 10  # one label changed: still a valid IDX file
    (root / "train-labels-idx1-ubyte.gz").unlink()
    (root / "train-labels-idx1-ubyte").write_bytes(bytes(labels))
    with pytest.raises(ChecksumError, match="train-labels-idx1-ubyte.*SHA-256"):
        load_mnist(root, cache_dir=isolated, download=False)


def test_read_idx_rejects_a_malformed_header(tmp_path):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + bytes(3))  # says 5 bytes, holds 3
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        read_idx(path)
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(path)


def closed_port() -> int:
    """A local port nothing listens on: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def local_mirror(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/mirror; yields (base URL, folder)."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", folder
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_skips_refused_and_wrong_mirrors(mnist_dir, isolated, tmp_path, local_mirror):
    url, folder = local_mirror
    for name in MNIST_FILES:
        shutil.copyfile(mnist_dir / f"{name}.gz", folder / f"{name}.gz")
    wrong = folder / "wrong"
    wrong.mkdir()
    for name in MNIST_FILES:  # a mirror serving a different (valid gzip) file under each name
        (wrong / f"{name}.gz").write_bytes(gzip.compress(b"not mnist"))
    mirrors = [f"http://127.0.0.1:{closed_port()}/", url + "wrong/", url]
    root = tmp_path / "downloaded"
    x_train, y_train, x_test, y_test = load_mnist(root, mirrors=mirrors, cache_dir=isolated, timeout=10)
    assert np.bincount(y_test, minlength=10).tolist() == TEST_CLASS_COUNTS
    assert x_train.shape == (60000, 28, 28)
    assert sorted(p.name for p in root.iterdir()) == sorted(f"{name}.gz" for name in MNIST_FILES)  # no partial files
    # A second load reads the saved files: with no mirror at all it still succeeds.
    assert np.array_equal(load_mnist(root, mirrors=[], cache_dir=isolated).y_train, y_train)


def test_clear_error_when_nothing_is_found_and_network_refused(isolated, tmp_path):
    root = tmp_path / "empty"
    mirror = f"http://127.0.0.1:{closed_port()}/"
    with pytest.raises(DatasetNotFound) as caught:
        load_mnist(root, mirrors=[mirror], cache_dir=isolated, timeout=5)
    message = str(caught.value)
    assert "train-images-idx3-ubyte" in message and str(root) in message and str(isolated) in message
    assert mirror in message and "Put the four MNIST IDX files" in message
    assert isinstance(caught.value, FileNotFoundError)
    assert not root.exists() or not any(root.iterdir())


def test_download_false_does_not_touch_the_network(isolated, tmp_path):
    with pytest.raises(DatasetNotFound, match="download=False"):
        load_mnist(tmp_path / "empty", mirrors=["http://127.0.0.1:9/"], cache_dir=isolated, download=False)


def test_batches_cover_every_example_once_in_seeded_order(backend):
    x = np.arange(23 * 2, dtype=np.float64).reshape(23, 2)
    y = np.arange(23, dtype=np.int64)
    got = list(batches(x, y, 5, backend, seed=7, dtype="float32"))
    assert [backend.to_numpy(xb).shape for xb, _ in got] == [(5, 2)] * 4 + [(3, 2)]
    labels = np.concatenate([backend.to_numpy(yb) for _, yb in got])
    expected_order = np.random.default_rng(7).permutation(23)
    assert labels.tolist() == expected_order.tolist()
    inputs = np.concatenate([backend.to_numpy(xb) for xb, _ in got])
    assert inputs.dtype == np.float32
    np.testing.assert_array_equal(inputs, x[expected_order].astype(np.float32))
    assert backend.to_numpy(got[0][1]).dtype.kind == "i"  # int64, or int32 where the backend has no int64 (JAX)


def test_batches_in_order_and_drop_last(backend):
    x = np.arange(10, dtype=np.float32)[:, None]
    y = np.arange(10, dtype=np.int64)
    got = [backend.to_numpy(yb).tolist() for _, yb in batches(x, y, 4, backend, shuffle=False, drop_last=True)]
    assert got == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_batches_skip_leaves_out_the_first_batches_of_the_same_order(backend):
    """skip=2 gives the batches after the first two of the seeded permutation (drawn by
    hand here), shuffled or not; a bad skip is a ValueError."""
    x = np.arange(23, dtype=np.float32)[:, None]
    y = np.arange(23, dtype=np.int64)
    order = np.random.default_rng(7).permutation(23)
    shuffled = [backend.to_numpy(yb).tolist() for _, yb in batches(x, y, 5, backend, seed=7, skip=2)]
    assert shuffled == [order[10:15].tolist(), order[15:20].tolist(), order[20:].tolist()]
    in_order = [backend.to_numpy(yb).tolist() for _, yb in batches(x, y, 10, backend, shuffle=False, skip=2)]
    assert in_order == [[20, 21, 22]]
    assert list(batches(x, y, 5, backend, seed=7, skip=5)) == []
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="skip"):
            next(batches(x, y, 5, backend, skip=bad))


def test_batches_reject_mismatched_lengths(backend):
    with pytest.raises(ShapeError, match=r"\(10, 3\) and \(9,\)"):
        next(batches(np.zeros((10, 3)), np.zeros(9), 4, backend))
    with pytest.raises(ValueError, match="batch_size"):
        next(batches(np.zeros((10, 3)), np.zeros(10), 0, backend))
