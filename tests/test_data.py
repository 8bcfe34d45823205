"""load_mnist against the real files (shapes, dtypes, class counts, checksums), its download
path against a local HTTP server, its error when nothing can be found, DataError for every
kind of broken file; download_mnist and `portable-dl data mnist`; batches on every backend."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import require_mnist

import portable_dl
from portable_dl import PortableDLError, ShapeError
from portable_dl.cli import main as command
from portable_dl.data import (
    MNIST_FILES,
    ChecksumError,
    DataError,
    DatasetNotFound,
    batches,
    download_mnist,
    load_mnist,
    read_idx,
)

# From the data set's README: examples per digit 0..9.
TRAIN_CLASS_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture
def mnist_dir():
    """The folder holding the real MNIST files; the test is skipped where there is none."""
    return require_mnist()


def mnist_bytes(folder: Path, name: str) -> bytes:
    """The uncompressed content of the MNIST file ``name`` in ``folder``, stored gzip-compressed or not."""
    compressed = folder / f"{name}.gz"
    return gzip.decompress(compressed.read_bytes()) if compressed.is_file() else (folder / name).read_bytes()


def mnist_gz(folder: Path, name: str) -> bytes:
    """The MNIST file ``name`` of ``folder`` gzip-compressed, as a mirror serves it."""
    compressed = folder / f"{name}.gz"
    return compressed.read_bytes() if compressed.is_file() else gzip.compress((folder / name).read_bytes())


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
        if "labels" in name:  # uncompressed copies of the small files, compressed copies of the large
            (folder / name).write_bytes(mnist_bytes(mnist_dir, name))
        else:
            (folder / f"{name}.gz").write_bytes(mnist_gz(mnist_dir, name))
    monkeypatch.setenv("PORTABLE_DL_DATA", str(folder))
    data = load_mnist(cache_dir=isolated, download=False)
    assert np.bincount(data.y_test, minlength=10).tolist() == TEST_CLASS_COUNTS
    assert data.x_test.shape == (10000, 28, 28)


def test_corrupted_file_raises_checksum_error(mnist_dir, isolated, tmp_path):
    root = tmp_path / "corrupt"
    root.mkdir()
    for name in MNIST_FILES:
        (root / f"{name}.gz").write_bytes(mnist_gz(mnist_dir, name))
    labels = bytearray(mnist_bytes(mnist_dir, "train-labels-idx1-ubyte"))
    labels[100] = (labels[100] + 1) % 10  # one label changed: still a valid IDX file
    (root / "train-labels-idx1-ubyte.gz").unlink()
    (root / "train-labels-idx1-ubyte").write_bytes(bytes(labels))
    with pytest.raises(ChecksumError, match="train-labels-idx1-ubyte.*SHA-256") as caught:
        load_mnist(root, cache_dir=isolated, download=False)
    assert isinstance(caught.value, DataError)
    assert f"portable-dl data mnist --dir {root}" in str(caught.value)


# ------------------------------------------------------------------ broken files: DataError
def idx_file(values: list[int], dtype: int = 0x08) -> bytes:
    """A one-dimensional IDX file of unsigned bytes, written by hand: 0, 0, type, rank 1, size, data."""
    return bytes([0, 0, dtype, 1]) + len(values).to_bytes(4, "big") + bytes(values)


def test_data_error_is_exported_and_is_a_value_error():
    assert portable_dl.DataError is DataError and portable_dl.data.DataError is DataError
    assert issubclass(DataError, PortableDLError) and issubclass(DataError, ValueError)
    assert issubclass(ChecksumError, DataError)


def test_read_idx_reads_a_hand_written_file_compressed_or_not(tmp_path):
    """The reference for the broken variants below: the same bytes, intact, read back."""
    (tmp_path / "good-idx1-ubyte").write_bytes(idx_file([3, 1, 4, 1, 5]))
    (tmp_path / "good-idx1-ubyte.gz").write_bytes(gzip.compress(idx_file([3, 1, 4, 1, 5])))
    for name in ("good-idx1-ubyte", "good-idx1-ubyte.gz"):
        array = read_idx(tmp_path / name)
        assert array.dtype == np.uint8 and array.tolist() == [3, 1, 4, 1, 5]
    two_by_three = bytes([0, 0, 0x0B, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    two_by_three += np.array([[1, -2, 3], [-4, 5, -300]], dtype=">i2").tobytes()  # big-endian int16
    (tmp_path / "signed-idx2-short").write_bytes(two_by_three)
    array = read_idx(tmp_path / "signed-idx2-short")
    assert array.dtype == np.int16 and array.tolist() == [[1, -2, 3], [-4, 5, -300]]


BROKEN_FILES = {
    # name: (content, words the message must hold)
    "a gzip stream cut short": (gzip.compress(idx_file(list(range(200))))[:-30], "is truncated: its gzip stream"),
    "corrupt deflate data": (gzip.compress(idx_file([1]))[:10] + b"\xff" * 40, "not a valid gzip file"),
    "a wrong CRC": (gzip.compress(idx_file(list(range(200))))[:-8] + bytes(8), "not a valid gzip file"),
    "not gzip at all": (idx_file([1, 2, 3]), "not a valid gzip file"),
}


@pytest.mark.parametrize("kind", BROKEN_FILES)
def test_broken_gzip_raises_data_error_naming_the_file(tmp_path, kind):
    content, words = BROKEN_FILES[kind]
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        read_idx(path)
    message = str(caught.value)
    assert message.startswith(f"{path} ") and words in message
    # An MNIST file: the message says how to get a good copy in that very folder.
    assert f"delete it, or run `portable-dl data mnist --dir {tmp_path}`" in message


@pytest.mark.parametrize(
    "content, words",
    [
        (b"PK\x03\x04zip file", "is not an IDX file: its header starts with b'PK\\x03\\x04'"),
        (b"\x00\x00\x08", "is not an IDX file"),  # shorter than the 4 bytes of the magic number
        (b"\x00\x00\x07\x01" + bytes(5), "is not an IDX file"),  # 0x07 is no IDX type
        (bytes([0, 0, 8, 3]) + (2).to_bytes(4, "big"), "announces 3 dimensions (16 header bytes) but the file holds 8"),
        (idx_file([1, 2, 3, 4, 5])[:-2], "says shape (5,) (5 bytes of data) but the file holds 3 bytes"),
        (idx_file([1, 2, 3]) + b"\x00", "says shape (3,) (3 bytes of data) but the file holds 4 bytes"),
    ],
    ids=["zip magic", "short magic", "unknown type", "truncated header", "data cut short", "data too long"],
)
def test_malformed_idx_raises_data_error(tmp_path, content, words):
    path = tmp_path / "other-idx1-ubyte"  # not an MNIST name: no `portable-dl data mnist` advice
    path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        read_idx(path)
    message = str(caught.value)
    assert str(path) in message and words in message
    assert message.endswith("delete it or replace it with a complete copy")


def test_checksum_mismatch_names_both_digests(tmp_path):
    content = idx_file([7, 7, 7])
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(content)
    expected = "0" * 64
    with pytest.raises(ChecksumError) as caught:
        read_idx(path, sha256=expected)
    message = str(caught.value)
    assert hashlib.sha256(content).hexdigest() in message and expected in message and str(path) in message
    assert read_idx(path, sha256=hashlib.sha256(content).hexdigest()).tolist() == [7, 7, 7]


def test_load_mnist_raises_data_error_for_a_broken_file_without_looking_further(isolated, tmp_path):
    """A broken file in root is reported, not silently passed over for a copy elsewhere."""
    root = tmp_path / "root"
    root.mkdir()
    broken = root / "train-images-idx3-ubyte.gz"
    broken.write_bytes(gzip.compress(bytes(1000))[:-20])
    with pytest.raises(DataError, match=f"{broken} is truncated"):
        load_mnist(root, cache_dir=isolated, mirrors=["http://127.0.0.1:9/"])


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
        (folder / f"{name}.gz").write_bytes(mnist_gz(mnist_dir, name))
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
    assert mirror in message and "Run `portable-dl data mnist` where there is a network" in message
    assert "put the four MNIST IDX files" in message
    assert isinstance(caught.value, FileNotFoundError)
    assert not root.exists() or not any(root.iterdir())


def test_download_false_does_not_touch_the_network(isolated, tmp_path):
    with pytest.raises(DatasetNotFound, match="download=False") as caught:
        load_mnist(tmp_path / "empty", mirrors=["http://127.0.0.1:9/"], cache_dir=isolated, download=False)
    assert "portable-dl data mnist" in str(caught.value)


# ------------------------------------------------------------------ download_mnist, `portable-dl data mnist`
@pytest.fixture
def mnist_mirror(mnist_dir, local_mirror):
    """A local mirror serving the four real MNIST files; yields its base URL."""
    url, folder = local_mirror
    for name in MNIST_FILES:
        (folder / f"{name}.gz").write_bytes(mnist_gz(mnist_dir, name))
    return url


def test_download_mnist_keeps_intact_files_and_replaces_broken_ones(mnist_dir, mnist_mirror, tmp_path):
    root = tmp_path / "mnist"
    root.mkdir()
    intact = root / "t10k-labels-idx1-ubyte"  # uncompressed and right: kept as it is
    intact.write_bytes(mnist_bytes(mnist_dir, "t10k-labels-idx1-ubyte"))
    before = intact.stat()
    broken_plain = root / "train-labels-idx1-ubyte"  # one label changed: replaced by a .gz, then removed
    labels = bytearray(mnist_bytes(mnist_dir, "train-labels-idx1-ubyte"))
    labels[7] = (labels[7] + 1) % 10
    broken_plain.write_bytes(bytes(labels))
    broken_gz = root / "t10k-images-idx3-ubyte.gz"  # truncated: overwritten
    broken_gz.write_bytes(mnist_gz(mnist_dir, "t10k-images-idx3-ubyte")[:5000])
    lines = []
    assert download_mnist(root, mirrors=[mnist_mirror], timeout=10, report=lines.append) == root
    assert sorted(path.name for path in root.iterdir()) == sorted(
        [
            "t10k-labels-idx1-ubyte",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "train-images-idx3-ubyte.gz",
        ]
    )  # no partial or temporary files left
    assert intact.stat().st_mtime_ns == before.st_mtime_ns and intact.stat().st_ino == before.st_ino
    for name in MNIST_FILES:  # every file in place is the published one
        stored = root / name if (root / name).is_file() else root / f"{name}.gz"
        assert read_idx(stored, sha256=MNIST_FILES[name]).size > 0
    assert lines[0] == f"train-images-idx3-ubyte: downloaded to {root / 'train-images-idx3-ubyte.gz'}, SHA-256 verified"
    assert lines[1].startswith(f"train-labels-idx1-ubyte: {broken_plain} is corrupt or not the expected file")
    assert lines[1].endswith("; downloading a replacement")
    assert lines[3].startswith(f"t10k-images-idx3-ubyte: {broken_gz} is truncated")
    assert lines[5] == f"t10k-labels-idx1-ubyte: {intact} is there, SHA-256 verified"
    assert len(lines) == 6  # one line per file, two for each of the two broken ones


def test_download_mnist_without_a_network_keeps_what_is_verified(mnist_dir, tmp_path):
    root = tmp_path / "mnist"
    root.mkdir()
    (root / "train-images-idx3-ubyte.gz").write_bytes(mnist_gz(mnist_dir, "train-images-idx3-ubyte"))
    refused = f"http://127.0.0.1:{closed_port()}/"
    with pytest.raises(DatasetNotFound) as caught:
        download_mnist(root, mirrors=[refused], timeout=5)
    message = str(caught.value)
    assert "train-labels-idx1-ubyte" in message and refused in message  # the first file it could not get
    assert [path.name for path in root.iterdir()] == ["train-images-idx3-ubyte.gz"]


def test_data_mnist_command_downloads_into_dir(mnist_mirror, tmp_path, capsys):
    root = tmp_path / "fresh"
    assert command(["data", "mnist", "--dir", str(root), "--mirror", mnist_mirror, "--timeout", "10"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"MNIST into {root}"
    assert out.count("SHA-256 verified") == 4 and f"PORTABLE_DL_DATA={root}" in out
    assert np.bincount(load_mnist(root, download=False).y_test, minlength=10).tolist() == TEST_CLASS_COUNTS
    # Run again: nothing is downloaded (the mirror is gone), everything is verified in place.
    assert command(["data", "mnist", "--dir", str(root), "--mirror", f"http://127.0.0.1:{closed_port()}/"]) == 0
    assert capsys.readouterr().out.count("is there, SHA-256 verified") == 4


def test_data_mnist_command_defaults_to_the_cache_folder(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    refused = f"http://127.0.0.1:{closed_port()}/"
    assert command(["data", "mnist", "--mirror", refused, "--timeout", "5"]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == f"MNIST into {tmp_path / 'cache' / 'portable_dl' / 'mnist'}"
    assert captured.err.startswith("portable-dl data mnist: MNIST file train-images-idx3-ubyte")
    assert refused in captured.err and "Traceback" not in captured.err


def test_data_command_usage_errors(capsys):
    for argv in (["data"], ["data", "cifar"], ["data", "mnist", "--timeout", "soon"]):
        with pytest.raises(SystemExit) as caught:
            command(argv)
        assert caught.value.code == 2
    assert "invalid choice: 'cifar'" in capsys.readouterr().err


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
