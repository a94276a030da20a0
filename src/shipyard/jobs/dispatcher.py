"""The dispatcher: assigns queued jobs to workers with free slots, and notices lost workers.

It owns one decision, ``queued -> starting`` (which worker, which GPUs). Order: higher priority
first; within a priority, projects take turns, the project holding the fewest slots going next
(so one project's thousand jobs do not starve another's one); within a project, oldest first. A
job that fits no worker right now is skipped, so smaller jobs behind it may backfill.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.config import Settings
from shipyard.db import Database, utcnow
from shipyard.jobs import cost, service, workers
from shipyard.jobs.schemas import ACTIVE, JobState
from shipyard.jobs.tables import Job, Worker
from shipyard.storage import Storage

log = logging.getLogger(__name__)


@dataclass
class Slots:
    """What a worker has free."""

    worker: Worker
    cpus: float
    memory_gb: float
    gpus: list[str] = field(default_factory=list)

    def fits(self, job: Job) -> bool:
        return (
            self.cpus + 1e-9 >= job.cpus
            and len(self.gpus) >= job.gpus
            and (
                job.memory_gb == 0 or self.worker.memory_gb == 0 or self.memory_gb >= job.memory_gb
            )
            and (job.resource_class is None or job.resource_class == self.worker.resource_class)
        )

    def take(self, job: Job) -> list[str]:
        self.cpus -= job.cpus
        self.memory_gb -= job.memory_gb
        taken, self.gpus = self.gpus[: job.gpus], self.gpus[job.gpus :]
        return taken


def free_slots(session: Session) -> list[Slots]:
    """Free CPUs, memory and GPU ids of each online worker."""
    online = {w.id: w for w in session.scalars(select(Worker).where(Worker.status == "online"))}
    slots = {wid: Slots(w, w.cpus, w.memory_gb, list(w.gpus)) for wid, w in online.items()}
    held = session.scalars(
        select(Job).where(Job.worker_id.in_(list(online)), Job.state.in_([s.value for s in ACTIVE]))
    )
    for job in held:
        s = slots[job.worker_id]  # type: ignore[index]
        s.cpus -= job.cpus
        s.memory_gb -= job.memory_gb
        s.gpus = [g for g in s.gpus if g not in job.gpu_ids]
    return list(slots.values())


def dispatch_queued_jobs(session: Session) -> list[Job]:
    """One pass: assign what fits; returns the jobs assigned."""
    now = utcnow()
    slots = free_slots(session)
    if not slots:
        return []
    queued = list(
        session.scalars(
            select(Job)
            .where(Job.state == JobState.queued, Job.not_before <= now)
            .order_by(Job.priority.desc(), Job.submitted_at, Job.id)
            .with_for_update(skip_locked=True)
        )
    )
    if not queued:
        return []
    held: dict[str, float] = defaultdict(float)  # slots each project holds, for fairness
    gpus_used: dict[str, int] = defaultdict(int)
    for job in session.scalars(select(Job).where(Job.state.in_([s.value for s in ACTIVE]))):
        held[job.project_id] += job.cpus
        gpus_used[job.project_id] += job.gpus
    limits = cost.quota_limits(session)
    assigned = []
    by_priority: dict[int, dict[str, deque[Job]]] = defaultdict(lambda: defaultdict(deque))
    for job in queued:
        by_priority[job.priority][job.project_id].append(job)
    for priority in sorted(by_priority, reverse=True):
        queues = by_priority[priority]
        while queues:
            project_id = min(queues, key=lambda p: (held[p], queues[p][0].submitted_at))
            job = queues[project_id].popleft()
            if not queues[project_id]:
                del queues[project_id]
            limit = limits.get(job.project_id)
            if limit is not None and gpus_used[job.project_id] + job.gpus > limit:
                continue
            target = min(
                (s for s in slots if s.fits(job)),
                key=lambda s: (len(s.gpus) - job.gpus, s.cpus - job.cpus),  # best fit
                default=None,
            )
            if target is None:
                continue
            job.gpu_ids = target.take(job)
            job.worker_id = target.worker.id
            job.state = JobState.starting
            job.assigned_at = now
            job.message = ""
            held[job.project_id] += job.cpus
            gpus_used[job.project_id] += job.gpus
            assigned.append(job)
    return assigned


class Dispatcher:
    """Every ``interval_s`` (or at once when poked): lost workers, then assignments; tells
    its listeners (the local worker, the Ray executor) when it assigned something."""

    def __init__(self, db: Database, storage: Storage, settings: Settings) -> None:
        self.db = db
        self.storage = storage
        self.settings = settings
        self.interval_s = settings.dispatch_interval_s
        self.listeners: list[Callable[[], None]] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_prune = 0.0

    def poke(self) -> None:
        """Run a pass soon (a job was submitted, a slot freed)."""
        self._wake.set()

    def _work_waiting(self) -> bool:
        """A cheap read: is anything queued and due, or is an online worker silent? (An idle
        server then never takes SQLite's write lock from the requests it serves.)"""
        now = utcnow()
        cutoff = now - timedelta(seconds=self.settings.worker_timeout_s)
        with self.db.read() as s:
            due = s.scalar(
                select(Job.id).where(Job.state == JobState.queued, Job.not_before <= now).limit(1)
            )
            silent = s.scalar(
                select(Worker.id)
                .where(Worker.status == "online", Worker.heartbeat_at < cutoff)
                .limit(1)
            )
        return due is not None or silent is not None

    def run_once(self) -> int:
        """One pass; how many jobs it assigned."""
        if not self._work_waiting() and time.monotonic() < self._next_prune:
            return 0
        with self.db.session() as s:  # one write transaction a pass
            lost = workers.mark_lost_workers(s, self.settings, self.storage)
            if lost:
                log.warning("%d job(s) lost with silent workers", lost)
            if time.monotonic() > self._next_prune:
                service.prune_logs(s)
                self._next_prune = time.monotonic() + 60
            s.flush()
            n = len(dispatch_queued_jobs(s))
        if n:
            for listener in self.listeners:
                listener()
        return n

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.run_once()
            except Exception:  # keep dispatching through a transient store error
                log.exception("dispatch pass failed; retrying in %.1fs", self.interval_s)

    def start(self) -> None:
        """Start dispatching in a thread."""
        self._thread = threading.Thread(target=self._loop, name="shipyard-dispatcher", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop dispatching."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)
