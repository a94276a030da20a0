"""HTML pages of experiment tracking: parse, call the tracking services, render a template.

Routes: ``/`` (projects), ``/projects/{name}/runs`` (runs table; its ``_runs_table.html`` fragment
for htmx), ``/runs/{id}`` (a run; ``/runs/{id}/live`` is the fragment polled while it runs) and
``/compare?runs=A,B`` (runs side by side). The browser reads chart data and files through
``/runs/{id}/history`` and ``/runs/{id}/artifacts/{path}``: the same handlers as the API's, but
authenticated by the UI's cookie, since a page cannot send the API's bearer token.
"""

from __future__ import annotations

import mimetypes
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from shipyard import auth, monitoring, serving
from shipyard.auth import Role, RuntimeDep
from shipyard.errors import NotFound, Unprocessable
from shipyard.jobs import service as jobs
from shipyard.registry import service as registry
from shipyard.serving import ServingDep
from shipyard.tracking import api, files, service
from shipyard.tracking.schemas import ArtifactOut, CheckpointOut, ImageOut, RunStatus
from shipyard.ui import operations, views
from shipyard.ui.auth import UiCallerDep
from shipyard.ui.render import PageRoute, is_partial, render

router = APIRouter(include_in_schema=False, route_class=PageRoute)
data_router = APIRouter(include_in_schema=False)  # JSON and files: errors stay problem+json

RECENT_PER_PROJECT = 3
ACTIVE_JOBS = 10  # of each state (running, queued) on the overview
LIVE_POLL_S = 3
STOP_POLLING = 286  # htmx stops polling on this status (and still swaps the fragment)
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


@router.get("/")
def overview(request: Request, caller: UiCallerDep, rt: RuntimeDep, sv: ServingDep) -> Response:
    """The alerts firing now; the projects the user may read with their newest runs and counts
    of models, endpoints and active jobs; the latest runs, the endpoints with their replicas,
    the active jobs."""
    with rt.db.read() as s:
        visible = auth.visible_projects(s, caller)
        projects = service.list_projects(s, visible)
        recent = {
            p.name: service.runs_out(s, service.search_runs(s, p.name, limit=RECENT_PER_PROJECT)[0])
            for p in projects
        }
        latest = service.runs_out(s, service.search_runs(s, None, limit=10, visible=visible)[0])
        models = registry.models_out(s, registry.search_models(s, visible))
        endpoints = serving.list_endpoints(s, caller, sv)
        active = [
            j
            for state in ("running", "queued")
            for j in jobs.jobs_out(s, jobs.list_jobs(s, visible, state, limit=ACTIVE_JOBS))
        ]
        active_by_project = jobs.active_counts(s, visible)
        firing = monitoring.firing_out(s, visible)
    counts = {
        p.name: {
            "models": sum(m.project == p.name for m in models),
            "endpoints": sum(e.project == p.name for e in endpoints),
            "jobs": active_by_project.get(p.id, 0),
        }
        for p in projects
    }
    context = {
        "projects": projects,
        "recent": recent,
        "latest": latest,
        "counts": counts,
        "endpoints": endpoints,
        "active": active[:ACTIVE_JOBS],
        "firing": firing,
    }
    return render(request, "overview.html", context)


@router.get("/projects/{name}/runs")
def runs_page(
    request: Request,
    name: str,
    caller: UiCallerDep,
    rt: RuntimeDep,
    filter: str = "",
    sort: Annotated[list[str], Query()] = [],  # noqa: B006
    cols: Annotated[list[str], Query()] = [],  # noqa: B006
    limit: int = 50,
    offset: int = 0,
) -> Response:
    """The runs of a project: filtered, sorted and paged on the server."""
    limit = min(max(limit, 1), views.PAGE_SIZES[-1])
    query = views.RunsQuery(name, filter, [s for s in sort if s], cols, limit, max(0, offset))
    error = None
    with rt.db.read() as s:
        auth.require_project(s, caller, name, Role.viewer)
        config_keys, metric_keys = service.project_keys(s, name)
        try:
            runs, total = service.search_runs(
                s, name, filter or None, query.sort, limit, query.offset
            )
            rows = service.runs_out(s, runs)
        except Unprocessable as exc:  # a bad filter or sort: say so above an empty table
            rows, total, error = [], 0, exc.detail
    context = {
        "q": query,
        "project": name,
        "rows": [(r, dict(service.flatten(r.config))) for r in rows],
        "total": total,
        "error": error,
        "columns": views.pick_columns(cols, config_keys, metric_keys),
        "config_keys": config_keys,
        "metric_keys": metric_keys,
        "page_sizes": sorted({*views.PAGE_SIZES, limit}),
        "partial": is_partial(request),
    }
    response = render(request, "_runs_table.html" if context["partial"] else "runs.html", context)
    response.headers["vary"] = "HX-Request"
    return response


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str, caller: UiCallerDep, rt: RuntimeDep) -> Response:
    """One run: charts, system metrics, config, environment, images, artifacts, checkpoints."""
    with rt.db.read() as s:
        run = service.runs_out(s, [api.run_for(s, caller, run_id, Role.viewer)[0]])[0]
        images = [ImageOut.model_validate(i) for i in files.list_images(s, run_id)]
        artifacts = [ArtifactOut.model_validate(a) for a in files.list_artifacts(s, run_id)]
        checkpoints = [CheckpointOut.model_validate(c) for c in files.list_checkpoints(s, run_id)]
        goal = views.checkpoint_goal(checkpoints)
        best = None
        if goal is not None:
            try:
                best = files.list_checkpoints(s, run_id, goal[0], goal[1])[0].id
            except NotFound:  # no checkpoint holds a number for that metric
                best = None
        job_row = jobs.job_of_run(s, run_id)
        job = jobs.jobs_out(s, [job_row])[0] if job_row is not None else None
        log = operations.job_log(s, rt.storage, job_row) if job_row is not None else {}
    charts, system = views.metric_groups(run.id, run.summary)
    context = {
        "run": run,
        "charts": charts,
        "system": system,
        "config": list(service.flatten(run.config)),
        "galleries": views.galleries(run.id, images),
        "tree": views.artifact_tree(artifacts),
        "checkpoints": checkpoints,
        "checkpoint_keys": list(dict.fromkeys(k for c in checkpoints for k in c.metrics)),
        "goal": goal,
        "best": best,
        "poll_s": LIVE_POLL_S,
        "job": job,
        **log,
    }
    return render(request, "run.html", context)


@router.get("/runs/{run_id}/live")
def run_live(request: Request, run_id: str, caller: UiCallerDep, rt: RuntimeDep) -> Response:
    """The part of the run page that changes while it runs; polling stops once it ended."""
    with rt.db.read() as s:
        run = service.runs_out(s, [api.run_for(s, caller, run_id, Role.viewer)[0]])[0]
    running = run.status is RunStatus.running
    return render(
        request,
        "_run_live.html",
        {"run": run, "poll_s": LIVE_POLL_S},
        status=200 if running else STOP_POLLING,
    )


@router.get("/compare")
def compare_page(request: Request, caller: UiCallerDep, rt: RuntimeDep, runs: str = "") -> Response:
    """Runs side by side: overlaid charts, a diff of config and summaries, parallel coordinates."""
    ids = views.parse_run_ids(runs)
    if len(ids) > views.MAX_COMPARE:
        raise Unprocessable(f"compare at most {views.MAX_COMPARE} runs at once, not {len(ids)}")
    with rt.db.read() as s:
        out = service.runs_out(s, [api.run_for(s, caller, i, Role.viewer)[0] for i in ids])
    colors = [views.PALETTE[i % len(views.PALETTE)] for i in range(len(out))]
    config = views.diff_rows(views.flat_configs(out))
    summary = views.diff_rows(views.last_values(out))
    environment = views.diff_rows(
        [{k: r.environment[k] for k in views.ENV_KEYS if k in r.environment} for r in out]
    )
    context = {
        "runs": list(zip(out, colors, strict=True)),
        "charts": views.compare_charts(out, colors),
        "sections": [("Config", config), ("Summary", summary), ("Environment", environment)],
        "parcoords": views.parallel_coordinates(out, config, summary, colors),
    }
    return render(request, "compare.html", context)


@data_router.get("/runs/{run_id}/history")
def run_history(
    run_id: str,
    request: Request,
    caller: UiCallerDep,
    rt: RuntimeDep,
    key: str,
    max_points: Annotated[int, Query(ge=10, le=1_000_000)] = 2000,
) -> Response:
    """``GET /api/runs/{id}/history`` (downsampled) for the signed-in browser."""
    return api.history(run_id, request, caller, rt, key, max_points, raw=False)


@data_router.get("/runs/{run_id}/artifacts/{path:path}")
def run_artifact(
    run_id: str, path: str, request: Request, caller: UiCallerDep, rt: RuntimeDep
) -> Response:
    """An artifact for the browser: images inline, anything else as a download.

    Files are the users' own content: only images are shown in place, and nothing else is ever
    rendered by the browser on this origin (``attachment``, ``nosniff`` and a sandbox CSP).
    """
    with rt.db.read() as s:
        api.run_for(s, caller, run_id, Role.viewer)
        artifact = files.get_artifact(s, run_id, path)
    etag = f'"{artifact.sha256}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"etag": etag})
    media_type = mimetypes.guess_type(artifact.path)[0] or "application/octet-stream"
    name = quote(views.base_name(artifact.path), safe="")
    inline = media_type in INLINE_TYPES
    disposition = "inline" if inline else "attachment"
    return StreamingResponse(
        rt.storage.iter_bytes(files.blob_path(run_id, artifact.path)),
        media_type=media_type if inline else "application/octet-stream",
        headers={
            "content-length": str(artifact.size),
            "x-content-sha256": artifact.sha256,
            "content-disposition": f"{disposition}; filename*=UTF-8''{name}",
            "x-content-type-options": "nosniff",
            "content-security-policy": "sandbox; default-src 'none'",
            "etag": etag,
            "cache-control": "private, no-cache",  # a path may be uploaded again
        },
    )
