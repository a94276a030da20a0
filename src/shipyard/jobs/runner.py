"""Running one attempt of a job on a worker: its folder, its process group, its logs, its end.

The runner owns the job's process. It lays out the code snapshot and the datasets in a fresh
folder, starts the command in a new session (so the whole process group can be signalled),
streams output to ``JobOps.log`` in batches, and ends the attempt in exactly one way: the
command exits (succeeded, or failed with its exit code), the timeout passes (timed_out), the
job is cancelled (cancelled), or its processes together hold more memory (RSS) than the job
asked for (failed, killed at once as an out-of-memory killer would). Stopping is SIGTERM to the
group, SIGKILL after a grace.
The same runner serves the local worker, ``shipyard worker`` and Ray actors; ``JobOps`` is how
each of them reaches the server.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil

from shipyard.client import materialize
from shipyard.jobs.schemas import Assignment, JobState

LOG_FLUSH_S = 0.25  # how stale a live log may get
CANCEL_POLL_S = 0.5
MEMORY_POLL_S = 0.5  # how often a job with a memory request has its processes' RSS summed
GB = 1e9  # memory requests are decimal gigabytes, as Ray's and the workers' sizes
MAX_LOG_CHUNK = 256 * 1024


class JobOps(Protocol):
    """How a runner reaches the server (directly in-process, over HTTP, or through Ray)."""

    def blobs(self, project: str) -> Callable[[str], Iterator[bytes]]:
        """A chunk source for a project's blobs."""

    def log(self, chunk: bytes) -> None:
        """Append output."""

    def cancelled(self) -> bool:
        """Whether the job must stop now."""

    def started(self) -> None:
        """The process is running."""

    def finished(self, state: JobState, exit_code: int | None, message: str) -> None:
        """The attempt ended."""


@dataclass
class Outcome:
    state: JobState
    exit_code: int | None
    message: str


def child_env(a: Assignment, server_url: str, workdir: Path) -> dict[str, str]:
    """The job's environment: the worker's own minus Shipyard's server settings, then the
    job's variables, then what the SDK needs to log into the job's run."""
    # The worker's environment carries PATH, locale and the like; the server's SHIPYARD_*
    # settings (database URL, artifact store) are no business of the job.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update(a.env)
    env.update(
        {
            "SHIPYARD_URL": server_url,
            "SHIPYARD_TOKEN": a.token,
            "SHIPYARD_RUN_ID": a.run_id,
            "SHIPYARD_PROJECT": a.project,
            "SHIPYARD_JOB_ID": a.job_id,
            "SHIPYARD_HOME": str(workdir / ".shipyard"),
            "SHIPYARD_DATASETS": str(workdir / "datasets"),
            "PYTHONUNBUFFERED": "1",
            # `python` in a command means the worker's interpreter (its virtualenv).
            "PATH": os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")]),
        }
    )
    if a.gpu_ids is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(a.gpu_ids)
    return env


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class _Pump(threading.Thread):
    """Reads the process's output as it comes."""

    def __init__(self, stream: object) -> None:
        super().__init__(name="shipyard-job-output", daemon=True)
        self.stream = stream
        self.buffer = bytearray()
        self.lock = threading.Lock()

    def run(self) -> None:
        read = self.stream.read1  # type: ignore[attr-defined]
        while chunk := read(65536):
            with self.lock:
                self.buffer += chunk

    def take(self) -> bytes:
        with self.lock:
            out = bytes(self.buffer)
            self.buffer.clear()
        return out


def prepare(a: Assignment, ops: JobOps, workdir: Path) -> None:
    """Lay out the code snapshot and the datasets (``datasets/NAME/``), every hash checked."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    snapshot = [f.model_dump() for f in a.snapshot]
    materialize(snapshot, workdir, ops.blobs(a.project))
    for d in a.datasets:
        files = [f.model_dump() for f in d.files]
        done = materialize(files, workdir / "datasets" / d.name, ops.blobs(d.project))
        ops.log(
            f"[shipyard] dataset {d.name}@{d.version}: {done.files} file(s), "
            f"{done.size / 1e6:.1f} MB in datasets/{d.name}\n".encode()
        )


def execute(a: Assignment, ops: JobOps, workdir: Path, server_url: str) -> Outcome:
    """Run the attempt to its end and report it through ``ops.finished``."""
    try:
        prepare(a, ops, workdir)
    except Exception as exc:  # a bad snapshot or dataset fails the attempt, not the worker
        outcome = Outcome(JobState.failed, None, f"could not prepare the job folder: {exc}")
        ops.log(f"[shipyard] {outcome.message}\n".encode())
        ops.finished(outcome.state, outcome.exit_code, outcome.message)
        shutil.rmtree(workdir, ignore_errors=True)
        return outcome
    try:
        outcome = _run(a, ops, workdir, server_url)
    except Exception as exc:
        outcome = Outcome(JobState.failed, None, f"the worker failed running the job: {exc!r}")
        ops.log(f"[shipyard] {outcome.message}\n".encode())
    ops.finished(outcome.state, outcome.exit_code, outcome.message)
    shutil.rmtree(workdir, ignore_errors=True)
    return outcome


def _run(a: Assignment, ops: JobOps, workdir: Path, server_url: str) -> Outcome:
    try:
        proc = subprocess.Popen(
            a.command,
            cwd=workdir,
            env=child_env(a, server_url, workdir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: signals reach its children too
        )
    except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
        message = f"cannot run {a.command[0]!r}: {exc.strerror or exc} (command not found?)"
        ops.log(f"[shipyard] {message}\n".encode())
        return Outcome(JobState.failed, 127, message)
    ops.started()
    pump = _Pump(proc.stdout)
    pump.start()
    start = time.monotonic()
    deadline = start + a.timeout_s if a.timeout_s else None
    ending: JobState | None = None
    over_memory = ""
    next_flush = next_poll = next_memory = start
    while proc.poll() is None:
        now = time.monotonic()
        if now >= next_flush:
            _flush(pump, ops)
            next_flush = now + LOG_FLUSH_S
        if ending is None and deadline is not None and now >= deadline:
            ending = JobState.timed_out
        if ending is None and now >= next_poll:
            next_poll = now + CANCEL_POLL_S
            if ops.cancelled():
                ending = JobState.cancelled
        if ending is None and a.memory_gb > 0 and now >= next_memory:
            next_memory = now + MEMORY_POLL_S
            used = tree_rss(proc.pid)
            if used > a.memory_gb * GB:
                over_memory = (
                    f"used {used / GB:.2f} GB of memory, over its request of {a.memory_gb:g} GB"
                )
                _flush(pump, ops)  # what the job printed so far comes before the verdict
                ops.log(f"[shipyard] {over_memory}: SIGKILL to the process group\n".encode())
                _kill_group(proc.pid, signal.SIGKILL)
                ending = JobState.failed
                break
        if ending is not None:
            why = "timed out" if ending is JobState.timed_out else "cancelled"
            _flush(pump, ops)
            ops.log(f"[shipyard] {why}: SIGTERM to the process group\n".encode())
            _stop(proc, a.cancel_grace_s, ops)
            break
        try:
            proc.wait(0.05)  # returns the moment the command exits
        except subprocess.TimeoutExpired:
            pass
    _kill_group(proc.pid, signal.SIGKILL)  # children left behind by the command
    pump.join(5)
    proc.wait()
    _flush(pump, ops)
    if proc.stdout is not None:
        proc.stdout.close()
    code = proc.returncode
    if ending is JobState.timed_out:
        return Outcome(ending, code, f"ran past its timeout of {a.timeout_s:g}s")
    if ending is JobState.cancelled:
        return Outcome(ending, code, "cancelled")
    if over_memory:
        return Outcome(JobState.failed, code, over_memory)
    if code == 0:
        return Outcome(JobState.succeeded, 0, "")
    if code < 0:
        return Outcome(JobState.failed, code, f"killed by signal {signal.Signals(-code).name}")
    return Outcome(JobState.failed, code, f"exit code {code}")


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (0 once it is gone)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def _flush(pump: _Pump, ops: JobOps) -> None:
    out = pump.take()
    for i in range(0, len(out), MAX_LOG_CHUNK):
        ops.log(out[i : i + MAX_LOG_CHUNK])


def _stop(proc: subprocess.Popen[bytes], grace_s: float, ops: JobOps) -> None:
    _kill_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        ops.log(f"[shipyard] still running after {grace_s:g}s: SIGKILL\n".encode())
        _kill_group(proc.pid, signal.SIGKILL)
        proc.wait()
