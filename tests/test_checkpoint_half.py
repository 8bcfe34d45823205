"""Half-precision checkpoints (issue 16): float16 and bfloat16 tensors stored as safetensors'
``F16`` and ``BF16``, loaded bit for bit on every backend that has the dtype, and a clear
CheckpointError naming the tensor and the dtype where a backend or NumPy cannot hold it.

Every value is written as its 16-bit pattern, so a comparison of ``uint16`` views finds any
lossy step (a round trip through float32 loses NaN payloads; one through the other half dtype
changes 1 + 2**-8, 65504, 3e38). The bit patterns are derived by hand in the comments.
"""

from __future__ import annotations

import builtins
import json
import struct
import zlib

import numpy as np
import pytest
from conftest import BACKEND_NAMES

import portable_dl
import portable_dl.native
from portable_dl.checkpoint import load, read_metadata, save
from portable_dl.errors import CheckpointError

ml_dtypes = pytest.importorskip("ml_dtypes")

HALF_DTYPES = ("float16", "bfloat16")

#: float16: 1 sign bit, 5 exponent bits (bias 15), 10 fraction bits.
FLOAT16_BITS = {
    "1 + 2**-8": 0x3C04,  # exponent 15, fraction 2**-8 * 2**10 = 4; bfloat16 has no such number
    "65504, the largest": 0x7BFF,  # (2 - 2**-10) * 2**15; bfloat16 rounds it to 65536
    "1e-5, subnormal": 0x00A8,  # round(1e-5 / 2**-24) = 168 = 0xA8 units of the smallest subnormal
    "2**-24, the smallest subnormal": 0x0001,
    "-0.0": 0x8000,
    "-2.5": 0xC100,  # sign, exponent 16, fraction 0.25 * 2**10 = 256
    "inf": 0x7C00,
    "NaN with payload 0x55": 0x7E55,  # quiet NaN: top fraction bit set, payload in the rest
}
#: bfloat16: 1 sign bit, 8 exponent bits (bias 127), 7 fraction bits: float32's top half.
BFLOAT16_BITS = {
    "1 + 2**-7": 0x3F81,  # exponent 127, fraction 2**-7 * 2**7 = 1
    "3e38, beyond float16": 0x7F62,  # 3e38 = 1.763... * 2**127; 0.763 * 128 = 97.7 -> 98 = 0x62
    "1e-39, subnormal": 0x000B,  # round(1e-39 / 2**-133) = 10.9 -> 11 units of the smallest subnormal
    "-0.0": 0x8000,
    "-2.5": 0xC020,  # sign, exponent 128, fraction 0.25 * 2**7 = 32
    "-inf": 0xFF80,
    "NaN with payload 0x15": 0x7FD5,  # quiet NaN (0x7FC0) with payload 0x15
}
BITS = {"float16": FLOAT16_BITS, "bfloat16": BFLOAT16_BITS}
#: The values the patterns above stand for, where they are numbers (NaN aside).
VALUES = {
    "float16": [1 + 2**-8, 65504.0, 168 * 2.0**-24, 2.0**-24, -0.0, -2.5, np.inf],
    "bfloat16": [1 + 2**-7, 98 / 128 * 2.0**127 + 2.0**127, 11 * 2.0**-133, -0.0, -2.5, -np.inf],
}


def numpy_dtype(dtype: str) -> np.dtype:
    return np.dtype(np.float16) if dtype == "float16" else np.dtype(ml_dtypes.bfloat16)


def half_array(dtype: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The patterns of ``dtype`` as a NumPy array of that dtype (reshaped to ``shape``)."""
    bits = np.array(list(BITS[dtype].values()), dtype=np.uint16)
    array = bits.view(numpy_dtype(dtype))
    return array.reshape(shape) if shape is not None else array


def bits_of(backend, leaf) -> np.ndarray:
    array = backend.to_numpy(leaf)
    assert array.dtype.itemsize == 2, f"{array.dtype} is not a 16-bit dtype"
    return array.view(np.uint16)


def test_the_bit_patterns_are_the_values_they_stand_for():
    """The patterns decoded by the formulas of the two formats, not by NumPy or ml_dtypes."""
    for dtype, exponent_bits, fraction_bits in (("float16", 5, 10), ("bfloat16", 8, 7)):
        bias = 2 ** (exponent_bits - 1) - 1
        *numbers, nan = BITS[dtype].values()
        assert nan >> fraction_bits == 2**exponent_bits - 1 and nan & (2**fraction_bits - 1) > 2 ** (fraction_bits - 1)
        for bits, value in zip(numbers, VALUES[dtype]):
            sign = -1.0 if bits >> 15 else 1.0
            exponent = (bits >> fraction_bits) & (2**exponent_bits - 1)
            fraction = bits & (2**fraction_bits - 1)
            if exponent == 2**exponent_bits - 1:
                decoded = sign * np.inf
            elif exponent == 0:
                decoded = sign * fraction * 2.0 ** (1 - bias - fraction_bits)
            else:
                decoded = sign * (1 + fraction / 2**fraction_bits) * 2.0 ** (exponent - bias)
            assert decoded == value and np.signbit(decoded) == np.signbit(value), (dtype, hex(bits))
    assert abs(VALUES["float16"][2] - 1e-5) < 2.0**-25 and abs(VALUES["bfloat16"][1] - 3e38) < 2.0**119


# ------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_round_trip_on_each_backend_is_bit_exact(backend, dtype, tmp_path):
    values = half_array(dtype, (2, 4) if dtype == "float16" else None)
    path = tmp_path / "half.safetensors"
    if not backend.supports(dtype):
        saved = save(path, {"w": values})
        with pytest.raises(CheckpointError, match=f"holds {dtype} arrays \\(params/w\\), which the {backend.name}"):
            load(saved, backend)
        return
    params = {"w": backend.asarray(values, dtype), "scale": backend.asarray(np.array(-2.5), dtype)}
    save(path, params, {"step": backend.asarray(np.array(3, np.int32))})
    header = read_metadata(path)["tensors"]
    assert header["params/w"] == {"dtype": dtype, "shape": values.shape}
    loaded = load(path, backend, like=params, opt_state_like={"step": np.zeros((), np.int32)})
    assert backend.dtype_name(loaded.params["w"].dtype) == dtype
    np.testing.assert_array_equal(bits_of(backend, loaded.params["w"]), values.view(np.uint16))
    np.testing.assert_array_equal(bits_of(backend, loaded.params["scale"]), np.array(BITS[dtype]["-2.5"]))
    assert loaded.step == 3


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize(("source", "destination"), [(s, d) for s in BACKEND_NAMES for d in BACKEND_NAMES if s != d])
def test_saved_on_one_backend_loaded_on_another_is_bit_exact(source, destination, dtype, tmp_path):
    saver, loader = portable_dl.backend(source), portable_dl.backend(destination)
    lacking = [b.name for b in (saver, loader) if not b.supports(dtype)]
    if lacking:
        pytest.skip(f"{' and '.join(lacking)} on this device has no {dtype} (its refusal: the round-trip test)")
    values = half_array(dtype)
    path = save(tmp_path / "pair.safetensors", {"layer": [saver.asarray(values, dtype)]})
    loaded = load(path, loader)
    assert loader.owns(loaded.params["layer"][0]) and read_metadata(path)["backend_name"] == source
    np.testing.assert_array_equal(bits_of(loader, loaded.params["layer"][0]), values.view(np.uint16))


# ------------------------------------------ a file written without our writer
def write_by_hand(path, tensors: dict[str, tuple[str, list[int], bytes]]) -> None:
    """A safetensors file laid out as its specification says (8-byte little-endian header
    length, JSON header, raw bytes), with portable_dl's metadata, built without safetensors
    and without portable_dl.checkpoint."""
    header, data = {}, b""
    for name, (code, shape, raw) in tensors.items():
        header[name] = {"dtype": code, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    keys = [name.split("/", 1)[1] for name in tensors]
    header["__metadata__"] = {
        "format": "portable_dl.checkpoint",
        "format_version": "2",
        "library_version": "0.1.0",
        "backend": "handmade",
        "params_structure": json.dumps({"kind": "dict", "keys": keys, "children": [{"kind": "leaf"}] * len(keys)}),
        "opt_state_structure": json.dumps({"kind": "none"}),
        "optimizer": "null",
        "step": "null",
        "metadata": "{}",
        "tensor_crc32": json.dumps({name: f"{zlib.crc32(raw):08x}" for name, (_, _, raw) in tensors.items()}),
    }
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)


def handmade_file(tmp_path):
    """BF16 [[1 + 2**-7, 3e38], [-0.0, NaN 0x7FD5]] and F16 [65504, 1e-5], little-endian."""
    path = tmp_path / "handmade.safetensors"
    bf16 = struct.pack("<4H", 0x3F81, 0x7F62, 0x8000, 0x7FD5)
    f16 = struct.pack("<2H", 0x7BFF, 0x00A8)
    write_by_hand(path, {"params/b": ("BF16", [2, 2], bf16), "params/h": ("F16", [2], f16)})
    return path


def test_a_handmade_file_with_bf16_is_read(tmp_path):
    path = handmade_file(tmp_path)
    numpy_backend = portable_dl.backend("numpy")
    loaded = load(path, numpy_backend)
    b = numpy_backend.to_numpy(loaded.params["b"])
    assert b.dtype == numpy_dtype("bfloat16") and b.shape == (2, 2)
    np.testing.assert_array_equal(b.view(np.uint16), [[0x3F81, 0x7F62], [0x8000, 0x7FD5]])
    # bfloat16 is float32's top half: widening by 16 zero bits gives the value exactly.
    widened = (b.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    assert widened[0, 0] == 1 + 2**-7 and widened[0, 1] == np.float32(VALUES["bfloat16"][1])
    assert np.signbit(widened[1, 0]) and widened[1, 0] == 0 and np.isnan(widened[1, 1])
    h = numpy_backend.to_numpy(loaded.params["h"])
    assert h.dtype == np.float16 and h.view(np.uint16).tolist() == [0x7BFF, 0x00A8]
    assert h.astype(np.float64).tolist() == [65504.0, 168 * 2.0**-24]
    assert read_metadata(path)["tensors"]["params/b"] == {"dtype": "bfloat16", "shape": (2, 2)}


def test_a_handmade_file_loads_on_each_backend_that_has_the_dtypes(backend, tmp_path):
    path = handmade_file(tmp_path)
    lacking = [dtype for dtype in HALF_DTYPES if not backend.supports(dtype)]
    if lacking:
        with pytest.raises(CheckpointError, match=f"holds {lacking[0]} arrays \\(params/[bh]\\)"):
            load(path, backend)
        return
    loaded = load(path, backend)
    assert bits_of(backend, loaded.params["b"]).tolist() == [[0x3F81, 0x7F62], [0x8000, 0x7FD5]]
    assert bits_of(backend, loaded.params["h"]).tolist() == [0x7BFF, 0x00A8]


# ---------------------------------------------------------------- bad cases
def without_ml_dtypes(monkeypatch):
    """Make ``import ml_dtypes`` fail, as on a machine without the package."""
    real_import = builtins.__import__

    def no_ml_dtypes(name, *args, **kwargs):
        if name == "ml_dtypes" or name.startswith("ml_dtypes."):
            raise ImportError("No module named 'ml_dtypes'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ml_dtypes)


def test_bf16_without_ml_dtypes_names_the_tensor_and_the_package(tmp_path, monkeypatch):
    path = handmade_file(tmp_path)
    without_ml_dtypes(monkeypatch)
    with pytest.raises(CheckpointError, match=r"holds bfloat16 arrays \(params/b\).*pip install ml_dtypes"):
        load(path, "numpy")


def test_f16_alone_needs_no_ml_dtypes(tmp_path, monkeypatch):
    path = tmp_path / "f16.safetensors"
    write_by_hand(path, {"params/h": ("F16", [3], struct.pack("<3H", 0x3C04, 0x8000, 0x7E55))})
    without_ml_dtypes(monkeypatch)
    from portable_dl.checkpoint.header import parse
    from portable_dl.checkpoint.tensors import decode_tensors

    data = path.read_bytes()
    decoded = decode_tensors(data, parse(data, path).tensors, path)
    assert decoded["params/h"].dtype == np.float16
    assert decoded["params/h"].view(np.uint16).tolist() == [0x3C04, 0x8000, 0x7E55]


def numpy_backend_without_bfloat16():
    """A NumPy backend on a device without bfloat16 (as some accelerators are)."""
    from portable_dl.backends.numpy.backend import NumPyBackend

    class WithoutBfloat16(NumPyBackend):
        def _unsupported_dtype_reason(self, name):
            if name == "bfloat16":
                return "this device has no bfloat16 units"
            return super()._unsupported_dtype_reason(name)

    return WithoutBfloat16()


def test_a_backend_without_the_dtype_gets_a_checkpoint_error_naming_tensor_and_dtype(tmp_path):
    path = handmade_file(tmp_path)
    before = path.read_bytes()
    with pytest.raises(CheckpointError) as raised:
        load(path, numpy_backend_without_bfloat16())
    message = str(raised.value)
    assert "holds bfloat16 arrays (params/b)" in message and "this device has no bfloat16 units" in message
    assert "cast the arrays before save" in message and path.read_bytes() == before


def test_a_half_tensor_whose_bytes_do_not_fit_its_shape_is_corrupted(tmp_path):
    path = tmp_path / "short.safetensors"
    write_by_hand(path, {"params/b": ("BF16", [3], struct.pack("<2H", 0x3F80, 0x3F80))})
    with pytest.raises(CheckpointError, match=r"span 4 bytes, but bfloat16 \(3,\) needs 6"):
        load(path, "numpy")


def test_a_flipped_bit_in_half_data_is_found(tmp_path):
    values = half_array("float16")
    path = save(tmp_path / "flip.safetensors", {"w": values})
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # the last tensor byte: the NaN's high byte
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="the data of tensor 'params/w' \\(float16 \\(8,\\)\\) does not match"):
        load(path, "numpy")


def test_like_with_another_half_dtype_is_a_mismatch(tmp_path):
    path = save(tmp_path / "w.safetensors", {"w": half_array("float16")})
    with pytest.raises(CheckpointError, match=r"params/w: the checkpoint has float16 \(8,\), expected bfloat16 \(8,\)"):
        load(path, "numpy", like={"w": np.zeros(8, ml_dtypes.bfloat16)})


# ------------------------------------------------------------ native exports
NATIVE_EXPORTS = {
    "torch": (portable_dl.native.to_torch_state_dict, portable_dl.native.from_torch_state_dict),
    "mlx": (portable_dl.native.to_mlx_weights, portable_dl.native.from_mlx_weights),
    "keras": (portable_dl.native.to_keras_weights, portable_dl.native.from_keras_weights),
}
#: The backend whose arrays each export holds (Keras: NumPy arrays, read by the TensorFlow backend).
NATIVE_BACKEND = {"torch": "torch", "mlx": "mlx", "keras": "tensorflow"}


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("framework", NATIVE_EXPORTS)
def test_native_exports_keep_the_half_dtype_bit_for_bit(backend, framework, dtype):
    export, import_ = NATIVE_EXPORTS[framework]
    pytest.importorskip(NATIVE_BACKEND[framework] if framework != "mlx" else "mlx.core")
    native_backend = portable_dl.backend(NATIVE_BACKEND[framework])
    if not (backend.supports(dtype) and native_backend.supports(dtype)):
        pytest.skip(f"{backend.name} or {native_backend.name} has no {dtype} on this device")
    weight, bias = half_array(dtype)[:6].reshape(3, 2), half_array(dtype)[1:3]
    params = {"layers": [{"W": backend.asarray(weight, dtype), "b": backend.asarray(bias, dtype)}]}
    exported = export(params)
    arrays = dict(exported) if framework == "mlx" else exported
    values = list(arrays.values()) if isinstance(arrays, dict) else arrays
    for value in values:
        assert native_backend.dtype_name(value.dtype) == dtype
    # The (out, in) layout of torch and MLX is the transpose; Keras keeps (in, out).
    expected_first = weight if framework == "keras" else weight.T
    got = values[0] if isinstance(values[0], np.ndarray) else native_backend.to_numpy(values[0])
    np.testing.assert_array_equal(got.view(np.uint16), np.ascontiguousarray(expected_first).view(np.uint16))
    back = import_(exported, backend)
    assert backend.dtype_name(back["layers"][0]["W"].dtype) == dtype
    np.testing.assert_array_equal(bits_of(backend, back["layers"][0]["W"]), weight.view(np.uint16))
    np.testing.assert_array_equal(bits_of(backend, back["layers"][0]["b"]), bias.view(np.uint16))
