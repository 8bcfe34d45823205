"""The standard's special cases of complex elementwise functions, as data (C99 Annex G).

The array API standard lists, for ``acos``, ``acosh``, ``asinh``, ``atanh``, ``cosh``, ``exp``,
``log``, ``sinh``, ``sqrt`` and ``tanh`` of a complex ``x = a + bj``, what the result must be where
``a`` or ``b`` is a zero, an infinity or a NaN. Some frameworks' kernels (XLA's, for one) give
``NaN + NaN j`` at many of them, and take no account of a zero's sign on a branch cut.
:func:`complex_function` evaluates a framework's function where the tables are written and puts
the standard's value wherever the standard names one; elsewhere the result is the framework's.

Each table is written, as in the standard, for ``b >= 0`` (and for ``a >= 0`` where the function
is odd or even); the other quadrants follow from the symmetries the standard states
(``f(conj(x)) = conj(f(x))`` for all ten, ``f(-x) = -f(x)`` for the odd ones, ``cosh(-x) = cosh(x)``).
Rules whose value depends on ``b`` (``+infinity * cis(b)``) are left to the framework, as are
signs the standard leaves unspecified. Within a table the first matching rule wins, as in the
standard's lists.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["SPECIAL_VALUES", "complex_function", "with_special_values"]

INF, NAN, PI = math.inf, math.nan, math.pi

# Conditions on one part, by the words the standard uses.
_CONDITIONS = {
    "any": lambda v, xp: xp.logical_or(xp.equal(v, v), xp.isnan(v)),
    "+0": lambda v, xp: xp.logical_and(xp.equal(v, 0), xp.logical_not(xp.signbit(v))),
    "-0": lambda v, xp: xp.logical_and(xp.equal(v, 0), xp.signbit(v)),
    "0": lambda v, xp: xp.equal(v, 0),
    "1": lambda v, xp: xp.equal(v, 1),
    "+inf": lambda v, xp: xp.equal(v, INF),
    "-inf": lambda v, xp: xp.equal(v, -INF),
    "inf": lambda v, xp: xp.isinf(v),
    "nan": lambda v, xp: xp.isnan(v),
    "finite": lambda v, xp: xp.isfinite(v),
    "nonzero finite": lambda v, xp: xp.logical_and(xp.isfinite(v), xp.not_equal(v, 0)),
    "positive finite": lambda v, xp: xp.logical_and(xp.isfinite(v), xp.greater(v, 0)),
    "nonzero": lambda v, xp: xp.not_equal(v, 0),  # NaN counts as nonzero, as in C99's tables
}

#: For each function: its symmetry in ``a`` (None: the table gives ``a``'s sign; "odd"; "even")
#: and its rules ``(a, b, real, imag)`` for ``b >= 0``; a value of None keeps the framework's part.
SPECIAL_VALUES: dict[str, tuple[str | None, tuple[tuple[str, str, float | None, float | None], ...]]] = {
    "acos": (
        None,
        (
            ("0", "+0", PI / 2, -0.0),
            ("0", "nan", PI / 2, NAN),
            ("finite", "+inf", PI / 2, -INF),
            ("nonzero finite", "nan", NAN, NAN),
            ("-inf", "positive finite", PI, -INF),
            ("+inf", "positive finite", 0.0, -INF),
            ("-inf", "+inf", 3 * PI / 4, -INF),
            ("+inf", "+inf", PI / 4, -INF),
            ("inf", "nan", NAN, INF),
            ("nan", "finite", NAN, NAN),
            ("nan", "+inf", NAN, -INF),
            ("nan", "nan", NAN, NAN),
        ),
    ),
    "acosh": (
        None,
        (
            ("0", "+0", 0.0, PI / 2),
            ("finite", "+inf", INF, PI / 2),
            ("nonzero finite", "nan", NAN, NAN),
            ("0", "nan", NAN, PI / 2),  # -0 too, as C99 libraries do
            ("-inf", "positive finite", INF, PI),
            ("+inf", "positive finite", INF, 0.0),
            ("-inf", "+inf", INF, 3 * PI / 4),
            ("+inf", "+inf", INF, PI / 4),
            ("inf", "nan", INF, NAN),
            ("nan", "finite", NAN, NAN),
            ("nan", "+inf", INF, NAN),
            ("nan", "nan", NAN, NAN),
        ),
    ),
    "asinh": (
        "odd",
        (
            ("+0", "+0", 0.0, 0.0),
            ("positive finite", "+inf", INF, PI / 2),
            ("finite", "nan", NAN, NAN),
            ("+inf", "positive finite", INF, 0.0),
            ("+inf", "+inf", INF, PI / 4),
            ("nan", "+0", NAN, 0.0),
            ("nan", "nonzero finite", NAN, NAN),
            ("nan", "+inf", INF, NAN),
            ("nan", "nan", NAN, NAN),
        ),
    ),
    "atanh": (
        "odd",
        (
            ("+0", "+0", 0.0, 0.0),
            ("+0", "nan", 0.0, NAN),
            ("1", "+0", INF, 0.0),
            ("positive finite", "+inf", 0.0, PI / 2),
            ("nonzero finite", "nan", NAN, NAN),
            ("+inf", "positive finite", 0.0, PI / 2),
            ("+inf", "+inf", 0.0, PI / 2),
            ("+inf", "nan", 0.0, NAN),
            ("nan", "finite", NAN, NAN),
            ("nan", "+inf", 0.0, PI / 2),
            ("nan", "nan", NAN, NAN),
        ),
    ),
    "cosh": (
        "even",
        (
            ("+0", "+0", 1.0, 0.0),
            ("+0", "+inf", NAN, 0.0),
            ("+0", "nan", NAN, 0.0),
            ("nonzero finite", "+inf", NAN, NAN),
            ("nonzero finite", "nan", NAN, NAN),
            ("+inf", "+0", INF, 0.0),
            ("+inf", "+inf", INF, NAN),
            ("+inf", "nan", INF, NAN),
            ("nan", "0", NAN, 0.0),
            ("nan", "nonzero finite", NAN, NAN),
            ("nan", "nan", NAN, NAN),
        ),
    ),
    "exp": (
        None,
        (
            ("0", "+0", 1.0, 0.0),
            ("finite", "+inf", NAN, NAN),
            ("finite", "nan", NAN, NAN),
            ("+inf", "+0", INF, 0.0),
            ("-inf", "+inf", 0.0, 0.0),
            ("+inf", "+inf", INF, NAN),
            ("-inf", "nan", 0.0, 0.0),
            ("+inf", "nan", INF, NAN),
            ("nan", "+0", NAN, 0.0),
            ("nan", "nonzero", NAN, NAN),
        ),
    ),
    "log": (
        None,
        (
            ("-0", "+0", -INF, PI),
            ("+0", "+0", -INF, 0.0),
            ("finite", "+inf", INF, PI / 2),
            ("finite", "nan", NAN, NAN),
            ("-inf", "positive finite", INF, PI),
            ("+inf", "positive finite", INF, 0.0),
            ("-inf", "+inf", INF, 3 * PI / 4),
            ("+inf", "+inf", INF, PI / 4),
            ("inf", "nan", INF, NAN),
            ("nan", "finite", NAN, NAN),
            ("nan", "+inf", INF, NAN),
            ("nan", "nan", NAN, NAN),
        ),
    ),
    "sinh": (
        "odd",
        (
            ("+0", "+0", 0.0, 0.0),
            ("+0", "+inf", 0.0, NAN),
            ("+0", "nan", 0.0, NAN),
            ("positive finite", "+inf", NAN, NAN),
            ("positive finite", "nan", NAN, NAN),
            ("+inf", "+0", INF, 0.0),
            ("+inf", "+inf", INF, NAN),
            ("+inf", "nan", INF, NAN),
            ("nan", "+0", NAN, 0.0),
            ("nan", "nonzero finite", NAN, NAN),
            ("nan", "nan", NAN, NAN),
        ),
    ),
    "sqrt": (
        None,
        (
            ("0", "+0", 0.0, 0.0),
            ("any", "+inf", INF, INF),
            ("finite", "nan", NAN, NAN),
            ("-inf", "positive finite", 0.0, INF),
            ("+inf", "positive finite", INF, 0.0),
            ("-inf", "nan", NAN, INF),
            ("+inf", "nan", INF, NAN),
            ("nan", "any", NAN, NAN),
        ),
    ),
    "tanh": (
        "odd",
        (
            ("+0", "+0", 0.0, 0.0),
            ("nonzero finite", "+inf", NAN, NAN),
            ("+0", "+inf", 0.0, NAN),
            ("nonzero finite", "nan", NAN, NAN),
            ("+0", "nan", 0.0, NAN),
            ("+inf", "positive finite", 1.0, 0.0),
            ("+inf", "+inf", 1.0, 0.0),
            ("+inf", "nan", 1.0, 0.0),
            ("nan", "+0", NAN, 0.0),
            ("nan", "nonzero", NAN, NAN),
        ),
    ),
}


def complex_function(name: str, function: Any, x: Any, /, *, xp: Any, from_parts: Any) -> Any:
    """The framework's ``function`` (the standard's ``name``, a key of :data:`SPECIAL_VALUES`) of a
    complex ``x``, as the standard says it must be.

    ``function`` is evaluated in the quadrant the tables are written for (``b >= 0``, and ``a >= 0``
    for odd and even functions) and the result carried back by the symmetries, which are exact:
    so a zero's sign picks the side of a branch cut (``sqrt(-4 - 0j) = -2j``), which XLA ignores.
    There the table's values replace the framework's. ``from_parts(re, im)`` builds a complex
    array from its parts keeping the sign of zeros and infinities."""
    symmetry, rules = SPECIAL_VALUES[name]
    a, b = xp.real(x), xp.imag(x)
    a_negative, b_negative = xp.signbit(a), xp.signbit(b)
    a_table = a if symmetry is None else xp.abs(a)
    b_table = xp.abs(b)
    result = function(from_parts(a_table, b_table))
    real, imag = xp.real(result), xp.imag(result)
    matched = xp.zeros_like(a, dtype=xp.bool)
    for a_word, b_word, real_value, imag_value in rules:
        here = xp.logical_and(_CONDITIONS[a_word](a_table, xp), _CONDITIONS[b_word](b_table, xp))
        here = xp.logical_and(here, xp.logical_not(matched))
        if real_value is not None:
            real = xp.where(here, xp.asarray(real_value, dtype=real.dtype), real)
        if imag_value is not None:
            imag = xp.where(here, xp.asarray(imag_value, dtype=imag.dtype), imag)
        matched = xp.logical_or(matched, here)
    # Back to x's quadrant: f(conj(x)) = conj(f(x)); odd f(-x) = -f(x); even f(-x) = f(x).
    flip_imag = b_negative if symmetry != "even" else xp.not_equal(b_negative, a_negative)
    imag = xp.where(flip_imag, xp.negative(imag), imag)
    if symmetry == "odd":
        real = xp.where(a_negative, xp.negative(real), real)
    return from_parts(real, imag)


def with_special_values(function: Any, name: str, /, *, xp: Any, from_parts: Any, complex_dtypes: Any) -> Any:
    """A namespace's ``name``: the framework's ``function``, through :func:`complex_function` for
    an argument whose dtype is in ``complex_dtypes`` (a set). Real arguments, the common case,
    pay one set lookup."""

    def standard(x: Any, /) -> Any:
        if getattr(x, "dtype", None) not in complex_dtypes:
            return function(x)
        return complex_function(name, function, x, xp=xp, from_parts=from_parts)

    standard.__name__ = standard.__qualname__ = name
    standard.__doc__ = (
        f"``{name}(x)``, elementwise; a complex ``x`` with the standard's special values and branch cuts."
    )
    return standard
