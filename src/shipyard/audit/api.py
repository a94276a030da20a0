"""Reading the audit log. There is no route to edit or delete a record."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from shipyard import auth
from shipyard.audit import service
from shipyard.auth import ActorDep, Role, RuntimeDep
from shipyard.errors import Forbidden
from shipyard.inputs import Limit

router = APIRouter(prefix="/api", tags=["audit"])


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    project: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    client: str | None


@router.get("/audit", response_model=list[AuditOut])
def list_audit(
    caller: ActorDep,
    rt: RuntimeDep,
    project: str | None = None,
    since: str | None = None,
    actor: str | None = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    object_id: str | None = None,
    limit: Limit = 100,
) -> list[AuditOut]:
    """Audit records, newest first: a project's for its maintainers, everything for admins."""
    with rt.db.read() as s:
        project_ids: list[str] | None = None
        if project is not None:
            p = auth.get_project(s, project)
            auth.check_role(s, caller, p.id, Role.maintainer, f"project {project!r}")
            project_ids = [p.id]
        elif not caller.is_admin:
            raise Forbidden("the whole audit log is for server admins; pass a project")
        rows = service.search(
            s,
            project_ids=project_ids,
            since=service.parse_since(since),
            actor=actor,
            action=action,
            object_id=object_id,
            limit=limit,
        )
        return [AuditOut.model_validate(r) for r in rows]
