"""Routes for project members: owners give and take roles; members see who else is in."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from shipyard.audit import service as audit
from shipyard.auth import roles
from shipyard.auth import service as users
from shipyard.auth.deps import CallerDep, RuntimeDep
from shipyard.auth.roles import Role
from shipyard.tracking.api import project_for

router = APIRouter(prefix="/api/projects/{project}/members", tags=["projects"])


class MemberOut(BaseModel):
    user: str
    role: str


class MemberSet(BaseModel):
    role: str = Field(description="viewer, developer, maintainer or owner")


@router.get("", response_model=list[MemberOut])
def list_members(project: str, caller: CallerDep, rt: RuntimeDep) -> list[MemberOut]:
    """Members of a project with their roles."""
    with rt.db.read() as s:
        p = project_for(s, caller, project, Role.viewer)
        return [MemberOut(user=u, role=r) for u, r in roles.list_members(s, p.id)]


@router.put("/{user}", response_model=MemberOut)
def set_member(
    project: str, user: str, body: MemberSet, caller: CallerDep, rt: RuntimeDep
) -> MemberOut:
    """Give a user a role in the project (owners only)."""
    role = roles.parse_role(body.role)
    with rt.db.session() as s:
        p = project_for(s, caller, project, Role.owner)
        target = users.get_user(s, user)
        before = roles.set_member(s, p.id, target.id, role)
        audit.record(
            s,
            caller,
            "member.set",
            "member",
            user,
            project_id=p.id,
            project=p.name,
            before={"role": before.name} if before else None,
            after={"role": role.name},
        )
        return MemberOut(user=user, role=role.name)


@router.delete("/{user}", status_code=204)
def remove_member(project: str, user: str, caller: CallerDep, rt: RuntimeDep) -> None:
    """Take a user out of the project (owners only; never the last owner)."""
    with rt.db.session() as s:
        p = project_for(s, caller, project, Role.owner)
        before = roles.remove_member(s, p.id, users.get_user(s, user))
        audit.record(
            s,
            caller,
            "member.remove",
            "member",
            user,
            project_id=p.id,
            project=p.name,
            before={"role": before.name},
        )
