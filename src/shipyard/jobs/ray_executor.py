"""The Ray executor: with ``SHIPYARD_EXECUTOR=ray://HOST:PORT`` jobs run as Ray actors.

The executor owns the Ray connection (Ray Client) and one worker row standing for the whole
cluster, sized from ``ray.cluster_resources()``. The dispatcher assigns jobs to that row as to
any worker; the executor claims them and starts one actor per attempt with the job's resource
request (``num_cpus``, ``num_gpus``, ``memory``), so Ray's scheduler places it and sets
``CUDA_VISIBLE_DEVICES``. The actor runs the same runner as every worker; the executor polls it
for output and its end and applies them through the jobs service, so logs, states and costs
flow exactly as they do from a local worker. A dead actor (its node gone) is a lost attempt.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.client import Http, http_blobs
from shipyard.config import Settings
from shipyard.db import Database
from shipyard.errors import Conflict
from shipyard.jobs import service, workers
from shipyard.jobs.runner import execute
from shipyard.jobs.schemas import Assignment, JobState, WorkerCreate
from shipyard.storage import Storage

log = logging.getLogger(__name__)
POLL_S = 0.2
REFRESH_S = 5.0  # how often the cluster's size is read again


def _ray() -> Any:
    """The ray module, imported on first use (an extra: ``pip install 'shipyard[scale]'``)."""
    return importlib.import_module("ray")


class JobActor:
    """Runs one attempt on a Ray node; the executor polls it (a threaded actor)."""

    def __init__(self, assignment: str, server_url: str) -> None:
        self.a = Assignment.model_validate_json(assignment)
        self.server_url = server_url
        self.out = bytearray()
        self.lock = threading.Lock()
        self.stop_requested = False
        self.has_started = False
        self.result: tuple[str, int | None, str] | None = None

    # JobOps, called by the runner inside the actor
    def blobs(self, project: str) -> Callable[[str], Iterator[bytes]]:
        return http_blobs(Http(self.server_url, self.a.token), project)

    def log(self, chunk: bytes) -> None:
        with self.lock:
            self.out += chunk

    def cancelled(self) -> bool:
        return self.stop_requested

    def started(self) -> None:
        self.has_started = True

    def finished(self, state: JobState, exit_code: int | None, message: str) -> None:
        self.result = (state.value, exit_code, message)

    # called by the executor
    def run(self) -> None:
        workdir = Path(tempfile.mkdtemp(prefix=f"shipyard-{self.a.job_id[:8]}-"))
        try:
            execute(self.a, self, workdir, self.server_url)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def poll(self) -> dict[str, Any]:
        with self.lock:
            out = bytes(self.out)
            self.out.clear()
        return {"log": out, "started": self.has_started, "result": self.result}

    def stop(self) -> None:
        self.stop_requested = True


@dataclass
class Tracked:
    assignment: Assignment
    actor: Any
    run_ref: Any
    poll_ref: Any = None
    started: bool = False


class RayExecutor:
    """Submits claimed jobs to a Ray cluster and relays what they do (a thread)."""

    def __init__(
        self, db: Database, storage: Storage, settings: Settings, poke: Callable[[], None]
    ) -> None:
        self.db, self.storage, self.settings, self.poke = db, storage, settings, poke
        self.address = settings.executor
        self.worker_id = ""
        self.tracked: dict[str, Tracked] = {}
        self.to_stop: set[str] = set()  # jobs the server told us to stop
        self.max_node = (0.0, 0.0)  # the largest node's CPUs and GPUs
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """Claim now (the dispatcher assigned something)."""
        self._wake.set()

    def _capacity(self) -> WorkerCreate:
        ray = _ray()

        total = ray.cluster_resources()
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        self.max_node = max(
            ((n["Resources"].get("CPU", 0.0), n["Resources"].get("GPU", 0.0)) for n in nodes),
            default=(0.0, 0.0),
        )
        return WorkerCreate(
            name=f"ray@{self.address.removeprefix('ray://')}",
            host=self.address,
            cpus=max(total.get("CPU", 0.0), 0.001),
            gpus=[str(i) for i in range(int(total.get("GPU", 0)))],
            memory_gb=total.get("memory", 0.0) / 1e9,
            resource_class=self.settings.worker_resource_class,
        )

    def _connect(self) -> None:
        ray = _ray()

        ray.init(self.address, namespace="shipyard", log_to_driver=False)
        spec = self._capacity()
        with self.db.session() as s:
            worker = workers.register_worker(s, self.settings, self.storage, spec, "ray", None)
            self.worker_id = worker.id
        log.info(
            "Ray executor connected to %s: %s CPU, %d GPU", self.address, spec.cpus, len(spec.gpus)
        )
        self.poke()

    def _refresh(self) -> None:
        """Resize the cluster's worker row (nodes join and leave)."""
        spec = self._capacity()
        with self.db.session() as s:
            worker = workers.get_worker(s, self.worker_id)
            worker.cpus, worker.gpus, worker.memory_gb = spec.cpus, spec.gpus, spec.memory_gb

    def _beat(self) -> None:
        """Heartbeat the cluster's worker row from a thread of its own: a slow Ray call in the
        main loop must not make the dispatcher think the cluster is gone (dead actors are
        noticed one by one instead)."""
        while not self._stop.wait(self.settings.worker_timeout_s / 4):
            try:
                with self.db.session() as s:
                    worker = workers.get_worker(s, self.worker_id)
                    self.to_stop.update(workers.heartbeat(s, worker, list(self.tracked)))
            except Exception:
                log.exception("Ray executor heartbeat failed; retrying")

    def _claim(self) -> None:
        ray = _ray()

        with self.db.read() as s:
            if not service.has_unclaimed(s, self.worker_id):
                return
        with self.db.session() as s:
            claimed = service.claim(s, self.settings, workers.get_worker(s, self.worker_id))
        actor_cls = ray.remote(max_concurrency=4)(JobActor)
        for a in claimed:
            with self.db.read() as s:
                job = service.get_job(s, a.job_id)
                cpus, gpus, mem = job.cpus, job.gpus, job.memory_gb
            if cpus > self.max_node[0] or gpus > self.max_node[1]:
                self._finish(
                    a,
                    JobState.failed,
                    None,
                    f"no Ray node has {cpus:g} CPU(s) and {gpus} GPU(s) "
                    f"(the largest has {self.max_node[0]:g} and {self.max_node[1]:g})",
                )
                continue
            a.gpu_ids = None  # Ray sets CUDA_VISIBLE_DEVICES for the GPUs it grants
            options: dict[str, Any] = {"num_cpus": cpus, "num_gpus": gpus}
            if mem:
                options["memory"] = int(mem * 1e9)
            actor = actor_cls.options(**options).remote(
                a.model_dump_json(), self.settings.server_url
            )
            self.tracked[a.job_id] = Tracked(a, actor, actor.run.remote())

    def _finish(self, a: Assignment, state: JobState, code: int | None, message: str) -> None:
        try:
            with self.db.session() as s:
                job = service.get_job(s, a.job_id)
                if state is JobState.lost:
                    service.finish(s, self.settings, self.storage, job, state, code, message)
                else:
                    service.report(
                        s,
                        self.settings,
                        self.storage,
                        job,
                        self.worker_id,
                        a.attempt,
                        state,
                        code,
                        message,
                    )
        except Conflict:
            pass
        self.poke()

    def _relay(self) -> None:
        ray = _ray()

        for t in self.tracked.values():
            if t.poll_ref is None:
                t.poll_ref = t.actor.poll.remote()
        refs = {t.poll_ref: job_id for job_id, t in self.tracked.items()}
        if not refs:
            return
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=POLL_S)
        for ref in ready:
            job_id = refs[ref]
            t = self.tracked[job_id]
            t.poll_ref = None
            try:
                p = ray.get(ref)
            except Exception as exc:  # the actor died (its node went away)
                del self.tracked[job_id]
                self._finish(t.assignment, JobState.lost, None, f"the Ray actor died: {exc}")
                continue
            if p["log"]:
                with self.db.session() as s:
                    service.append_log(s, job_id, p["log"])
            if p["started"] and not t.started:
                t.started = True
                try:
                    with self.db.session() as s:
                        job = service.get_job(s, job_id)
                        service.mark_running(s, job, self.worker_id, t.assignment.attempt)
                except Conflict:
                    t.actor.stop.remote()
            if p["result"] is not None:
                del self.tracked[job_id]
                state, code, message = p["result"]
                self._finish(t.assignment, JobState(state), code, message)
                ray.kill(t.actor)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._connect()
                break
            except Exception as exc:
                log.error("cannot reach the Ray cluster at %s (%s); retrying", self.address, exc)
                self._stop.wait(5.0)
        threading.Thread(target=self._beat, name="shipyard-ray-heartbeat", daemon=True).start()
        last_refresh = time.monotonic()
        while not self._stop.is_set():
            try:
                if time.monotonic() - last_refresh > REFRESH_S:
                    self._refresh()
                    last_refresh = time.monotonic()
                for job_id in list(self.to_stop):
                    self.to_stop.discard(job_id)
                    if job_id in self.tracked:
                        self.tracked[job_id].actor.stop.remote()
                self._claim()
                self._relay()
            except Exception:
                log.exception("Ray executor turn failed; retrying")
            if not self.tracked:
                self._wake.wait(1.0)
                self._wake.clear()

    def start(self) -> None:
        """Connect and serve in a thread."""
        self._thread = threading.Thread(target=self._loop, name="shipyard-ray", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop running jobs (lost: they are retried after a restart when they may be),
        leave the cluster."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 15)
        if not self.worker_id:
            return
        ray = _ray()

        for t in self.tracked.values():
            try:
                ray.kill(t.actor)
            except Exception:
                pass
        with self.db.session() as s:
            worker = workers.get_worker(s, self.worker_id)
            workers.retire_worker(s, self.settings, self.storage, worker, "offline", "stopped")
        ray.shutdown()
