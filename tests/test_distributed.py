"""portable_dl.distributed without a second process: reading the launcher's environment, the
world of one (which changes nothing, on every backend), the NumPy reference's refusal of
more, laying pytrees out in buckets, and the launcher itself (with plain Python scripts).

The two-process runs of each engine are in test_distributed_ranks.py.
"""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest

import portable_dl as pdl
from portable_dl import distributed, losses, nn, optimizers
from portable_dl.distributed import Buckets, Placement, placement_from_environment
from portable_dl.distributed.launch import free_ports, launch
from portable_dl.errors import DistributedError, DTypeError
from portable_dl.train_step import TrainStep


# --------------------------------------------------------------- the environment
def test_placement_from_each_launchers_variables(tmp_path):
    assert placement_from_environment({}) == Placement(0, 1, 0, None, None)
    ours = {
        "PORTABLE_DL_RANK": "2",
        "PORTABLE_DL_WORLD_SIZE": "3",
        "PORTABLE_DL_LOCAL_RANK": "0",
        "PORTABLE_DL_COORDINATOR": "127.0.0.1:1234",
        "PORTABLE_DL_LAUNCH_DIR": str(tmp_path),
        "RANK": "9",  # ours win over torchrun's
        "WORLD_SIZE": "10",
    }
    assert placement_from_environment(ours) == Placement(2, 3, 0, "127.0.0.1:1234", str(tmp_path))
    torchrun = {"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}
    assert placement_from_environment(torchrun) == Placement(1, 4, 1, "10.0.0.1:29500", None)
    hosts = tmp_path / "hosts.json"
    hosts.write_text(json.dumps([["127.0.0.1:5000"], ["127.0.0.1:5001"], ["127.0.0.1:5002"]]))
    assert placement_from_environment({"MLX_RANK": "2", "MLX_HOSTFILE": str(hosts)}) == Placement(2, 3, 2)
    tf_config = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    assert placement_from_environment({"TF_CONFIG": json.dumps(tf_config)}) == Placement(1, 2, 1, "a:1")


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"PORTABLE_DL_WORLD_SIZE": "2", "PORTABLE_DL_RANK": "2"}, "gives rank 2 of a world of 2 processes"),
        ({"PORTABLE_DL_WORLD_SIZE": "two", "PORTABLE_DL_RANK": "0"}, "PORTABLE_DL_WORLD_SIZE='two', not an integer"),
        ({"PORTABLE_DL_WORLD_SIZE": "2"}, "lacks PORTABLE_DL_RANK"),
    ],
)
def test_contradictory_environments_are_refused(environ, message):
    with pytest.raises(ValueError, match=message):
        placement_from_environment(environ)


# ------------------------------------------------------------ a world of one
def test_a_world_of_one_changes_nothing(backend):
    world = distributed.init(backend, environ={})
    assert (world.rank, world.size, world.local_rank) == (0, 1, 0)
    tree = {"w": backend.asarray(np.array([[1.5, -2.0]], np.float32)), "n": [backend.asarray(np.array([3], np.int32))]}
    assert world.all_reduce(tree, "sum") is tree
    assert world.all_reduce({"w": tree["w"]})["w"] is tree["w"]
    assert world.broadcast(tree, root=0) is tree
    world.barrier()
    world.check_same_shapes(tree)
    step = pdl.make_train_step(lambda p, b: losses.mse(p["w"] * b[0], b[1]), optimizers.SGD(0.1), backend, world=world)
    assert type(step) is TrainStep


def test_fit_with_a_world_of_one_is_fit_without(backend):
    model = nn.MLP((3, 4, 2))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 3)).astype(np.float32), rng.integers(0, 2, 10)
    runs = [
        pdl.fit(
            model,
            model.init(0, backend),
            losses.cross_entropy,
            optimizers.SGD(0.1),
            backend,
            x,
            y,
            epochs=2,
            batch_size=4,
            verbose=0,
            compile=False,
            world=world,
        )
        for world in (None, distributed.init(backend, environ={}))
    ]
    for a, b in zip(pdl.tree_leaves(runs[0].params), pdl.tree_leaves(runs[1].params)):
        np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))
    assert runs[0].history == runs[1].history


def test_bad_arguments_to_the_collectives(backend):
    world = distributed.init(backend, environ={})
    ints = backend.asarray(np.array([1, 2], np.int32))
    with pytest.raises(ValueError, match="all_reduce op must be one of 'mean', 'sum', got 'max'"):
        world.all_reduce([ints], op="max")
    with pytest.raises(DTypeError, match="op='mean' needs floating-point arrays, got one of dtype int32"):
        world.all_reduce([ints], op="mean")
    with pytest.raises(ValueError, match="root must be a rank from 0 to 0, got 1"):
        world.broadcast([ints], root=1)
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
        distributed.init(backend, timeout=0, environ={})


def test_numpy_has_only_a_world_of_one():
    environ = {"PORTABLE_DL_RANK": "0", "PORTABLE_DL_WORLD_SIZE": "2", "PORTABLE_DL_COORDINATOR": "127.0.0.1:1"}
    with pytest.raises(
        DistributedError,
        match="the numpy backend has no multi-process engine: it runs a world of one "
        "process only, but the launcher asked for 2",
    ):
        distributed.init("numpy", environ=environ)


def test_fit_refuses_something_that_is_not_a_world(backend):
    with pytest.raises(ValueError, match="world must be a World from portable_dl.distributed.init"):
        pdl.fit(
            lambda p, x: x,
            {},
            losses.mse,
            optimizers.SGD(0.1),
            backend,
            np.zeros((2, 1)),
            np.zeros((2, 1)),
            world=object(),
        )


# ------------------------------------------------------------------- buckets
def test_buckets_lay_mixed_arrays_end_to_end_and_cut_them_back(backend, xp):
    leaves = [
        backend.asarray(np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5),
        backend.asarray(np.array(7, dtype=np.int32)),
        backend.asarray(np.array(-0.0, dtype=np.float32)),
        backend.asarray(np.array([[4], [5]], dtype=np.int32)),
        backend.asarray(np.array([1e-30, 3e38], dtype=np.float32)),
    ]
    buckets = Buckets.of(leaves, backend)
    assert buckets.dtypes == ["float32", "int32"] and buckets.sizes == [9, 3]
    assert buckets.nbytes({"float32": 4, "int32": 4}) == 48
    buffers = buckets.pack(leaves, xp)
    np.testing.assert_array_equal(
        backend.to_numpy(buffers[0]), np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -0.0, 1e-30, 3e38], np.float32)
    )
    np.testing.assert_array_equal(backend.to_numpy(buffers[1]), np.array([7, 4, 5], np.int32))
    for before, after in zip(leaves, buckets.unpack(buffers, xp)):
        expected = backend.to_numpy(before)
        got = backend.to_numpy(after)
        assert got.shape == expected.shape and got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
        assert np.array_equal(np.signbit(got), np.signbit(expected))


# ------------------------------------------------------------------ launcher
def _script(tmp_path, text):
    path = tmp_path / "script.py"
    path.write_text(text)
    return str(path)


def test_launch_prefixes_output_by_rank_and_sets_each_engines_environment(tmp_path):
    script = _script(
        tmp_path,
        "import os, json\n"
        "keys = ['PORTABLE_DL_RANK', 'PORTABLE_DL_WORLD_SIZE', 'RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MLX_RANK',"
        " 'PORTABLE_DL_BACKEND']\n"
        "print(json.dumps({k: os.environ[k] for k in keys}))\n"
        "print(json.dumps(json.loads(os.environ['TF_CONFIG'])['task']))\n"
        "print(len(json.load(open(os.environ['MLX_HOSTFILE']))))\n",
    )
    out = io.StringIO()
    assert launch(3, [script], backend="jax", stream=out) == 0
    lines = out.getvalue().splitlines()
    for rank in range(3):
        mine = [line[len(f"[rank {rank}] ") :] for line in lines if line.startswith(f"[rank {rank}] ")]
        assert json.loads(mine[0]) == {
            "PORTABLE_DL_RANK": str(rank),
            "PORTABLE_DL_WORLD_SIZE": "3",
            "RANK": str(rank),
            "WORLD_SIZE": "3",
            "MASTER_ADDR": "127.0.0.1",
            "MLX_RANK": str(rank),
            "PORTABLE_DL_BACKEND": "jax",
        }
        assert json.loads(mine[1]) == {"type": "worker", "index": rank}
        assert mine[2] == "3"


def test_launch_stops_the_other_ranks_when_one_fails_and_exits_with_its_code(tmp_path):
    script = _script(
        tmp_path,
        "import os, sys, time\n"
        "if os.environ['PORTABLE_DL_RANK'] == '1':\n"
        "    sys.exit(3)\n"
        "print('waiting', flush=True)\n"
        "time.sleep(600)\n",
    )
    out = io.StringIO()
    started = time.monotonic()
    assert launch(3, [script], grace=1.0, stream=out) == 3
    assert time.monotonic() - started < 30  # grace 1 s, then SIGTERM: far less than the sleep
    text = out.getvalue()
    assert "portable-dl launch: rank 1 exited with exit code 3; stopping the other ranks within 1 s" in text
    assert text.rstrip().endswith("portable-dl launch: failed: rank 1 exited with exit code 3")


def test_free_ports_are_distinct_and_bindable():
    import socket

    ports = free_ports(4)
    assert len(set(ports)) == 4
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_launch_command_refuses_a_bad_count(capsys):
    from portable_dl.cli import main

    assert main(["launch", "-n", "0", "script.py"]) == 2
    assert "-n must be at least 1, got 0" in capsys.readouterr().err


# --------------------------------------------------------------- conformance
def test_the_distributed_family_stays_out_of_quick_and_skips_numpy_with_the_reason():
    from portable_dl.conformance import distributed as family
    from portable_dl.conformance.families import FAMILIES
    from portable_dl.conformance.runner import Reference, run_case

    assert FAMILIES["distributed"] is family.cases
    assert family.cases(quick=True) == []
    cases = family.cases()
    assert [case.name for case in cases] == [
        "all_reduce_sum_int32_exact",
        "all_reduce_mean_float32",
        "broadcast_from_rank_1",
        "two_rank_step_equals_one_rank_step_of_doubled_batch",
    ]
    numpy_backend = pdl.backend("numpy")
    result = run_case(cases[0], numpy_backend, "float32", Reference())
    assert result.status == "skip"
    assert result.message == "the numpy backend has no multi-process engine (a world of one process only)"


# ------------------------------------------------------------ cutting batches
@pytest.mark.parametrize("count", [19, 21, 24])
def test_rank_slices_of_each_global_batch_are_the_one_process_batch(count):
    """Ranks of a world of 3 with 2 examples each: their slices, put together in rank order,
    are the one-process batches of 6 (same seed), and the shares weight each slice by its
    size; a rank left without an example (19 = 3 x 6 + 1) steps with share 0."""
    from types import SimpleNamespace

    from portable_dl.data import batches
    from portable_dl.distributed.fitting import rank_batches

    numpy_backend = pdl.backend("numpy")
    x = np.arange(count * 2, dtype=np.float64).reshape(count, 2)
    y = np.arange(count)
    one_process = [b[1] for b in batches(x, y, 6, numpy_backend, seed=np.random.default_rng(7))]
    per_rank = [
        list(
            rank_batches(
                x,
                y,
                2,
                SimpleNamespace(rank=rank, size=3),
                numpy_backend,
                shuffle=True,
                generator=np.random.default_rng(7),
                dtype=None,
            )
        )
        for rank in range(3)
    ]
    assert all(len(parts) == len(one_process) for parts in per_rank)
    for index, expected in enumerate(one_process):
        parts = [per_rank[rank][index] for rank in range(3)]
        assert {examples for _, examples, _ in parts} == {len(expected)}
        taken = [batch[1] for batch, _, share in parts if share > 0]
        np.testing.assert_array_equal(np.concatenate(taken), expected)
        assert sum(share for *_, share in parts) == pytest.approx(1.0)
        for batch, _, share in parts:
            assert share == (len(batch[1]) / len(expected) if share > 0 else 0.0)
    last = [per_rank[rank][-1][2] for rank in range(3)]
    assert last == {19: [0.0, 0.0, 1.0], 21: [1 / 3, 1 / 3, 1 / 3], 24: [1 / 3, 1 / 3, 1 / 3]}[count]
