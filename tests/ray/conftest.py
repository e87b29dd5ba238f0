"""A real two-node Ray cluster on 127.0.0.1 for the tests in this folder, stopped afterwards.

``ray start --head`` and ``ray start --address`` (a second node process) run in their own
sessions with one CPU each and die with the test process. Teardown sends SIGTERM, by pid, to
every process of the two trees, SIGKILLs what is left of them after 20 s, and waits for both
``ray start`` processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
RAY = str(Path(sys.executable).with_name("ray"))


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the test process dies, even by a crash."""
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children() -> dict[int, int]:
    """pid -> parent pid of every process on the machine."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                table[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    return table


def _tree(roots: list[int]) -> set[int]:
    """The given pids and all their live descendants."""
    parents = _children()
    found, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid in found or pid not in parents:
            continue
        found.add(pid)
        todo += [child for child, parent in parents.items() if parent == pid]
    return found


class Cluster:
    def __init__(self, address: str, procs: list[subprocess.Popen], temp: str) -> None:
        self.address, self.procs, self.temp = address, procs, temp


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Cluster]:
    ray = pytest.importorskip("ray")

    temp = tempfile.mkdtemp(prefix="zr", dir="/tmp")  # short: Ray's socket paths are limited
    port = _free_port()
    address = f"127.0.0.1:{port}"
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(
            [str(REPO), str(TESTS), str(TESTS / "ray"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    common = ["--block", "--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    logs = Path(temp)
    procs = [
        subprocess.Popen(
            [
                RAY,
                "start",
                "--head",
                f"--port={port}",
                "--include-dashboard=false",
                f"--temp-dir={temp}",
                *common,
            ],
            start_new_session=True,
            env=env,
            preexec_fn=_die_with_parent,
            stdout=(logs / "head.log").open("w"),
            stderr=subprocess.STDOUT,
        )
    ]
    cluster = Cluster(address, procs, temp)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline or procs[0].poll() is not None:
                    raise RuntimeError((logs / "head.log").read_text()[-2000:]) from None
                time.sleep(0.5)
        procs.append(
            subprocess.Popen(
                [RAY, "start", f"--address={address}", *common],
                start_new_session=True,
                env=env,
                preexec_fn=_die_with_parent,
                stdout=(logs / "worker.log").open("w"),
                stderr=subprocess.STDOUT,
            )
        )
        ray.init(address=address, logging_level="WARNING")
        while len([n for n in ray.nodes() if n["Alive"]]) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError((logs / "worker.log").read_text()[-2000:])
            time.sleep(0.5)
        yield cluster
    finally:
        ray.shutdown()
        live = _tree([p.pid for p in procs])
        for pid in live:  # every process of the two trees, by pid
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 20
        while live & set(_children()) and time.monotonic() < deadline:
            time.sleep(0.5)
        for pid in live & set(_children()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in procs:
            p.wait(30)
        shutil.rmtree(temp, ignore_errors=True)
