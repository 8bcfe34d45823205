"""Checkpoints (portable_dl.checkpoint): bit-exact round trips on every backend and between
every ordered pair of backends, training resumed on another backend, a save killed half way,
and a clear CheckpointError for every kind of bad file."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from checkpoint_child import checkpoint_version
from conftest import BACKEND_NAMES
from helpers import float_dtypes
from portable_dl.backends.numpy.backend import NumPyBackend

import portable_dl
from portable_dl import losses, nn, optimizers
from portable_dl.checkpoint import FORMAT_VERSION, load, read_metadata, save
from portable_dl.errors import CheckpointError
from portable_dl.training import make_train_step
from portable_dl.tree import tree_flatten

BACKEND_PAIRS = [(source, destination) for source in BACKEND_NAMES for destination in BACKEND_NAMES]
ADAM_HYPERPARAMETERS = {
    "lr": 0.01,
    "betas": [0.9, 0.999],
    "eps": 1e-8,
    "weight_decay": 0.0,
    "amsgrad": False,
    "clip_norm": None,
    "clip_value": None,
}


# ------------------------------------------------------------------------- helpers
def assert_bit_identical(actual, expected, backend) -> None:
    """``actual`` (a tree of ``backend`` arrays) has the structure of ``expected`` (a tree of
    NumPy arrays), containers of the same kinds, and leaves of equal dtype, shape and bytes."""
    actual_leaves, actual_structure = tree_flatten(actual)
    expected_leaves, expected_structure = tree_flatten(expected)
    assert actual_structure == expected_structure
    for leaf, wanted in zip(actual_leaves, expected_leaves):
        assert backend.owns(leaf), f"a {type(leaf).__name__} is not an array of the {backend.name} backend"
        got = backend.to_numpy(leaf)
        assert (got.dtype, got.shape) == (wanted.dtype, wanted.shape)
        assert got.tobytes() == wanted.tobytes()


def special_values(dtype: str) -> np.ndarray:
    """Values a lossy path would change: signed zero, infinities, NaN, the smallest subnormal,
    the largest float, 1/3 (not representable in binary)."""
    info = np.finfo(dtype)
    return np.array([-0.0, np.inf, -np.inf, np.nan, info.smallest_subnormal, info.max, 1 / 3], dtype=dtype)


def adam_after_two_updates(backend, dtype: str, optimizer):
    """MLP([4, 5, 3]) params and the optimizer's state after two updates with fixed
    gradients, so every slot holds values that are neither zero nor the gradients."""
    params = nn.MLP([4, 5, 3]).init(0, backend, dtype)
    state = optimizer.init(params)
    rng = np.random.default_rng(1)
    for _ in range(2):
        grads = portable_dl.tree_map(lambda p: backend.asarray(rng.normal(size=tuple(p.shape)).astype(dtype)), params)
        params, state = optimizer.update(grads, state, params)
    return params, state


def read_raw_header(path: Path) -> tuple[dict, bytes]:
    """The safetensors JSON header of ``path`` and the tensor bytes after it."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length]), data[8 + length :]


def write_raw(path: Path, header: dict, tensor_bytes: bytes) -> None:
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + tensor_bytes)


@pytest.fixture
def small_checkpoint(tmp_path) -> Path:
    """A NumPy checkpoint of MLP([3, 2]) params and an SGD-like state."""
    params = nn.MLP([3, 2]).init(0, "numpy", "float32")
    return save(tmp_path / "small.safetensors", params, {"step": np.array(4, np.int32)}, {"epoch": 1})


# ----------------------------------------------------------------- round trips
def test_round_trip_on_each_backend_is_bit_exact(backend, tmp_path):
    optimizer = optimizers.Adam(lr=0.01)
    params, states = {}, {}
    for dtype in float_dtypes(backend):
        model, states[dtype] = adam_after_two_updates(backend, dtype, optimizer)
        params[dtype] = {"model": model, "edge": (backend.asarray(special_values(dtype)), None, []), "empty": {}}
    params["integers"] = [
        backend.asarray(np.array([[-3, 7]], np.int32)),
        backend.asarray(np.array([0, 255], np.uint8)),
        backend.asarray(np.array([True, False])),
    ]
    metadata = {"epoch": 3, "history": {"loss": [0.5, 0.25]}, "pair": (1, 2)}
    path = save(tmp_path / "round.safetensors", params, states, metadata, optimizer=optimizer)
    assert path == tmp_path / "round.safetensors"

    loaded = load(path, backend, device=backend.device)
    assert_bit_identical(loaded.params, backend.tree_to_numpy(params), backend)
    assert_bit_identical(loaded.opt_state, backend.tree_to_numpy(states), backend)
    assert isinstance(loaded.params["float32"]["edge"], tuple) and loaded.params["float32"]["edge"][1:] == (None, [])
    assert list(loaded.params) == list(params)
    assert loaded.metadata == {"epoch": 3, "history": {"loss": [0.5, 0.25]}, "pair": [1, 2]}  # JSON: tuples -> lists
    assert loaded.optimizer == {"name": "Adam", "hyperparameters": ADAM_HYPERPARAMETERS}
    assert loaded.step is None  # this state tree is keyed by dtype: it has no "step" of its own
    assert (loaded.format_version, loaded.library_version, loaded.backend_name) == (
        FORMAT_VERSION,
        portable_dl.__version__,
        backend.name,
    )


def test_optimizer_state_step_round_trips_as_a_0d_int32(backend, tmp_path):
    params, state = adam_after_two_updates(backend, "float32", optimizers.Adam(lr=0.01))
    loaded = load(save(tmp_path / "adam.safetensors", params, state), backend, like=params, opt_state_like=state)
    assert loaded.step == 2
    step = backend.to_numpy(loaded.opt_state["step"])
    assert step.shape == () and step.dtype == np.int32 and int(step) == 2
    assert read_metadata(tmp_path / "adam.safetensors")["step"] == 2


@pytest.fixture(scope="module")
def saved_on(tmp_path_factory):
    """``saved_on(name)`` -> {dtype: (path, NumPy params, NumPy state)}: an MLP and its Adam
    state after two updates on backend ``name``, saved once per module, float64 where supported."""
    folder = tmp_path_factory.mktemp("saved_on")
    cache: dict[str, dict] = {}

    def saved(name: str) -> dict:
        if name not in cache:
            backend = portable_dl.backend(name)
            cache[name] = {}
            for dtype in float_dtypes(backend):
                params, state = adam_after_two_updates(backend, dtype, optimizers.Adam(lr=0.01))
                path = save(folder / f"{name}-{dtype}.safetensors", params, state)
                cache[name][dtype] = (path, backend.tree_to_numpy(params), backend.tree_to_numpy(state))
        return cache[name]

    return saved


@pytest.mark.parametrize("source, destination", BACKEND_PAIRS)
def test_saved_on_one_backend_loads_bit_exact_on_another(saved_on, source, destination):
    backend = portable_dl.backend(destination)
    for dtype, (path, params, state) in saved_on(source).items():
        if not backend.supports(dtype):
            with pytest.raises(CheckpointError, match=f"{path}.*float64.*{destination} backend"):
                load(path, backend)
            continue
        loaded = load(path, backend)
        assert_bit_identical(loaded.params, params, backend)
        assert_bit_identical(loaded.opt_state, state, backend)
        assert loaded.backend_name == source


# ------------------------------------------------------- training resumed elsewhere
MODEL = nn.MLP([6, 8, 3])
DATA_RNG = np.random.default_rng(7)
X = DATA_RNG.normal(size=(16, 6)).astype(np.float32)
Y = DATA_RNG.integers(0, 3, size=16)


def train(backend, params, state, steps: int):
    """``steps`` full-batch Adam (lr 1e-2) steps of MODEL's cross-entropy on (X, Y)."""
    step = make_train_step(
        lambda p, batch: losses.cross_entropy(MODEL.apply(p, batch[0]), batch[1]),
        optimizers.Adam(lr=1e-2),
        backend,
        compile=False,
    )
    state = step.init(params) if state is None else state
    batch = (backend.asarray(X), backend.asarray(Y))
    for _ in range(steps):
        params, state, _ = step(params, state, batch)
    return params, state


@pytest.fixture(scope="module")
def trained():
    """``trained(name, steps)``: (params, state) after ``steps`` steps from MODEL.init(0) on
    backend ``name``, computed once per module."""
    cache: dict[tuple[str, int], tuple] = {}

    def run(name: str, steps: int):
        if (name, steps) not in cache:
            backend = portable_dl.backend(name)
            cache[name, steps] = train(backend, MODEL.init(0, backend, "float32"), None, steps)
        return cache[name, steps]

    return run


@pytest.mark.parametrize("first, second", BACKEND_PAIRS)
def test_training_resumed_on_another_backend_matches_an_uninterrupted_run(trained, tmp_path, first, second):
    path = save(tmp_path / "half.safetensors", *trained(first, 10), optimizer=optimizers.Adam(lr=1e-2))
    backend = portable_dl.backend(second)
    fresh = MODEL.init(0, backend, "float32")
    resumed = load(path, backend, like=fresh, opt_state_like=optimizers.Adam().init(fresh))
    assert resumed.step == 10
    params, state = train(backend, resumed.params, resumed.opt_state, 10)
    reference_params, reference_state = trained(second, 20)
    assert int(backend.to_numpy(state["step"])) == 20
    for got, want in zip(tree_flatten((params, state))[0], tree_flatten((reference_params, reference_state))[0]):
        got, want = backend.to_numpy(got), backend.to_numpy(want)
        if first == second:
            # The same deterministic CPU kernels on the same arrays: a save and load in
            # between must change nothing at all.
            assert got.tobytes() == want.tobytes()
        else:
            # Two frameworks' float32 kernels (matmul summation order, exp, log) differ by
            # an ulp here and there, and Adam's sqrt(v) normalisation keeps such differences
            # from growing: over all 20 pairs the largest difference measured is 1.2e-7, one
            # float32 ulp at the weights' scale of 1. The tolerance is ten times that, and
            # 1e5 times below the 0.11 that the last 10 steps move the weights, so a lost or
            # reset optimizer state (moments, step count) cannot pass.
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ structures
def test_dict_keys_with_separators_do_not_collide(tmp_path):
    params = {
        "a.b": np.float32(1),
        "a": {"b": np.float32(2)},
        "c/d": np.float32(3),
        "%2E": np.float32(4),
        "": np.float32(5),
    }
    path = save(tmp_path / "keys.safetensors", params)
    assert sorted(read_metadata(path)["tensors"]) == sorted(
        ["params/a%2Eb", "params/a.b", "params/c%2Fd", "params/%252E", "params/"]
    )
    loaded = load(path, "numpy")
    assert list(loaded.params) == ["a.b", "a", "c/d", "%2E", ""]
    assert [
        float(v)
        for v in (
            loaded.params["a.b"],
            loaded.params["a"]["b"],
            loaded.params["c/d"],
            loaded.params["%2E"],
            loaded.params[""],
        )
    ] == [1, 2, 3, 4, 5]


def test_a_single_array_and_python_scalars_are_trees_too(tmp_path):
    path = save(tmp_path / "leaf.safetensors", np.arange(3, dtype=np.int16), {"count": 7, "rate": 0.5, "on": True})
    loaded = load(path, "numpy")
    assert_bit_identical(loaded.params, np.arange(3, dtype=np.int16), portable_dl.backend("numpy"))
    assert_bit_identical(
        loaded.opt_state,
        {"count": np.array(7), "rate": np.array(0.5), "on": np.array(True)},
        portable_dl.backend("numpy"),
    )
    assert loaded.step is None and loaded.optimizer is None and loaded.metadata == {}


def test_int64_loads_as_int32_only_where_the_backend_lacks_int64_and_values_fit(backend, tmp_path):
    small = save(tmp_path / "small.safetensors", {"i": np.array([-(2**31), 2**31 - 1], np.int64)})
    large = save(tmp_path / "large.safetensors", {"i": np.array([2**40], np.int64)})
    if backend.supports("int64"):
        assert backend.to_numpy(load(small, backend).params["i"]).dtype == np.int64
        assert backend.to_numpy(load(large, backend).params["i"]).tolist() == [2**40]
    else:
        narrowed = backend.to_numpy(load(small, backend, like={"i": np.zeros(2, np.int32)}).params["i"])
        assert narrowed.dtype == np.int32 and narrowed.tolist() == [-(2**31), 2**31 - 1]
        with pytest.raises(CheckpointError, match="params/i.*outside the int32 range"):
            load(large, backend)


class NumPyWithoutFloat64(NumPyBackend):
    """The NumPy backend pretending, like JAX without x64 or MLX on a GPU, to lack float64."""

    name = "numpy-without-float64"

    def _unsupported_dtype_reason(self, name):
        return "this device has no float64" if name == "float64" else None


def test_float64_checkpoint_on_a_backend_without_float64_says_what_to_do(tmp_path):
    path = save(tmp_path / "f64.safetensors", {"W": np.ones((2, 2))}, metadata={"epoch": 1})
    with pytest.raises(
        CheckpointError, match=r"holds float64 arrays \(params/W\).*no float64.*save the checkpoint in float32"
    ):
        load(path, NumPyWithoutFloat64())


def test_float64_checkpoint_on_jax_without_x64_names_the_switch(tmp_path):
    if "jax" not in BACKEND_NAMES:
        pytest.skip("JAX is not installed (or not among PORTABLE_DL_TEST_BACKENDS)")
    jax_backend = portable_dl.backend("jax")
    if jax_backend.supports("float64"):
        pytest.skip("JAX runs with 64-bit mode enabled here")
    path = save(tmp_path / "f64.safetensors", {"W": np.ones((2, 2))})
    with pytest.raises(CheckpointError, match="float64.*JAX_ENABLE_X64=1"):
        load(path, jax_backend)


# ------------------------------------------------------------------- like checks
def test_like_mismatches_are_all_listed(backend, small_checkpoint):
    expected = nn.MLP([3, 2]).init(0, backend, "float32")
    with pytest.raises(CheckpointError) as raised:
        load(small_checkpoint, backend, like={**expected, "head": expected["layers"][0]["W"]})
    assert str(small_checkpoint) in str(raised.value) and "params/head: missing from the checkpoint" in str(
        raised.value
    )

    with pytest.raises(CheckpointError, match=r"params/layers\.0\.b: in the checkpoint but not expected"):
        load(small_checkpoint, backend, like={"layers": [{"W": expected["layers"][0]["W"]}]})

    wrong = {"layers": [{"W": np.zeros((3, 2), np.float64), "b": np.zeros((4,), np.float32)}], "extra": None}
    with pytest.raises(CheckpointError) as raised:
        load(small_checkpoint, backend, like=wrong)
    message = str(raised.value)
    assert "params/layers.0.W: the checkpoint has float32 (3, 2), expected float64 (3, 2)" in message
    assert "params/layers.0.b: the checkpoint has float32 (2,), expected float32 (4,)" in message
    assert "params/extra: missing from the checkpoint" in message

    with pytest.raises(CheckpointError, match=r"params/layers: the checkpoint has a list of 1, expected a tuple of 1"):
        load(small_checkpoint, backend, like={"layers": tuple(expected["layers"])})
    with pytest.raises(CheckpointError, match=r"opt_state/step: the checkpoint has int32 \(\), expected int32 \(1,\)"):
        load(small_checkpoint, backend, opt_state_like={"step": np.zeros(1, np.int32)})

    class Spec:  # like jax.ShapeDtypeStruct: only a shape and a dtype
        def __init__(self, shape, dtype):
            self.shape, self.dtype = shape, dtype

    specs = {"layers": [{"W": Spec((3, 2), np.float32), "b": Spec((2,), np.float32)}]}
    loaded = load(small_checkpoint, backend, like=specs, opt_state_like={"step": Spec((), np.int32)})
    assert backend.to_numpy(loaded.params["layers"][0]["W"]).shape == (3, 2)


# ------------------------------------------------------------------- bad files
def test_missing_file_and_folder(tmp_path):
    with pytest.raises(CheckpointError, match=f"{tmp_path / 'absent.safetensors'} does not exist"):
        load(tmp_path / "absent.safetensors", "numpy")
    with pytest.raises(CheckpointError, match="does not exist"):
        read_metadata(tmp_path / "absent.safetensors")
    with pytest.raises(CheckpointError, match="is a folder"):
        load(tmp_path, "numpy")


@pytest.mark.parametrize("cut", ["empty", "7 bytes", "half the header", "half the data"])
def test_truncated_file(small_checkpoint, cut):
    data = small_checkpoint.read_bytes()
    (header_length,) = struct.unpack("<Q", data[:8])
    keep = {
        "empty": 0,
        "7 bytes": 7,
        "half the header": 8 + header_length // 2,
        "half the data": (8 + header_length + len(data)) // 2,
    }[cut]
    small_checkpoint.write_bytes(data[:keep])
    for read in (lambda: load(small_checkpoint, "numpy"), lambda: read_metadata(small_checkpoint)):
        with pytest.raises(CheckpointError, match=f"{small_checkpoint}.*truncated"):
            read()


def test_files_of_other_formats(tmp_path):
    np.savez(tmp_path / "arrays.npz", W=np.ones(3))
    (tmp_path / "notes.txt").write_text("these are not tensors, only words\n")
    safetensors.numpy.save_file({"weight": np.ones(3, np.float32)}, tmp_path / "foreign.safetensors")
    safetensors.numpy.save_file(
        {"weight": np.ones(3, np.float32)}, tmp_path / "hub.safetensors", metadata={"format": "pt"}
    )
    cases = {
        "arrays.npz": "zip archive",
        "notes.txt": "not a safetensors file",
        "foreign.safetensors": "not a portable_dl checkpoint.*no metadata",
        "hub.safetensors": "not a portable_dl checkpoint.*format 'pt'",
    }
    for name, reason in cases.items():
        with pytest.raises(CheckpointError, match=f"{tmp_path / name}.*{reason}"):
            load(tmp_path / name, "numpy")


def test_a_newer_format_version_asks_for_an_upgrade(small_checkpoint):
    header, _ = read_raw_header(small_checkpoint)
    tensors = safetensors.numpy.load_file(small_checkpoint)
    safetensors.numpy.save_file(tensors, small_checkpoint, metadata={**header["__metadata__"], "format_version": "99"})
    for read in (lambda: load(small_checkpoint, "numpy"), lambda: read_metadata(small_checkpoint)):
        with pytest.raises(
            CheckpointError,
            match=f"{small_checkpoint} was written by a newer portable_dl "
            r"\(format version 99.*upgrade portable_dl",
        ):
            read()


def _rename_first_tensor(header):
    name = next(key for key in header if key != "__metadata__")
    header[name + "x"] = header.pop(name)


def _shift_offsets(header):
    entry = header["params/layers.0.W"]
    entry["data_offsets"] = [entry["data_offsets"][0] + 4, entry["data_offsets"][1] + 4]


def _rename_checksum(header):
    checksums = json.loads(header["__metadata__"]["tensor_crc32"])
    checksums["params/other"] = checksums.pop("params/layers.0.W")
    header["__metadata__"]["tensor_crc32"] = json.dumps(checksums)


def _change_checksum(header):
    checksums = json.loads(header["__metadata__"]["tensor_crc32"])
    checksums["params/layers.0.b"] = f"{int(checksums['params/layers.0.b'], 16) ^ 1:08x}"
    header["__metadata__"]["tensor_crc32"] = json.dumps(checksums)


CORRUPTIONS = {
    "tensor renamed": (
        _rename_first_tensor,
        r"missing tensors: params/layers\.0\.W.*does not name: params/layers\.0\.Wx",
    ),
    "offsets shifted": (_shift_offsets, "starts at byte"),
    "shape against offsets": (lambda h: h["params/layers.0.W"].update(shape=[3, 3]), r"float32 \(3, 3\) needs 36"),
    "unknown dtype": (lambda h: h["params/layers.0.b"].update(dtype="C64"), "dtype 'C64'"),
    "structure not JSON": (lambda h: h["__metadata__"].update(params_structure="{kind"), "'params_structure'"),
    "structure malformed": (lambda h: h["__metadata__"].update(params_structure='{"kind": "set"}'), "params structure"),
    "version not a number": (lambda h: h["__metadata__"].update(format_version="one"), "format_version 'one'"),
    "metadata missing": (lambda h: h["__metadata__"].pop("metadata"), "'metadata' entry is missing"),
    "checksums missing": (lambda h: h["__metadata__"].pop("tensor_crc32"), "its 'tensor_crc32' entry is missing"),
    "checksum not hex": (
        lambda h: h["__metadata__"].update(tensor_crc32='{"params/layers.0.W": "xyz"}'),
        "not an object of CRC-32",
    ),
    "checksum renamed": (
        _rename_checksum,
        "no checksum for params/layers.0.W; checksums of tensors it does not hold: params/other",
    ),
    "checksum changed": (_change_checksum, "the data of tensor 'params/layers.0.b' .* does not match its checksum"),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_corrupted_header_fields(small_checkpoint, corruption):
    change, reason = CORRUPTIONS[corruption]
    header, tensor_bytes = read_raw_header(small_checkpoint)
    change(header)
    write_raw(small_checkpoint, header, tensor_bytes)
    with pytest.raises(CheckpointError, match=f"{small_checkpoint}.*{reason}"):
        load(small_checkpoint, "numpy")


@pytest.mark.parametrize("position", ["first byte", "middle byte", "last byte"])
def test_flipped_bytes_in_the_header_json(small_checkpoint, position):
    data = bytearray(small_checkpoint.read_bytes())
    (header_length,) = struct.unpack("<Q", data[:8])
    index = {"first byte": 8, "middle byte": 8 + header_length // 2, "last byte": 8 + header_length - 1}[position]
    data[index] ^= 0xFF
    small_checkpoint.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"{small_checkpoint} has a corrupted header, which is not valid JSON"):
        load(small_checkpoint, "numpy")


def test_trailing_bytes_after_the_tensors(small_checkpoint):
    small_checkpoint.write_bytes(small_checkpoint.read_bytes() + b"\0" * 5)
    with pytest.raises(CheckpointError, match="corrupted: 5 bytes follow"):
        load(small_checkpoint, "numpy")


# ------------------------------------------------------------------ bad saves
# ----------------------------------------------------------------- integrity
def test_each_tensor_is_stored_with_the_crc32_of_its_little_endian_bytes(small_checkpoint):
    header, tensor_bytes = read_raw_header(small_checkpoint)
    checksums = json.loads(header["__metadata__"]["tensor_crc32"])
    names = [name for name in header if name != "__metadata__"]
    assert sorted(checksums) == sorted(names) and header["__metadata__"]["format_version"] == "2"
    expected_values = {"opt_state/step": np.array(4, "<i4").tobytes()}
    for name in names:
        start, end = header[name]["data_offsets"]
        assert checksums[name] == f"{zlib.crc32(tensor_bytes[start:end]):08x}"
        if name in expected_values:
            assert tensor_bytes[start:end] == expected_values[name]


@pytest.mark.parametrize("tensor", ["params/layers.1.b", "opt_state/slots.layers.0.W.exp_avg_sq", "opt_state/step"])
def test_a_flipped_bit_in_tensor_data_raises_naming_the_tensor(backend, tmp_path, tensor):
    params, state = adam_after_two_updates(backend, "float32", optimizers.Adam(0.01))
    path = save(tmp_path / "flipped.safetensors", params, state)
    header, tensor_bytes = read_raw_header(path)
    start, end = header[tensor]["data_offsets"]
    data = bytearray(path.read_bytes())
    data[len(data) - len(tensor_bytes) + (start + end) // 2] ^= 0x08  # one bit, inside the tensor
    path.write_bytes(bytes(data))
    before = (path.read_bytes(), backend.tree_to_numpy(params))
    with pytest.raises(
        CheckpointError,
        match=f"{re.escape(str(path))} is corrupted: the data of tensor "
        f"{re.escape(repr(tensor))} .* does not match its checksum",
    ):
        load(path, backend, like=params, opt_state_like=state)
    # Nothing changed: not the file, not the trees the caller passed.
    assert path.read_bytes() == before[0]
    for leaf, original in zip(portable_dl.tree_leaves(params), portable_dl.tree_leaves(before[1])):
        assert backend.to_numpy(leaf).tobytes() == original.tobytes()


def test_a_header_step_that_disagrees_with_the_optimizer_state_is_refused(small_checkpoint, tmp_path):
    header, tensor_bytes = read_raw_header(small_checkpoint)
    for step, says in (("5", "step 5"), ("null", "step None")):
        header["__metadata__"]["step"] = step
        write_raw(small_checkpoint, header, tensor_bytes)
        with pytest.raises(
            CheckpointError,
            match=f"{small_checkpoint} is inconsistent: its header says {says}, but opt_state/step holds 4",
        ):
            load(small_checkpoint, "numpy")
    no_state = save(tmp_path / "params_only.safetensors", {"W": np.ones(2, np.float32)})
    header, tensor_bytes = read_raw_header(no_state)
    header["__metadata__"]["step"] = "3"
    write_raw(no_state, header, tensor_bytes)
    with pytest.raises(CheckpointError, match="says step 3, but there is no 0-d integer opt_state/step"):
        load(no_state, "numpy")


def test_a_version_1_file_without_checksums_still_loads(small_checkpoint):
    """The rule for files written before checksums: every check but the checksums."""
    header, tensor_bytes = read_raw_header(small_checkpoint)
    header["__metadata__"].pop("tensor_crc32")
    header["__metadata__"]["format_version"] = "1"
    write_raw(small_checkpoint, header, tensor_bytes)
    loaded = load(small_checkpoint, "numpy")
    assert loaded.format_version == 1 and read_metadata(small_checkpoint)["format_version"] == 1
    assert_bit_identical(loaded.params, nn.MLP([3, 2]).init(0, "numpy", "float32"), portable_dl.backend("numpy"))
    header["__metadata__"]["step"] = "7"
    write_raw(small_checkpoint, header, tensor_bytes)
    with pytest.raises(CheckpointError, match="inconsistent: its header says step 7"):
        load(small_checkpoint, "numpy")


def test_unserializable_metadata_names_the_key_and_leaves_the_file_alone(small_checkpoint):
    before = small_checkpoint.read_bytes()
    params = nn.MLP([3, 2]).init(1, "numpy", "float32")
    with pytest.raises(CheckpointError, match=r"metadata\['history'\]\['loss'\]\[1\] is a numpy.float32"):
        save(small_checkpoint, params, metadata={"history": {"loss": [0.5, np.float32(0.25)]}})
    with pytest.raises(CheckpointError, match=r"metadata\['when'\] is a builtins.object"):
        save(small_checkpoint, params, metadata={"epoch": 1, "when": object()})
    assert small_checkpoint.read_bytes() == before
    assert sorted(os.listdir(small_checkpoint.parent)) == [small_checkpoint.name]


def test_complex_arrays_are_refused_at_save_time(tmp_path):
    # Half precision is stored since issue 16 (tests/test_checkpoint_half.py); complex
    # numbers are not among the dtypes every backend moves.
    with pytest.raises(CheckpointError, match="params/h has dtype complex64, which checkpoints do not hold"):
        save(tmp_path / "complex.safetensors", {"h": np.ones(2, dtype=np.complex64)})
    assert os.listdir(tmp_path) == []


def test_bad_trees_are_refused_at_save_time(tmp_path):
    with pytest.raises(CheckpointError, match=r"params/layers: the dict key 1 is a int"):
        save(tmp_path / "c.safetensors", {"layers": {1: np.ones(2)}})
    with pytest.raises(CheckpointError, match="opt_state/name: a builtins.str is not an array"):
        save(tmp_path / "c.safetensors", {"W": np.ones(2)}, {"name": "adam!"})
    with pytest.raises(CheckpointError, match="params/names has dtype <U5"):
        save(tmp_path / "c.safetensors", {"names": np.array(["adam!"])})
    with pytest.raises(CheckpointError, match="metadata must be a dict"):
        save(tmp_path / "c.safetensors", {"W": np.ones(2)}, metadata=[1])
    with pytest.raises(CheckpointError, match="folder .*missing.* does not exist"):
        save(tmp_path / "missing" / "c.safetensors", {"W": np.ones(2)})
    assert os.listdir(tmp_path) == []


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(small_checkpoint, monkeypatch):
    before = small_checkpoint.read_bytes()

    def disk_full(descriptor, data):
        os.write(descriptor, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("portable_dl.atomic._write_bytes", disk_full)
    with pytest.raises(CheckpointError, match=f"could not write the checkpoint {small_checkpoint}.*No space left"):
        save(small_checkpoint, {"W": np.zeros(100)})
    assert small_checkpoint.read_bytes() == before
    assert os.listdir(small_checkpoint.parent) == [small_checkpoint.name]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and the stale-file cleanup are POSIX only")
def test_a_save_killed_half_way_leaves_the_previous_checkpoint(tmp_path):
    target = tmp_path / "run.safetensors"
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("checkpoint_child.py")), str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(60, child.kill)  # a child stuck before "HALF" must not hang the suite
    watchdog.start()
    try:
        lines = [child.stdout.readline().strip() for _ in range(2)]
        assert lines == ["SAVED", "HALF"], f"child said {lines}; stderr: {child.stderr.read()}"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finally:
        watchdog.cancel()
        child.kill()
        child.communicate()

    leftovers = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".run.safetensors.")  # the kill hit mid-write
    loaded = load(target, "numpy")
    assert_bit_identical(loaded.params, checkpoint_version(1), portable_dl.backend("numpy"))
    assert loaded.metadata == {"version": 1}

    # A temporary file of a process that still runs (this one) is another save in flight: kept.
    in_flight = tmp_path / f".run.safetensors.{socket.gethostname()}.{os.getpid()}.0000.tmp"
    in_flight.write_bytes(b"partial")
    save(target, checkpoint_version(3), metadata={"version": 3})
    assert_bit_identical(load(target, "numpy").params, checkpoint_version(3), portable_dl.backend("numpy"))
    assert sorted(os.listdir(tmp_path)) == sorted([in_flight.name, target.name])  # the killed save's file is gone


def test_read_metadata_reads_the_header_only(small_checkpoint):
    data = small_checkpoint.read_bytes()
    _, tensor_bytes = read_raw_header(small_checkpoint)
    # Zeroed tensor bytes: read_metadata must not look at them, so it reports the same.
    small_checkpoint.write_bytes(data[: len(data) - len(tensor_bytes)] + bytes(len(tensor_bytes)))
    assert read_metadata(small_checkpoint) == {
        "metadata": {"epoch": 1},
        "optimizer": None,
        "step": 4,
        "format_version": FORMAT_VERSION,
        "library_version": portable_dl.__version__,
        "backend_name": "numpy",
        "tensors": {
            "params/layers.0.W": {"dtype": "float32", "shape": (3, 2)},
            "params/layers.0.b": {"dtype": "float32", "shape": (2,)},
            "opt_state/step": {"dtype": "int32", "shape": ()},
        },
    }
