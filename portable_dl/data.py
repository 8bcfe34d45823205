"""Data in: the MNIST digits from IDX files, and mini-batches moved onto a backend.

:func:`load_mnist` finds the four MNIST files (gzip-compressed or not) in ``root``, then in
``$PORTABLE_DL_DATA``, then in a cache folder (``~/.cache/portable_dl/mnist``), checks each
against the SHA-256 of its uncompressed bytes, and, where a file is absent everywhere,
downloads it from a list of mirrors into ``root`` (or the cache folder). Without a network
it raises :class:`DatasetNotFound` saying which folders were searched and where to put the
files. A file that is there but broken (truncated, a corrupt gzip stream, not an IDX file,
other content) raises :class:`DataError` naming it and what to do.
:func:`download_mnist` (the ``portable-dl data mnist`` command) puts a verified copy in a
folder, replacing broken files.

:func:`batches` cuts NumPy arrays into mini-batches, shuffled by a seeded NumPy generator,
and moves each one onto a backend with ``backend.asarray``: the same seed gives the same
batches on every backend.

This module imports no framework.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .atomic import write_atomically
from .errors import DataError, PortableDLError, ShapeError

__all__ = [
    "MNIST",
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "DatasetNotFound",
    "DataError",
    "ChecksumError",
    "load_mnist",
    "download_mnist",
    "read_idx",
    "default_cache_dir",
    "batches",
    "shuffled_order",
]

#: SHA-256 of the uncompressed MNIST files, by file name.
MNIST_FILES = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

#: Base URLs that serve ``<name>.gz`` for each MNIST file, tried in order.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

ENVIRONMENT_VARIABLE = "PORTABLE_DL_DATA"

# The IDX type byte of each NumPy dtype an IDX file can hold; values are big-endian.
_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class DatasetNotFound(PortableDLError, FileNotFoundError):
    """A data set is in none of the folders searched and could not be downloaded."""


class ChecksumError(DataError):
    """A data file whose SHA-256 differs from the published one: corrupt or a different file."""


class MNIST(NamedTuple):
    """The MNIST digits as uint8 NumPy arrays.

    ``x_train`` (60000, 28, 28), ``y_train`` (60000,), ``x_test`` (10000, 28, 28),
    ``y_test`` (10000,); pixels in 0..255, labels in 0..9. Unpacks as a 4-tuple.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/portable_dl/mnist``, else ``~/.cache/portable_dl/mnist``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "portable_dl" / "mnist"


def load_mnist(
    root: str | os.PathLike | None = None,
    *,
    download: bool = True,
    mirrors: Sequence[str] = MNIST_MIRRORS,
    cache_dir: str | os.PathLike | None = None,
    timeout: float = 30.0,
) -> MNIST:
    """Load MNIST as uint8 NumPy arrays, verified against the published SHA-256 sums.

    Each of the four files (``train-images-idx3-ubyte`` and so on, with or without ``.gz``)
    is looked for in ``root``, then ``$PORTABLE_DL_DATA`` (the folder itself or its ``mnist``
    subfolder), then ``cache_dir`` (default :func:`default_cache_dir`). A file found nowhere
    is downloaded, when ``download`` is true, from the ``mirrors`` in order into ``root`` if
    given, else into ``cache_dir``; it is written atomically and only once its checksum is
    right.

    Raises :class:`DataError` for a file that is found but broken (truncated, a corrupt gzip
    stream, not an IDX file; :class:`ChecksumError`, a DataError, for content that is not the
    published one), and :class:`DatasetNotFound` when a file is nowhere and cannot be downloaded.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folders = _search_folders(root, cache)
    destination = Path(root) if root is not None else cache
    arrays = {}
    for name, sha256 in MNIST_FILES.items():
        path = _find(name, folders)
        if path is None:
            if not download:
                raise DatasetNotFound(_not_found_message(name, folders, destination, []))
            path = _download(name, sha256, mirrors, destination, timeout, folders)
        arrays[name] = read_idx(path, sha256=sha256)
    return MNIST(
        arrays["train-images-idx3-ubyte"],
        arrays["train-labels-idx1-ubyte"],
        arrays["t10k-images-idx3-ubyte"],
        arrays["t10k-labels-idx1-ubyte"],
    )


def read_idx(path: str | os.PathLike, sha256: str | None = None) -> np.ndarray:
    """The array stored in the IDX file ``path`` (gzip-compressed when its name ends in ``.gz``).

    With ``sha256``, the uncompressed bytes must hash to it, or :class:`ChecksumError` names
    the file and both digests. A truncated file, a corrupt gzip stream, a header that is not
    IDX, or data whose size disagrees with the header raise :class:`DataError` naming the file
    and what to do.
    """
    path = Path(path)
    content = _read_uncompressed(path)
    if sha256 is not None:
        actual = hashlib.sha256(content).hexdigest()
        if actual != sha256:
            raise ChecksumError(
                f"{path} is corrupt or not the expected file: its uncompressed SHA-256 is {actual}, "
                f"expected {sha256}; {_remedy(path)}"
            )
    return _parse_idx(content, path)


def _parse_idx(content: bytes, path: Path) -> np.ndarray:
    """IDX: two zero bytes, a type byte, a rank byte, one big-endian uint32 per dimension, data."""
    if len(content) < 4 or content[0] != 0 or content[1] != 0 or content[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file: its header starts with {content[:4]!r}; {_remedy(path)}")
    dtype, rank = _IDX_DTYPES[content[2]], content[3]
    header_length = 4 + 4 * rank
    if len(content) < header_length:
        raise DataError(
            f"{path} is truncated: its IDX header announces {rank} dimensions ({header_length} header bytes) "
            f"but the file holds {len(content)} bytes; {_remedy(path)}"
        )
    shape = tuple(int(size) for size in np.frombuffer(content, dtype=">u4", count=rank, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(content) - header_length != expected:
        raise DataError(
            f"{path}: the IDX header says shape {shape} ({expected} bytes of data) "
            f"but the file holds {len(content) - header_length} bytes after the header; {_remedy(path)}"
        )
    data = np.frombuffer(content, dtype=dtype, offset=header_length).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # a writable copy in native byte order


def _read_uncompressed(path: Path) -> bytes:
    """The file's bytes, decompressed when its name ends in ``.gz``; a damaged gzip stream is a DataError."""
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as file:
            return file.read()
    # What gzip raises for each kind of damage: EOFError for a stream cut short,
    # BadGzipFile for a wrong magic number or CRC, zlib.error for corrupt deflate data.
    except EOFError as error:
        raise DataError(f"{path} is truncated: its gzip stream ends early ({error}); {_remedy(path)}") from error
    except (gzip.BadGzipFile, zlib.error) as error:
        raise DataError(f"{path} is not a valid gzip file ({error}); {_remedy(path)}") from error


def _remedy(path: Path) -> str:
    """What to do about a broken file: fetch MNIST again, or replace any other file."""
    name = path.name.removesuffix(".gz")
    if name in MNIST_FILES:
        return f"delete it, or run `portable-dl data mnist --dir {path.parent}` to replace it with a verified download"
    return "delete it or replace it with a complete copy"


def _search_folders(root: Any, cache: Path) -> list[Path]:
    folders = []
    if root is not None:
        folders.append(Path(root))
    from_environment = os.environ.get(ENVIRONMENT_VARIABLE)
    if from_environment:
        folders += [Path(from_environment), Path(from_environment) / "mnist"]
    folders.append(cache)
    return folders


def _find(name: str, folders: Sequence[Path]) -> Path | None:
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def download_mnist(
    root: str | os.PathLike | None = None,
    *,
    mirrors: Sequence[str] = MNIST_MIRRORS,
    timeout: float = 30.0,
    report: Callable[[str], None] | None = None,
) -> Path:
    """Make ``root`` (default :func:`default_cache_dir`) hold the four MNIST files, verified; return it.

    A file already there (``name`` or ``name.gz``) whose uncompressed SHA-256 is the published
    one is kept. An absent one is downloaded from the ``mirrors`` in order, as ``name.gz``,
    and saved atomically once verified. A broken one (truncated, corrupt, other content) is
    replaced the same way; the broken copy is removed only once the good one is saved.
    ``report``, when given, receives one line per file saying which of these happened.

    Raises :class:`DatasetNotFound` when a file cannot be downloaded from any mirror (the
    message lists each mirror and why), leaving the files already verified in place.
    """
    destination = Path(root) if root is not None else default_cache_dir()
    say = report or (lambda line: None)
    for name, sha256 in MNIST_FILES.items():
        present = _find(name, [destination])
        if present is not None:
            try:
                read_idx(present, sha256=sha256)
            except DataError as error:
                say(f"{name}: {str(error).split('; ')[0]}; downloading a replacement")
            else:
                say(f"{name}: {present} is there, SHA-256 verified")
                continue
        saved = _download(name, sha256, mirrors, destination, timeout, [destination])
        if present is not None and present != saved:
            present.unlink()  # the broken uncompressed copy would be found before the good .gz
        say(f"{name}: downloaded to {saved}, SHA-256 verified")
    return destination


def _download(
    name: str, sha256: str, mirrors: Sequence[str], destination: Path, timeout: float, folders: Sequence[Path]
) -> Path:
    """Fetch ``name.gz`` from the first mirror that serves the right content; save it atomically."""
    failures = [] if mirrors else ["no mirror to download from (mirrors is empty)"]
    for mirror in mirrors:
        url = mirror.rstrip("/") + f"/{name}.gz"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                compressed = response.read()
            actual = hashlib.sha256(gzip.decompress(compressed)).hexdigest()
        except (urllib.error.URLError, OSError, EOFError, ValueError, zlib.error) as error:
            failures.append(f"{url}: {getattr(error, 'reason', None) or error}")
            continue
        if actual != sha256:
            failures.append(f"{url}: wrong content (SHA-256 {actual}, expected {sha256})")
            continue
        path = destination / f"{name}.gz"
        try:
            destination.mkdir(parents=True, exist_ok=True)  # write_atomically creates no folders
            write_atomically(path, compressed)
            return path
        except OSError as error:
            failures.append(f"{url}: downloaded but could not be saved in {destination}: {error}")
            break
    raise DatasetNotFound(_not_found_message(name, folders, destination, failures))


def _not_found_message(name: str, folders: Sequence[Path], destination: Path, failures: list[str]) -> str:
    searched = "\n".join(f"  {folder}" for folder in folders)
    lines = [f"MNIST file {name} (or {name}.gz) was not found in:", searched]
    if failures:
        lines += ["and could not be downloaded:"] + [f"  {failure}" for failure in failures]
    else:
        lines.append("and downloading is switched off (download=False).")
    lines.append(
        f"Run `portable-dl data mnist` where there is a network, or put the four MNIST IDX files "
        f"({', '.join(MNIST_FILES)}; gzip-compressed or not) in {destination}, "
        f"or in a folder named by ${ENVIRONMENT_VARIABLE}, or pass root= to load_mnist."
    )
    return "\n".join(lines)


def batches(
    x: Any,
    y: Any,
    batch_size: int,
    backend: Any,
    *,
    shuffle: bool = True,
    seed: int | np.random.Generator | None = 0,
    dtype: Any = None,
    drop_last: bool = False,
    skip: int = 0,
) -> Iterator[tuple[Any, Any]]:
    """Mini-batches ``(x_batch, y_batch)`` of backend arrays from NumPy-like ``x`` and ``y``.

    ``x`` has shape (N, ...) and ``y`` shape (N, ...), same N. The order is a permutation drawn
    by ``numpy.random.default_rng(seed)`` when ``shuffle`` (pass a Generator to continue one
    stream across epochs), else the given order. Every batch holds ``batch_size`` examples
    except the last, which holds the rest (dropped when ``drop_last``). ``x`` batches are
    cast to ``dtype`` (a name such as ``"float32"`` or a dtype; None keeps x's dtype) in NumPy
    before the move; ``y`` keeps its dtype (as far as the backend has it: JAX without x64 holds
    int64 as int32). Raises ShapeError when x and y differ in length.
    ``skip`` leaves out the first ``skip`` batches without moving them: the permutation is
    drawn all the same, so the rest are those of a full pass (fit resumes mid-epoch so).
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.shape[:1] != y.shape[:1]:
        raise ShapeError(f"batches needs x and y with the same number of examples, got shapes {x.shape} and {y.shape}")
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(skip, (int, np.integer)) or isinstance(skip, bool) or skip < 0:
        raise ValueError(f"skip must be a non-negative int, got {skip!r}")
    dtype_name = None if dtype is None else backend.dtype_name(dtype)
    count = x.shape[0]
    order = shuffled_order(count, shuffle, seed)
    stop = count - count % batch_size if drop_last else count
    for start in range(skip * batch_size, stop, batch_size):
        index = order[start : start + batch_size] if order is not None else slice(start, start + batch_size)
        x_batch, y_batch = x[index], y[index]
        if dtype_name is not None:
            x_batch = x_batch.astype(dtype_name, copy=False)
        yield backend.asarray(x_batch), backend.asarray(y_batch)


def shuffled_order(count: int, shuffle: bool, seed: int | np.random.Generator | None) -> np.ndarray | None:
    """The order of one pass over ``count`` examples: ``default_rng(seed).permutation(count)``
    (int64, drawn from ``seed`` itself when it is a Generator) when ``shuffle``, else None
    (the given order). :func:`batches` and :func:`portable_dl.fit` draw it so."""
    if not shuffle:
        return None
    generator = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return generator.permutation(count)
