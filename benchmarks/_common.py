"""What the benchmark scripts share: server processes, the MLflow venv, deadlines, result rows.

The scripts run as ``python benchmarks/NAME.py``, so this module is imported as ``_common``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console

MLFLOW_REQUIREMENT = "mlflow>=3,<4"


class BenchError(RuntimeError):
    """The benchmark could not measure something (setup failed, a check did not hold)."""


class Deadline(BaseException):
    """The whole run went past --max-seconds."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def row(case: str, sy: float, peer: float, unit: str, ratio: float) -> dict[str, Any]:
    """One result: Shipyard's figure, the peer's, and the ratio in Shipyard's favour."""
    return {
        "case": case,
        "shipyard": float(sy),
        "peer": float(peer),
        "unit": unit,
        "ratio": float(ratio),
    }


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise ``Deadline`` after ``seconds``; SIGTERM exits cleanly (servers are stopped)."""

    def expire(signum: int, frame: object) -> None:
        raise Deadline(f"the benchmark ran past --max-seconds={seconds:.0f}")

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    old_alarm = signal.signal(signal.SIGALRM, expire)
    old_term = signal.signal(signal.SIGTERM, terminate)
    signal.alarm(max(1, int(seconds)))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old_alarm)
        signal.signal(signal.SIGTERM, old_term)


def tree_memory(pid: int) -> tuple[int, int, int]:
    """(RSS, PSS, process count) in bytes of a process and all its descendants.

    RSS counts pages shared between the processes once per process; PSS splits them.
    """
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0, 0
    rss = pss = count = 0
    for p in procs:
        try:
            m = p.memory_full_info()
        except psutil.NoSuchProcess:
            continue
        rss, pss, count = rss + m.rss, pss + m.pss, count + 1
    return rss, pss, count


class Server:
    """A server subprocess in its own process group, with its log in a file (appended)."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], health: str, log: Path
    ) -> None:
        self.name, self.argv, self.env, self.health, self.log_path = name, argv, env, health, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s = float("nan")

    def start(self, timeout: float) -> None:
        """Start it and wait until ``health`` answers 200 (``startup_s`` is how long that took)."""
        t0 = time.perf_counter()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        with httpx.Client(timeout=2.0) as http:
            while True:
                if self.proc.poll() is not None:
                    raise BenchError(
                        f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                    )
                try:
                    if http.get(self.health).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.perf_counter() - t0 > timeout:
                    raise BenchError(
                        f"{self.name} did not answer {self.health} in {timeout:.0f} s:\n"
                        + self.log_tail()
                    )
                time.sleep(0.02)
        self.startup_s = time.perf_counter() - t0

    def memory(self) -> tuple[int, int, int]:
        return tree_memory(self.proc.pid) if self.proc is not None else (0, 0, 0)

    def settle(self, quiet_s: float = 2.0, limit_s: float = 30.0) -> tuple[int, int, int]:
        """Wait until the tree's RSS and process count hold still for ``quiet_s``; return them."""
        t0 = time.perf_counter()
        last = self.memory()
        still_since = time.perf_counter()
        while time.perf_counter() - t0 < limit_s:
            time.sleep(0.25)
            now = self.memory()
            if now[2] != last[2] or abs(now[0] - last[0]) > 0.01 * max(last[0], 1):
                still_since = time.perf_counter()
            elif time.perf_counter() - still_since >= quiet_s:
                return now
            last = now
        return last

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM the process group (and any stray descendant), then SIGKILL what remains."""
        if self.proc is None:
            return
        try:
            procs = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            procs = []
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            for p in procs:
                try:
                    p.send_signal(sig)
                except psutil.NoSuchProcess:
                    pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                continue
            _, alive = psutil.wait_procs(procs, timeout=5)
            if not alive:
                break
        self.proc = None


def ensure_mlflow(venv: Path, console: Console, also: Sequence[str] = ()) -> Path:
    """The MLflow venv's python: the venv is made and MLflow installed when missing, and the
    modules ``also`` names (as ``module==version`` requirements) when they do not import."""
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if not (venv / "bin" / "mlflow").exists():
        console.print(f"[dim]installing {MLFLOW_REQUIREMENT} into {venv} (once)...[/]")
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run([*pip, MLFLOW_REQUIREMENT], check=True, timeout=900)
    if also:
        modules = ", ".join(r.split("==")[0] for r in also)
        has = subprocess.run([str(python), "-c", f"import {modules}"], capture_output=True)
        if has.returncode != 0:
            console.print(f"[dim]installing {' '.join(also)} into {venv} (once)...[/]")
            subprocess.run([*pip, *also], check=True, timeout=900)
    return python
