"""Identity and access: users, tokens, projects and their members, roles, and who is acting.

Every feature reaches a project through ``require_project(session, actor, name, role)`` and
checks roles with ``require_role``; the HTTP layer gets the request's actor from ``ActorDep``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.surface import exports, names

if TYPE_CHECKING:
    from shipyard.auth.accounts import require_admin as require_admin
    from shipyard.auth.actor import SERVER as SERVER
    from shipyard.auth.actor import Actor as Actor
    from shipyard.auth.actor import system_actor as system_actor
    from shipyard.auth.actor import user_actor as user_actor
    from shipyard.auth.deps import ActorDep as ActorDep
    from shipyard.auth.deps import RuntimeDep as RuntimeDep
    from shipyard.auth.deps import actor_of as actor_of
    from shipyard.auth.deps import cached_actor as cached_actor
    from shipyard.auth.deps import current_actor as current_actor
    from shipyard.auth.projects import create_project as create_project
    from shipyard.auth.projects import find_project as find_project
    from shipyard.auth.projects import find_projects as find_projects
    from shipyard.auth.projects import get_project as get_project
    from shipyard.auth.projects import open_project as open_project
    from shipyard.auth.projects import project_by_id as project_by_id
    from shipyard.auth.projects import project_names as project_names
    from shipyard.auth.projects import require_project as require_project
    from shipyard.auth.projects import require_role as require_role
    from shipyard.auth.roles import Role as Role
    from shipyard.auth.roles import check_role as check_role
    from shipyard.auth.roles import reads_mounted as reads_mounted
    from shipyard.auth.roles import role_of as role_of
    from shipyard.auth.roles import visible_projects as visible_projects
    from shipyard.auth.scopes import TokenScope as TokenScope
    from shipyard.auth.service import authenticate_token as authenticate_token
    from shipyard.auth.service import create_token as create_token
    from shipyard.auth.service import revoke_token as revoke_token
    from shipyard.auth.service import user_by_id as user_by_id
    from shipyard.auth.service import user_names as user_names
    from shipyard.auth.tables import Project as Project
    from shipyard.auth.tables import User as User

_SURFACE = {
    "accounts": ["require_admin"],
    "actor": ["SERVER", "Actor", "system_actor", "user_actor"],
    "deps": ["ActorDep", "RuntimeDep", "actor_of", "cached_actor", "current_actor"],
    "projects": [
        "create_project",
        "find_project",
        "find_projects",
        "get_project",
        "open_project",
        "project_by_id",
        "project_names",
        "require_project",
        "require_role",
    ],
    "roles": ["Role", "check_role", "reads_mounted", "role_of", "visible_projects"],
    "scopes": ["TokenScope"],
    "service": ["authenticate_token", "create_token", "revoke_token", "user_by_id", "user_names"],
    "tables": ["Project", "User"],
}
__all__ = names(_SURFACE)
__getattr__ = exports(__name__, _SURFACE)
