"""TensorFlow-only checks: what the array API yardstick's xfails file may hold, and TensorFlow's
missing kernels reported as DTypeError.

Issue 14's rule: ``array-api-xfails/tensorflow.txt`` lists only what the namespace cannot change,
TensorFlow's own tensor object, each test id after a ``#`` line saying why. A failing function of
the namespace is a bug to fix, never a line there. Those tests read the file as text: they need no
framework. Fixes that every backend must share are tested in the shared files, over every backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

XFAILS = Path(__file__).resolve().parent.parent / "array-api-xfails" / "tensorflow.txt"


def _entries() -> list[tuple[str, str]]:
    """(reason, test id) pairs of the file, after its header; a missing reason gives ``""``."""
    entries, reason = [], ""
    lines = XFAILS.read_text().splitlines()
    body = lines[next(i for i, line in enumerate(lines) if not line.strip()) :]  # the header ends at a blank line
    for line in body:
        if not line.strip():
            reason = ""
        elif line.startswith("#"):
            reason = line[1:].strip()
        else:
            entries.append((reason, line.strip()))
            reason = ""
    return entries


def test_every_tensorflow_xfail_has_its_own_reason_line():
    entries = _entries()
    assert entries, "the file lists no test at all"
    missing = [test for reason, test in entries if not reason]
    assert not missing, f"test ids without a '#' reason line just above: {missing}"
    ids = [test for _, test in entries]
    assert len(ids) == len(set(ids)), "a test id is listed twice"


def test_every_tensorflow_xfail_blames_the_framework_object():
    """Each reason names TensorFlow's tensor (``tf.Tensor`` and its ``.shape``, operators,
    indexing, DLPack): never a namespace function such as ``xp.negative``."""
    not_the_tensor = [(reason, test) for reason, test in _entries() if not reason.startswith("tf.Tensor")]
    assert not not_the_tensor, f"reasons that do not name tf.Tensor: {not_the_tensor}"


def test_tensorflow_xfails_are_test_ids_of_the_suite():
    """Ids as pytest prints them for the suite checked out at its repository root."""
    bad = [test for _, test in _entries() if not (test.startswith("array_api_tests/test_") and "::" in test)]
    assert not bad, f"not test ids of array-api-tests: {bad}"


# ------------------------------------------------- TensorFlow's missing kernels as DTypeError
def _tensorflow_xp():
    pytest.importorskip("tensorflow")
    import portable_dl

    try:
        return portable_dl.backend("tensorflow").xp
    except portable_dl.BackendUnavailable as error:
        pytest.skip(str(error))


@pytest.mark.parametrize(
    "name, dtype, call",
    [
        ("less", "complex64", lambda xp, x: xp.less(x, x)),
        ("greater_equal", "complex128", lambda xp, x: xp.greater_equal(x, x)),
        ("maximum", "complex64", lambda xp, x: xp.maximum(x, x)),
        ("max", "bool", lambda xp, x: xp.max(x)),
        ("min", "complex64", lambda xp, x: xp.min(x, axis=0)),
        ("argmax", "complex128", lambda xp, x: xp.argmax(x)),
        ("sort", "complex64", lambda xp, x: xp.sort(x)),
        ("argsort", "bool", lambda xp, x: xp.argsort(x)),
    ],
)
def test_a_dtype_tensorflow_has_no_kernel_for_raises_dtype_error(name, dtype, call):
    """Functions the standard defines for real dtypes only, called with one TensorFlow has no
    kernel for: a DTypeError naming the function and the dtype, never InvalidArgumentError."""
    from portable_dl.errors import DTypeError

    xp = _tensorflow_xp()
    x = xp.asarray(np.array([1, 0, 2]).astype(dtype), dtype=getattr(xp, dtype))
    with pytest.raises(DTypeError) as caught:
        call(xp, x)
    assert str(caught.value).startswith(f"{name}: ") and dtype in str(caught.value), str(caught.value)


def test_missing_kernel_translation_leaves_other_errors_alone():
    """A shape error stays a shape error (BroadcastError), and a correct call is unchanged."""
    from portable_dl.errors import BroadcastError

    xp = _tensorflow_xp()
    with pytest.raises(BroadcastError):
        xp.less(xp.asarray([1.0, 2.0]), xp.asarray([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(np.asarray(xp.less(xp.asarray([1.0, 3.0]), xp.asarray([2.0, 2.0]))), [True, False])


@pytest.mark.parametrize("spelling, standard", [("half", "float16"), ("bfloat16", "bfloat16"), ("double", "float64")])
def test_missing_kernel_messages_name_dtypes_as_the_standard_does(spelling, standard):
    """TensorFlow's messages say ``half`` for float16 and ``double`` for float64; ours say the
    standard's names, as every backend's do."""
    pytest.importorskip("tensorflow")
    import tensorflow as tf
    from portable_dl.backends.tensorflow.missing_kernels import missing_kernel_error

    error = tf.errors.InvalidArgumentError(
        None, None, f"Value for attr 'T' of {spelling} is not in the list of allowed values: float, int32"
    )
    message = str(missing_kernel_error(error, "sort"))
    assert message.startswith("sort: TensorFlow ") and f" has no {standard} kernel " in message, message
