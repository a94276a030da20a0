"""Registry domain logic: models, versions from run artifacts, aliases, approvals, resolution.

A version is created from a package a run uploaded (``runs:/RUN_ID/model``): its files are
copied to ``models/<model id>/<version>/`` so the version stays immutable even if the run's
artifacts change, and each file's sha256 must match the package manifest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shipyard import auth
from shipyard.auth import Project
from shipyard.db import utcnow
from shipyard.errors import Conflict, Forbidden, NotFound, Unprocessable
from shipyard.packages import MANIFEST, Manifest
from shipyard.registry.schemas import ALIAS_NAME, MODEL_NAME, ModelOut, VersionOut
from shipyard.registry.tables import (
    AliasRequest,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    RegistrySettings,
)
from shipyard.storage import Storage
from shipyard.tracking import files as run_files
from shipyard.tracking import service as tracking

DEFAULT_PROTECTED = ["champion", "production"]
RUNS_URI = re.compile(r"^runs:/([0-9a-f]{32})/(.+)$")
MODELS_URI = re.compile(
    r"^models:/(?:(?P<project>[^/@]+)/)?(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[^/@]+))$"
)


def check_name(name: str) -> None:
    """422 unless ``name`` is a valid model name."""
    if not re.match(MODEL_NAME, name):
        raise Unprocessable(
            f"model name {name!r} is invalid: letters, digits, . _ - "
            "(128 at most, starting with a letter or digit)"
        )


def check_alias(alias: str) -> None:
    """422 unless ``alias`` is a valid alias name."""
    if not re.match(ALIAS_NAME, alias) or alias == "latest":
        raise Unprocessable(
            f"alias {alias!r} is invalid: lower-case letters, digits, _ and -, "
            "starting with a letter ('latest' is reserved)"
        )


def version_path(model: RegisteredModel, version: int, rel: str = "") -> str:
    """Where a version's files live in the blob store."""
    return f"models/{model.id}/{version}/{rel}"


# -- models -------------------------------------------------------------------------------------


def find_model(session: Session, project: Project, name: str) -> RegisteredModel | None:
    """The model called ``name`` in a project, if any."""
    return session.scalar(
        select(RegisteredModel).where(
            RegisteredModel.project_id == project.id, RegisteredModel.name == name
        )
    )


def model_by_id(session: Session, model_id: str) -> RegisteredModel:
    """A model by id (for features that keep a reference to one)."""
    model = session.get(RegisteredModel, model_id)
    if model is None:
        raise NotFound(f"model {model_id!r} no longer exists")
    return model


def get_model(session: Session, project: Project, name: str) -> RegisteredModel:
    """The model called ``name`` in a project."""
    check_name(name)
    model = find_model(session, project, name)
    if model is None:
        raise NotFound(f"model {name!r} does not exist in project {project.name!r}")
    return model


def create_model(
    session: Session,
    project: Project,
    name: str,
    user_id: str,
    description: str = "",
    tags: dict[str, str] | None = None,
) -> RegisteredModel:
    """Register a new model name in a project."""
    check_name(name)
    if find_model(session, project, name) is not None:
        raise Conflict(f"model {name!r} already exists in project {project.name!r}")
    model = RegisteredModel(
        project_id=project.id,
        name=name,
        description=description,
        tags=tags or {},
        created_by=user_id,
    )
    session.add(model)
    session.flush()
    return model


def update_model(
    session: Session,
    model: RegisteredModel,
    *,
    description: str | None = None,
    card: str | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Change description, model card or tags; returns the fields as they were."""
    before = {"description": model.description, "card": model.card, "tags": model.tags}
    if description is not None:
        model.description = description
    if card is not None:
        model.card = card
    if tags is not None:
        model.tags = tags
    model.updated_at = utcnow()
    return before


def delete_model(session: Session, storage: Storage, model: RegisteredModel) -> None:
    """Delete a model with its versions and their files (the audit log keeps the record)."""
    storage.delete_prefix(f"models/{model.id}")
    session.delete(model)


def aliases_of(session: Session, model_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Aliases by model id: ``{alias: version}``."""
    out: dict[str, dict[str, int]] = {mid: {} for mid in model_ids}
    for a in session.scalars(select(ModelAlias).where(ModelAlias.model_id.in_(model_ids))):
        out[a.model_id][a.alias] = a.version
    return out


def search_models(
    session: Session,
    project_ids: Sequence[str] | None,
    q: str | None = None,
    name: str | None = None,
) -> list[RegisteredModel]:
    """Models in the given projects (None: all) whose name contains ``q`` (or equals ``name``)."""
    stmt = select(RegisteredModel)
    if project_ids is not None:
        stmt = stmt.where(RegisteredModel.project_id.in_(project_ids))
    if q:
        stmt = stmt.where(RegisteredModel.name.contains(q, autoescape=True))
    if name:
        stmt = stmt.where(RegisteredModel.name == name)
    return list(session.scalars(stmt.order_by(RegisteredModel.name)))


def models_out(
    session: Session, models: Sequence[RegisteredModel], with_versions: bool = False
) -> list[ModelOut]:
    """Wire form of models (with their versions when asked)."""
    ids = [m.id for m in models]
    aliases = aliases_of(session, ids)
    latest: dict[str, int] = {
        mid: v
        for mid, v in session.execute(
            select(ModelVersion.model_id, func.max(ModelVersion.version))
            .where(ModelVersion.model_id.in_(ids))
            .group_by(ModelVersion.model_id)
        )
    }
    projects = auth.project_names(session, (m.project_id for m in models))
    names = auth.user_names(session, {m.created_by for m in models})
    out = []
    for m in models:
        versions = versions_out(session, m, list_versions(session, m)) if with_versions else []
        out.append(
            ModelOut(
                name=m.name,
                project=projects[m.project_id],
                description=m.description,
                card=m.card,
                tags=m.tags,
                aliases=aliases[m.id],
                latest_version=latest.get(m.id),
                created_by=names.get(m.created_by, ""),
                created_at=m.created_at,
                updated_at=m.updated_at,
                versions=versions,
            )
        )
    return out


# -- versions -----------------------------------------------------------------------------------


def list_versions(
    session: Session, model: RegisteredModel, status: str | None = None
) -> list[ModelVersion]:
    """A model's versions, newest first."""
    stmt = select(ModelVersion).where(ModelVersion.model_id == model.id)
    if status:
        stmt = stmt.where(ModelVersion.status == status)
    return list(session.scalars(stmt.order_by(ModelVersion.version.desc())))


def get_version(session: Session, model: RegisteredModel, version: int) -> ModelVersion:
    """One version of a model."""
    row = session.scalar(
        select(ModelVersion).where(
            ModelVersion.model_id == model.id, ModelVersion.version == version
        )
    )
    if row is None:
        raise NotFound(f"model {model.name!r} has no version {version}")
    return row


def versions_out(
    session: Session, model: RegisteredModel, versions: Sequence[ModelVersion]
) -> list[VersionOut]:
    """Wire form of versions, with their aliases."""
    aliases = aliases_of(session, [model.id])[model.id]
    project = auth.project_by_id(session, model.project_id)
    names = auth.user_names(session, {v.created_by for v in versions})
    return [
        VersionOut(
            model=model.name,
            project=project.name if project else "",
            version=v.version,
            status=v.status,
            flavor=v.flavor,
            signature=v.signature,
            files=v.files,
            manifest_sha256=v.manifest_sha256,
            source=v.source,
            run_id=v.run_id,
            lineage=v.lineage,
            description=v.description,
            tags=v.tags,
            aliases=sorted(a for a, n in aliases.items() if n == v.version),
            created_by=names.get(v.created_by, ""),
            created_at=v.created_at,
        )
        for v in versions
    ]


def create_version(
    session: Session,
    storage: Storage,
    project: Project,
    model: RegisteredModel,
    source: str,
    user_id: str,
    *,
    description: str = "",
    tags: dict[str, str] | None = None,
    parent_version: int | None = None,
) -> ModelVersion:
    """Register the package at ``source`` (``runs:/RUN_ID/PATH``) as the next version."""
    m = RUNS_URI.match(source)
    if m is None:
        raise Unprocessable(f"source {source!r}: use runs:/RUN_ID/PATH (a package a run logged)")
    run_id, prefix = m.group(1), m.group(2).strip("/")
    run, run_project = tracking.project_of_run(session, run_id)
    if run_project.id != project.id:
        raise Unprocessable(
            f"run {run_id!r} belongs to project {run_project.name!r}, not {project.name!r}"
        )
    artifacts = {
        a.path[len(prefix) + 1 :]: a
        for a in run_files.list_artifacts(session, run_id, prefix)
        if a.path.startswith(prefix + "/")
    }
    if MANIFEST not in artifacts:
        raise Unprocessable(f"{source} is not a model package: {MANIFEST} is missing")
    manifest_blob = run_files.blob_path(run_id, artifacts[MANIFEST].path)
    try:
        manifest = Manifest.parse(yaml.safe_load(storage.read_bytes(manifest_blob)))
    except yaml.YAMLError as exc:
        raise Unprocessable(f"{source}/{MANIFEST} is not valid YAML") from exc
    for rel, digest in manifest.files.items():
        artifact = artifacts.get(rel)
        if artifact is None:
            raise Unprocessable(f"package file {rel!r} is missing from {source}")
        if artifact.sha256 != digest:
            raise Unprocessable(
                f"package file {rel!r} is corrupted or was modified "
                "(sha256 differs from the manifest)"
            )
    if parent_version is not None:
        get_version(session, model, parent_version)
    latest = session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model.id)
    )
    number = model.next_version
    model.next_version = number + 1
    model.updated_at = utcnow()
    for rel, artifact in artifacts.items():
        storage.copy(run_files.blob_path(run_id, artifact.path), version_path(model, number, rel))
    summary = tracking.summaries(session, [run_id])[run_id]
    version = ModelVersion(
        model_id=model.id,
        version=number,
        flavor=manifest.flavor,
        signature=manifest.signature.to_dict(),
        files={rel: {"sha256": a.sha256, "size": a.size} for rel, a in sorted(artifacts.items())},
        manifest_sha256=artifacts[MANIFEST].sha256,
        source=source,
        run_id=run_id,
        lineage={
            "run": {
                "id": run.id,
                "name": run.name,
                "project": run_project.name,
                "config": run.config,
                "metrics": {k: s.last for k, s in summary.items()},
                "git_commit": run.environment.get("git_commit"),
                "git_dirty": run.environment.get("git_dirty"),
            },
            "datasets": run.environment.get("datasets", []),
            "parent_version": parent_version if parent_version is not None else latest,
        },
        description=description,
        tags=tags or {},
        created_by=user_id,
    )
    session.add(version)
    session.flush()
    return version


def update_version(
    session: Session,
    version: ModelVersion,
    *,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    """Change description, tags or status (ready | archived); returns the fields as they were."""
    before = {"description": version.description, "tags": version.tags, "status": version.status}
    if status == "archived":
        pointing = session.scalars(
            select(ModelAlias.alias).where(
                ModelAlias.model_id == version.model_id, ModelAlias.version == version.version
            )
        ).all()
        if pointing:
            raise Conflict(
                f"version {version.version} is the target of alias(es) "
                f"{', '.join(sorted(pointing))}; move them first"
            )
    if description is not None:
        version.description = description
    if tags is not None:
        version.tags = tags
    if status is not None:
        version.status = status
    return before


def delete_version(
    session: Session, storage: Storage, model: RegisteredModel, version: ModelVersion
) -> None:
    """Delete a version and its files; refused while an alias points at it."""
    pointing = session.scalars(
        select(ModelAlias.alias).where(
            ModelAlias.model_id == model.id, ModelAlias.version == version.version
        )
    ).all()
    if pointing:
        raise Conflict(
            f"version {version.version} is the target of alias(es) "
            f"{', '.join(sorted(pointing))}; move them first"
        )
    storage.delete_prefix(version_path(model, version.version).rstrip("/"))
    session.delete(version)


# -- aliases and approvals ----------------------------------------------------------------------


def protected_aliases(session: Session, project: Project) -> list[str]:
    """The project's protected aliases (champion and production unless changed)."""
    row = session.get(RegistrySettings, project.id)
    return list(row.protected_aliases) if row else list(DEFAULT_PROTECTED)


def set_protected_aliases(session: Session, project: Project, aliases: list[str]) -> list[str]:
    """Replace the project's protected aliases; returns the previous list."""
    for alias in aliases:
        check_alias(alias)
    before = protected_aliases(session, project)
    row = session.get(RegistrySettings, project.id)
    if row is None:
        session.add(RegistrySettings(project_id=project.id, protected_aliases=sorted(set(aliases))))
    else:
        row.protected_aliases = sorted(set(aliases))
    return before


def set_alias(
    session: Session, model: RegisteredModel, alias: str, version: int, user_id: str
) -> int | None:
    """Point ``alias`` at ``version`` (role checks are the caller's); returns the old target."""
    check_alias(alias)
    target = get_version(session, model, version)
    if target.status != "ready":
        raise Unprocessable(f"version {version} of {model.name!r} is {target.status}")
    row = session.get(ModelAlias, (model.id, alias))
    before = row.version if row else None
    if row is None:
        session.add(ModelAlias(model_id=model.id, alias=alias, version=version, updated_by=user_id))
    else:
        row.version, row.updated_by, row.updated_at = version, user_id, utcnow()
    model.updated_at = utcnow()
    session.flush()
    return before


def delete_alias(session: Session, model: RegisteredModel, alias: str) -> int:
    """Remove an alias; returns the version it pointed at."""
    check_alias(alias)
    row = session.get(ModelAlias, (model.id, alias))
    if row is None:
        raise NotFound(f"model {model.name!r} has no alias {alias!r}")
    session.delete(row)
    return row.version


def request_alias(
    session: Session, model: RegisteredModel, alias: str, version: int, reason: str, user_id: str
) -> AliasRequest:
    """Ask for a protected alias to move; a different maintainer decides."""
    check_alias(alias)
    if get_version(session, model, version).status != "ready":
        raise Unprocessable(f"version {version} of {model.name!r} is not ready")
    request = AliasRequest(
        model_id=model.id, alias=alias, version=version, reason=reason, requested_by=user_id
    )
    session.add(request)
    session.flush()
    return request


def get_request(session: Session, request_id: str) -> AliasRequest:
    """One alias request."""
    request = session.get(AliasRequest, request_id)
    if request is None:
        raise NotFound(f"alias request {request_id!r} does not exist")
    return request


def decide(
    session: Session, request: AliasRequest, approve: bool, user_id: str, note: str
) -> int | None:
    """Approve (the alias moves now) or reject a pending request; never by its requester."""
    if request.status != "pending":
        raise Conflict(f"alias request {request.id!r} is already {request.status}")
    if request.requested_by == user_id:
        raise Forbidden("a request must be decided by someone other than its requester")
    request.status = "approved" if approve else "rejected"
    request.decided_by, request.decided_at, request.note = user_id, utcnow(), note
    if not approve:
        return None
    model = session.get(RegisteredModel, request.model_id)
    assert model is not None
    return set_alias(session, model, request.alias, request.version, user_id)


def list_requests(
    session: Session, project: Project, status: str | None = None
) -> list[AliasRequest]:
    """A project's alias requests, newest first."""
    stmt = (
        select(AliasRequest)
        .join(RegisteredModel, RegisteredModel.id == AliasRequest.model_id)
        .where(RegisteredModel.project_id == project.id)
    )
    if status:
        stmt = stmt.where(AliasRequest.status == status)
    return list(session.scalars(stmt.order_by(AliasRequest.requested_at.desc())))


def request_out(session: Session, request: AliasRequest) -> dict[str, Any]:
    """Wire form of an alias request."""
    model = session.get(RegisteredModel, request.model_id)
    assert model is not None
    project = auth.project_by_id(session, model.project_id)
    names = auth.user_names(session, {request.requested_by, request.decided_by or ""})
    return {
        "id": request.id,
        "project": project.name if project else "",
        "model": model.name,
        "alias": request.alias,
        "version": request.version,
        "reason": request.reason,
        "status": request.status,
        "requested_by": names.get(request.requested_by, ""),
        "requested_at": request.requested_at,
        "decided_by": names.get(request.decided_by) if request.decided_by else None,
        "decided_at": request.decided_at,
        "note": request.note,
    }


# -- resolution ---------------------------------------------------------------------------------


@dataclass
class Resolved:
    """What a ``models:/`` URI points at."""

    project: Project
    model: RegisteredModel
    version: ModelVersion


def parse_uri(uri: str) -> tuple[str | None, str, str | None, str | None]:
    """``(project, name, alias, version)`` of ``models:/[project/]name@alias|/version``."""
    m = MODELS_URI.match(uri)
    if m is None:
        raise Unprocessable(
            f"model URI {uri!r}: use models:/NAME@ALIAS, models:/NAME/VERSION "
            "or models:/PROJECT/NAME@ALIAS"
        )
    return m.group("project"), m.group("name"), m.group("alias"), m.group("version")


def resolve(session: Session, uri: str, visible: Sequence[str] | None) -> Resolved:
    """The version a ``models:/`` URI names, among the projects in ``visible`` (None: all)."""
    project_name, name, alias, version = parse_uri(uri)
    check_name(name)
    if project_name is not None:
        project = auth.get_project(session, project_name)
        if visible is not None and project.id not in visible:
            raise NotFound(f"model {name!r} does not exist in project {project_name!r}")
        model = get_model(session, project, name)
    else:
        found = search_models(session, visible, name=name)
        if not found:
            raise NotFound(f"model {name!r} does not exist")
        if len(found) > 1:
            names = sorted(
                p.name
                for p in session.scalars(
                    select(Project).where(Project.id.in_({m.project_id for m in found}))
                )
            )
            raise Conflict(
                f"model {name!r} exists in projects {', '.join(names)}; "
                f"use models:/PROJECT/{name}..."
            )
        model = found[0]
        owner = auth.project_by_id(session, model.project_id)
        assert owner is not None
        project = owner
    if alias is not None:
        if alias != "latest":
            check_alias(alias)
        row = None if alias == "latest" else session.get(ModelAlias, (model.id, alias))
        if alias == "latest":
            ready = list_versions(session, model, status="ready")
            if not ready:
                raise NotFound(f"model {name!r} has no ready version")
            return Resolved(project, model, ready[0])
        if row is None:
            raise NotFound(f"model {name!r} has no alias {alias!r}")
        number = row.version
    else:
        assert version is not None
        if version == "latest":
            return resolve(session, f"models:/{project.name}/{name}@latest", visible)
        if not version.isdigit():
            raise Unprocessable(f"version {version!r} must be a number, 'latest' or @alias")
        number = int(version)
    return Resolved(project, model, get_version(session, model, number))
