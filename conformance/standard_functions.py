"""Ops and gradient cases for the functions array API 2024.12 added to the namespaces: the
bitwise functions, complex parts, ``signbit``, ``nextafter``, searching and set functions,
``cumulative_prod``, ``diff``, ``meshgrid``, ``from_dlpack``, the ``linalg`` and ``fft``
extensions, and the dtype rules the namespaces once got wrong (``vecdot`` of small integers,
``sum``/``prod``/``cumulative_sum`` accumulation dtypes, ``finfo``).

Included by one line in :func:`conformance.ops.cases` and one in
:func:`conformance.gradients.cases`. Where the standard leaves an order unspecified (the
values of ``unique_*``), the outputs are put in a canonical order on the host first.
"""

from __future__ import annotations

import dataclasses
import types
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from portable_dl.backend import Backend
from portable_dl.errors import DTypeError

from .cases import Case, CaseSkipped, Outputs
from .numerics import scalar_function_case

__all__ = ["ops_cases", "gradient_cases"]

#: Results whose dtype the standard leaves to the implementation's default index dtype.
INDEX = "indexing"


def _dtype_name(backend: Backend, dtype: Any) -> str:
    for name in ("complex64", "complex128"):
        if dtype == getattr(backend.xp, name):
            return name
    return backend.dtype_name(dtype)


def outputs_of(backend: Backend, result: Any, prefix: str = "", index: bool = False) -> Outputs:
    """Shape, dtype and values of an array result (real and imaginary parts apart for complex
    results); tuples and lists give one group of outputs per element. With ``index`` the dtype
    is checked to be the namespace's default index dtype, which the standard leaves open."""
    if isinstance(result, (tuple, list)):
        outputs: Outputs = {}
        for i, part in enumerate(result):
            outputs.update(outputs_of(backend, part, f"{prefix}{i} ", index))
        return outputs
    value = np.asarray(backend.to_numpy(result))
    outputs = {f"{prefix}shape": tuple(int(d) for d in result.shape)}
    if index:
        default = backend.xp.__array_namespace_info__().default_dtypes()[INDEX]
        outputs[f"{prefix}is the default index dtype"] = _dtype_name(backend, result.dtype) == _dtype_name(
            backend, default
        )
    else:
        outputs[f"{prefix}dtype"] = _dtype_name(backend, result.dtype)
    if np.iscomplexobj(value):
        outputs[f"{prefix}real"] = value.real.astype(np.float64)
        outputs[f"{prefix}imag"] = value.imag.astype(np.float64)
    else:
        outputs[f"{prefix}value"] = value.astype(np.float64)
    return outputs


def _draw(shape: tuple, seed: int, low: float = -3.0, high: float = 3.0) -> np.ndarray:
    """Float64 values exactly representable in float32 (see :func:`conformance.ops.draw`)."""
    return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32).astype(np.float64)


def _complex(backend: Backend, dtype: str, values: np.ndarray) -> Any:
    """``values`` (complex NumPy) as a backend array of the complex dtype of ``dtype``'s precision."""
    name = {"float32": "complex64", "float64": "complex128"}[dtype]
    if not backend.supports(dtype):
        raise CaseSkipped(f"{backend.name} on {backend.device} has no {dtype}")
    try:
        return backend.xp.asarray(values.astype(name), dtype=getattr(backend.xp, name))
    except DTypeError as error:  # MLX has complex64 only: a framework limit, said by the namespace
        raise CaseSkipped(f"{backend.name} on {backend.device} has no {name}: {error}") from error


def _spd(seed: int, n: int = 4, batch: tuple = ()) -> np.ndarray:
    """A well-conditioned symmetric positive-definite matrix (stack): ``B B^T + n I``."""
    b = _draw(batch + (n, n), seed, -1.0, 1.0)
    return np.round((b @ np.swapaxes(b, -1, -2) + n * np.eye(n)) * 64) / 64  # exact in float32


def _case(
    name: str,
    compute: Callable[[Backend, str], Outputs],
    *,
    size: int = 1,
    dtypes=("float32", "float64"),
    same: bool = False,
) -> Case:
    return Case(
        "ops",
        name,
        compute,
        reduction_size=size,
        elementwise=size == 1,
        dtypes=tuple(dtypes),
        reference_dtype="same" if same else "float64",
    )


# ------------------------------------------------------------------------ ops cases
def _integer_cases() -> list[Case]:
    """Bitwise functions (exact integers: one dtype run is enough)."""
    a = np.array([-7, -1, 0, 3, 12, (1 << 20) + 5], dtype=np.int32)
    b = np.array([3, 5, 6, 1, 10, 7], dtype=np.int32)
    shifts = np.array([0, 1, 2, 3, 4, 5], dtype=np.int32)

    def bitwise(backend, dtype):
        xp, x1, x2, s = backend.xp, backend.asarray(a), backend.asarray(b), backend.asarray(shifts)
        outputs = {}
        for name, result in [
            ("and", xp.bitwise_and(x1, x2)),
            ("or", xp.bitwise_or(x1, x2)),
            ("xor", xp.bitwise_xor(x1, x2)),
            ("invert", xp.bitwise_invert(x1)),
            ("left_shift", xp.bitwise_left_shift(x1, s)),
            ("right_shift", xp.bitwise_right_shift(x1, s)),
        ]:
            outputs.update(outputs_of(backend, result, f"{name} "))
        return outputs

    def unsigned_and_bool(backend, dtype):
        xp = backend.xp
        u = backend.asarray(np.array([0, 1, 200, 255], dtype=np.uint8))
        flags = backend.asarray(np.array([True, True, False, False]))
        other = backend.asarray(np.array([True, False, True, False]))
        return {
            **outputs_of(backend, xp.bitwise_invert(u), "uint8 invert "),
            **outputs_of(
                backend, xp.bitwise_right_shift(u, backend.asarray(np.array([1, 1, 3, 7], dtype=np.uint8))), "uint8 >> "
            ),
            **outputs_of(backend, xp.bitwise_xor(flags, other), "bool xor "),
            **outputs_of(backend, xp.bitwise_invert(flags), "bool invert "),
        }

    return [
        _case("bitwise int32 (and, or, xor, invert, shifts)", bitwise, dtypes=("float32",)),
        _case("bitwise uint8 and bool", unsigned_and_bool, dtypes=("float32",)),
    ]


def _element_wise_cases() -> list[Case]:
    special = np.array([0.0, -0.0, 1.5, -1.5, np.inf, -np.inf, 1e-30, -1e-30])

    def signbit(backend, dtype):
        return outputs_of(backend, backend.xp.signbit(backend.asarray(special, dtype)))

    def nextafter(backend, dtype):
        x1 = backend.asarray(np.array([0.0, 1.0, 1.0, -1.0, 2.0]), dtype)
        x2 = backend.asarray(np.array([1.0, 2.0, 0.0, -2.0, 2.0]), dtype)
        return outputs_of(backend, backend.xp.nextafter(x1, x2))

    def real_parts(backend, dtype):
        xp, x = backend.xp, backend.asarray(_draw((3, 4), 21), dtype)
        # imag of a real array is left open by the standard ("should have a complex dtype").
        return {**outputs_of(backend, xp.real(x), "real "), **outputs_of(backend, xp.conj(x), "conj ")}

    def complex_parts(backend, dtype):
        xp = backend.xp
        z = _complex(backend, dtype, _draw((3, 4), 22) + 1j * _draw((3, 4), 23))
        return {
            **outputs_of(backend, xp.real(z), "real "),
            **outputs_of(backend, xp.imag(z), "imag "),
            **outputs_of(backend, xp.conj(z), "conj "),
            **outputs_of(backend, xp.abs(z), "abs "),
            **outputs_of(backend, xp.real(xp.multiply(z, xp.conj(z))), "real(z conj(z)) "),
        }

    return [
        _case("signbit", signbit, same=True),
        _case("nextafter", nextafter, same=True),
        _case("real, conj of a real array", real_parts),
        _case("real, imag, conj, abs of a complex array", complex_parts, size=2),
    ]


def _searching_and_set_cases() -> list[Case]:
    x = np.array([[0.0, 2.0, 0.0, -1.5], [3.0, 0.0, 0.0, 2.0], [-1.5, -1.5, 7.0, 0.0]])

    def nonzero(backend, dtype):
        return outputs_of(backend, backend.xp.nonzero(backend.asarray(x, dtype)), index=True)

    def count_nonzero(backend, dtype):
        xp, a = backend.xp, backend.asarray(x, dtype)
        return {
            **outputs_of(backend, xp.count_nonzero(a, axis=1), "axis=1 ", index=True),
            **outputs_of(backend, xp.count_nonzero(a, axis=0, keepdims=True), "axis=0 keepdims ", index=True),
            **outputs_of(backend, xp.count_nonzero(a), "all ", index=True),
        }

    def searchsorted(backend, dtype):
        xp = backend.xp
        sorted_ = backend.asarray(np.array([-2.0, -1.0, 0.5, 0.5, 0.5, 3.0]), dtype)
        values = backend.asarray(np.array([[0.5, -5.0], [3.0, 4.0], [-1.0, 0.0]]), dtype)
        return {
            **outputs_of(backend, xp.searchsorted(sorted_, values), "left ", index=True),
            **outputs_of(backend, xp.searchsorted(sorted_, values, side="right"), "right ", index=True),
        }

    def unique(backend, dtype):
        # The standard leaves the order of the unique values open: sort them here, and check
        # the inverse by rebuilding x from it rather than by its numbers.
        xp, a = backend.xp, backend.asarray(x, dtype)
        numpy = backend.to_numpy
        values = numpy(xp.unique_values(a))
        counts = xp.unique_counts(a)
        order = np.argsort(numpy(counts.values))
        inverse = xp.unique_inverse(a)
        everything = xp.unique_all(a)
        first = numpy(everything.indices)
        all_order = np.argsort(numpy(everything.values))
        return {
            "unique_values": np.sort(values).astype(np.float64),
            "unique_counts values": numpy(counts.values)[order].astype(np.float64),
            "unique_counts counts": numpy(counts.counts)[order].astype(np.float64),
            "unique_inverse rebuilds x": numpy(xp.take(inverse.values, xp.reshape(inverse.inverse_indices, (-1,))))
            .reshape(x.shape)
            .astype(np.float64),
            "unique_inverse indices shape": tuple(int(d) for d in inverse.inverse_indices.shape),
            "unique_all values": numpy(everything.values)[all_order].astype(np.float64),
            "unique_all first indices": first[all_order].astype(np.float64),
            "unique_all counts": numpy(everything.counts)[all_order].astype(np.float64),
            "unique_all rebuilds x": numpy(xp.take(everything.values, xp.reshape(everything.inverse_indices, (-1,))))
            .reshape(x.shape)
            .astype(np.float64),
        }

    return [
        _case("nonzero", nonzero),
        _case("count_nonzero", count_nonzero),
        _case("searchsorted left and right", searchsorted),
        _case("unique_values, _counts, _inverse, _all", unique),
    ]


def _structure_cases() -> list[Case]:
    a = _draw((2, 3, 4), 31, 0.5, 1.5)

    def cumulative_prod(backend, dtype):
        xp, x = backend.xp, backend.asarray(a, dtype)
        return {
            **outputs_of(backend, xp.cumulative_prod(x, axis=2), "axis=2 "),
            **outputs_of(backend, xp.cumulative_prod(x, axis=0, include_initial=True), "axis=0 with initial "),
        }

    def diff(backend, dtype):
        xp, x = backend.xp, backend.asarray(a, dtype)
        edge = backend.asarray(_draw((2, 3, 1), 32), dtype)
        return {
            **outputs_of(backend, xp.diff(x), "n=1 "),
            **outputs_of(backend, xp.diff(x, axis=1, n=2), "axis=1 n=2 "),
            **outputs_of(backend, xp.diff(x, prepend=edge, append=edge), "prepend, append "),
        }

    def meshgrid(backend, dtype):
        xp = backend.xp
        u, v = backend.asarray(_draw((3,), 33), dtype), backend.asarray(_draw((2,), 34), dtype)
        xy, ij = xp.meshgrid(u, v), xp.meshgrid(u, v, indexing="ij")
        return {
            "returns a list": isinstance(xy, list) and isinstance(ij, list),
            **outputs_of(backend, tuple(xy), "xy "),
            **outputs_of(backend, tuple(ij), "ij "),
        }

    def from_dlpack(backend, dtype):
        return outputs_of(backend, backend.xp.from_dlpack(backend.asarray(a, dtype)))

    return [
        _case("cumulative_prod", cumulative_prod, size=4),
        _case("diff", diff, size=2),
        _case("meshgrid", meshgrid),
        _case("from_dlpack", from_dlpack),
    ]


def _dtype_rule_cases() -> list[Case]:
    """The accumulation and result dtypes the standard fixes (issue 14's wrong results)."""

    def default(backend, kind):
        return _dtype_name(backend, backend.xp.__array_namespace_info__().default_dtypes()[kind])

    def small_integers(backend, dtype):
        xp = backend.xp
        int8 = backend.asarray(np.array([[100, 100, -3], [7, 120, 120]], dtype=np.int8))
        uint8 = backend.asarray(np.array([[200, 100, 3], [7, 250, 250]], dtype=np.uint8))
        integer = default(backend, "integral")
        return {
            "sum int8 value": backend.to_numpy(xp.sum(int8, axis=1)).astype(np.float64),
            "sum int8 gives the default integer": _dtype_name(backend, xp.sum(int8).dtype) == integer,
            "prod int8 gives the default integer": _dtype_name(backend, xp.prod(int8).dtype) == integer,
            "cumulative_sum uint8 value": backend.to_numpy(xp.cumulative_sum(uint8, axis=1)).astype(np.float64),
            "cumulative_sum int8 gives the default integer": _dtype_name(backend, xp.cumulative_sum(int8, axis=1).dtype)
            == integer,
            "sum with dtype=int8 keeps int8": _dtype_name(backend, xp.sum(int8, axis=1, dtype=xp.int8).dtype),
        }

    def unsigned_integers(backend, dtype):
        if not backend.supports("uint64"):
            raise CaseSkipped(
                f"{backend.name} does not compute in uint64 here: "
                f"{backend.name} unsigned sums cannot take the standard's dtype"
            )
        xp = backend.xp
        uint8 = backend.asarray(np.array([[200, 100, 3], [7, 250, 250]], dtype=np.uint8))
        unsigned = "u" + default(backend, "integral")
        return {
            "sum uint8 gives the unsigned default": _dtype_name(backend, xp.sum(uint8, axis=0).dtype) == unsigned,
            "prod uint8 gives the unsigned default": _dtype_name(backend, xp.prod(uint8, axis=1).dtype) == unsigned,
            "sum uint8 value": backend.to_numpy(xp.sum(uint8, axis=0)).astype(np.float64),
        }

    def vecdot_integers(backend, dtype):
        xp = backend.xp
        x1 = backend.asarray(np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8))
        x2 = backend.asarray(np.array([7, 8, 9], dtype=np.uint8))
        i16 = backend.asarray(np.array([[-3, 2, 1]], dtype=np.int16))
        return {
            **outputs_of(backend, xp.vecdot(x1, x2), "uint8 "),
            **outputs_of(backend, xp.vecdot(i16, i16), "int16 "),
        }

    def float_sum_dtype(backend, dtype):
        if not backend.supports("float64"):
            raise CaseSkipped(f"{backend.name} on {backend.device} has no float64")
        xp, x = backend.xp, backend.asarray(_draw((3, 4), 41), "float32")
        return outputs_of(backend, xp.sum(x, axis=0, dtype=xp.float64))

    def finfo(backend, dtype):
        xp, info = backend.xp, backend.xp.finfo(backend.dtype(dtype))
        # IEEE 754's numbers, the standard's reference; bfloat16 (NumPy has none): 8 exponent
        # bits as float32's, 7 fraction bits.
        ieee = np.finfo(dtype) if dtype != "bfloat16" else _BFLOAT16_LIMITS
        return {
            "eps, max, min, smallest_normal are IEEE 754's": (info.eps, info.max, info.min, info.smallest_normal)
            == (float(ieee.eps), float(ieee.max), float(ieee.min), float(ieee.smallest_normal)),
            "they are Python floats": all(
                type(v) is float for v in (info.eps, info.max, info.min, info.smallest_normal)
            ),
            "bits": info.bits,
            "dtype is the dtype": info.dtype == backend.dtype(dtype),
            "can_cast to itself": bool(xp.can_cast(backend.dtype(dtype), backend.dtype(dtype))),
            "expand_dims with a positional axis": tuple(
                int(d) for d in xp.expand_dims(backend.asarray(np.ones((2, 3)), dtype), 1).shape
            ),
            "std with correction=0.5": backend.to_numpy(
                xp.std(backend.asarray(_draw((5,), 42), dtype), correction=0.5)
            ).astype(np.float64),
        }

    return [
        _case(
            "integer sum, prod, cumulative_sum accumulate in the default integer", small_integers, dtypes=("float32",)
        ),
        _case("unsigned sum and prod accumulate in the unsigned default", unsigned_integers, dtypes=("float32",)),
        _case("vecdot of small integers keeps their dtype", vecdot_integers, dtypes=("float32",)),
        _case("sum with dtype=float64 of float32", float_sum_dtype, size=3, dtypes=("float32",)),
        _case("finfo, can_cast, expand_dims, std", finfo, size=5),
    ]


def _linalg_cases() -> list[Case]:
    m = _draw((2, 3, 3), 51, -1.0, 1.0) + 3 * np.eye(3)  # a stack of well-conditioned matrices
    spd = _spd(52, 3, (2,))
    rhs = _draw((2, 3, 2), 53)
    rect = _draw((4, 3), 54)
    u, v = _draw((3,), 55), _draw((2, 3), 56)

    def table(backend, dtype):
        xp, la = backend.xp, backend.xp.linalg
        M, S, R = backend.asarray(m, dtype), backend.asarray(spd, dtype), backend.asarray(rect, dtype)
        U, V = backend.asarray(u, dtype), backend.asarray(v, dtype)
        eigh = la.eigh(S)
        qr = la.qr(R)
        svd = la.svd(R, full_matrices=False)
        slogdet = la.slogdet(M)
        rebuilt_eigh = xp.matmul(
            xp.multiply(eigh.eigenvectors, xp.expand_dims(eigh.eigenvalues, axis=-2)),
            xp.matrix_transpose(eigh.eigenvectors),
        )
        results = {
            "det": la.det(M),
            "inv": la.inv(M),
            "solve": la.solve(M, backend.asarray(rhs, dtype)),
            "cholesky": la.cholesky(S),
            "cholesky upper": la.cholesky(S, upper=True),
            "eigh eigenvalues": eigh.eigenvalues,
            "eigh rebuilt": rebuilt_eigh,
            "eigvalsh": la.eigvalsh(S),
            "qr rebuilt": xp.matmul(qr.Q, qr.R),
            "qr Q^T Q": xp.matmul(xp.matrix_transpose(qr.Q), qr.Q),
            "svd S": svd.S,
            "svd rebuilt": xp.matmul(xp.multiply(svd.U, xp.expand_dims(svd.S, axis=-2)), svd.Vh),
            "svdvals": la.svdvals(R),
            "slogdet sign": slogdet.sign,
            "slogdet logabsdet": slogdet.logabsdet,
            "pinv": la.pinv(R),
            "matrix_power 3": la.matrix_power(M, 3),
            "matrix_power -1": la.matrix_power(M, -1),
            "matrix_power 0": la.matrix_power(M, 0),
            "trace": la.trace(M),
            "trace offset=1": la.trace(M, offset=1),
            "diagonal offset=-1": la.diagonal(M, offset=-1),
            "outer": la.outer(U, V[0]),
            "cross": la.cross(U, V),
            "matmul": la.matmul(M, R[:3]),
            "tensordot": la.tensordot(M, M[0], axes=2),
            "vecdot": la.vecdot(U, V),
            "matrix_transpose": la.matrix_transpose(R),
        }
        for order in (2, 1, np.inf, -np.inf, 0, 3):
            results[f"vector_norm ord={order}"] = la.vector_norm(M, ord=order)
        results["vector_norm axis=1 keepdims"] = la.vector_norm(M, axis=1, keepdims=True)
        results["vector_norm axis=(0, 2)"] = la.vector_norm(M, axis=(0, 2))
        for order in ("fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf):
            results[f"matrix_norm ord={order}"] = la.matrix_norm(M, ord=order)
        results["matrix_norm keepdims"] = la.matrix_norm(M, keepdims=True)
        outputs: Outputs = {}
        for name, result in results.items():
            outputs.update(outputs_of(backend, result, f"{name} "))
        outputs.update(
            outputs_of(
                backend,
                la.matrix_rank(backend.asarray(np.outer([1.0, 2.0, 3.0], [1.0, -1.0, 2.0]), dtype)),
                "matrix_rank of a rank-1 matrix ",
                index=True,
            )
        )
        return outputs

    return [_case("linalg extension", table, size=9)]


def _fft_cases() -> list[Case]:
    signal = _draw((2, 8), 61)
    z = _draw((2, 8), 62) + 1j * _draw((2, 8), 63)

    def table(backend, dtype):
        f = backend.xp.fft
        x, c = backend.asarray(signal, dtype), _complex(backend, dtype, z)
        results = {
            "fft": f.fft(c),
            "ifft": f.ifft(c),
            "fft n=5 norm=ortho": f.fft(c, n=5, norm="ortho"),
            "fftn": f.fftn(c),
            "ifftn axes=(0,)": f.ifftn(c, axes=(0,)),
            "rfft": f.rfft(x),
            "irfft": f.irfft(f.rfft(x), n=8),
            "rfftn": f.rfftn(x),
            "irfftn": f.irfftn(f.rfftn(x), s=(2, 8)),
            "hfft": f.hfft(f.rfft(x), n=8),
            "ihfft": f.ihfft(x),
            "fftshift": f.fftshift(x),
            "ifftshift axes=1": f.ifftshift(x, axes=1),
            "fftfreq": f.fftfreq(8, d=0.5, dtype=backend.dtype(dtype)),
            "rfftfreq": f.rfftfreq(9, dtype=backend.dtype(dtype)),
        }
        outputs: Outputs = {}
        for name, result in results.items():
            outputs.update(outputs_of(backend, result, f"{name} "))
        return outputs

    return [_case("fft extension", table, size=16)]


_BFLOAT16_LIMITS = types.SimpleNamespace(
    eps=2.0**-7, max=(2 - 2.0**-7) * 2.0**127, min=-(2 - 2.0**-7) * 2.0**127, smallest_normal=2.0**-126
)


def ops_cases(quick: bool = False, seed: int = 0) -> list[Case]:
    """Every ops case of this module; ``quick`` keeps one in three."""
    cases = (
        _integer_cases()
        + _element_wise_cases()
        + _searching_and_set_cases()
        + _structure_cases()
        + _dtype_rule_cases()
        + _linalg_cases()
        + _fft_cases()
        + _complex_linalg_cases()
        + _dtype_coverage_cases()
        + _special_value_unsigned_and_set_cases()
        + _signed_zero_fill_cases()
        + _far_complex_cases()
    )
    return cases[::3] if quick else cases


# ------------------------------------------------------------------- gradient cases
def _loss_case(
    name: str, inputs: dict[str, np.ndarray], backend_form: Callable, numpy_form: Callable, size: int
) -> Case:
    def backend_loss(backend, arrays, dtype):
        return backend_form(backend.xp, arrays)

    case = scalar_function_case(name, inputs, backend_loss, lambda a: float(numpy_form(a)), reduction_size=size)

    def compute(backend, dtype):
        try:
            return case.compute(backend, dtype)
        except (NotImplementedError, DTypeError) as error:
            # A framework limit the namespace declares by name (MLX differentiates no
            # factorization; its FFTs are complex64 only): a skip with its reason, never a pass.
            raise CaseSkipped(f"{backend.name} on {backend.device} cannot: {error}") from error

    return dataclasses.replace(case, compute=compute)


def gradient_cases(quick: bool = False, seed: int = 0) -> list[Case]:
    """The new differentiable functions, each inside a small scalar loss, against the
    reference backend and central finite differences; ``quick`` keeps one in three."""
    rng = np.random.default_rng(zlib.crc32(b"standard_functions"))
    x = rng.uniform(0.5, 1.5, (3, 4))
    x[1, 2] = 0.0  # cumulative_prod's gradient must be exact at a zero
    m = rng.uniform(-1, 1, (3, 3)) + 3 * np.eye(3)
    b = rng.uniform(-1, 1, (3, 2))
    spd = _spd(71, 3)
    v = rng.uniform(-1, 1, (2, 3))
    w = rng.uniform(0.5, 1.5, (3, 4))
    sym = lambda a: (a + a.T) / 2  # eigh reads one triangle: differentiate through a symmetric input
    forms: list[tuple[str, dict, Callable, Callable, int]] = [
        (
            "real and conj of a real array",
            {"x": x},
            lambda xp, a: xp.sum(xp.multiply(xp.square(xp.real(a["x"])), xp.conj(a["x"]))),
            lambda a: np.sum(a["x"] ** 3),
            12,
        ),
        (
            "cumulative_prod with a zero",
            {"x": x},
            lambda xp, a: xp.sum(xp.cumulative_prod(a["x"], axis=1)),
            lambda a: np.sum(np.cumprod(a["x"], axis=1)),
            4,
        ),
        (
            "diff n=2 with prepend",
            {"x": x},
            lambda xp, a: xp.sum(xp.square(xp.diff(a["x"], axis=1, n=2, prepend=a["x"][:, :1]))),
            lambda a: np.sum(np.diff(a["x"], axis=1, n=2, prepend=a["x"][:, :1]) ** 2),
            4,
        ),
        ("linalg.det", {"m": m}, lambda xp, a: xp.linalg.det(a["m"]), lambda a: np.linalg.det(a["m"]), 6),
        (
            "linalg.inv",
            {"m": m},
            lambda xp, a: xp.sum(xp.square(xp.linalg.inv(a["m"]))),
            lambda a: np.sum(np.linalg.inv(a["m"]) ** 2),
            9,
        ),
        (
            "linalg.solve",
            {"m": m, "b": b},
            lambda xp, a: xp.sum(xp.square(xp.linalg.solve(a["m"], a["b"]))),
            lambda a: np.sum(np.linalg.solve(a["m"], a["b"]) ** 2),
            9,
        ),
        (
            "linalg.cholesky",
            {"s": spd},
            lambda xp, a: xp.sum(
                xp.square(xp.linalg.cholesky(xp.divide(xp.add(a["s"], xp.matrix_transpose(a["s"])), 2.0)))
            ),
            lambda a: np.sum(np.linalg.cholesky(sym(a["s"])) ** 2),
            9,
        ),
        (
            "linalg.eigh eigenvalues",
            {"s": spd},
            lambda xp, a: xp.sum(
                xp.multiply(
                    xp.linalg.eigh(xp.divide(xp.add(a["s"], xp.matrix_transpose(a["s"])), 2.0)).eigenvalues,
                    xp.asarray([1.0, 2.0, 3.0], dtype=a["s"].dtype),
                )
            ),
            lambda a: np.sum(np.linalg.eigvalsh(sym(a["s"])) * np.array([1.0, 2.0, 3.0])),
            9,
        ),
        (
            "linalg.slogdet",
            {"m": m},
            lambda xp, a: xp.linalg.slogdet(a["m"]).logabsdet,
            lambda a: np.linalg.slogdet(a["m"])[1],
            6,
        ),
        (
            "linalg.svdvals",
            {"m": m},
            lambda xp, a: xp.sum(
                xp.multiply(xp.linalg.svdvals(a["m"]), xp.asarray([3.0, 2.0, 1.0], dtype=a["m"].dtype))
            ),
            lambda a: np.sum(np.linalg.svd(a["m"], compute_uv=False) * np.array([3.0, 2.0, 1.0])),
            9,
        ),
        (
            "linalg.pinv",
            {"b": b},
            lambda xp, a: xp.sum(xp.square(xp.linalg.pinv(a["b"]))),
            lambda a: np.sum(np.linalg.pinv(a["b"]) ** 2),
            9,
        ),
        (
            "linalg.trace and diagonal",
            {"m": m},
            lambda xp, a: xp.add(xp.linalg.trace(a["m"], offset=1), xp.sum(xp.square(xp.linalg.diagonal(a["m"])))),
            lambda a: np.trace(a["m"], offset=1) + np.sum(np.diagonal(a["m"]) ** 2),
            3,
        ),
        (
            "linalg.outer and cross",
            {"v": v},
            lambda xp, a: xp.add(
                xp.sum(xp.square(xp.linalg.outer(a["v"][0], a["v"][1]))),
                xp.sum(xp.square(xp.linalg.cross(a["v"][0], a["v"][1]))),
            ),
            lambda a: np.sum(np.outer(a["v"][0], a["v"][1]) ** 2) + np.sum(np.cross(a["v"][0], a["v"][1]) ** 2),
            9,
        ),
        (
            "linalg.vector_norm ord=2, 1, 3",
            {"x": x + 0.1},
            lambda xp, a: xp.add(
                xp.add(xp.sum(xp.linalg.vector_norm(a["x"], axis=1)), xp.linalg.vector_norm(a["x"], ord=1)),
                xp.linalg.vector_norm(a["x"], ord=3),
            ),
            lambda a: (
                np.sum(np.linalg.norm(a["x"], axis=1)) + np.sum(np.abs(a["x"])) + np.sum(np.abs(a["x"]) ** 3) ** (1 / 3)
            ),
            12,
        ),
        (
            "linalg.matrix_norm fro and nuc",
            {"m": m},
            lambda xp, a: xp.add(xp.linalg.matrix_norm(a["m"]), xp.linalg.matrix_norm(a["m"], ord="nuc")),
            lambda a: np.linalg.norm(a["m"]) + np.linalg.norm(a["m"], ord="nuc"),
            9,
        ),
        (
            "linalg.matrix_power 3",
            {"m": m},
            lambda xp, a: xp.sum(xp.linalg.matrix_power(a["m"], 3)),
            lambda a: np.sum(np.linalg.matrix_power(a["m"], 3)),
            9,
        ),
        (
            "fft.rfft and irfft",
            {"x": x},
            lambda xp, a: xp.add(
                xp.sum(xp.square(xp.abs(xp.fft.rfft(a["x"], axis=1)))),
                xp.sum(xp.multiply(xp.fft.irfft(xp.fft.rfft(a["x"]), n=4), xp.asarray(w, dtype=a["x"].dtype))),
            ),
            lambda a: (
                np.sum(np.abs(np.fft.rfft(a["x"], axis=1)) ** 2) + np.sum(np.fft.irfft(np.fft.rfft(a["x"]), n=4) * w)
            ),
            12,
        ),
    ]
    cases = [
        _loss_case(name, inputs, backend_form, numpy_form, size)
        for name, inputs, backend_form, numpy_form, size in forms
    ]
    return cases[::3] if quick else cases


# -------------------------------------------------------- complex linalg
def _complex_linalg_cases() -> list[Case]:
    """``cholesky``, ``eigh`` and ``eigvalsh`` of complex Hermitian positive-definite matrices
    (MLX's own cholesky refuses complex64; TensorFlow's eigenvalues of a complex matrix came
    back complex, the standard's are real)."""
    b = _draw((2, 3, 3), 81, -1.0, 1.0) + 1j * _draw((2, 3, 3), 82, -1.0, 1.0)
    hermitian = b @ np.conj(np.swapaxes(b, -1, -2)) + 3 * np.eye(3)

    def table(backend, dtype):
        xp, la = backend.xp, backend.xp.linalg
        h = _complex(backend, dtype, hermitian)
        eigh = la.eigh(h)
        vectors = eigh.eigenvectors
        values = xp.astype(xp.expand_dims(eigh.eigenvalues, axis=-2), vectors.dtype)
        results = {
            "cholesky": la.cholesky(h),
            "cholesky upper": la.cholesky(h, upper=True),
            "eigh eigenvalues": eigh.eigenvalues,
            "eigh rebuilt": xp.matmul(xp.multiply(vectors, values), xp.conj(xp.matrix_transpose(vectors))),
            "eigvalsh": la.eigvalsh(h),
        }
        outputs: Outputs = {}
        for name, result in results.items():
            outputs.update(outputs_of(backend, result, f"{name} "))
        return outputs

    return [_case("linalg of complex Hermitian matrices", table, size=9)]


# ------------------------------------------------- dtype coverage
def _dtype_coverage_cases() -> list[Case]:
    """Functions the standard defines for dtypes a framework's kernel lacks (TensorFlow's Neg
    and Sign take no unsigned type, its Tile no uint16, its Cross no complex; each once raised):
    ``negative``, ``sign``, ``abs`` of uint8 (``-x`` wraps modulo ``2**8``: ``-1`` is 255),
    ``tile``/``repeat`` of uint16 (65535 and 300 tell a wrong bit pattern from a cast), and
    ``linalg.cross`` of complex vectors (bilinear, no conjugation)."""
    unsigned = np.array([0, 1, 7, 200, 255], dtype=np.uint8)
    wide = np.array([[1, 65535, 2], [300, 7, 0]], dtype=np.uint16)
    a = _draw((2, 3), 91) + 1j * _draw((2, 3), 92)
    b = _draw((2, 3), 93) + 1j * _draw((2, 3), 94)

    def unsigned_table(backend, dtype):
        xp, u = backend.xp, backend.asarray(unsigned)
        outputs: Outputs = {}
        for name, result in (("negative", xp.negative(u)), ("sign", xp.sign(u)), ("abs", xp.abs(u))):
            outputs.update(outputs_of(backend, result, f"uint8 {name} "))
        return outputs

    def moving_table(backend, dtype):
        xp = backend.xp
        try:
            w = backend.asarray(wide)
        except DTypeError as error:  # PyTorch stores uint16 but computes with it only in part: said by the backend
            raise CaseSkipped(f"{backend.name} on {backend.device}: {error}") from error
        return {
            **outputs_of(backend, xp.tile(w, (2, 1, 2)), "uint16 tile "),
            **outputs_of(backend, xp.repeat(w, backend.asarray(np.array([1, 3, 1])), axis=1), "uint16 repeat "),
        }

    def cross_table(backend, dtype):
        xp = backend.xp
        return outputs_of(backend, xp.linalg.cross(_complex(backend, dtype, a), _complex(backend, dtype, b)), "cross ")

    return [
        _case("negative, sign, abs of uint8", unsigned_table, dtypes=("float32",)),
        _case("tile and repeat of uint16", moving_table, dtypes=("float32",)),
        _case("linalg.cross of complex vectors", cross_table, size=2),
    ]


# ----------------------------------------- complex special values, unsigned and complex set cases
_INF, _NAN, _PI = float("inf"), float("nan"), float(np.pi)

#: The standard's special values of complex elementwise functions (2024.12, ``elementwise_functions``:
#: "For complex floating-point operands, let a = real(x_i) ..."), copied by hand and carried to other
#: quadrants by the symmetries it states (``f(conj(x)) = conj(f(x))``, odd and even functions), plus
#: points on branch cuts. Only cases whose every sign the standard fixes. function -> [(a, b, real, imag)]
COMPLEX_SPECIAL_VALUES = {
    "acos": [
        (0.0, 0.0, _PI / 2, -0.0),
        (-0.0, 0.0, _PI / 2, -0.0),
        (0.0, -0.0, _PI / 2, 0.0),
        (0.0, _NAN, _PI / 2, _NAN),
        (1.5, _INF, _PI / 2, -_INF),
        (-_INF, 2.0, _PI, -_INF),
        (_INF, 2.0, 0.0, -_INF),
        (_INF, -2.0, 0.0, _INF),
        (-_INF, _INF, 3 * _PI / 4, -_INF),
        (_INF, _INF, _PI / 4, -_INF),
        (_NAN, _INF, _NAN, -_INF),
        (_NAN, 2.0, _NAN, _NAN),
        (1.5, _NAN, _NAN, _NAN),
    ],
    "acosh": [
        (0.0, 0.0, 0.0, _PI / 2),
        (1.5, _INF, _INF, _PI / 2),
        (-_INF, 2.0, _INF, _PI),
        (-_INF, -2.0, _INF, -_PI),
        (_INF, 2.0, _INF, 0.0),
        (-_INF, _INF, _INF, 3 * _PI / 4),
        (_INF, _INF, _INF, _PI / 4),
        (_INF, _NAN, _INF, _NAN),
        (_NAN, _INF, _INF, _NAN),
        (_NAN, 2.0, _NAN, _NAN),
    ],
    "asinh": [
        (0.0, 0.0, 0.0, 0.0),
        (-0.0, 0.0, -0.0, 0.0),
        (1.5, _INF, _INF, _PI / 2),
        (_INF, 2.0, _INF, 0.0),
        (-_INF, -2.0, -_INF, -0.0),
        (_INF, _INF, _INF, _PI / 4),
        (_NAN, 0.0, _NAN, 0.0),
        (_NAN, 2.0, _NAN, _NAN),
        (1.5, _NAN, _NAN, _NAN),
    ],
    "atanh": [
        (0.0, 0.0, 0.0, 0.0),
        (0.0, _NAN, 0.0, _NAN),
        (1.0, 0.0, _INF, 0.0),
        (-1.0, -0.0, -_INF, -0.0),
        (1.5, _INF, 0.0, _PI / 2),
        (_INF, 2.0, 0.0, _PI / 2),
        (-_INF, 2.0, -0.0, _PI / 2),
        (_INF, _INF, 0.0, _PI / 2),
        (_INF, _NAN, 0.0, _NAN),
        (_NAN, 2.0, _NAN, _NAN),
        (1.5, _NAN, _NAN, _NAN),
    ],
    "cosh": [
        (0.0, 0.0, 1.0, 0.0),
        (1.5, _INF, _NAN, _NAN),
        (_INF, 0.0, _INF, 0.0),
        (-_INF, 0.0, _INF, -0.0),
        (_INF, _NAN, _INF, _NAN),
        (_NAN, 2.0, _NAN, _NAN),
        (_NAN, _NAN, _NAN, _NAN),
    ],
    "exp": [
        (0.0, 0.0, 1.0, 0.0),
        (-0.0, 0.0, 1.0, 0.0),
        (1.5, _INF, _NAN, _NAN),
        (1.5, _NAN, _NAN, _NAN),
        (_INF, 0.0, _INF, 0.0),
        (_INF, -0.0, _INF, -0.0),
        (_NAN, 0.0, _NAN, 0.0),
        (_NAN, -0.0, _NAN, -0.0),
        (_NAN, 2.0, _NAN, _NAN),
    ],
    "log": [
        (-0.0, 0.0, -_INF, _PI),
        (0.0, 0.0, -_INF, 0.0),
        (1.5, _INF, _INF, _PI / 2),
        (1.5, _NAN, _NAN, _NAN),
        (-_INF, 2.0, _INF, _PI),
        (-_INF, -2.0, _INF, -_PI),
        (_INF, 2.0, _INF, 0.0),
        (-_INF, _INF, _INF, 3 * _PI / 4),
        (_INF, _INF, _INF, _PI / 4),
        (_INF, _NAN, _INF, _NAN),
        (-_INF, _NAN, _INF, _NAN),
        (_NAN, 2.0, _NAN, _NAN),
        (_NAN, _INF, _INF, _NAN),
        (-1.5, -0.0, float(np.log(1.5)), -_PI),  # below the cut
    ],
    "sinh": [
        (0.0, 0.0, 0.0, 0.0),
        (1.5, _INF, _NAN, _NAN),
        (1.5, _NAN, _NAN, _NAN),
        (_INF, 0.0, _INF, 0.0),
        (-_INF, -0.0, -_INF, -0.0),
        (_NAN, 0.0, _NAN, 0.0),
        (_NAN, 2.0, _NAN, _NAN),
    ],
    "sqrt": [
        (0.0, 0.0, 0.0, 0.0),
        (-0.0, 0.0, 0.0, 0.0),
        (1.5, _INF, _INF, _INF),
        (_NAN, _INF, _INF, _INF),
        (1.5, -_INF, _INF, -_INF),
        (1.5, _NAN, _NAN, _NAN),
        (-_INF, 2.0, 0.0, _INF),
        (_INF, 2.0, _INF, 0.0),
        (_INF, _NAN, _INF, _NAN),
        (_NAN, 2.0, _NAN, _NAN),
        (-4.0, 0.0, 0.0, 2.0),  # above the cut
        (-4.0, -0.0, 0.0, -2.0),  # below the cut
    ],
    "tanh": [
        (0.0, 0.0, 0.0, 0.0),
        (1.5, _INF, _NAN, _NAN),
        (0.0, _INF, 0.0, _NAN),
        (1.5, _NAN, _NAN, _NAN),
        (0.0, _NAN, 0.0, _NAN),
        (_INF, 2.0, 1.0, 0.0),
        (-_INF, -2.0, -1.0, -0.0),
        (_NAN, 0.0, _NAN, 0.0),
        (_NAN, 2.0, _NAN, _NAN),
    ],
}


def _special_value_unsigned_and_set_cases() -> list[Case]:
    """Complex elementwise functions at the standard's special values and on branch cuts (XLA gave
    NaN + NaN j at most, frameworks put ``sqrt(-4 - 0j)`` above the cut), judged against the
    standard's values themselves; unsigned sums and products in the standard's accumulation dtype
    (PyTorch gave int64); ``unique_*`` of complex arrays (``torch.unique`` has no complex kernel)."""

    def special_values(backend, dtype):
        outputs: Outputs = {}
        for name, rows in COMPLEX_SPECIAL_VALUES.items():
            values = np.array([complex(a, b) for a, b, _, _ in rows])
            result = getattr(backend.xp, name)(_complex(backend, dtype, values))
            part = np.asarray(backend.to_numpy(result))
            outputs[f"{name} real"] = part.real.astype(np.float64)
            outputs[f"{name} imag"] = part.imag.astype(np.float64)
        return outputs

    def special_values_expected(backend, dtype):
        outputs: Outputs = {}
        for name, rows in COMPLEX_SPECIAL_VALUES.items():
            outputs[f"{name} real"] = np.array([real for _, _, real, _ in rows])
            outputs[f"{name} imag"] = np.array([imag for _, _, _, imag in rows])
        return outputs

    def unsigned_accumulations(backend, dtype):
        xp = backend.xp
        values = np.array([[250, 7, 255], [9, 255, 252]], dtype=np.uint8)
        x = backend.asarray(values)
        default = _dtype_name(backend, xp.__array_namespace_info__().default_dtypes()["integral"])
        outputs: Outputs = {}
        for name, result in [
            ("sum", xp.sum(x, axis=0)),
            ("prod", xp.prod(x, axis=1)),
            ("cumulative_sum", xp.cumulative_sum(x, axis=1, include_initial=True)),
            ("trace", xp.linalg.trace(backend.asarray(values[:, :2]))),
        ]:
            # The unsigned integer as wide as the default integer (uint64 beside int64, uint32
            # beside MLX's int32): the values here fit both.
            outputs[f"{name} gives the unsigned default"] = _dtype_name(backend, result.dtype) == "u" + default
            outputs[f"{name} value"] = np.asarray(backend.to_numpy(result)).astype(np.float64)
        outputs.update(outputs_of(backend, xp.sum(x, axis=0, dtype=xp.uint8), "sum with dtype=uint8 wraps: "))
        return outputs

    def complex_unique(backend, dtype):
        xp = backend.xp
        x = _complex(backend, dtype, np.array([[1 + 2j, 1 + 1j, 1 + 2j], [complex(-0.0, -1.0), -1j, 1 + 2j]]))
        values, first, inverse, counts = (np.asarray(backend.to_numpy(part)) for part in xp.unique_all(x))
        order = np.lexsort((values.imag, values.real))  # the standard leaves the order open
        return {
            "values real": values.real[order].astype(np.float64),
            "values imag": values.imag[order].astype(np.float64),
            "first indices": first[order].astype(np.float64),
            "counts": counts[order].astype(np.float64),
            "values[inverse] rebuilds x": bool(np.array_equal(values[inverse], np.asarray(backend.to_numpy(x)))),
        }

    return [
        Case(
            "ops",
            "complex special values and branch cuts (the standard's table)",
            special_values,
            elementwise=True,
            expected=special_values_expected,
        ),
        _case("unsigned sum, prod, cumulative_sum, trace of uint8", unsigned_accumulations, dtypes=("float32",)),
        _case("unique_all of a complex array", complex_unique, same=True),
    ]


# ------------------------------------------------------------------ signed zero fills
def _signed_zero_fill_cases() -> list[Case]:
    """``full``, ``full_like`` and ``where`` with Python ``+0.0``, ``-0.0``, ``+0.0`` in turn:
    TensorFlow caches eager tensors made from Python scalars by value, and ``-0.0 == 0.0``, so a
    fill took the sign of whichever zero was made first. Element-wise comparison judges the sign
    of zero exactly."""

    def fills(backend, dtype):
        xp = backend.xp
        like = backend.asarray(np.array([1.0, -2.0, 3.0], dtype=dtype))
        makers = {
            "full": lambda v: xp.full((3,), v, dtype=like.dtype),
            "full_like": lambda v: xp.full_like(like, v),
            "where": lambda v: xp.where(xp.greater(like, 0), v, like),
        }
        outputs: Outputs = {}
        for name, make in makers.items():
            # +0.0, -0.0, +0.0: whichever sign a cache holds first, one of these would show it.
            for order, value in enumerate((0.0, -0.0, 0.0)):
                outputs.update(outputs_of(backend, make(value), f"{name} {value} ({order}) "))
        return outputs

    return [_case("-0.0 and +0.0 fills in turn", fills)]


# ------------------------------------------------------- complex far from the unit circle
#: Complex values whose squared parts overflow (|x| ~ 1e19 to 1e37) or underflow (|x| ~ 1e-22)
#: in float32, repeated so that vectorized kernels see them. Normal numbers only: subnormals are
#: flushed to zero on some CPUs (XLA's), which is platform behaviour, not the function's.
FAR_COMPLEX = np.array([1.8e19 - 1.1e19j, -2e18 + 3e19j, 1e-25 + 3e-25j, -4e-22 - 1e-21j, 3e37 + 1j, -2.5 + 0.5j] * 3)


def _far_complex_cases() -> list[Case]:
    """``log``, ``log2``, ``log10`` and ``sign`` of :data:`FAR_COMPLEX`: TensorFlow's vectorized
    complex log and sign square the parts, giving NaN (log) or 0 (sign) there."""

    def table(backend, dtype):
        xp = backend.xp
        x = _complex(backend, dtype, FAR_COMPLEX)
        outputs: Outputs = {}
        for name in ("log", "log2", "log10", "sign"):
            outputs.update(outputs_of(backend, getattr(xp, name)(x), f"{name} "))
        return outputs

    return [_case("log, log2, log10, sign of complex far from the unit circle", table)]
