"""Atomic file writes: a reader, or a crash at any moment, sees the old file or the new one,
never a mixture.

:func:`write_atomically` writes the bytes to a temporary file in the target's folder (named
``.<target name>.<host>.<pid>.<random>.tmp``), in chunks the operating system accepts,
syncs it to disk, renames it onto the target with ``os.replace`` and syncs the folder, so
that the rename itself survives a power cut. A killed writer can leave its temporary file
behind; the next write to the same target deletes those left by processes of this host
that no longer run (on POSIX systems). The project's one atomic writer: checkpoints and
downloaded data sets both go through it.
"""

from __future__ import annotations

import os
import pathlib
import secrets
import socket

__all__ = ["write_atomically"]

#: Bytes per write call: macOS and Windows refuse single writes of 2 GiB or more.
_WRITE_CHUNK_BYTES = 1 << 30


def write_atomically(target: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a new temporary file beside ``target``, sync it, rename it onto
    ``target``, sync the folder.

    The folder must exist (nothing is created). On any failure, KeyboardInterrupt included,
    the temporary file is removed, ``target`` is as it was, and the error (an OSError for a
    refused write) propagates.
    """
    target = pathlib.Path(target)
    _remove_stale_temporary_files(target)
    descriptor, temporary = _create_temporary_file(target)
    try:
        try:
            # Looked up in this module at call time, so a test can replace it to cut a write short.
            _write_bytes(descriptor, data)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, target)
    except BaseException:  # KeyboardInterrupt too: never leave a half-written file behind
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    _sync_folder(target.parent)


def _write_bytes(descriptor: int, data: bytes) -> None:
    """Write all of ``data`` to the open file ``descriptor``, in chunks the OS accepts."""
    view = memoryview(data)
    written = 0
    while written < len(view):
        written += os.write(descriptor, view[written : written + _WRITE_CHUNK_BYTES])


def _temporary_prefix(target: pathlib.Path) -> str:
    return f".{target.name}."


def _create_temporary_file(target: pathlib.Path) -> tuple[int, str]:
    """A new, empty temporary file beside ``target``, opened for writing: ``(descriptor, path)``.

    Opened with mode 0o666 so that the umask gives the file the permissions any new file
    gets (``tempfile.mkstemp`` would make it readable by its owner only)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    owner = f"{socket.gethostname()}.{os.getpid()}"
    while True:
        temporary = target.parent / f"{_temporary_prefix(target)}{owner}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(temporary, flags, 0o666), str(temporary)
        except FileExistsError:
            continue


def _remove_stale_temporary_files(target: pathlib.Path) -> None:
    """Delete the temporary files of writes to ``target`` whose process, on this host, no
    longer runs (a killed write). Files of live processes or other hosts stay: they may be
    writing."""
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        return
    prefix, host = _temporary_prefix(target), socket.gethostname()
    try:
        candidates = [
            entry
            for entry in os.scandir(target.parent)
            if entry.name.startswith(prefix) and entry.name.endswith(".tmp")
        ]
    except OSError:
        return
    for entry in candidates:
        parts = entry.name[len(prefix) :].rsplit(".", 3)  # host (may hold dots), pid, random, "tmp"
        if len(parts) != 4 or parts[0] != host or not parts[1].isdigit():
            continue
        if not _process_runs(int(parts[1])):
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


def _sync_folder(folder: pathlib.Path) -> None:
    """Make the rename durable. Windows cannot open a folder for syncing, and some file
    systems refuse to sync one: the rename has happened by then, so those are not errors."""
    if os.name == "nt":
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
