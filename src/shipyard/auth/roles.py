"""Project roles: who may read, write, govern and administer each project.

    viewer < developer < maintainer < owner

Viewers read; developers log runs and register model versions; maintainers move protected
aliases, approve requests, archive and delete; owners manage members. Server admins act as
owners everywhere; the local token (and, with SHIPYARD_AUTH=none, the anonymous caller) acts as
the admin user ``local``. A job's token is capped (``auth.scopes``): developer in its project,
nothing elsewhere but the datasets it mounts (``reads_mounted``).
"""

from __future__ import annotations

from enum import IntEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.auth.actor import Actor
from shipyard.auth.tables import ProjectMember, User
from shipyard.errors import Forbidden, NotFound, Unprocessable


class Role(IntEnum):
    viewer = 1
    developer = 2
    maintainer = 3
    owner = 4


def parse_role(name: str) -> Role:
    """The role called ``name``; 422 for anything else."""
    try:
        return Role[name]
    except KeyError:
        raise Unprocessable(
            f"unknown role {name!r}; use viewer, developer, maintainer or owner"
        ) from None


def role_of(session: Session, actor: Actor, project_id: str) -> Role | None:
    """The caller's role in a project (owner for admins; capped for a job's token), or None."""
    scope = actor.scope
    if scope is not None:
        if project_id != scope.project_id:
            return None
        role = Role.owner if scope.user_is_admin else _member_role(session, actor, project_id)
        return min(role, Role.developer) if role is not None else None
    if actor.is_admin:
        return Role.owner
    return _member_role(session, actor, project_id)


def _member_role(session: Session, actor: Actor, project_id: str) -> Role | None:
    role = session.scalar(
        select(ProjectMember.role).where(
            ProjectMember.project_id == project_id, ProjectMember.user_id == actor.user_id
        )
    )
    return Role[role] if role else None


def check_role(
    session: Session, actor: Actor, project_id: str, needed: Role, project: str = "this project"
) -> Role:
    """The caller's role, at least ``needed``; 403 naming what is missing otherwise."""
    role = role_of(session, actor, project_id)
    if actor.scope is not None and (role is None or role < needed):
        reach = f"reach {project}" if role is None else f"act as {needed.name} in {project}"
        raise actor.scope.refuse(reach)
    if role is None:
        raise Forbidden(f"user {actor.name!r} has no role in {project}")
    if role < needed:
        raise Forbidden(
            f"user {actor.name!r} is {role.name} in {project}; this needs {needed.name} or above"
        )
    return role


def visible_projects(session: Session, actor: Actor) -> list[str] | None:
    """Ids of the projects the caller may read; None means every project (admins)."""
    if actor.scope is not None:
        project = actor.scope.project_id
        return [project] if role_of(session, actor, project) is not None else []
    if actor.is_admin:
        return None
    stmt = select(ProjectMember.project_id).where(ProjectMember.user_id == actor.user_id)
    return list(session.scalars(stmt))


def reads_mounted(session: Session, actor: Actor, project_id: str, dataset: str | None) -> bool:
    """Whether a job's token may read ``dataset`` (None: a blob) of another project: one the job
    mounts, in a project its user may still read."""
    scope = actor.scope
    if scope is None or project_id == scope.project_id or not scope.mounts(project_id, dataset):
        return False
    return scope.user_is_admin or _member_role(session, actor, project_id) is not None


def set_member(session: Session, project_id: str, user_id: str, role: Role) -> Role | None:
    """Give a user a role in a project; returns the previous role."""
    row = session.get(ProjectMember, (project_id, user_id))
    before = Role[row.role] if row else None
    if row is None:
        session.add(ProjectMember(project_id=project_id, user_id=user_id, role=role.name))
    else:
        row.role = role.name
    session.flush()
    return before


def remove_member(session: Session, project_id: str, user: User) -> Role:
    """Take ``user`` out of a project; refuses to remove the last owner."""
    row = session.get(ProjectMember, (project_id, user.id))
    if row is None:
        raise NotFound(f"user {user.name!r} is not a member of this project")
    if row.role == Role.owner.name:
        owners = session.scalars(
            select(ProjectMember).where(
                ProjectMember.project_id == project_id, ProjectMember.role == Role.owner.name
            )
        ).all()
        if len(owners) == 1:
            raise Unprocessable("cannot remove the last owner of a project")
    before = Role[row.role]
    session.delete(row)
    return before


def list_members(session: Session, project_id: str) -> list[tuple[str, str]]:
    """``(user name, role)`` of each member, by name."""
    stmt = (
        select(User.name, ProjectMember.role)
        .join(User, User.id == ProjectMember.user_id)
        .where(ProjectMember.project_id == project_id)
        .order_by(User.name)
    )
    return [(name, role) for name, role in session.execute(stmt)]
