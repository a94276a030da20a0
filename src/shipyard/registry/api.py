"""Routes of the model registry: parse, check the caller's role, call the service, audit.

Developers register models and versions and move unprotected aliases; maintainers move
protected aliases, decide alias requests, archive and delete; owners choose which aliases
are protected. Every mutation writes one audit record in its transaction.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from shipyard import audit, auth
from shipyard.auth import Actor, ActorDep, Project, Role, RuntimeDep
from shipyard.errors import NotFound
from shipyard.inputs import Version
from shipyard.registry import service
from shipyard.registry.schemas import (
    AliasRequestCreate,
    AliasRequestOut,
    AliasSet,
    Decision,
    ModelCreate,
    ModelOut,
    ModelUpdate,
    ProtectedAliases,
    VersionCreate,
    VersionOut,
    VersionUpdate,
)
from shipyard.registry.tables import RegisteredModel
from shipyard.storage import safe_path

router = APIRouter(prefix="/api", tags=["registry"])
MODEL = "/projects/{project}/models/{name}"


def _model(
    s: Session, caller: Actor, project: str, name: str, needed: Role
) -> tuple[Project, RegisteredModel]:
    p = auth.require_project(s, caller, project, needed)
    return p, service.get_model(s, p, name)


def _record(
    s: Session,
    caller: Actor,
    action: str,
    p: Project,
    obj: str,
    before: Any = None,
    after: Any = None,
) -> None:
    audit.record(
        s,
        caller,
        action,
        action.split(".")[0],
        obj,
        project_id=p.id,
        project=p.name,
        before=before,
        after=after,
    )


@router.get("/models", response_model=list[ModelOut])
def search_models(
    caller: ActorDep,
    rt: RuntimeDep,
    project: str | None = None,
    q: Annotated[str | None, Query(max_length=128)] = None,  # a model name is at most 128
) -> list[ModelOut]:
    """Models whose name contains ``q``, in one project or every project the caller can read."""
    with rt.db.read() as s:
        if project is not None:
            ids: list[str] | None = [auth.require_project(s, caller, project, Role.viewer).id]
        else:
            ids = auth.visible_projects(s, caller)
        return service.models_out(s, service.search_models(s, ids, q))


@router.get("/models/resolve", response_model=VersionOut)
def resolve(uri: str, caller: ActorDep, rt: RuntimeDep) -> VersionOut:
    """The version a ``models:/NAME@ALIAS`` (or ``/VERSION``, ``PROJECT/NAME...``) URI names."""
    with rt.db.read() as s:
        found = service.resolve(s, uri, auth.visible_projects(s, caller))
        return service.versions_out(s, found.model, [found.version])[0]


@router.post("/projects/{project}/models", response_model=ModelOut, status_code=201)
def create_model(project: str, body: ModelCreate, caller: ActorDep, rt: RuntimeDep) -> ModelOut:
    """Register a model name in a project."""
    with rt.db.session() as s:
        p = auth.require_project(s, caller, project, Role.developer)
        model = service.create_model(s, p, body.name, caller.user_id, body.description, body.tags)
        _record(s, caller, "model.create", p, model.name, after=body.model_dump())
        return service.models_out(s, [model])[0]


@router.get(MODEL, response_model=ModelOut)
def get_model(project: str, name: str, caller: ActorDep, rt: RuntimeDep) -> ModelOut:
    """A model with its versions, aliases and card."""
    with rt.db.read() as s:
        _, model = _model(s, caller, project, name, Role.viewer)
        return service.models_out(s, [model], with_versions=True)[0]


@router.patch(MODEL, response_model=ModelOut)
def update_model(
    project: str, name: str, body: ModelUpdate, caller: ActorDep, rt: RuntimeDep
) -> ModelOut:
    """Change a model's description, card (markdown) or tags."""
    with rt.db.session() as s:
        p, model = _model(s, caller, project, name, Role.developer)
        before = service.update_model(s, model, **body.model_dump())
        _record(
            s,
            caller,
            "model.update",
            p,
            name,
            before=before,
            after=body.model_dump(exclude_none=True),
        )
        return service.models_out(s, [model])[0]


@router.delete(MODEL, status_code=204)
def delete_model(project: str, name: str, caller: ActorDep, rt: RuntimeDep) -> None:
    """Delete a model, its versions and files (maintainers; the audit log keeps the record)."""
    with rt.db.session() as s:
        p, model = _model(s, caller, project, name, Role.maintainer)
        versions = [v.version for v in service.list_versions(s, model)]
        service.delete_model(s, rt.storage, model)
        _record(s, caller, "model.delete", p, name, before={"versions": versions})


@router.post(MODEL + "/versions", response_model=VersionOut, status_code=201)
def create_version(
    project: str, name: str, body: VersionCreate, caller: ActorDep, rt: RuntimeDep
) -> VersionOut:
    """Register the package a run logged as the next version (the model is created if new)."""
    with rt.db.session() as s:
        p = auth.require_project(s, caller, project, Role.developer)
        model = service.find_model(s, p, name)
        if model is None:
            model = service.create_model(s, p, name, caller.user_id)
            _record(s, caller, "model.create", p, name)
        version = service.create_version(
            s,
            rt.storage,
            p,
            model,
            body.source,
            caller.user_id,
            description=body.description,
            tags=body.tags,
            parent_version=body.parent_version,
        )
        _record(
            s,
            caller,
            "version.create",
            p,
            f"{name}/{version.version}",
            after={"source": body.source, "flavor": version.flavor},
        )
        return service.versions_out(s, model, [version])[0]


@router.get(MODEL + "/versions", response_model=list[VersionOut])
def list_versions(
    project: str, name: str, caller: ActorDep, rt: RuntimeDep, status: str | None = None
) -> list[VersionOut]:
    """A model's versions, newest first (``status=ready|archived`` to filter)."""
    with rt.db.read() as s:
        _, model = _model(s, caller, project, name, Role.viewer)
        return service.versions_out(s, model, service.list_versions(s, model, status))


@router.get(MODEL + "/versions/{version}", response_model=VersionOut)
def get_version(
    project: str, name: str, version: Version, caller: ActorDep, rt: RuntimeDep
) -> VersionOut:
    """One version: signature, files, lineage, aliases."""
    with rt.db.read() as s:
        _, model = _model(s, caller, project, name, Role.viewer)
        return service.versions_out(s, model, [service.get_version(s, model, version)])[0]


@router.patch(MODEL + "/versions/{version}", response_model=VersionOut)
def update_version(
    project: str,
    name: str,
    version: Version,
    body: VersionUpdate,
    caller: ActorDep,
    rt: RuntimeDep,
) -> VersionOut:
    """Describe or tag a version (developers), or archive/restore it (maintainers)."""
    needed = Role.maintainer if body.status is not None else Role.developer
    with rt.db.session() as s:
        p, model = _model(s, caller, project, name, needed)
        row = service.get_version(s, model, version)
        before = service.update_version(s, row, **body.model_dump())
        _record(
            s,
            caller,
            "version.update",
            p,
            f"{name}/{version}",
            before=before,
            after=body.model_dump(exclude_none=True),
        )
        return service.versions_out(s, model, [row])[0]


@router.delete(MODEL + "/versions/{version}", status_code=204)
def delete_version(
    project: str, name: str, version: Version, caller: ActorDep, rt: RuntimeDep
) -> None:
    """Delete a version and its files (maintainers; refused while an alias points at it)."""
    with rt.db.session() as s:
        p, model = _model(s, caller, project, name, Role.maintainer)
        row = service.get_version(s, model, version)
        service.delete_version(s, rt.storage, model, row)
        _record(s, caller, "version.delete", p, f"{name}/{version}", before={"source": row.source})


@router.get(MODEL + "/versions/{version}/files/{path:path}")
def download_file(
    project: str, name: str, version: Version, path: str, caller: ActorDep, rt: RuntimeDep
) -> StreamingResponse:
    """One file of a version's package, streamed, with ``X-Content-SHA256``."""
    with rt.db.read() as s:
        _, model = _model(s, caller, project, name, Role.viewer)
        row = service.get_version(s, model, version)
        entry = row.files.get(safe_path(path))
        if entry is None:
            raise NotFound(f"version {version} of {name!r} has no file {path!r}")
        blob = service.version_path(model, version, safe_path(path))
    return StreamingResponse(
        rt.storage.iter_bytes(blob),
        media_type="application/octet-stream",
        headers={"content-length": str(entry["size"]), "x-content-sha256": entry["sha256"]},
    )


def _alias_role(s: Session, p: Project, alias: str) -> Role:
    return Role.maintainer if alias in service.protected_aliases(s, p) else Role.developer


@router.put(MODEL + "/aliases/{alias}", response_model=ModelOut)
def set_alias(
    project: str, name: str, alias: str, body: AliasSet, caller: ActorDep, rt: RuntimeDep
) -> ModelOut:
    """Point an alias at a version; a protected alias needs a maintainer (or an approval)."""
    with rt.db.session() as s:
        p = auth.require_project(s, caller, project, Role.viewer)
        service.check_alias(alias)
        auth.check_role(s, caller, p.id, _alias_role(s, p, alias), f"project {project!r}")
        model = service.get_model(s, p, name)
        before = service.set_alias(s, model, alias, body.version, caller.user_id)
        _record(
            s,
            caller,
            "alias.set",
            p,
            f"{name}@{alias}",
            before={"version": before} if before else None,
            after={"version": body.version},
        )
        return service.models_out(s, [model])[0]


@router.delete(MODEL + "/aliases/{alias}", status_code=204)
def delete_alias(project: str, name: str, alias: str, caller: ActorDep, rt: RuntimeDep) -> None:
    """Remove an alias (the same role as moving it)."""
    with rt.db.session() as s:
        p = auth.require_project(s, caller, project, Role.viewer)
        service.check_alias(alias)
        auth.check_role(s, caller, p.id, _alias_role(s, p, alias), f"project {project!r}")
        model = service.get_model(s, p, name)
        before = service.delete_alias(s, model, alias)
        _record(s, caller, "alias.delete", p, f"{name}@{alias}", before={"version": before})


@router.post(MODEL + "/alias-requests", response_model=AliasRequestOut, status_code=201)
def request_alias(
    project: str, name: str, body: AliasRequestCreate, caller: ActorDep, rt: RuntimeDep
) -> dict[str, Any]:
    """Ask for an alias to move; a maintainer other than the requester approves or rejects."""
    with rt.db.session() as s:
        p, model = _model(s, caller, project, name, Role.developer)
        request = service.request_alias(
            s, model, body.alias, body.version, body.reason, caller.user_id
        )
        _record(
            s,
            caller,
            "alias_request.create",
            p,
            request.id,
            after={
                "model": name,
                "alias": body.alias,
                "version": body.version,
                "reason": body.reason,
            },
        )
        return service.request_out(s, request)


@router.get("/projects/{project}/alias-requests", response_model=list[AliasRequestOut])
def list_requests(
    project: str, caller: ActorDep, rt: RuntimeDep, status: str | None = None
) -> list[dict[str, Any]]:
    """A project's alias requests, newest first (``status=pending`` for the open ones)."""
    with rt.db.read() as s:
        p = auth.require_project(s, caller, project, Role.viewer)
        return [service.request_out(s, r) for r in service.list_requests(s, p, status)]


def decide_request(
    request_id: str, approve: bool, body: Decision, caller: Actor, rt: Any
) -> dict[str, Any]:
    """Approve or reject an alias request as ``caller`` (a maintainer other than the requester),
    with its audit record; the approve/reject routes and the UI's buttons both call this."""
    with rt.db.session() as s:
        request = service.get_request(s, request_id)
        model = s.get(RegisteredModel, request.model_id)
        p = auth.project_by_id(s, model.project_id) if model else None
        assert model is not None and p is not None
        auth.check_role(s, caller, p.id, Role.maintainer, f"project {p.name!r}")
        before = service.decide(s, request, approve, caller.user_id, body.note)
        action = "alias_request.approve" if approve else "alias_request.reject"
        _record(
            s,
            caller,
            action,
            p,
            request.id,
            before={"alias_version": before},
            after={"status": request.status, "note": body.note},
        )
        return service.request_out(s, request)


@router.post("/alias-requests/{request_id}/approve", response_model=AliasRequestOut)
def approve(request_id: str, body: Decision, caller: ActorDep, rt: RuntimeDep) -> dict[str, Any]:
    """Approve a pending request: the alias moves now."""
    return decide_request(request_id, True, body, caller, rt)


@router.post("/alias-requests/{request_id}/reject", response_model=AliasRequestOut)
def reject(request_id: str, body: Decision, caller: ActorDep, rt: RuntimeDep) -> dict[str, Any]:
    """Reject a pending request."""
    return decide_request(request_id, False, body, caller, rt)


@router.get("/projects/{project}/protected-aliases", response_model=ProtectedAliases)
def get_protected(project: str, caller: ActorDep, rt: RuntimeDep) -> ProtectedAliases:
    """Aliases that only maintainers (or approved requests) may move."""
    with rt.db.read() as s:
        p = auth.require_project(s, caller, project, Role.viewer)
        return ProtectedAliases(aliases=service.protected_aliases(s, p))


@router.put("/projects/{project}/protected-aliases", response_model=ProtectedAliases)
def set_protected(
    project: str, body: ProtectedAliases, caller: ActorDep, rt: RuntimeDep
) -> ProtectedAliases:
    """Choose the protected aliases (owners)."""
    with rt.db.session() as s:
        p = auth.require_project(s, caller, project, Role.owner)
        before = service.set_protected_aliases(s, p, body.aliases)
        _record(
            s,
            caller,
            "project.protect_aliases",
            p,
            p.name,
            before={"aliases": before},
            after={"aliases": sorted(set(body.aliases))},
        )
        return ProtectedAliases(aliases=service.protected_aliases(s, p))
