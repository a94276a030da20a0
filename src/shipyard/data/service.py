"""Dataset domain logic: content-addressed blobs, immutable versions, references, lineage.

Blobs live at ``blobs/<project id>/<sha[:2]>/<sha>`` in the artifact store and are written
once: an upload is hashed as it streams and refused when the bytes do not match their name. A
version is a manifest of files (path, size, sha256, chunks) and is accepted only when every
chunk it names is stored, so a version never points at bytes the store does not have.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shipyard import auth
from shipyard.auth import Project
from shipyard.data.schemas import (
    DATASET_NAME,
    SHA256,
    DatasetOut,
    FileEntry,
    VersionCreate,
    VersionOut,
)
from shipyard.data.tables import Blob, Dataset, DatasetVersion
from shipyard.db import utcnow
from shipyard.errors import NotFound, Unprocessable
from shipyard.inputs import INT32_MAX
from shipyard.storage import Storage, StoredBlob, safe_path

MAX_BLOB_BYTES = 64 * 1024 * 1024  # clients send chunks of 8 MiB; this leaves room
REF = re.compile(r"^(?:(?P<project>[^/@]+)/)?(?P<name>[^/@]+)(?:@(?P<version>\w+))?$")
_IN_BATCH = 500  # hashes per IN (...) query: well under every driver's parameter limit


def blob_path(project_id: str, sha256: str) -> str:
    """Where a blob of a project lives in the artifact store."""
    return f"blobs/{project_id}/{sha256[:2]}/{sha256}"


def check_sha(sha256: str) -> None:
    """422 unless ``sha256`` is 64 lower-case hex digits."""
    if not re.match(SHA256, sha256):
        raise Unprocessable(f"blob name {sha256!r} is not a sha256 (64 lower-case hex digits)")


def check_name(name: str) -> None:
    """422 unless ``name`` is a valid dataset name."""
    if not re.match(DATASET_NAME, name):
        raise Unprocessable(
            f"dataset name {name!r} is invalid: letters, digits, . _ - "
            "(128 at most, starting with a letter or digit)"
        )


# -- blobs --------------------------------------------------------------------------------------


def blob_sizes(session: Session, project_id: str, hashes: Iterable[str]) -> dict[str, int]:
    """Sizes of the stored blobs among ``hashes``."""
    wanted = list(dict.fromkeys(hashes))
    found: dict[str, int] = {}
    for i in range(0, len(wanted), _IN_BATCH):
        stmt = select(Blob.sha256, Blob.size).where(
            Blob.project_id == project_id, Blob.sha256.in_(wanted[i : i + _IN_BATCH])
        )
        found.update({sha: size for sha, size in session.execute(stmt)})
    return found


def missing_blobs(session: Session, project_id: str, hashes: Sequence[str]) -> list[str]:
    """The hashes among ``hashes`` the project does not store yet, in order, without repeats."""
    for sha in hashes:
        check_sha(sha)
    have = blob_sizes(session, project_id, hashes)
    return [sha for sha in dict.fromkeys(hashes) if sha not in have]


def store_blob(storage: Storage, project_id: str, sha256: str, data: bytes) -> StoredBlob:
    """Store a blob, refusing bytes whose sha256 is not ``sha256`` (blocking: call it off the
    event loop).

    The bytes go to a private temporary name first, so two clients pushing the same blob at
    once never write into the same file; the last rename wins with identical content.
    """
    check_sha(sha256)
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise Unprocessable(
            f"blob {sha256[:12]}...: the bytes sent hash to {got[:12]}... "
            "(corrupted in transit, or the file changed); send it again"
        )
    tmp = f"blobs/{project_id}/tmp/{uuid.uuid4().hex}"
    storage.write_bytes(tmp, data)
    final = blob_path(project_id, sha256)
    storage.move(tmp, final)
    return StoredBlob(final, len(data), sha256)


def record_blob(session: Session, project_id: str, sha256: str, size: int) -> bool:
    """Remember a stored blob; False if it was already known."""
    if session.get(Blob, (project_id, sha256)) is not None:
        return False
    session.add(Blob(project_id=project_id, sha256=sha256, size=size))
    return True


def find_blob(session: Session, project_id: str, sha256: str) -> Blob | None:
    """A stored blob of a project, if there is one."""
    return session.get(Blob, (project_id, sha256))


def get_blob(session: Session, project_id: str, sha256: str) -> Blob:
    """A stored blob of a project."""
    check_sha(sha256)
    blob = find_blob(session, project_id, sha256)
    if blob is None:
        raise NotFound(f"blob {sha256!r} does not exist in this project")
    return blob


# -- manifests ----------------------------------------------------------------------------------


def check_files(session: Session, project_id: str, files: Sequence[FileEntry]) -> int:
    """Validate a manifest against the blob store; returns the total size.

    Paths must be relative and unique; every chunk must be stored; a file's chunks must add
    up to its size. Refusals name the file.
    """
    seen: set[str] = set()
    hashes: list[str] = []
    for f in files:
        path = safe_path(f.path)
        if path != f.path:
            raise Unprocessable(f"file path {f.path!r} is not normalised (use {path!r})")
        if path in seen:
            raise Unprocessable(f"file {path!r} appears twice in the manifest")
        seen.add(path)
        if f.size > 0 and not f.chunks:
            raise Unprocessable(f"file {path!r} has {f.size} bytes but no chunks")
        for sha in f.chunks:
            check_sha(sha)
        hashes.extend(f.chunks)
    sizes = blob_sizes(session, project_id, hashes)
    missing = [sha for sha in dict.fromkeys(hashes) if sha not in sizes]
    if missing:
        raise Unprocessable(
            f"{len(missing)} blob(s) of the manifest are not uploaded yet "
            f"(first: {missing[0]}); upload them first"
        )
    for f in files:
        if sum(sizes[sha] for sha in f.chunks) != f.size:
            raise Unprocessable(f"file {f.path!r}: its chunks do not add up to {f.size} bytes")
    return sum(f.size for f in files)


def manifest_sha256(files: Sequence[FileEntry]) -> str:
    """A stable hash of a manifest (sorted by path)."""
    rows = sorted((f.path, f.size, f.sha256, f.chunks) for f in files)
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


# -- datasets and versions ----------------------------------------------------------------------


def find_dataset(session: Session, project: Project, name: str) -> Dataset | None:
    """The dataset called ``name`` in a project, if any."""
    return session.scalar(
        select(Dataset).where(Dataset.project_id == project.id, Dataset.name == name)
    )


def get_dataset(session: Session, project: Project, name: str) -> Dataset:
    """The dataset called ``name`` in a project."""
    check_name(name)
    dataset = find_dataset(session, project, name)
    if dataset is None:
        raise NotFound(f"dataset {name!r} does not exist in project {project.name!r}")
    return dataset


def list_datasets(session: Session, project: Project) -> list[Dataset]:
    """A project's datasets, by name."""
    stmt = select(Dataset).where(Dataset.project_id == project.id).order_by(Dataset.name)
    return list(session.scalars(stmt))


def list_versions(session: Session, dataset: Dataset) -> list[DatasetVersion]:
    """A dataset's versions, newest first."""
    stmt = select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
    return list(session.scalars(stmt.order_by(DatasetVersion.version.desc())))


def get_version(session: Session, dataset: Dataset, version: str | int) -> DatasetVersion:
    """One version of a dataset: a number or ``latest``."""
    stmt = select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
    if str(version) == "latest":
        stmt = stmt.order_by(DatasetVersion.version.desc()).limit(1)
    elif str(version).isascii() and str(version).isdigit():  # not "²", which int() refuses
        if int(version) > INT32_MAX:  # past the column: no such version
            raise NotFound(f"dataset {dataset.name!r} has no version {version}")
        stmt = stmt.where(DatasetVersion.version == int(version))
    else:
        raise Unprocessable(f"dataset version {version!r} must be a number or 'latest'")
    row = session.scalar(stmt)
    if row is None:
        raise NotFound(f"dataset {dataset.name!r} has no version {version}")
    return row


def create_version(
    session: Session, project: Project, name: str, body: VersionCreate, user_id: str
) -> tuple[Dataset, DatasetVersion, bool]:
    """Record a new version (creating the dataset on first push); returns it and whether it is
    new. Pushing the same files as the latest version makes no new version."""
    check_name(name)
    size = check_files(session, project.id, body.files)
    digest = manifest_sha256(body.files)
    dataset = find_dataset(session, project, name)
    if dataset is None:
        dataset = Dataset(project_id=project.id, name=name, created_by=user_id)
        session.add(dataset)
        session.flush()
    else:
        latest = session.scalar(
            select(DatasetVersion)
            .where(DatasetVersion.dataset_id == dataset.id)
            .order_by(DatasetVersion.version.desc())
            .limit(1)
        )
        if latest is not None and latest.manifest_sha256 == digest:
            return dataset, latest, False
    number = dataset.next_version
    dataset.next_version = number + 1
    dataset.updated_at = utcnow()
    files = sorted(body.files, key=lambda f: f.path)
    version = DatasetVersion(
        dataset_id=dataset.id,
        version=number,
        files=[f.model_dump() for f in files],
        file_count=len(files),
        size=size,
        manifest_sha256=digest,
        description=body.description,
        source=body.source.model_dump(),
        created_by=user_id,
    )
    session.add(version)
    session.flush()
    return dataset, version, True


def parse_ref(ref: str) -> tuple[str | None, str, str]:
    """``(project, name, version)`` of ``[project/]name[@version]``; version defaults to latest."""
    m = REF.match(ref.strip())
    if m is None:
        raise Unprocessable(f"dataset reference {ref!r}: use NAME@VERSION, NAME@latest or NAME")
    return m.group("project"), m.group("name"), m.group("version") or "latest"


def resolve_ref(
    session: Session, ref: str, default_project: Project
) -> tuple[Project, Dataset, DatasetVersion]:
    """The version ``ref`` names, in ``default_project`` unless it names another project."""
    project_name, name, version = parse_ref(ref)
    project = default_project
    if project_name is not None and project_name != default_project.name:
        project = auth.get_project(session, project_name)
    dataset = get_dataset(session, project, name)
    return project, dataset, get_version(session, dataset, version)


def lineage_entry(project: Project, dataset: Dataset, version: DatasetVersion) -> dict[str, Any]:
    """What a run records about a dataset version it used."""
    return {
        "project": project.name,
        "name": dataset.name,
        "version": version.version,
        "manifest_sha256": version.manifest_sha256,
    }


def versions_out(
    session: Session,
    project: Project,
    dataset: Dataset,
    versions: Sequence[DatasetVersion],
    with_files: bool = False,
) -> list[VersionOut]:
    """Wire form of versions (with their manifests when asked)."""
    names = auth.user_names(session, {v.created_by for v in versions})
    return [
        VersionOut(
            dataset=dataset.name,
            project=project.name,
            version=v.version,
            file_count=v.file_count,
            size=v.size,
            manifest_sha256=v.manifest_sha256,
            description=v.description,
            source=v.source,
            created_by=names.get(v.created_by, ""),
            created_at=v.created_at,
            files=[FileEntry.model_validate(f) for f in v.files] if with_files else None,
        )
        for v in versions
    ]


def datasets_out(
    session: Session, project: Project, datasets: Sequence[Dataset], with_versions: bool = False
) -> list[DatasetOut]:
    """Wire form of datasets (with their versions, without manifests, when asked)."""
    ids = [d.id for d in datasets]
    latest: dict[str, int] = {
        did: v
        for did, v in session.execute(
            select(DatasetVersion.dataset_id, func.max(DatasetVersion.version))
            .where(DatasetVersion.dataset_id.in_(ids))
            .group_by(DatasetVersion.dataset_id)
        )
    }
    names = auth.user_names(session, {d.created_by for d in datasets})
    return [
        DatasetOut(
            name=d.name,
            project=project.name,
            description=d.description,
            latest_version=latest.get(d.id),
            created_by=names.get(d.created_by, ""),
            created_at=d.created_at,
            updated_at=d.updated_at,
            versions=versions_out(session, project, d, list_versions(session, d))
            if with_versions
            else [],
        )
        for d in datasets
    ]
