"""A real Ray cluster on 127.0.0.1 for the tests: a head and one worker node, 1 CPU each.

Each ``ray start --block`` runs in its own process group; stopping it (SIGTERM) stops the Ray
processes it started, and the group is killed after a grace so nothing outlives the tests.
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
from pathlib import Path

from tests._postgres import free_port


def _ray_bin() -> str:
    found = Path(sys.executable).with_name("ray")
    return str(found) if found.exists() else (shutil.which("ray") or "ray")


def _wait_port(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:.0f}s")


class RayCluster:
    """``ray start --head`` plus ``ray start --address``, stopped by ``stop()``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.client_port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.address = f"ray://127.0.0.1:{self.client_port}"

    def _start(self, *args: str) -> None:
        log = open(self.dir / f"node{len(self.procs)}.log", "wb")
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        proc = subprocess.Popen(
            [_ray_bin(), "start", *args, "--block", "--disable-usage-stats"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()
        self.procs.append(proc)

    def start(self) -> RayCluster:
        self._start(
            "--head",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ray-client-server-port",
            str(self.client_port),
            "--num-cpus",
            "1",
            "--include-dashboard",
            "false",
            "--temp-dir",
            str(self.dir),
        )
        _wait_port(self.client_port, 90)
        self._start(
            "--address",
            f"127.0.0.1:{self.port}",
            "--node-ip-address",
            "127.0.0.1",
            "--num-cpus",
            "1",
        )
        return self

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.dir.glob("node*.log"))

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # whatever its group still holds
            except ProcessLookupError:
                pass
            if proc.poll() is None:
                proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
