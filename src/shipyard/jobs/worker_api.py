"""Routes workers speak: register, heartbeat, claim, report states and stream output.

A worker acts as a server admin (it runs every project's code and sees its environment), so
each route but the listing needs an admin's token. Registration and state changes are
audited; heartbeats, claims (polled) and log chunks are telemetry.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from shipyard import audit
from shipyard.auth import Actor, ActorDep, RuntimeDep
from shipyard.errors import Forbidden, PayloadTooLarge
from shipyard.inputs import Attempt
from shipyard.jobs import service, workers
from shipyard.jobs.api import poke
from shipyard.jobs.schemas import (
    FINAL,
    Assignment,
    Heartbeat,
    HeartbeatOut,
    JobOut,
    JobStateIn,
    WorkerCreate,
    WorkerOut,
)

router = APIRouter(prefix="/api", tags=["workers"])
MAX_LOG_BYTES = 4 * 1024 * 1024


def require_admin(caller: Actor) -> None:
    """Workers act as admins: refuse anyone else."""
    if not caller.is_admin:
        raise Forbidden(
            f"user {caller.name!r} is not a server admin; a worker needs an admin's token "
            "(shipyard users create NAME --admin; shipyard tokens create --user NAME)"
        )


@router.get("/workers", response_model=list[WorkerOut])
def list_workers(caller: ActorDep, rt: RuntimeDep, all: bool = False) -> list[WorkerOut]:
    """Online workers (``all=true``: also offline and lost ones) with their slots."""
    with rt.db.read() as s:
        return workers.list_workers(s, include_gone=all)


@router.post("/workers", response_model=WorkerOut, status_code=201)
def register_worker(
    body: WorkerCreate, request: Request, caller: ActorDep, rt: RuntimeDep
) -> WorkerOut:
    """Join the pool (a worker of the same name that is online is replaced)."""
    require_admin(caller)
    with rt.db.session() as s:
        worker = workers.register_worker(s, rt.settings, rt.storage, body, "remote", caller.user_id)
        audit.record(s, caller, "worker.register", "worker", worker.id, after=body.model_dump())
        s.flush()
        out = next(w for w in workers.list_workers(s) if w.id == worker.id)
    poke(request)
    return out


@router.delete("/workers/{worker_id}", status_code=204)
def deregister_worker(worker_id: str, request: Request, caller: ActorDep, rt: RuntimeDep) -> None:
    """Leave the pool; the jobs the worker held are lost (and retried when they may be)."""
    require_admin(caller)
    with rt.db.session() as s:
        worker = workers.get_worker(s, worker_id)
        lost = workers.retire_worker(s, rt.settings, rt.storage, worker, "offline", "left")
        audit.record(s, caller, "worker.deregister", "worker", worker_id, after={"jobs_lost": lost})
    poke(request)


@router.post("/workers/{worker_id}/heartbeat", response_model=HeartbeatOut)
def heartbeat(worker_id: str, body: Heartbeat, caller: ActorDep, rt: RuntimeDep) -> HeartbeatOut:
    """The worker is alive and runs these jobs; the reply names the jobs it must stop."""
    require_admin(caller)
    with rt.db.session() as s:
        return HeartbeatOut(
            cancel=workers.heartbeat(s, workers.get_worker(s, worker_id), body.running)
        )


@router.post("/workers/{worker_id}/claim", response_model=list[Assignment])
def claim(worker_id: str, caller: ActorDep, rt: RuntimeDep) -> list[Assignment]:
    """The jobs the dispatcher gave this worker, each with a token to log into its run."""
    require_admin(caller)
    with rt.db.session() as s:
        return service.claim(s, rt.settings, workers.get_worker(s, worker_id))


@router.post("/jobs/{job_id}/logs", status_code=204)
async def append_log(
    job_id: str,
    worker_id: str,
    attempt: Attempt,
    request: Request,
    caller: ActorDep,
    rt: RuntimeDep,
) -> None:
    """Append a chunk of the job's output (the raw body)."""
    require_admin(caller)
    chunk = await request.body()
    if len(chunk) > MAX_LOG_BYTES:
        raise PayloadTooLarge(f"a log chunk is at most {MAX_LOG_BYTES} bytes")

    def apply() -> None:
        with rt.db.session() as s:
            service.check_owned(service.get_job(s, job_id), worker_id, attempt)
            service.append_log(s, job_id, chunk)

    await run_in_threadpool(apply)  # keep the event loop free


@router.post("/jobs/{job_id}/state", response_model=JobOut)
def report_state(
    job_id: str, body: JobStateIn, request: Request, caller: ActorDep, rt: RuntimeDep
) -> JobOut:
    """The worker's news of an attempt: running, or how it ended."""
    require_admin(caller)
    with rt.db.session() as s:
        job, p = service.project_of_job(s, job_id)
        before = job.state
        service.report(
            s,
            rt.settings,
            rt.storage,
            job,
            body.worker_id,
            body.attempt,
            body.state,
            body.exit_code,
            body.message,
        )
        audit.record(
            s,
            caller,
            f"job.{body.state.value}",
            "job",
            job_id,
            project_id=p.id,
            project=p.name,
            before={"state": before},
            after={"state": job.state, "exit_code": body.exit_code, "attempt": body.attempt},
        )
        out = service.jobs_out(s, [job])[0]
    if body.state in FINAL:
        poke(request)
    return out
