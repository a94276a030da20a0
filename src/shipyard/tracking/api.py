"""Routes for projects, runs, metrics, images, artifacts and checkpoints: parse, check, call.

Reads need the viewer role in the run's project, writes the developer role. Mutations are
audited in their own transaction, except the high-volume telemetry (metric batches, heartbeats
and images), which is data, not governance.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import orjson
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from shipyard import audit, auth
from shipyard.auth import Actor, ActorDep, Project, Role, RuntimeDep
from shipyard.errors import NotFound, PayloadTooLarge, Unprocessable
from shipyard.inputs import Int32, Limit, Offset, check_json
from shipyard.tracking import files, metrics, service
from shipyard.tracking.schemas import (
    ArtifactOut,
    CheckpointCreate,
    CheckpointOut,
    ImageOut,
    LogBatchIn,
    LogBatchOut,
    ProjectCreate,
    ProjectOut,
    RunCreate,
    RunDiff,
    RunOut,
    RunPage,
    RunUpdate,
)
from shipyard.tracking.tables import Run

router = APIRouter(prefix="/api", tags=["tracking"])
SERIES_MEDIA_TYPE = "application/vnd.shipyard.series"


def run_for(s: Session, caller: Actor, run_id: str, needed: Role) -> tuple[Run, Project]:
    """Load a run and check the caller's role in its project (``service.require_run``)."""
    return service.require_run(s, caller, run_id, needed)


@router.get("/projects", response_model=list[ProjectOut])
def list_projects(caller: ActorDep, rt: RuntimeDep) -> list[ProjectOut]:
    """The projects the caller can read, with run counts."""
    with rt.db.read() as s:
        return service.list_projects(s, auth.visible_projects(s, caller))


@router.post("/projects", response_model=ProjectOut, status_code=status.HTTP_201_CREATED)
def create_project(body: ProjectCreate, caller: ActorDep, rt: RuntimeDep) -> ProjectOut:
    """Create a project; the caller becomes its owner (runs also create theirs on first use)."""
    with rt.db.session() as s:
        project = auth.create_project(s, caller, body.name, body.description)
        return ProjectOut.model_validate(project)


@router.post("/runs", response_model=RunOut, status_code=status.HTTP_201_CREATED)
def start_run(body: RunCreate, caller: ActorDep, rt: RuntimeDep) -> RunOut:
    """Start a run (creating its project, owned by the caller, on first use), or resume one."""
    if caller.scope is not None and body.id != caller.scope.run_id:
        raise caller.scope.refuse("start runs; it resumes its own (SHIPYARD_RUN_ID)")
    with rt.db.session() as s:
        project = auth.open_project(s, caller, body.project, Role.developer)
        run = service.start_run(s, project, body, caller.user_id)
        audit.record(
            s,
            caller,
            "run.start",
            "run",
            run.id,
            project_id=project.id,
            project=project.name,
            after={"name": run.name, "status": run.status},
        )
        return service.runs_out(s, [run])[0]


@router.get("/runs", response_model=RunPage)
def search_runs(
    caller: ActorDep,
    rt: RuntimeDep,
    project: str | None = None,
    filter: Annotated[
        str | None, Query(description="e.g. config.lr < 0.01 and summary.acc > 0.9")
    ] = None,
    order_by: Annotated[list[str], Query(description="fields, '-' for descending")] = [],  # noqa: B006
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response:
    """Search runs with the filter language, sorted and paginated (environment omitted)."""
    with rt.db.read() as s:
        if project is not None:
            auth.require_project(s, caller, project, Role.viewer)
        visible = auth.visible_projects(s, caller)
        runs, total = service.search_runs(s, project, filter, order_by, limit, offset, visible)
        rows = service.run_rows(s, runs, environment=False)
    # Plain dicts straight to JSON: re-validating a thousand runs would double the reply time.
    page = {"runs": rows, "total": total, "limit": limit, "offset": offset}
    return Response(orjson.dumps(page), media_type="application/json")


@router.get("/runs/{run_id}", response_model=RunOut)
def get_run(run_id: str, caller: ActorDep, rt: RuntimeDep) -> RunOut:
    """One run with its config, environment and metric summaries."""
    with rt.db.read() as s:
        run, _ = run_for(s, caller, run_id, Role.viewer)
        return service.runs_out(s, [run])[0]


@router.patch("/runs/{run_id}", response_model=RunOut)
def update_run(run_id: str, body: RunUpdate, caller: ActorDep, rt: RuntimeDep) -> RunOut:
    """Rename, retag, annotate, merge config, or set the status of a run."""
    with rt.db.session() as s:
        run, project = run_for(s, caller, run_id, Role.developer)
        fields = body.model_dump(exclude_none=True, mode="json")
        before = {k: getattr(run, k) for k in fields if k != "finished_at"}
        run = service.update_run(s, run_id, body)
        after = {k: getattr(run, k) for k in before}
        audit.record(
            s,
            caller,
            "run.update",
            "run",
            run_id,
            project_id=project.id,
            project=project.name,
            before=_jsonable(before),
            after=_jsonable(after),
        )
        return service.runs_out(s, [run])[0]


def _jsonable(d: dict[str, object]) -> dict[str, object]:
    return {
        k: (str(v) if not isinstance(v, str | int | float | bool | list | dict | None) else v)
        for k, v in d.items()
    }


@router.post("/runs/{run_id}/heartbeat", status_code=status.HTTP_204_NO_CONTENT)
def heartbeat(run_id: str, caller: ActorDep, rt: RuntimeDep) -> None:
    """Tell the server the run's process is alive."""
    with rt.db.session() as s:
        run_for(s, caller, run_id, Role.developer)
        service.touch(s, run_id)


@router.post("/runs/{run_id}/log", response_model=LogBatchOut)
async def log_batch(run_id: str, request: Request, caller: ActorDep, rt: RuntimeDep) -> LogBatchOut:
    """Append a batch of metric points; a resent ``batch_id`` is acknowledged and not re-applied."""
    body = await request.body()
    if len(body) > rt.settings.max_body_bytes:
        raise PayloadTooLarge(f"log batch is larger than {rt.settings.max_body_bytes} bytes")
    check_json(body)
    batch = LogBatchIn.model_validate_json(body)

    def apply() -> LogBatchOut:
        with rt.db.session() as s:
            run_for(s, caller, run_id, Role.developer)
            service.touch(s, run_id)
            return metrics.log_batch(s, run_id, batch)

    return await run_in_threadpool(apply)  # keep the event loop free for other requests


@router.get("/runs/{run_id}/metrics")
def list_metrics(run_id: str, caller: ActorDep, rt: RuntimeDep) -> dict[str, object]:
    """The keys a run logged, with their summaries."""
    with rt.db.read() as s:
        run_for(s, caller, run_id, Role.viewer)
        return {"metrics": service.summaries(s, [run_id])[run_id]}


@router.get("/runs/{run_id}/history")
def history(
    run_id: str,
    request: Request,
    caller: ActorDep,
    rt: RuntimeDep,
    key: str,
    max_points: Annotated[int, Query(ge=10, le=1_000_000)] = 2000,
    raw: bool = False,
) -> Response:
    """A metric series, downsampled to ``max_points`` (min/max per bucket) unless ``raw``.

    JSON by default; with ``Accept: application/vnd.shipyard.series`` the body is the packed
    little-endian arrays int64 steps, float64 timestamps, float64 values, one after the other.
    """
    with rt.db.read() as s:
        run_for(s, caller, run_id, Role.viewer)
        series = metrics.read_series(s, run_id, key)
    if series is None:
        raise NotFound(f"run {run_id!r} has no metric {key!r}")
    total = len(series)
    if not raw:
        series = metrics.downsample(series, max_points)
    downsampled = len(series) < total
    if request.headers.get("accept") == SERIES_MEDIA_TYPE:
        return Response(
            series.step.tobytes() + series.timestamp.tobytes() + series.value.tobytes(),
            media_type=SERIES_MEDIA_TYPE,
            headers={"x-series-total": str(total), "x-series-downsampled": str(downsampled)},
        )
    return Response(_history_json(key, series, total, downsampled), media_type="application/json")


def _history_json(key: str, s: metrics.Series, total: int, downsampled: bool) -> bytes:
    values: object = s.value
    if not np.isfinite(s.value).all():
        values = [service.finite_or_str(float(v)) for v in s.value]
    return orjson.dumps(
        {
            "key": key,
            "step": s.step,
            "timestamp": s.timestamp,
            "value": values,
            "total": total,
            "downsampled": downsampled,
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


@router.get("/runs/{run_id}/diff/{other_id}", response_model=RunDiff)
def diff(run_id: str, other_id: str, caller: ActorDep, rt: RuntimeDep) -> RunDiff:
    """Config, summary and environment of two runs side by side."""
    with rt.db.read() as s:
        run_for(s, caller, run_id, Role.viewer)
        run_for(s, caller, other_id, Role.viewer)
        return service.diff_runs(s, run_id, other_id)


@router.post("/runs/{run_id}/images", response_model=ImageOut, status_code=201)
async def log_image(
    run_id: str,
    request: Request,
    caller: ActorDep,
    rt: RuntimeDep,
    key: str,
    step: Int32 = 0,
    caption: str = "",
) -> ImageOut:
    """Log a PNG (the request body) under ``key`` at ``step``."""
    png = await request.body()
    with rt.db.session() as s:
        run_for(s, caller, run_id, Role.developer)
        image = files.log_image(s, rt.storage, run_id, key, step, caption, png)
        return ImageOut.model_validate(image)


@router.get("/runs/{run_id}/images", response_model=list[ImageOut])
def list_images(
    run_id: str, caller: ActorDep, rt: RuntimeDep, key: str | None = None
) -> list[ImageOut]:
    """Images a run logged (fetch each from its artifact path)."""
    with rt.db.read() as s:
        run_for(s, caller, run_id, Role.viewer)
        return [ImageOut.model_validate(i) for i in files.list_images(s, run_id, key)]


@router.put("/runs/{run_id}/artifacts/{path:path}", response_model=ArtifactOut, status_code=201)
async def upload_artifact(
    run_id: str, path: str, request: Request, caller: ActorDep, rt: RuntimeDep
) -> ArtifactOut:
    """Upload a file (the raw request body, streamed); the reply carries its sha256."""
    with rt.db.read() as s:
        run_for(s, caller, run_id, Role.developer)
    blob = await files.upload_artifact(
        rt.storage, run_id, path, request.stream(), limit=rt.settings.max_artifact_bytes
    )
    expected = request.headers.get("x-content-sha256")
    if expected and expected.lower() != blob.sha256:
        rt.storage.delete(files.blob_path(run_id, path))
        raise Unprocessable(f"artifact {path!r}: sha256 {blob.sha256} does not match {expected}")
    with rt.db.session() as s:
        _, project = service.project_of_run(s, run_id)
        artifact = files.record_artifact(s, run_id, path, blob)
        audit.record(
            s,
            caller,
            "artifact.upload",
            "artifact",
            f"{run_id}/{artifact.path}",
            project_id=project.id,
            project=project.name,
            after={"size": blob.size, "sha256": blob.sha256},
        )
        return ArtifactOut.model_validate(artifact)


@router.get("/runs/{run_id}/artifacts", response_model=list[ArtifactOut])
def list_artifacts(
    run_id: str, caller: ActorDep, rt: RuntimeDep, prefix: str = ""
) -> list[ArtifactOut]:
    """A run's artifacts under ``prefix``."""
    with rt.db.read() as s:
        run_for(s, caller, run_id, Role.viewer)
        return [ArtifactOut.model_validate(a) for a in files.list_artifacts(s, run_id, prefix)]


@router.get("/runs/{run_id}/artifacts/{path:path}")
def download_artifact(
    run_id: str, path: str, caller: ActorDep, rt: RuntimeDep
) -> StreamingResponse:
    """Download an artifact, streamed; ``X-Content-SHA256`` carries its hash."""
    with rt.db.read() as s:
        run_for(s, caller, run_id, Role.viewer)
        artifact = files.get_artifact(s, run_id, path)
    return StreamingResponse(
        rt.storage.iter_bytes(files.blob_path(run_id, artifact.path)),
        media_type="application/octet-stream",
        headers={"content-length": str(artifact.size), "x-content-sha256": artifact.sha256},
    )


@router.post("/runs/{run_id}/checkpoints", response_model=CheckpointOut, status_code=201)
def add_checkpoint(
    run_id: str, body: CheckpointCreate, caller: ActorDep, rt: RuntimeDep
) -> CheckpointOut:
    """Mark an uploaded artifact as a checkpoint with the metrics it scored."""
    with rt.db.session() as s:
        _, project = run_for(s, caller, run_id, Role.developer)
        checkpoint = files.add_checkpoint(s, run_id, body.path, body.step, body.metrics)
        audit.record(
            s,
            caller,
            "checkpoint.add",
            "checkpoint",
            f"{run_id}/{checkpoint.path}",
            project_id=project.id,
            project=project.name,
            after={"step": body.step, "metrics": checkpoint.metrics},
        )
        return CheckpointOut.model_validate(checkpoint)


@router.get("/runs/{run_id}/checkpoints", response_model=list[CheckpointOut])
def list_checkpoints(
    run_id: str, caller: ActorDep, rt: RuntimeDep, best: str | None = None, goal: str = "max"
) -> list[CheckpointOut]:
    """A run's checkpoints; ``best=KEY&goal=max|min`` returns only the best one."""
    with rt.db.read() as s:
        run_for(s, caller, run_id, Role.viewer)
        return [
            CheckpointOut.model_validate(c) for c in files.list_checkpoints(s, run_id, best, goal)
        ]
