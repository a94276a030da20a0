"""HTML pages of training jobs, sweeps and the audit log, over the same services and checks as
their APIs.

Routes: ``/projects/{name}/jobs`` (the queue and the project's sweeps), ``/jobs/{id}`` (a job:
resources, attempts, cost, its log; ``/jobs/{id}/live`` is the fragment of its state polled
until it ends, ``/jobs/{id}/logs`` the API's log stream behind the cookie), ``/sweeps/{id}``
(trials and the best so far) and ``/projects/{name}/audit`` (the project's audit records with
actor, action and since filters; maintainers, as the API).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRouter
from sqlalchemy.orm import Session

from shipyard import auth
from shipyard.audit import api as audit_api
from shipyard.auth import Role, RuntimeDep
from shipyard.errors import Unprocessable
from shipyard.jobs import api as jobs_api
from shipyard.jobs import service as jobs
from shipyard.jobs import sweeps
from shipyard.jobs.api import job_for
from shipyard.jobs.schemas import FINAL, JobState
from shipyard.jobs.tables import Job
from shipyard.storage import Storage
from shipyard.ui import views
from shipyard.ui.auth import UiCallerDep
from shipyard.ui.render import PageRoute, render

router = APIRouter(include_in_schema=False, route_class=PageRoute)
data_router = APIRouter(include_in_schema=False)  # the log stream: errors stay problem+json
LOG_POLL_S = 2
STOP_POLLING = 286  # htmx stops polling on this status (and still swaps the fragment)
LOG_TAIL_BYTES = 256 * 1024  # the page shows the end of a long log
AUDIT_LIMIT = 200


@router.get("/projects/{name}/jobs")
def jobs_page(
    request: Request, name: str, caller: UiCallerDep, rt: RuntimeDep, state: str = ""
) -> Response:
    """A project's jobs, newest first (one state, when asked), and its sweeps."""
    with rt.db.read() as s:
        p = auth.require_project(s, caller, name, Role.viewer)
        rows = jobs.jobs_out(s, jobs.list_jobs(s, [p.id], state or None, limit=200))
        sweep_rows = sweeps.sweeps_out(s, sweeps.list_sweeps(s, p))
    context = {
        "project": name,
        "jobs": rows,
        "sweeps": sweep_rows,
        "state": state,
        "states": [st.value for st in JobState],
    }
    return render(request, "jobs.html", context)


def job_log(s: Session, storage: Storage, job: Job) -> dict[str, Any]:
    """What ``_job_log.html`` shows of a job's output: its tail, whether it was cut, and where
    a live page's stream resumes (the job and run pages both show it)."""
    data, cursor = jobs.read_log(s, storage, job)
    return {
        "log": data[-LOG_TAIL_BYTES:].decode("utf-8", errors="replace"),
        "cut": len(data) > LOG_TAIL_BYTES,
        "cursor": cursor,
        "live": job.state not in FINAL,
    }


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: str, caller: UiCallerDep, rt: RuntimeDep) -> Response:
    """One job: state, command, resources, worker, run, cost and its output (followed live)."""
    with rt.db.read() as s:
        job, _ = job_for(s, caller, job_id, Role.viewer)
        out = jobs.jobs_out(s, [job])[0]
        log = job_log(s, rt.storage, job)
    return render(request, "job.html", {"job": out, "poll_s": LOG_POLL_S, **log})


@router.get("/jobs/{job_id}/live")
def job_live(request: Request, job_id: str, caller: UiCallerDep, rt: RuntimeDep) -> Response:
    """The job's state, attempts and cost, polled by its page until the job ends."""
    with rt.db.read() as s:
        job, _ = job_for(s, caller, job_id, Role.viewer)
        out = jobs.jobs_out(s, [job])[0]
    live = out.state not in FINAL
    return render(
        request,
        "_job_live.html",
        {"job": out, "live": live, "poll_s": LOG_POLL_S},
        status=200 if live else STOP_POLLING,
    )


@data_router.get("/jobs/{job_id}/logs")
async def job_logs(
    job_id: str,
    request: Request,
    caller: UiCallerDep,
    rt: RuntimeDep,
    follow: bool = False,
    after: int = 0,
) -> Response:
    """``GET /api/jobs/{id}/logs`` (text, or server-sent events with ``follow``) for the
    signed-in browser: the API's own handler behind the UI's cookie."""
    last = request.headers.get("last-event-id")
    last_event_id = int(last) if last and last.isdigit() else None
    return await jobs_api.job_logs(job_id, request, caller, rt, follow, after, last_event_id)


@router.get("/sweeps/{sweep_id}")
def sweep_page(request: Request, sweep_id: str, caller: UiCallerDep, rt: RuntimeDep) -> Response:
    """A sweep: its trials (parameters, job, run, state, metric) and the best so far."""
    with rt.db.read() as s:
        sweep = sweeps.get_sweep(s, sweep_id)
        auth.check_role(s, caller, sweep.project_id, Role.viewer, "the sweep's project")
        out = sweeps.sweeps_out(s, [sweep])[0]
    params = list(dict.fromkeys(k for t in out.trials for k in t.params))
    trials = sorted(out.trials, key=lambda t: t.number)
    values = [views.finite(t.value) for t in trials]  # a NaN trial never becomes the best
    best_so_far: dict[int, float | None] = {}
    best: float | None = None
    for t, value in zip(trials, values, strict=True):
        if value is not None and (
            best is None or (value > best if out.goal == "maximize" else value < best)
        ):
            best = value
        best_so_far[t.number] = best
    progress = {  # JSON for the chart: NaN and infinities (a diverged trial) become gaps
        "x": [t.number for t in trials],
        "series": [
            {"label": out.metric, "values": values, "points": True},
            {"label": "best so far", "values": [best_so_far[t.number] for t in trials]},
        ],
    }
    # The trials with a value, best first, as many as compare takes (parallel coordinates).
    sign = 1.0 if out.goal == "minimize" else -1.0
    scored = [
        (sign * v, t) for t, v in zip(trials, values, strict=True) if v is not None and t.run_id
    ]
    ranked = [t for _, t in sorted(scored, key=lambda pair: pair[0])]
    compare = ",".join(str(t.run_id) for t in ranked[: views.MAX_COMPARE])
    context = {
        "sweep": out,
        "params": params,
        "best_so_far": best_so_far,
        "progress": progress,
        "compare": compare,
        "compared": min(len(ranked), views.MAX_COMPARE),
    }
    return render(request, "sweep.html", context)


@router.get("/projects/{name}/audit")
def audit_page(
    request: Request,
    name: str,
    caller: UiCallerDep,
    rt: RuntimeDep,
    actor: str = "",
    action: str = "",
    since: str = "",
) -> Response:
    """A project's audit records, newest first, for its maintainers (the API's own check)."""
    error = None
    try:
        rows = audit_api.list_audit(
            caller,
            rt,
            project=name,
            since=since or None,
            actor=actor or None,
            action=action or None,
            limit=AUDIT_LIMIT,
        )
    except Unprocessable as exc:  # a bad "since": say so above an empty table
        rows, error = [], exc.detail
    context = {
        "project": name,
        "rows": rows,
        "actor": actor,
        "action": action,
        "since": since,
        "error": error,
        "limit": AUDIT_LIMIT,
    }
    return render(request, "audit.html", context)
