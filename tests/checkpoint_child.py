"""A process that the kill test of tests/test_checkpoint.py SIGKILLs in the middle of a save.

Usage: ``python checkpoint_child.py TARGET``. Saves version 1 of a small NumPy checkpoint
to TARGET and prints ``SAVED``; then starts saving version 2 with the chunked writer of
``portable_dl.atomic`` replaced by one that writes half of the bytes, prints ``HALF`` and
sleeps, so that the parent kills it while the temporary file is half written.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from portable_dl import atomic, checkpoint


def checkpoint_version(version: int) -> dict:
    """Params whose every value says which version they are: float32 (64, 64) and an int32 step."""
    return {"W": np.full((64, 64), float(version), dtype=np.float32), "step": np.array(version, dtype=np.int32)}


def write_half_then_hang(descriptor: int, data: bytes) -> None:
    half = len(data) // 2
    written = 0
    while written < half:
        written += os.write(descriptor, data[written:half])
    os.fsync(descriptor)  # the half is on disk: the parent sees a real partial file
    print("HALF", flush=True)
    time.sleep(600)


def main(target: str) -> None:
    checkpoint.save(target, checkpoint_version(1), metadata={"version": 1})
    print("SAVED", flush=True)
    atomic._write_bytes = write_half_then_hang  # write_atomically looks it up at call time
    checkpoint.save(target, checkpoint_version(2), metadata={"version": 2})
    print("FINISHED", flush=True)  # never reached: the parent kills this process first


if __name__ == "__main__":
    main(sys.argv[1])
