"""The array API standard's type promotion, as data: dtype names in, dtype name out.

Frameworks that promote nothing themselves (TensorFlow refuses ``float32 + float64``) or
promote differently (``tf.experimental.numpy`` follows NumPy 1.16 and widens to float64)
use this table, so that every backend computes ``float32 + float64`` in float64 and
``float32 + 1.5`` in float32.

Why a table: the standard defines promotion as a lattice within each kind
(``int8 < int16 < int32 < int64``, ``uint8 < ... < uint64``, ``float32 < float64``) plus a
few mixed signed/unsigned pairs; writing the pairs out says exactly what is promised and
nothing more. Pairs the standard leaves to the implementation are marked as our choice.

Python scalars are *weak*: ``bool``, ``int`` and ``float`` take the dtype of the array
they meet (``float32 array * 2.0`` stays float32), except where the scalar's kind is
wider than the array's (``int array * 0.5`` gives the default floating dtype).
"""

from __future__ import annotations

from portable_dl.errors import DTypeError

__all__ = [
    "promote_names",
    "promote_with_scalar",
    "KIND_OF",
    "SIGNED",
    "UNSIGNED",
    "FLOATING",
    "HALF",
    "COMPLEX",
    "COMPLEX_OF",
]

SIGNED = ("int8", "int16", "int32", "int64")
UNSIGNED = ("uint8", "uint16", "uint32", "uint64")
FLOATING = ("float32", "float64")
#: The half-precision floats: not in the standard (2024.12), but every framework but NumPy
#: has both (NumPy has float16, and bfloat16 through ``ml_dtypes``). They promote as PyTorch
#: and JAX promote them: each below float32, and the two together to float32, the narrowest
#: float that holds both (bfloat16 has float32's range, float16 three more mantissa bits).
HALF = ("float16", "bfloat16")
COMPLEX = ("complex64", "complex128")
INTEGRAL = SIGNED + UNSIGNED
#: The complex dtype whose components have (at least) a real floating dtype's precision.
COMPLEX_OF = {"float16": "complex64", "bfloat16": "complex64", "float32": "complex64", "float64": "complex128"}

#: The kind of each dtype name, in the words of ``isdtype``.
KIND_OF = {
    "bool": "bool",
    **{n: "signed integer" for n in SIGNED},
    **{n: "unsigned integer" for n in UNSIGNED},
    **{n: "real floating" for n in HALF + FLOATING},
    **{n: "complex floating" for n in COMPLEX},
}

# The standard's mixed signed/unsigned pairs: the smallest signed integer that holds both.
# uint64 with any signed integer has no such dtype; the standard leaves it undefined and
# we raise DTypeError rather than silently lose values.
_MIXED_INTEGERS = {
    ("uint8", "int8"): "int16",
    ("uint8", "int16"): "int16",
    ("uint8", "int32"): "int32",
    ("uint8", "int64"): "int64",
    ("uint16", "int8"): "int32",
    ("uint16", "int16"): "int32",
    ("uint16", "int32"): "int32",
    ("uint16", "int64"): "int64",
    ("uint32", "int8"): "int64",
    ("uint32", "int16"): "int64",
    ("uint32", "int32"): "int64",
    ("uint32", "int64"): "int64",
}


def _build_table() -> dict[tuple[str, str], str]:
    table: dict[tuple[str, str], str] = {("bool", "bool"): "bool"}
    for lattice in (SIGNED, UNSIGNED, ("float16",) + FLOATING, ("bfloat16",) + FLOATING, COMPLEX):
        for i, a in enumerate(lattice):
            for j, b in enumerate(lattice):
                table[(a, b)] = lattice[max(i, j)]
    for (unsigned, signed), result in _MIXED_INTEGERS.items():
        table[(unsigned, signed)] = table[(signed, unsigned)] = result
    # Our choice where the standard says "implementation-defined": an integer or a bool
    # meeting a float gives that float (as PyTorch and JAX do; float32 stays float32, so a
    # model fed integer labels does not silently move to float64), and a bool meeting an
    # integer gives that integer.
    table[("float16", "bfloat16")] = table[("bfloat16", "float16")] = "float32"
    for float_name in HALF + FLOATING:
        for other in INTEGRAL + ("bool",):
            table[(float_name, other)] = table[(other, float_name)] = float_name
    for integer in INTEGRAL:
        table[("bool", integer)] = table[(integer, "bool")] = integer
    # The standard's real/complex pairs: the complex dtype of the wider precision; integers
    # and bools meeting a complex dtype give it (our choice, as with floats).
    for float_name in HALF + FLOATING:
        for complex_name in COMPLEX:
            wider = COMPLEX[max(COMPLEX.index(COMPLEX_OF[float_name]), COMPLEX.index(complex_name))]
            table[(float_name, complex_name)] = table[(complex_name, float_name)] = wider
    for complex_name in COMPLEX:
        for other in INTEGRAL + ("bool",):
            table[(complex_name, other)] = table[(other, complex_name)] = complex_name
    return table


#: ``PROMOTION_TABLE[(a, b)]``: the dtype name ``a`` and ``b`` promote to.
PROMOTION_TABLE = _build_table()


def promote_names(*names: str) -> str:
    """The dtype name the standard gives an operation on arrays of dtypes ``names``.

    Raises :class:`DTypeError` for pairs with no promotion (``uint64`` with a signed integer).
    """
    if not names:
        raise DTypeError("type promotion needs at least one dtype")
    result = names[0]
    for name in names[1:]:
        try:
            result = PROMOTION_TABLE[(result, name)]
        except KeyError:
            raise DTypeError(
                f"dtypes {result} and {name} have no common dtype under the array API promotion rules"
            ) from None
    return result


def promote_with_scalar(array_name: str, scalar: bool | int | float, default_float: str, default_integer: str) -> str:
    """The dtype name of ``array op scalar`` for an array of dtype ``array_name`` and a
    Python scalar: the array's dtype, unless the scalar's kind is wider (a float meeting an
    integer or bool array gives ``default_float``, an int meeting a bool array ``default_integer``)."""
    kind = KIND_OF[array_name]
    if isinstance(scalar, bool):
        return array_name
    if isinstance(scalar, int):
        return default_integer if kind == "bool" else array_name
    if isinstance(scalar, float):
        return array_name if kind in ("real floating", "complex floating") else default_float
    if isinstance(scalar, complex):
        if kind == "complex floating":
            return array_name
        return COMPLEX_OF[array_name if kind == "real floating" else default_float]
    raise DTypeError(
        f"{type(scalar).__name__} is not a Python scalar the array API promotes (bool, int, float, complex)"
    )
