"""Routes of jobs: submit, list, inspect, cancel, follow logs; usage and quotas.

Reads need the viewer role in the job's project, submitting the developer role; a job is
cancelled by its submitter or a maintainer; quotas are set by server admins. Submitting and
cancelling are audited.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from shipyard import audit, auth
from shipyard.auth import Actor, ActorDep, Project, Role, RuntimeDep
from shipyard.errors import Forbidden
from shipyard.inputs import Cursor, Limit
from shipyard.jobs import cost, service
from shipyard.jobs.schemas import FINAL, JobCreate, JobOut, QuotaIn, QuotaOut, UsageOut
from shipyard.jobs.tables import Job

router = APIRouter(prefix="/api", tags=["jobs"])
FOLLOW_POLL_S = 0.25


def poke(request: Request, name: str = "dispatcher") -> None:
    """Wake a background service of the app (the dispatcher, the sweep controller)."""
    svc = getattr(request.app.state, name, None)
    if svc is not None:
        svc.poke()


def job_for(s: Session, caller: Actor, job_id: str, needed: Role) -> tuple[Job, Project]:
    """Load a job and check the caller's role in its project."""
    job, project = service.project_of_job(s, job_id)
    auth.check_role(s, caller, project.id, needed, f"project {project.name!r}")
    return job, project


def resolve_datasets(
    s: Session, caller: Actor, project: Project, refs: list[str]
) -> list[dict[str, Any]]:
    """Pin dataset references to versions; another project's dataset needs its viewer role."""
    out = []
    for p, entry in service.resolve_datasets(s, project, refs):
        if p.id != project.id:
            auth.check_role(s, caller, p.id, Role.viewer, f"project {p.name!r}")
        out.append(entry)
    return out


@router.post("/projects/{project}/jobs", response_model=JobOut, status_code=201)
def submit_job(
    project: str, body: JobCreate, request: Request, caller: ActorDep, rt: RuntimeDep
) -> JobOut:
    """Queue a job; refused with the reason if no worker could ever run it or it is over
    the project's quota."""
    with rt.db.session() as s:
        p = auth.require_project(s, caller, project, Role.developer)
        datasets = resolve_datasets(s, caller, p, body.datasets)
        job = service.submit(s, rt.settings, p, body, caller.user_id, datasets)
        audit.record(
            s,
            caller,
            "job.submit",
            "job",
            job.id,
            project_id=p.id,
            project=p.name,
            after={
                "command": job.command,
                "cpus": job.cpus,
                "gpus": job.gpus,
                "datasets": [f"{d['name']}@{d['version']}" for d in datasets],
            },
        )
        out = service.jobs_out(s, [job])[0]
    poke(request)
    return out


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(
    caller: ActorDep,
    rt: RuntimeDep,
    project: str | None = None,
    state: str | None = None,
    sweep: str | None = None,
    limit: Limit = 100,
) -> list[JobOut]:
    """Jobs, newest first, in one project or every project the caller can read."""
    with rt.db.read() as s:
        if project is not None:
            ids: list[str] | None = [auth.require_project(s, caller, project, Role.viewer).id]
        else:
            ids = auth.visible_projects(s, caller)
        return service.jobs_out(s, service.list_jobs(s, ids, state, sweep, limit))


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: str, caller: ActorDep, rt: RuntimeDep) -> JobOut:
    """One job: state, resources, worker, run, cost."""
    with rt.db.read() as s:
        job, _ = job_for(s, caller, job_id, Role.viewer)
        return service.jobs_out(s, [job])[0]


@router.post("/jobs/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: str, request: Request, caller: ActorDep, rt: RuntimeDep) -> JobOut:
    """Cancel a job (its submitter or a maintainer): SIGTERM, then SIGKILL after the grace."""
    with rt.db.session() as s:
        job, p = job_for(s, caller, job_id, Role.viewer)
        if caller.scope is not None and caller.scope.job_id != job.id:
            raise caller.scope.refuse(f"cancel job {job.id}, only itself")
        if caller.user_id != job.created_by:
            auth.check_role(s, caller, p.id, Role.maintainer, f"project {p.name!r}")
        else:
            auth.check_role(s, caller, p.id, Role.developer, f"project {p.name!r}")
        before = service.request_cancel(
            s, rt.settings, rt.storage, job, f"cancelled by {caller.name}"
        )
        audit.record(
            s,
            caller,
            "job.cancel",
            "job",
            job.id,
            project_id=p.id,
            project=p.name,
            before={"state": before},
            after={"state": job.state},
        )
        out = service.jobs_out(s, [job])[0]
    poke(request)
    return out


def _sse(data: bytes, cursor: int) -> bytes:
    lines = data.decode("utf-8", errors="replace").split("\n")
    return (f"id: {cursor}\n" + "".join(f"data: {line}\n" for line in lines) + "\n").encode()


@router.get("/jobs/{job_id}/logs")
async def job_logs(
    job_id: str,
    request: Request,
    caller: ActorDep,
    rt: RuntimeDep,
    follow: bool = False,
    after: Cursor = 0,
    last_event_id: Annotated[Cursor | None, Header()] = None,
) -> Response:
    """The job's output. ``follow=true`` streams it as server-sent events (``data:`` lines,
    ``id:`` a cursor to resume from, a final ``event: end`` carrying the job's state)."""

    def read(cursor: int) -> tuple[bytes, int, str]:
        with rt.db.read() as s:
            job, _ = job_for(s, caller, job_id, Role.viewer)
            data, last = service.read_log(s, rt.storage, job, cursor)
            return data, last, job.state

    cursor = last_event_id if last_event_id is not None else after
    data, cursor, state = await run_in_threadpool(read, cursor)
    if not follow:
        return Response(data, media_type="text/plain", headers={"x-log-cursor": str(cursor)})

    async def events() -> AsyncIterator[bytes]:
        nonlocal data, cursor, state
        while True:
            if data:
                yield _sse(data, cursor)
            elif state in FINAL:
                yield f"event: end\ndata: {state}\n\n".encode()
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(FOLLOW_POLL_S)
            data, cursor, state = await run_in_threadpool(read, cursor)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


@router.get("/usage", response_model=UsageOut)
def usage(
    caller: ActorDep,
    rt: RuntimeDep,
    project: str | None = None,
    since: str | None = "30d",
    until: str | None = None,
    by: str = "project",
) -> UsageOut:
    """Compute hours and cost by project, user, run or job over a period (``since=30d``)."""
    with rt.db.read() as s:
        if project is not None:
            ids: list[str] | None = [auth.require_project(s, caller, project, Role.viewer).id]
        else:
            ids = auth.visible_projects(s, caller)
        return cost.usage(
            s,
            ids,
            rt.settings.prices,
            rt.settings.currency,
            since=audit.parse_since(since),
            until=audit.parse_since(until),
            by=by,
        )


@router.get("/projects/{project}/quota", response_model=QuotaOut)
def get_quota(project: str, caller: ActorDep, rt: RuntimeDep) -> QuotaOut:
    """A project's quota and what it uses of it now."""
    with rt.db.read() as s:
        p = auth.require_project(s, caller, project, Role.viewer)
        return cost.quota_out(s, p)


@router.put("/projects/{project}/quota", response_model=QuotaOut)
def set_quota(
    project: str, body: QuotaIn, request: Request, caller: ActorDep, rt: RuntimeDep
) -> QuotaOut:
    """Set a project's quota (server admins: quotas share compute between projects)."""
    with rt.db.session() as s:
        if not caller.is_admin:
            raise Forbidden(f"user {caller.name!r} is not a server admin; quotas are set by admins")
        p = auth.get_project(s, project)
        before = cost.set_quota(s, p, body, caller.user_id)
        audit.record(
            s,
            caller,
            "quota.set",
            "quota",
            p.name,
            project_id=p.id,
            project=p.name,
            before=before,
            after=body.model_dump(),
        )
        out = cost.quota_out(s, p)
    poke(request)
    return out
