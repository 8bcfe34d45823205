"""TensorFlow's missing kernels, reported as :class:`portable_dl.DTypeError`.

A TensorFlow op registers kernels for some dtypes only: ``tf.math.less`` of complex tensors
raises ``InvalidArgumentError: Value for attr 'T' of complex64 is not in the list of allowed
values: ...``, and some kernels exist only on some devices (``UnimplementedError``). Where the
namespace's function reaches such an op with a dtype the standard does not define the function
for (``less`` of complex numbers, ``max`` of booleans), the caller gets a DTypeError naming the
function and the dtype, as on every backend, instead of TensorFlow's own error. (Where the
standard does define the function for the dtype, the namespace works around the kernel instead:
``negative`` and ``sign`` of unsigned integers, ``tile`` of uint16, ``cross`` of complex vectors.)

The namespace's functions call :func:`missing_kernel_error` in their own error path only, so
correct calls pay nothing for it. Messages name the dtype as the standard does (TensorFlow's
own say ``half`` for float16 and ``double`` for float64). The half floats' missing ``linalg``
kernels are refused up front instead (:mod:`.linalg`), as on every backend.
"""

from __future__ import annotations

import re

import tensorflow as tf

from portable_dl.errors import DTypeError

__all__ = ["missing_kernel_error"]

_NO_KERNEL = re.compile(r"Value for attr '\w+' of (\w+) is not in the list of allowed values")
_UNSUPPORTED = re.compile(r"(?:data type|DataType)\s*:?\s*(\w+)")


def _standard_name(tf_name: str) -> str:
    """The standard's name of a dtype as TensorFlow's messages spell it (``half`` is float16,
    ``double`` float64, ``DT_BFLOAT16`` bfloat16); unknown spellings as they are."""
    try:
        return tf.as_dtype(tf_name.removeprefix("DT_").lower()).name
    except TypeError:
        return tf_name


def missing_kernel_error(error: BaseException, name: str) -> DTypeError | None:
    """The DTypeError to raise for ``error`` (raised by TensorFlow inside the namespace's
    ``name``) when it says TensorFlow has no kernel for a dtype, else None."""
    if isinstance(error, tf.errors.InvalidArgumentError):
        found = _NO_KERNEL.search(str(error))
    elif isinstance(error, tf.errors.UnimplementedError):
        found = _UNSUPPORTED.search(str(error))
    else:
        return None
    if found is None:
        return None
    dtype = _standard_name(found.group(1))
    return DTypeError(f"{name}: TensorFlow {tf.__version__} has no {dtype} kernel for this function")
