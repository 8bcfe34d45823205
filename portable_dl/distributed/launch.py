"""``portable-dl launch -n N script.py [args]``: N local processes of one data-parallel run.

Each process gets the environment every engine expects, so one script runs on any backend:
``PORTABLE_DL_RANK``/``_WORLD_SIZE``/``_LOCAL_RANK``/``_COORDINATOR``/``_LAUNCH_DIR`` (and
``PORTABLE_DL_BACKEND`` with ``--backend``), torchrun's ``MASTER_ADDR``, ``MASTER_PORT``,
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, mlx.launch's ring
``MLX_RANK`` and ``MLX_HOSTFILE``, and TensorFlow's ``TF_CONFIG``, every address on the
loopback interface (127.0.0.1) and every port picked free by the system.

We set these variables ourselves rather than run ``torchrun`` or ``mlx.launch``: the
engines start from them exactly as under those launchers, and one launcher can then do for
every backend what the issue asks of it: every line of output is prefixed by its rank; when
a rank exits with an error, the others get ``grace`` seconds to notice it (their collectives
fail and name the lost rank, recorded in ``PORTABLE_DL_LAUNCH_DIR``), are then terminated
(SIGTERM, then SIGKILL after 5 s), and the launcher exits with the failed rank's code, naming
it. For several machines use each engine's own launcher (see the README).

This module imports no framework.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence

__all__ = ["launch", "free_ports", "rank_environment"]

#: seconds between SIGTERM and SIGKILL for a rank that does not stop
_KILL_AFTER = 5.0
LOOPBACK = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on the loopback interface now (the system picks them:
    bind to port 0). Another program may take one before it is used; it is unlikely."""
    sockets, ports = [], []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
            ports.append(sock.getsockname()[1])
    finally:
        for sock in sockets:
            sock.close()
    return ports


def rank_environment(rank: int, size: int, launch_dir: str, ports: dict, backend: str | None) -> dict[str, str]:
    """The variables rank ``rank`` of ``size`` gets (see the module docstring)."""
    tf_workers = [f"{LOOPBACK}:{port}" for port in ports["tensorflow"]]
    env = {
        "PORTABLE_DL_RANK": str(rank),
        "PORTABLE_DL_WORLD_SIZE": str(size),
        "PORTABLE_DL_LOCAL_RANK": str(rank),
        "PORTABLE_DL_COORDINATOR": f"{LOOPBACK}:{ports['coordinator']}",
        "PORTABLE_DL_LAUNCH_DIR": launch_dir,
        "MASTER_ADDR": LOOPBACK,
        "MASTER_PORT": str(ports["torch"]),
        "RANK": str(rank),
        "WORLD_SIZE": str(size),
        "LOCAL_RANK": str(rank),
        "LOCAL_WORLD_SIZE": str(size),
        "MLX_RANK": str(rank),
        "MLX_HOSTFILE": os.path.join(launch_dir, "mlx-ring-hosts.json"),
        "TF_CONFIG": json.dumps({"cluster": {"worker": tf_workers}, "task": {"type": "worker", "index": rank}}),
        "PYTHONUNBUFFERED": "1",
    }
    if backend is not None:
        env["PORTABLE_DL_BACKEND"] = backend
    return env


def launch(
    count: int,
    command: Sequence[str],
    *,
    backend: str | None = None,
    grace: float = 10.0,
    stream: object = None,
) -> int:
    """Run ``command`` (``[script.py, args...]``, run with this Python) as ``count`` ranks;
    return 0 when all exit with 0, else the first failed rank's exit code (128 + the signal
    for a rank killed by a signal), having stopped the others. Output lines go to ``stream``
    (default: standard output) prefixed by ``[rank R]``."""
    if count < 1:
        raise ValueError(f"launch needs at least one process, got -n {count}")
    stream = sys.stdout if stream is None else stream
    launch_dir = tempfile.mkdtemp(prefix="portable-dl-launch-")
    ports_list = free_ports(2 + 2 * count)
    ports = {
        "coordinator": ports_list[0],
        "torch": ports_list[1],
        "mlx": ports_list[2 : 2 + count],
        "tensorflow": ports_list[2 + count :],
    }
    with open(os.path.join(launch_dir, "mlx-ring-hosts.json"), "w") as file:
        json.dump([[f"{LOOPBACK}:{port}"] for port in ports["mlx"]], file)
    lock = threading.Lock()
    processes, readers = [], []
    try:
        for rank in range(count):
            env = dict(os.environ)
            env.update(rank_environment(rank, count, launch_dir, ports, backend))
            if "OMP_NUM_THREADS" not in os.environ:  # as torchrun: the ranks share the cores
                env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // count))
            process = subprocess.Popen(
                [sys.executable, *command],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a signal to the launcher's group does not reach the ranks twice
            )
            processes.append(process)
            reader = threading.Thread(target=_copy_lines, args=(process, rank, stream, lock), daemon=True)
            reader.start()
            readers.append(reader)
        code = _supervise(processes, launch_dir, grace, stream, lock)
    except KeyboardInterrupt:
        _stop(processes)
        code = 130
    finally:
        for reader in readers:
            reader.join(timeout=5.0)
        shutil.rmtree(launch_dir, ignore_errors=True)
    return code


def _copy_lines(process: subprocess.Popen, rank: int, stream: object, lock: threading.Lock) -> None:
    for raw in iter(process.stdout.readline, b""):
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        with lock:
            stream.write(f"[rank {rank}] {line}\n")
            stream.flush()
    process.stdout.close()


def _supervise(processes: list, launch_dir: str, grace: float, stream: object, lock: threading.Lock) -> int:
    """Wait for the ranks; on the first failure give the others ``grace`` seconds, then stop them."""
    failed: tuple[int, int] | None = None
    failed_at = deadline = None
    exited: dict[int, int] = {}
    while len(exited) < len(processes):
        for rank, process in enumerate(processes):
            if rank in exited or process.poll() is None:
                continue
            code = process.returncode
            exited[rank] = code
            # Recorded where the other ranks look when their collectives fail (World.lost_ranks).
            with open(os.path.join(launch_dir, f"rank-{rank}.exit"), "w") as file:
                file.write(str(code))
            if failed is not None:
                with lock:
                    stream.write(
                        f"portable-dl launch: rank {rank} exited with {_describe_code(code)}, "
                        f"{time.monotonic() - failed_at:.1f} s after rank {failed[0]}\n"
                    )
                    stream.flush()
            if code != 0 and failed is None:
                failed, failed_at = (rank, code), time.monotonic()
                deadline = failed_at + grace
                with lock:
                    stream.write(
                        f"portable-dl launch: rank {rank} exited with {_describe_code(code)}; "
                        f"stopping the other ranks within {grace:g} s\n"
                    )
                    stream.flush()
        if deadline is not None and time.monotonic() >= deadline and len(exited) < len(processes):
            _stop([p for r, p in enumerate(processes) if r not in exited])
            deadline = None
        time.sleep(0.05)
    if failed is None:
        return 0
    rank, code = failed
    exit_code = code if code > 0 else 128 + (-code)
    with lock:
        stream.write(f"portable-dl launch: failed: rank {rank} exited with {_describe_code(code)}\n")
        stream.flush()
    return exit_code


def _stop(processes: list) -> None:
    """SIGTERM, then SIGKILL after a few seconds, to every process still running."""
    for process in processes:
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + _KILL_AFTER
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _describe_code(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
