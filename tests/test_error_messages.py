"""Every error of the README's table, provoked on every installed backend: the same
exception type and the same message everywhere (modulo the backend's own name where the
backend is the subject of the message), as the README promises (issue 12.4)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BACKEND_NAMES

import portable_dl
from portable_dl import losses


def bad_checkpoint(backend, tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    portable_dl.load(path, backend)


#: error kind -> (expected type, how to provoke it on a backend)
MISTAKES = {
    "BroadcastError (5, 3, 2) + (5, 2)": (
        portable_dl.BroadcastError,
        lambda be, tmp: be.xp.add(be.asarray(np.ones((5, 3, 2), "float32")), be.asarray(np.ones((5, 2), "float32"))),
    ),
    "ShapeError matmul": (
        portable_dl.ShapeError,
        lambda be, tmp: be.xp.matmul(be.asarray(np.ones((2, 3), "float32")), be.asarray(np.ones((4, 5), "float32"))),
    ),
    "ShapeError reshape": (
        portable_dl.ShapeError,
        lambda be, tmp: be.xp.reshape(be.asarray(np.ones((2, 3), "float32")), (4, 2)),
    ),
    "ShapeError loss of (4, 1) and (4,)": (
        portable_dl.ShapeError,
        lambda be, tmp: losses.mse(be.asarray(np.ones((4, 1), "float32")), be.asarray(np.ones(4, "float32"))),
    ),
    "DTypeError grad of an integer input": (
        portable_dl.DTypeError,
        lambda be, tmp: be.grad(be.xp.sum)(be.asarray(np.arange(3, dtype="int32"))),
    ),
    "CheckpointError a file that is no checkpoint": (portable_dl.CheckpointError, bad_checkpoint),
    "BackendUnavailable an absent device": (
        portable_dl.BackendUnavailable,
        lambda be, tmp: portable_dl.backend(be.name, device="no-such-device"),
    ),
}


def normalized(message: str, backend_name: str) -> str:
    # The backend is the subject of an absent device's message, and its devices are its own.
    return message.replace(backend_name, "<backend>").split("; available devices:")[0]


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_the_same_mistake_gives_the_same_error_and_message_on_every_backend(mistake, tmp_path):
    expected_type, provoke = MISTAKES[mistake]
    messages = {}
    for name in BACKEND_NAMES:
        backend = portable_dl.backend(name)
        with pytest.raises(expected_type) as raised:
            provoke(backend, tmp_path)
        assert type(raised.value).__module__ == "portable_dl.errors", (name, type(raised.value))
        messages[name] = normalized(str(raised.value), name)
    assert len(set(messages.values())) == 1, "\n".join(f"{name}: {message}" for name, message in messages.items())
    assert "<backend>" not in messages[BACKEND_NAMES[0]] or mistake.startswith("BackendUnavailable")
