"""Workers: the local worker inside the server, and ``shipyard worker`` on other machines.

A worker owns its slots and the processes it started. Its loop registers, heartbeats, claims
what the dispatcher assigned it, and runs each claimed attempt in a thread of its own
(``runner.execute``). The local worker reaches the store directly; a remote worker speaks the
worker routes over HTTP with an admin's token. Both answer a cancel or a lost assignment by
stopping the job's process group.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from shipyard import auth
from shipyard.client import Http, ServerUnreachable, http_blobs
from shipyard.config import Settings
from shipyard.data import service as data
from shipyard.db import Database
from shipyard.errors import Conflict, NotFound, ShipyardError
from shipyard.jobs import service, workers
from shipyard.jobs.runner import execute
from shipyard.jobs.schemas import ACTIVE, Assignment, JobState, WorkerCreate
from shipyard.storage import Storage

log = logging.getLogger(__name__)


def detect_gpus() -> list[str]:
    """GPU indices ``nvidia-smi`` reports (none without it)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def parse_gpus(text: str | None) -> list[str]:
    """``"0,1"`` -> ["0", "1"]; ``""`` -> none; None -> what nvidia-smi finds."""
    if text is None:
        return detect_gpus()
    return [g.strip() for g in text.split(",") if g.strip()]


class WorkerLoop:
    """Register, heartbeat, claim, run; subclasses say how to reach the server."""

    kind = "worker"

    def __init__(self, jobs_dir: Path, heartbeat_s: float, poll_s: float) -> None:
        self.jobs_dir = jobs_dir
        self.heartbeat_s = heartbeat_s
        self.poll_s = poll_s
        self.worker_id = ""
        self.running: dict[str, threading.Thread] = {}
        self.stop_now: set[str] = set()  # jobs the server told us to stop
        self.stopping = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what subclasses provide --------------------------------------------------------------

    server_url = ""

    def register(self) -> str:
        raise NotImplementedError

    def heartbeat(self, running: list[str]) -> list[str]:
        raise NotImplementedError

    def claim(self) -> list[Assignment]:
        raise NotImplementedError

    def ops(self, a: Assignment) -> Any:
        raise NotImplementedError

    def on_finished(self) -> None:
        """A slot freed."""

    # -- the loop -----------------------------------------------------------------------------

    def wake(self) -> None:
        """Claim now (the dispatcher assigned something)."""
        self._wake.set()

    def step(self, last_beat: float) -> float:
        """One turn: heartbeat when due, then claim and start; returns the last beat time."""
        now = time.monotonic()
        if now - last_beat >= self.heartbeat_s:
            self.stop_now.update(self.heartbeat(list(self.running)))
            last_beat = now
        for a in self.claim():
            t = threading.Thread(
                target=self._run, args=(a,), name=f"shipyard-job-{a.job_id[:8]}", daemon=True
            )
            self.running[a.job_id] = t
            t.start()
        return last_beat

    def _run(self, a: Assignment) -> None:
        try:
            execute(a, self.ops(a), self.jobs_dir / f"{a.job_id}-{a.attempt}", self.server_url)
        except Exception:
            log.exception("job %s: the worker could not report its end", a.job_id)
        finally:
            self.running.pop(a.job_id, None)
            self.stop_now.discard(a.job_id)
            self.on_finished()

    def serve(self) -> None:
        """Run until ``stop`` (blocking)."""
        while not self._stop.is_set():
            try:
                self.worker_id = self.register()
                break
            except ServerUnreachable as exc:
                log.warning("%s; retrying registration", exc.detail)
                self._stop.wait(2.0)
        last_beat = 0.0
        while not self._stop.is_set():
            try:
                last_beat = self.step(last_beat)
            except ServerUnreachable as exc:
                log.warning("%s", exc.detail)
            except NotFound:  # the server forgot us (its store was reset): start over
                self.worker_id = self.register()
            except Exception:
                log.exception("worker turn failed; retrying")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def start(self) -> None:
        """Serve in a thread."""
        self._thread = threading.Thread(
            target=self.serve, name=f"shipyard-{self.kind}", daemon=True
        )
        self._thread.start()

    def shutdown(self, wait_s: float = 10.0) -> None:
        """Stop claiming, stop running jobs, and wait for them to report."""
        self.stopping = True  # runners stop their jobs; they are lost, not cancelled
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + wait_s
        for t in list(self.running.values()):
            t.join(max(0.0, deadline - time.monotonic()))
        if self._thread is not None:
            self._thread.join(max(0.1, deadline - time.monotonic()))


# -- the local worker, inside the server -----------------------------------------------------


class LocalOps:
    """A runner's way to the store, in the server's own process."""

    def __init__(self, w: LocalWorker, a: Assignment) -> None:
        self.w, self.a = w, a

    def blobs(self, project: str) -> Callable[[str], Iterator[bytes]]:
        with self.w.db.read() as s:
            pid = auth.get_project(s, project).id
        return lambda sha: self.w.storage.iter_bytes(data.blob_path(pid, sha))

    def log(self, chunk: bytes) -> None:
        with self.w.db.session() as s:
            service.append_log(s, self.a.job_id, chunk)

    def cancelled(self) -> bool:
        if self.w.stopping or self.a.job_id in self.w.stop_now:
            return True
        with self.w.db.read() as s:
            job = service.get_job(s, self.a.job_id)
            return bool(
                job.cancel_requested
                or job.worker_id != self.w.worker_id
                or job.attempts != self.a.attempt
                or job.state not in ACTIVE
            )

    def started(self) -> None:
        with self.w.db.session() as s:
            job = service.get_job(s, self.a.job_id)
            service.mark_running(s, job, self.w.worker_id, self.a.attempt)

    def finished(self, state: JobState, exit_code: int | None, message: str) -> None:
        try:
            with self.w.db.session() as s:
                job = service.get_job(s, self.a.job_id)
                if self.w.stopping and state is JobState.cancelled and not job.cancel_requested:
                    # The server is stopping, not the user: lost, so retries still apply.
                    service.check_owned(job, self.w.worker_id, self.a.attempt)
                    service.finish(
                        s,
                        self.w.settings,
                        self.w.storage,
                        job,
                        JobState.lost,
                        exit_code,
                        "the server stopped",
                    )
                    return
                service.report(
                    s,
                    self.w.settings,
                    self.w.storage,
                    job,
                    self.w.worker_id,
                    self.a.attempt,
                    state,
                    exit_code,
                    message,
                )
        except Conflict:  # the job was taken from us (lost, then requeued): nothing to say
            pass


class LocalWorker(WorkerLoop):
    """The embedded server's worker: ``SHIPYARD_WORKER_CPUS`` slots on this machine."""

    kind = "local"

    def __init__(
        self, db: Database, storage: Storage, settings: Settings, poke: Callable[[], None]
    ) -> None:
        super().__init__(settings.jobs_path, heartbeat_s=settings.worker_timeout_s / 4, poll_s=1.0)
        self.db, self.storage, self.settings, self.poke = db, storage, settings, poke
        self.server_url = settings.server_url
        host = socket.gethostname()
        self.spec = WorkerCreate(
            name=f"local@{host}",
            host=host,
            cpus=settings.worker_cpus or float(os.cpu_count() or 1),
            gpus=parse_gpus(settings.worker_gpus),
            memory_gb=settings.worker_memory_gb,
            resource_class=settings.worker_resource_class,
        )

    def register(self) -> str:
        with self.db.session() as s:
            worker = workers.register_worker(
                s, self.settings, self.storage, self.spec, "local", None
            )
            return worker.id

    def heartbeat(self, running: list[str]) -> list[str]:
        with self.db.session() as s:
            return workers.heartbeat(s, workers.get_worker(s, self.worker_id), running)

    def claim(self) -> list[Assignment]:
        with self.db.read() as s:  # a cheap read first: most turns find nothing
            if not service.has_unclaimed(s, self.worker_id):
                return []
        with self.db.session() as s:
            return service.claim(s, self.settings, workers.get_worker(s, self.worker_id))

    def ops(self, a: Assignment) -> LocalOps:
        return LocalOps(self, a)

    def on_finished(self) -> None:
        self.poke()

    async def stop(self) -> None:
        """Stop the worker; its running jobs are cancelled and reported."""
        await asyncio.to_thread(self.shutdown, self.settings.cancel_grace_s + 5)
        with self.db.session() as s:
            if self.worker_id:
                worker = workers.get_worker(s, self.worker_id)
                workers.retire_worker(s, self.settings, self.storage, worker, "offline", "stopped")


# -- a worker on another machine -----------------------------------------------------------------


class HttpOps:
    """A runner's way to the server over HTTP (``shipyard worker``)."""

    def __init__(self, w: RemoteWorker, a: Assignment) -> None:
        self.w, self.a = w, a
        self.pending = b""
        self.lost = False

    def blobs(self, project: str) -> Callable[[str], Iterator[bytes]]:
        return http_blobs(self.w.http, project)

    def log(self, chunk: bytes) -> None:
        self.pending += chunk
        try:
            self.w.http.request(
                "POST",
                f"/api/jobs/{self.a.job_id}/logs",
                params={"worker_id": self.w.worker_id, "attempt": self.a.attempt},
                content=self.pending,
            )
            self.pending = b""
        except ServerUnreachable:
            pass  # kept, sent with the next chunk
        except Conflict:
            self.lost = True
            self.pending = b""

    def cancelled(self) -> bool:
        return self.lost or self.w.stopping or self.a.job_id in self.w.stop_now

    def _state(self, body: dict[str, Any]) -> None:
        self.w.http.json(
            "POST",
            f"/api/jobs/{self.a.job_id}/state",
            {"worker_id": self.w.worker_id, "attempt": self.a.attempt, **body},
        )

    def started(self) -> None:
        try:
            self._state({"state": "running"})
        except Conflict:
            self.lost = True

    def finished(self, state: JobState, exit_code: int | None, message: str) -> None:
        if self.pending:
            self.log(b"")
        if self.w.stopping and state is JobState.cancelled and self.a.job_id not in self.w.stop_now:
            return  # the worker is leaving: deregistering makes the job lost (and retried)
        deadline = time.monotonic() + 120  # the server may be restarting: keep the news
        while True:
            try:
                self._state({"state": state.value, "exit_code": exit_code, "message": message})
                return
            except Conflict:
                return
            except ServerUnreachable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2.0)


class RemoteWorker(WorkerLoop):
    """``shipyard worker``: slots on this machine, jobs from a server over HTTP."""

    kind = "remote"

    def __init__(
        self,
        http: Http,
        spec: WorkerCreate,
        jobs_dir: Path,
        heartbeat_s: float = 5.0,
        poll_s: float = 0.5,
    ) -> None:
        super().__init__(jobs_dir, heartbeat_s, poll_s)
        self.http = http
        self.spec = spec
        self.server_url = http.url

    def register(self) -> str:
        reply = self.http.json("POST", "/api/workers", self.spec.model_dump())
        log.info("registered as worker %s (%s)", reply["name"], reply["id"])
        return str(reply["id"])

    def heartbeat(self, running: list[str]) -> list[str]:
        reply = self.http.json(
            "POST", f"/api/workers/{self.worker_id}/heartbeat", {"running": running}
        )
        return list(reply["cancel"])

    def claim(self) -> list[Assignment]:
        reply = self.http.json("POST", f"/api/workers/{self.worker_id}/claim")
        return [Assignment.model_validate(a) for a in reply]

    def ops(self, a: Assignment) -> HttpOps:
        return HttpOps(self, a)

    def deregister(self) -> None:
        """Leave the pool (the server loses whatever this worker still held)."""
        try:
            self.http.request("DELETE", f"/api/workers/{self.worker_id}")
        except ShipyardError as exc:
            print(f"shipyard worker: could not deregister: {exc.detail}", file=sys.stderr)
