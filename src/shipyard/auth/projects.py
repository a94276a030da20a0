"""Projects and their members: who may do what where, the one way every feature reaches a project.

``require_project(session, actor, name, role)`` loads a project and checks the actor's role in it
(403 naming what is missing; 404 for an unknown name). Creating a project and changing its members
are use cases: the role check, the change and the audit record happen here, in the caller's
transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard import audit
from shipyard.auth import roles, service
from shipyard.auth.actor import Actor
from shipyard.auth.roles import Role
from shipyard.auth.tables import Project
from shipyard.errors import Conflict, NotFound


def get_project(session: Session, name: str) -> Project:
    """The project called ``name`` (404 otherwise); no role check: for the server's own work."""
    project = find_project(session, name)
    if project is None:
        raise NotFound(f"project {name!r} does not exist")
    return project


def find_project(session: Session, name: str) -> Project | None:
    """The project called ``name``, if there is one."""
    return session.scalar(select(Project).where(Project.name == name))


def project_by_id(session: Session, project_id: str) -> Project:
    """The project with ``project_id`` (a row other features point at, so it exists)."""
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"project {project_id!r} does not exist")
    return project


def project_names(session: Session, ids: Iterable[str] | None = None) -> dict[str, str]:
    """Project names by id (of the given ids, or of every project)."""
    stmt = select(Project.id, Project.name)
    if ids is not None:
        stmt = stmt.where(Project.id.in_(set(ids)))
    return {pid: name for pid, name in session.execute(stmt)}


def find_projects(session: Session, ids: Sequence[str] | None = None) -> list[Project]:
    """Projects with ids in ``ids`` (None: every project), by name."""
    stmt = select(Project).order_by(Project.name)
    if ids is not None:
        stmt = stmt.where(Project.id.in_(ids))
    return list(session.scalars(stmt))


def require_role(session: Session, actor: Actor, project: Project, needed: Role) -> Role:
    """The actor's role in ``project``, at least ``needed`` (403 naming what is missing)."""
    return roles.check_role(session, actor, project.id, needed, f"project {project.name!r}")


def require_project(session: Session, actor: Actor, name: str, needed: Role) -> Project:
    """The project called ``name``, when the actor has ``needed`` in it: the one way in."""
    project = get_project(session, name)
    require_role(session, actor, project, needed)
    return project


def create_project(session: Session, actor: Actor, name: str, description: str = "") -> Project:
    """A new project; the actor's user becomes its owner (a job's token creates none)."""
    if actor.scope is not None:
        raise actor.scope.refuse("create projects")
    if find_project(session, name) is not None:
        raise Conflict(f"project {name!r} already exists")
    project = Project(name=name, description=description, created_by=actor.user_id)
    session.add(project)
    session.flush()
    roles.set_member(session, project.id, actor.user_id, Role.owner)
    audit.record(
        session,
        actor,
        "project.create",
        "project",
        project.name,
        project_id=project.id,
        project=project.name,
        after={"description": description},
    )
    return project


def open_project(session: Session, actor: Actor, name: str, needed: Role) -> Project:
    """The project called ``name`` with ``needed`` checked, created (the actor its owner) when
    there is none yet: runs and registrations create their project on first use."""
    project = find_project(session, name)
    if project is None:
        return create_project(session, actor, name)
    require_role(session, actor, project, needed)
    return project


def list_members(session: Session, actor: Actor, name: str) -> list[tuple[str, str]]:
    """``(user, role)`` of each member of a project, by name (viewers)."""
    project = require_project(session, actor, name, Role.viewer)
    return roles.list_members(session, project.id)


def set_member(session: Session, actor: Actor, name: str, user: str, role_name: str) -> Role:
    """Give a user a role in a project (owners); returns the role given."""
    role = roles.parse_role(role_name)
    project = require_project(session, actor, name, Role.owner)
    target = service.get_user(session, user)
    before = roles.set_member(session, project.id, target.id, role)
    audit.record(
        session,
        actor,
        "member.set",
        "member",
        user,
        project_id=project.id,
        project=project.name,
        before={"role": before.name} if before else None,
        after={"role": role.name},
    )
    return role


def remove_member(session: Session, actor: Actor, name: str, user: str) -> None:
    """Take a user out of a project (owners; never its last owner)."""
    project = require_project(session, actor, name, Role.owner)
    before = roles.remove_member(session, project.id, service.get_user(session, user))
    audit.record(
        session,
        actor,
        "member.remove",
        "member",
        user,
        project_id=project.id,
        project=project.name,
        before={"role": before.name},
    )
