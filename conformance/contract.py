"""The contract family: the Backend members that move data and describe the backend.

Every other family trusts ``asarray``, ``to_numpy``, ``dtype``/``supports``, ``device``,
``owns`` and ``synchronize`` to be exact, so they are checked here on their own, against
values known in advance (not against another backend's answer):

- ``asarray``/``to_numpy`` round trips for every dtype of the standard, at its edges
  (integer limits, signed zeros, subnormals, the largest finite floats, infinities, NaN),
  in 0-d, 1-d, square and non-square shapes: same values bit for bit, same dtype, same shape;
- ``asarray(x, dtype)`` converts NumPy arrays and Python data to ``dtype``;
- ``dtype(name)`` names itself back, ``supports`` agrees with ``dtype`` and refuses what the
  standard does not have (float16, complex64);
- ``device`` is one of ``devices()``, spelled canonically;
- ``owns`` recognises the backend's arrays, its 0-d results and arrays under its autodiff,
  and no Python number;
- ``synchronize(tree)`` returns ``tree``;
- ``value_and_grad`` over a pytree whose leaves share one shape gives each leaf its own
  gradient (a mix-up of leaves of different shapes shows as a shape error elsewhere; one
  of equal shapes shows only here).

The outputs are exact (booleans, names, shapes), computed by each backend about itself; a
backend that cannot hold a dtype at all (``supports`` says no) skips that dtype's case.
The cases do not depend on the dtype under test and run once, in float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from portable_dl.backend import DTYPE_NAMES, Backend
from portable_dl.errors import DTypeError
from portable_dl.tree import tree_flatten

from .cases import Case, CaseSkipped, Outputs

FAMILY = "contract"

#: dtypes the standard does not have: ``supports`` must say no to each.
NOT_STANDARD = ("float16", "bfloat16", "complex64", "complex128", "str")


def edge_values(name: str) -> np.ndarray:
    """The values at the edges of dtype ``name``, as a 1-d NumPy array of that dtype."""
    dtype = np.dtype(name)
    if dtype.kind == "b":
        return np.array([True, False, True], dtype=dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        values = [info.min, info.max, 0, 1, info.max - 1]
        if dtype.kind == "i":
            values += [-1, info.min + 1]
        return np.array(values, dtype=dtype)
    info = _finfo(name)
    return np.array(
        [
            0.0,
            -0.0,
            info.smallest_subnormal,
            -info.smallest_subnormal,
            info.tiny,
            1.0,
            -1.0 / 3.0,
            info.max,
            -info.max,
            np.inf,
            -np.inf,
            np.nan,
        ],
        dtype=dtype,
    )


def _finfo(name: str) -> Any:
    """NumPy's finfo of a floating dtype; ml_dtypes' for bfloat16, which NumPy's refuses."""
    if name == "bfloat16":
        import ml_dtypes  # present wherever a backend holds bfloat16 (its to_numpy needs it)

        return ml_dtypes.finfo(ml_dtypes.bfloat16)
    return np.finfo(name)


def identical(actual: np.ndarray, expected: np.ndarray) -> bool:
    """Same dtype, shape and values, bit for bit where it matters: NaN at the same places,
    zeros with the same sign."""
    actual = np.asarray(actual)
    if actual.dtype != expected.dtype or actual.shape != expected.shape:
        return False
    if expected.dtype.name == "bfloat16":  # ml_dtypes' kind is "V"; float32 holds each value exactly
        actual, expected = actual.astype(np.float32), expected.astype(np.float32)
    if expected.dtype.kind == "f":
        same_nan = np.array_equal(np.isnan(actual), np.isnan(expected))
        numbers = ~np.isnan(expected)
        return bool(
            same_nan
            and np.array_equal(actual[numbers], expected[numbers])
            and np.array_equal(np.signbit(actual[numbers]), np.signbit(expected[numbers]))
        )
    return bool(np.array_equal(actual, expected))


def round_trip_case(name: str) -> Case:
    def compute(backend: Backend, dtype: str) -> Outputs:
        if not backend.supports(name):
            raise CaseSkipped(f"{backend.name} on {backend.device} does not hold {name}")
        values = edge_values(name)
        square = np.resize(values, (3, 3)).copy()
        square[0, 1], square[1, 0] = values[0], values[1]  # an asymmetric square: a transpose shows
        shapes = {
            "0-d": values[1].reshape(()),
            "1-d": values,
            "square": square,
            "non-square": np.resize(values, (2, 5)),
            "column": np.resize(values, (4, 1)),
        }
        outputs: Outputs = {}
        for label, expected in shapes.items():
            array = backend.asarray(expected, name)
            back = backend.to_numpy(array)
            outputs[f"{label} asarray dtype"] = backend.dtype_name(array.dtype)
            outputs[f"{label} to_numpy is a NumPy array"] = isinstance(back, np.ndarray)
            outputs[f"{label} to_numpy shape"] = tuple(np.shape(back))
            outputs[f"{label} round trip identical"] = identical(back, expected)
            # dtype=None keeps a NumPy array's dtype (JAX without x64 narrows 64-bit integers
            # that fit: the standard lets a library without int64 say so through supports)
            kept = backend.to_numpy(backend.asarray(expected))
            outputs[f"{label} asarray(dtype=None) keeps the values"] = bool(
                np.array_equal(
                    np.asarray(kept, dtype=np.float64), np.asarray(expected, dtype=np.float64), equal_nan=True
                )
            )
        return outputs

    return Case(FAMILY, f"asarray and to_numpy round trip {name}", compute, dtypes=("float32",))


def conversion_case(target: str) -> Case:
    def compute(backend: Backend, dtype: str) -> Outputs:
        if not backend.supports(target):
            raise CaseSkipped(f"{backend.name} on {backend.device} does not hold {target}")
        source = np.array([[1.5, -2.25, 0.1], [3.0, -0.0, 1e-3]])  # float64, non-square
        outputs: Outputs = {}
        for label, given in (
            ("NumPy float64 array", source),
            ("nested lists", source.tolist()),
            ("NumPy int64 array", np.array([[1, -2, 3], [4, 5, -6]])),
        ):
            array = backend.asarray(given, target)
            outputs[f"{label}: dtype"] = backend.dtype_name(array.dtype)
            outputs[f"{label}: identical"] = identical(backend.to_numpy(array), np.asarray(given).astype(target))
        # an array of this backend, converted again
        other = "float32" if target != "float32" else "int32"
        own = backend.asarray(source, other)
        outputs[f"own {other} array: dtype"] = backend.dtype_name(backend.asarray(own, target).dtype)
        outputs[f"own {other} array: identical"] = identical(
            backend.to_numpy(backend.asarray(own, target)), source.astype(other).astype(target)
        )
        return outputs

    return Case(FAMILY, f"asarray(x, {target}) converts", compute, dtypes=("float32",))


def dtype_case() -> Case:
    def compute(backend: Backend, dtype: str) -> Outputs:
        outputs: Outputs = {}
        for name in DTYPE_NAMES:
            try:
                named_back = backend.dtype_name(backend.dtype(name))
                creatable = True
            except DTypeError:  # the documented refusal
                named_back, creatable = name, False
            outputs[f"dtype({name!r}) names itself"] = named_back == name
            outputs[f"supports({name!r}) agrees with dtype()"] = backend.supports(name) == creatable
        outputs["supports float32"] = backend.supports("float32")
        outputs["refuses dtypes outside the standard"] = tuple(
            name for name in NOT_STANDARD if _supports_quietly(backend, name)
        )
        return outputs

    return Case(FAMILY, "dtype() and supports()", compute, dtypes=("float32",))


def _supports_quietly(backend: Backend, name: str) -> bool:
    try:
        return bool(backend.supports(name))
    except DTypeError:  # refusing by raising the documented error is refusing too
        return False


def device_case() -> Case:
    def compute(backend: Backend, dtype: str) -> Outputs:
        devices = list(backend.devices())
        return {
            "device is one of devices()": backend.device in devices,
            "device is spelled canonically": backend.canonical_device(backend.device) == backend.device,
            "devices() spelled canonically": all(backend.canonical_device(d) == d for d in devices),
        }

    return Case(FAMILY, "device and devices()", compute, dtypes=("float32",))


def owns_case() -> Case:
    def compute(backend: Backend, dtype: str) -> Outputs:
        xp = backend.xp
        x = backend.asarray(np.array([1.0, -2.0, 4.0]), dtype)
        seen_in_autodiff = []

        def loss(v):
            seen_in_autodiff.append(backend.owns(v))
            return xp.sum(xp.multiply(v, v))

        backend.value_and_grad(loss)(x)
        return {
            "owns its arrays": backend.owns(x),
            "owns a 0-d reduction result": backend.owns(xp.sum(x)),
            "owns an indexed element": backend.owns(x[1]),
            "owns arrays under its autodiff": bool(seen_in_autodiff) and all(seen_in_autodiff),
            "owns no Python number": not any(backend.owns(v) for v in (1.5, 2, True)),
        }

    return Case(FAMILY, "owns()", compute, dtypes=("float32",))


def synchronize_case() -> Case:
    def compute(backend: Backend, dtype: str) -> Outputs:
        tree = {"a": backend.asarray(np.array([1.0, 2.0]), dtype), "b": [backend.asarray(np.array(3.0), dtype)]}
        returned = backend.synchronize(tree)
        leaves, structure = tree_flatten(tree)
        returned_leaves, returned_structure = tree_flatten(returned)
        same = returned is tree or (
            returned_structure == structure
            and len(returned_leaves) == len(leaves)
            and all(a is b for a, b in zip(returned_leaves, leaves))
        )
        single = backend.asarray(np.array([5.0]), dtype)
        return {"returns its tree": bool(same), "returns a single array": backend.synchronize(single) is single}

    return Case(FAMILY, "synchronize returns its input", compute, dtypes=("float32",))


def equal_shaped_leaves_case() -> Case:
    rng = np.random.default_rng(7)
    layers = [rng.uniform(-1, 1, (2, 3)) for _ in range(3)]
    pair = (rng.uniform(-1, 1, (3,)), rng.uniform(-1, 1, (3,)))

    def compute(backend: Backend, dtype: str) -> Outputs:
        xp = backend.xp
        tree = {
            "layers": [backend.asarray(w, dtype) for w in layers],
            "pair": tuple(backend.asarray(u, dtype) for u in pair),
        }

        def loss(t):
            # each leaf enters with its own weight, so a gradient given to the wrong leaf shows
            total = xp.sum(xp.square(t["pair"][0])) + 3.0 * xp.sum(t["pair"][1])
            for weight, w in enumerate(t["layers"], 1):
                total = total + float(weight) * xp.sum(xp.square(w))
            return total

        _, grads = backend.value_and_grad(loss)(tree)
        outputs: Outputs = {
            f"grad layers[{i}]": np.asarray(backend.to_numpy(g), np.float64) for i, g in enumerate(grads["layers"])
        }
        outputs.update(
            {f"grad pair[{i}]": np.asarray(backend.to_numpy(g), np.float64) for i, g in enumerate(grads["pair"])}
        )
        # hand-derived: d/dw_i (i+1) sum(w_i^2) = 2 (i+1) w_i; d/du0 sum(u0^2) = 2 u0; d/du1 3 sum(u1) = 3
        expected = [2.0 * (i + 1) * w for i, w in enumerate(layers)] + [2.0 * pair[0], np.full(3, 3.0)]
        actual = [outputs[f"grad layers[{i}]"] for i in range(3)] + [outputs["grad pair[0]"], outputs["grad pair[1]"]]
        outputs["each leaf has its own gradient"] = all(
            np.allclose(a, e, rtol=1e-3, atol=1e-3) for a, e in zip(actual, expected)
        )  # apart by O(1) when swapped
        return outputs

    return Case(FAMILY, "value_and_grad of equal-shaped leaves", compute, gradient=True, reduction_size=6)


def cases(quick: bool = False, seed: int = 0) -> list[Case]:
    """Every contract case; they are cheap, so ``quick`` runs them all."""
    return [round_trip_case(name) for name in DTYPE_NAMES] + [
        *(conversion_case(target) for target in ("float32", "float64", "int32")),
        dtype_case(),
        device_case(),
        owns_case(),
        synchronize_case(),
        equal_shaped_leaves_case(),
    ]
