"""Routes of datasets: versions, content-addressed blobs, and runs recording what they used.

Reads need the viewer role in the dataset's project (or, for a job's token, the dataset mounted
by the job), pushes the developer role. Creating a
version and recording a dataset in a run are audited; blob uploads are data (a version's worth
of them is audited once, when the version that names them is created).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from shipyard import audit, auth
from shipyard.auth import Actor, ActorDep, Project, Role, RuntimeDep
from shipyard.data import service
from shipyard.data.schemas import (
    BlobMissing,
    BlobOut,
    BlobQuery,
    DatasetOut,
    DatasetUse,
    VersionCreate,
    VersionOut,
)
from shipyard.errors import PayloadTooLarge
from shipyard.tracking import service as tracking
from shipyard.tracking.api import run_for

router = APIRouter(prefix="/api", tags=["datasets"])
DATASET = "/projects/{project}/datasets/{name}"


def reader_of(s: Session, caller: Actor, project: str, dataset: str | None = None) -> Project:
    """The project, when the caller may read ``dataset`` there (None: its blobs): as a viewer,
    or as a job's token that mounts it from another project."""
    if caller.scope is not None:
        p = auth.get_project(s, project)
        if auth.reads_mounted(s, caller, p.id, dataset):
            return p
    return auth.require_project(s, caller, project, Role.viewer)


@router.get("/projects/{project}/datasets", response_model=list[DatasetOut])
def list_datasets(project: str, caller: ActorDep, rt: RuntimeDep) -> list[DatasetOut]:
    """A project's datasets with their latest version."""
    with rt.db.read() as s:
        p = auth.require_project(s, caller, project, Role.viewer)
        return service.datasets_out(s, p, service.list_datasets(s, p))


@router.get(DATASET, response_model=DatasetOut)
def get_dataset(project: str, name: str, caller: ActorDep, rt: RuntimeDep) -> DatasetOut:
    """A dataset with its versions (newest first, without their manifests)."""
    with rt.db.read() as s:
        p = reader_of(s, caller, project, name)
        dataset = service.get_dataset(s, p, name)
        return service.datasets_out(s, p, [dataset], with_versions=True)[0]


@router.get(DATASET + "/versions/{version}", response_model=VersionOut)
def get_version(
    project: str, name: str, version: str, caller: ActorDep, rt: RuntimeDep
) -> VersionOut:
    """One version (a number or ``latest``) with its manifest: every file's size and sha256."""
    with rt.db.read() as s:
        p = reader_of(s, caller, project, name)
        dataset = service.get_dataset(s, p, name)
        row = service.get_version(s, dataset, version)
        return service.versions_out(s, p, dataset, [row], with_files=True)[0]


@router.post(DATASET + "/versions", response_model=VersionOut)
def create_version(
    project: str, name: str, body: VersionCreate, caller: ActorDep, rt: RuntimeDep
) -> Response:
    """Record a version from a manifest whose blobs are uploaded (201), or answer the latest
    version when the files are the same (200)."""
    with rt.db.session() as s:
        p = auth.require_project(s, caller, project, Role.developer)
        dataset, version, created = service.create_version(s, p, name, body, caller.user_id)
        if created:
            audit.record(
                s,
                caller,
                "dataset_version.create",
                "dataset_version",
                f"{name}@{version.version}",
                project_id=p.id,
                project=p.name,
                after={
                    "files": version.file_count,
                    "size": version.size,
                    "manifest_sha256": version.manifest_sha256,
                    "source": version.source,
                },
            )
        out = service.versions_out(s, p, dataset, [version])[0]
    return Response(
        out.model_dump_json(), status_code=201 if created else 200, media_type="application/json"
    )


@router.post("/projects/{project}/blobs/missing", response_model=BlobMissing)
def missing_blobs(project: str, body: BlobQuery, caller: ActorDep, rt: RuntimeDep) -> BlobMissing:
    """Which of these blobs the project does not store yet (a query: POST for long lists)."""
    with rt.db.read() as s:
        p = auth.require_project(s, caller, project, Role.developer)
        return BlobMissing(missing=service.missing_blobs(s, p.id, body.hashes))


@router.put("/projects/{project}/blobs/{sha256}", response_model=BlobOut)
async def upload_blob(
    project: str, sha256: str, request: Request, caller: ActorDep, rt: RuntimeDep
) -> BlobOut:
    """Store a blob (the raw body, streamed); refused unless its bytes hash to ``sha256``."""
    service.check_sha(sha256)
    with rt.db.read() as s:
        p = auth.require_project(s, caller, project, Role.developer)
        known = service.find_blob(s, p.id, sha256)
        if known is not None:
            return BlobOut(sha256=sha256, size=known.size, existed=True)
    if int(request.headers.get("content-length") or 0) > service.MAX_BLOB_BYTES:
        raise PayloadTooLarge(f"a blob is at most {service.MAX_BLOB_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > service.MAX_BLOB_BYTES:
            raise PayloadTooLarge(f"a blob is at most {service.MAX_BLOB_BYTES} bytes")

    def store() -> int:  # hashing and writing off the event loop
        blob = service.store_blob(rt.storage, p.id, sha256, bytes(body))
        with rt.db.session() as s:
            service.record_blob(s, p.id, sha256, blob.size)
        return blob.size

    size = await run_in_threadpool(store)
    return BlobOut(sha256=sha256, size=size, existed=False)


@router.get("/projects/{project}/blobs/{sha256}")
def download_blob(project: str, sha256: str, caller: ActorDep, rt: RuntimeDep) -> StreamingResponse:
    """A blob's bytes, streamed, with ``X-Content-SHA256``."""
    with rt.db.read() as s:
        p = reader_of(s, caller, project)
        blob = service.get_blob(s, p.id, sha256)
    return StreamingResponse(
        rt.storage.iter_bytes(service.blob_path(p.id, sha256)),
        media_type="application/octet-stream",
        headers={"content-length": str(blob.size), "x-content-sha256": sha256},
    )


@router.post("/runs/{run_id}/datasets", response_model=VersionOut)
def use_dataset(run_id: str, body: DatasetUse, caller: ActorDep, rt: RuntimeDep) -> VersionOut:
    """Record that a run used a dataset version (lineage: dataset -> run -> model version);
    answers the version with its manifest, so the caller can pull it."""
    with rt.db.session() as s:
        _, run_project = run_for(s, caller, run_id, Role.developer)
        p, dataset, version = service.resolve_ref(s, body.ref, run_project)
        if p.id != run_project.id and not auth.reads_mounted(s, caller, p.id, dataset.name):
            auth.check_role(s, caller, p.id, Role.viewer, f"project {p.name!r}")
        entry = service.lineage_entry(p, dataset, version)
        tracking.add_datasets(s, run_id, [entry])
        audit.record(
            s,
            caller,
            "run.use_dataset",
            "run",
            run_id,
            project_id=run_project.id,
            project=run_project.name,
            after=entry,
        )
        return service.versions_out(s, p, dataset, [version], with_files=True)[0]
