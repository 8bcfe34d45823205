"""The one exception hierarchy of portable_dl.

The same mistake raises the same exception with the same message on every backend,
whatever the framework underneath said (``RuntimeError``, ``ValueError``,
``InvalidArgumentError``...). Each error also derives from the built-in exception a
Python user would reach for, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "PortableDLError",
    "BackendUnavailable",
    "ShapeError",
    "BroadcastError",
    "TreeStructureError",
    "DTypeError",
    "CheckpointError",
    "DataError",
    "DistributedError",
]


class PortableDLError(Exception):
    """Base class of every error portable_dl raises on purpose."""


class BackendUnavailable(PortableDLError, ImportError):
    """A backend cannot be created: its framework is missing, or a device is absent.

    The message names what to install, for example ``pip install "portable-dl[mlx]"``.
    """


class ShapeError(PortableDLError, ValueError):
    """Array shapes that do not fit the operation (a matmul's inner dimensions, a loss
    given predictions of shape (N, 1) and targets of shape (N,), ...)."""


class TreeStructureError(ShapeError):
    """Pytrees that should have one structure but differ (a dict key, a list's length, a list
    where a tuple was expected). Raised by :mod:`portable_dl.tree`, naming the path where they
    differ; ``path`` holds it as a tuple of keys, ``argument`` the position of the differing
    tree among the trees passed (1 for the first of the others)."""

    def __init__(self, message: str, path: tuple = (), argument: int = 1, expected: str = "", found: str = ""):
        super().__init__(message)
        self.path, self.argument, self.expected, self.found = path, argument, expected, found


class BroadcastError(ShapeError):
    """Two or more shapes that do not broadcast under the array API rules.

    A broadcasting failure is a kind of shape error, so ``except ShapeError`` catches it
    too; it is a ``ValueError`` like NumPy's own.
    """

    def __init__(self, *shapes: tuple[int, ...], operation: str | None = None):
        self.shapes = tuple(tuple(s) for s in shapes)
        self.operation = operation
        listed = " and ".join(str(s) for s in self.shapes)
        where = f" in {operation}" if operation else ""
        super().__init__(f"shapes {listed} do not broadcast{where}")


class DTypeError(PortableDLError, TypeError):
    """A dtype a backend or an operation does not support (float64 on an MLX GPU,
    integer inputs to a floating-point function, ...)."""


class CheckpointError(PortableDLError):
    """A checkpoint that cannot be read or does not fit the model it is loaded into."""


class DataError(PortableDLError, ValueError):
    """A data file that cannot be used: truncated, a corrupt gzip stream, not an IDX file,
    sizes that disagree with its header, or content whose checksum is not the published one.

    The message names the file and what to do (delete it, or fetch it again with
    ``portable-dl data mnist``).
    """


class DistributedError(PortableDLError, RuntimeError):
    """A multi-process run that cannot go on: a backend without a multi-process engine asked
    for more than one process, a rank that was lost mid-run (the message names it), a
    collective that timed out, or ranks whose parameters differ in shape (both named)."""
