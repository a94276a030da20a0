"""Workers: registration, heartbeats, the jobs they must stop, and losing silent ones.

A worker row stands for a machine (or the Ray cluster) and its slots. A worker that stops
heartbeating for ``SHIPYARD_WORKER_TIMEOUT_S`` is lost: its jobs' attempts end as lost and go
back to the queue while retries remain. A worker that registers under the name of an online
worker replaces it (it restarted), with the same consequence for what the old one held.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shipyard.config import Settings
from shipyard.db import utcnow
from shipyard.errors import NotFound
from shipyard.jobs.schemas import ACTIVE, JobState, WorkerCreate, WorkerOut
from shipyard.jobs.service import finish
from shipyard.jobs.tables import Job, Worker
from shipyard.storage import Storage
from shipyard.tracking import service as tracking


def get_worker(session: Session, worker_id: str) -> Worker:
    """The worker with ``worker_id``."""
    worker = session.get(Worker, worker_id)
    if worker is None:
        raise NotFound(f"worker {worker_id!r} does not exist")
    return worker


def register_worker(
    session: Session,
    settings: Settings,
    storage: Storage,
    body: WorkerCreate,
    kind: str,
    user_id: str | None,
) -> Worker:
    """Add a worker; an online worker of the same name is replaced (it restarted), and the
    jobs it held are lost (and retried when they may be)."""
    for old in session.scalars(
        select(Worker).where(Worker.name == body.name, Worker.status == "online")
    ):
        retire_worker(session, settings, storage, old, "offline", "was replaced (restarted)")
    worker = Worker(
        name=body.name,
        kind=kind,
        host=body.host,
        cpus=body.cpus,
        gpus=body.gpus,
        memory_gb=body.memory_gb,
        resource_class=body.resource_class,
        registered_by=user_id,
    )
    session.add(worker)
    session.flush()
    return worker


def retire_worker(
    session: Session, settings: Settings, storage: Storage, worker: Worker, status: str, why: str
) -> int:
    """Take a worker out of the pool; its active jobs are lost. Returns how many."""
    worker.status = status
    active = list(
        session.scalars(
            select(Job).where(Job.worker_id == worker.id, Job.state.in_([s.value for s in ACTIVE]))
        )
    )
    for job in active:
        finish(session, settings, storage, job, JobState.lost, None, f"worker {worker.name} {why}")
    return len(active)


def mark_lost_workers(session: Session, settings: Settings, storage: Storage) -> int:
    """Workers silent for ``worker_timeout_s`` are lost, with their jobs; how many jobs."""
    cutoff = utcnow() - timedelta(seconds=settings.worker_timeout_s)
    silent = session.scalars(
        select(Worker).where(Worker.status == "online", Worker.heartbeat_at < cutoff)
    ).all()
    return sum(
        retire_worker(session, settings, storage, w, "lost", "stopped heartbeating") for w in silent
    )


def heartbeat(session: Session, worker: Worker, running: Sequence[str]) -> list[str]:
    """A worker is alive; keeps its jobs' runs alive too. Returns the jobs it must stop."""
    worker.heartbeat_at = utcnow()
    if worker.status != "online":
        worker.status = "online"
    active = {
        j.id: j
        for j in session.scalars(
            select(Job).where(Job.worker_id == worker.id, Job.state.in_([s.value for s in ACTIVE]))
        )
    }
    for job in active.values():
        if job.run_id is not None and job.state == JobState.running:
            tracking.touch(session, job.run_id)
    stop = [jid for jid in running if jid not in active]
    stop += [j.id for j in active.values() if j.cancel_requested]
    return stop


def list_workers(session: Session, include_gone: bool = False) -> list[WorkerOut]:
    """Workers (online ones unless ``include_gone``), with how many jobs each holds."""
    stmt = select(Worker).order_by(Worker.created_at.desc())
    if not include_gone:
        stmt = stmt.where(Worker.status == "online")
    workers = list(session.scalars(stmt))
    counts = {
        wid: n
        for wid, n in session.execute(
            select(Job.worker_id, func.count())
            .where(Job.state.in_([s.value for s in ACTIVE]))
            .group_by(Job.worker_id)
        )
    }
    return [
        WorkerOut(
            id=w.id,
            name=w.name,
            kind=w.kind,
            host=w.host,
            cpus=w.cpus,
            gpus=w.gpus,
            memory_gb=w.memory_gb,
            resource_class=w.resource_class,
            status=w.status,
            running=counts.get(w.id, 0),
            heartbeat_at=w.heartbeat_at,
            created_at=w.created_at,
        )
        for w in workers
    ]
