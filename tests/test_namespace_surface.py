"""Every backend's ``xp`` exports exactly the array API 2024.12 names: each one present,
nothing else public (no framework module, no adapter helper)."""

from __future__ import annotations

import pytest
from portable_dl.backends._common import surface

from portable_dl.errors import DTypeError

# The standard's counts (data-apis/array-api, src/array_api_stubs/_2024_12): a second,
# hand-counted statement of the list, so that an accidental deletion in surface.py fails here.
EXPECTED_COUNTS = {"DTYPES": 13, "CONSTANTS": 5, "FUNCTIONS": 133, "LINALG": 23, "FFT": 14}


def public_names(namespace) -> set[str]:
    return {name for name in dir(namespace) if not name.startswith("_")}


def test_surface_lists_the_whole_standard():
    for group, count in EXPECTED_COUNTS.items():
        names = getattr(surface, group)
        assert len(names) == len(set(names)) == count, group
    # Names the issue found missing, and names that moved between versions.
    for name in (
        "bitwise_left_shift",
        "nextafter",
        "diff",
        "count_nonzero",
        "cumulative_prod",
        "from_dlpack",
        "searchsorted",
        "unique_inverse",
        "signbit",
        "meshgrid",
    ):
        assert name in surface.FUNCTIONS
    assert "isin" not in surface.NAMES  # 2025.12, not 2024.12


def test_every_standard_name_is_present(backend):
    xp = backend.xp
    # The half dtypes are the one extension, allowed but not required (tests/test_namespace_half.py).
    missing = sorted(name for name in surface.NAMES - set(surface.HALF_DTYPES) if not hasattr(xp, name))
    assert missing == [], f"{backend.name} lacks {missing}"
    assert xp.__array_api_version__ == "2024.12"
    for name in surface.FUNCTIONS:
        assert callable(getattr(xp, name)), name


@pytest.mark.parametrize("extension", sorted(surface.EXTENSIONS))
def test_extensions_are_complete_sub_namespaces(backend, extension):
    sub = getattr(backend.xp, extension)
    names = surface.EXTENSIONS[extension]
    missing = sorted(name for name in names if not callable(getattr(sub, name, None)))
    assert missing == [], f"{backend.name} xp.{extension} lacks {missing}"
    assert public_names(sub) - set(names) == set()


def test_nothing_else_is_public(backend):
    leaked = sorted(public_names(backend.xp) - surface.NAMES)
    assert leaked == [], f"{backend.name} xp exports names outside the standard: {leaked}"


def test_the_half_dtypes_are_the_one_extension():
    assert surface.HALF_DTYPES == ("float16", "bfloat16")
    assert set(surface.HALF_DTYPES) <= surface.NAMES
    assert not set(surface.HALF_DTYPES) & set(surface.DTYPES)  # the standard's list stays the standard's


def test_dtypes_are_distinct_objects(backend):
    xp = backend.xp
    names = surface.DTYPES + tuple(name for name in surface.HALF_DTYPES if hasattr(xp, name))
    dtypes = [getattr(xp, name) for name in names]
    for i, a in enumerate(dtypes):
        for b in dtypes[i + 1 :]:
            assert a != b, f"{backend.name}: two standard dtypes compare equal"


def test_unsupported_names_the_function_and_the_reason():
    stand_in = surface.unsupported("nextafter", "no such kernel in this framework")
    with pytest.raises(NotImplementedError, match=r"^nextafter: no such kernel in this framework$"):
        stand_in(1.0, 2.0)
    assert stand_in.__name__ == "nextafter"
    with pytest.raises(DTypeError, match=r"^complex128: the framework has no complex128$"):
        surface.unsupported_dtype("complex128", "the framework has no complex128")()


def test_build_namespace_copies_only_standard_names():
    members = {
        "add": lambda a, b: a + b,
        "torch": object(),
        "helper": len,
        "linalg": {"det": abs, "secret": abs},
        "fft": None,
    }
    xp = surface.build_namespace("example.xp", members)
    assert public_names(xp) == {"add", "linalg"}
    assert public_names(xp.linalg) == {"det"}
    assert xp.__array_api_version__ == surface.VERSION
