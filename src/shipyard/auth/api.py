"""Routes for users, tokens, login links, projects and their members: parse, call, answer."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from shipyard.auth import accounts, projects
from shipyard.auth.deps import ActorDep, RuntimeDep
from shipyard.auth.schemas import (
    LoginLinkOut,
    MemberOut,
    MemberSet,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserCreate,
    UserOut,
)
from shipyard.auth.service import user_by_id
from shipyard.auth.tables import Token, User

router = APIRouter(prefix="/api", tags=["auth"])
members = APIRouter(prefix="/api/projects/{project}/members", tags=["projects"])


@router.get("/whoami", response_model=UserOut)
def whoami(actor: ActorDep, rt: RuntimeDep) -> User:
    """The user this request acts as."""
    with rt.db.read() as s:
        return user_by_id(s, actor.user_id)


@router.get("/users", response_model=list[UserOut])
def list_users(actor: ActorDep, rt: RuntimeDep) -> list[User]:
    """Every user (admins only)."""
    with rt.db.read() as s:
        return accounts.users(s, actor)


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, actor: ActorDep, rt: RuntimeDep) -> User:
    """Add a user (admins only)."""
    with rt.db.session() as s:
        return accounts.add_user(s, actor, body.name, body.is_admin)


@router.post("/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(body: TokenCreate, actor: ActorDep, rt: RuntimeDep) -> TokenCreated:
    """Mint a token for yourself (or, as an admin, for another user); the secret is shown once."""
    with rt.db.session() as s:
        token, secret = accounts.issue_token(s, actor, body.name, body.user)
        return TokenCreated(**TokenOut.model_validate(token).model_dump(), token=secret)


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(actor: ActorDep, rt: RuntimeDep, user: str | None = None) -> list[Token]:
    """Your tokens, or (admins) another user's; secrets are never shown again."""
    with rt.db.read() as s:
        return accounts.tokens(s, actor, user)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(token_id: str, actor: ActorDep, rt: RuntimeDep) -> Token:
    """Revoke a token; it stops working at once on this server (the token cache forgets it at
    the commit: ``service.forget_revoked``)."""
    with rt.db.session() as s:
        return accounts.revoke_token(s, actor, token_id)


@router.post("/login-links", response_model=LoginLinkOut, status_code=status.HTTP_201_CREATED)
def create_login_link(request: Request, actor: ActorDep, rt: RuntimeDep) -> LoginLinkOut:
    """A one-time link that signs a browser in to the UI as you (``shipyard ui`` prints it)."""
    with rt.db.session() as s:
        code, expires_at = accounts.login_link(s, actor)
    base = str(request.base_url).rstrip("/")
    return LoginLinkOut(url=f"{base}/login?code={code}", expires_at=expires_at)


@members.get("", response_model=list[MemberOut])
def list_members(project: str, actor: ActorDep, rt: RuntimeDep) -> list[MemberOut]:
    """Members of a project with their roles."""
    with rt.db.read() as s:
        return [MemberOut(user=u, role=r) for u, r in projects.list_members(s, actor, project)]


@members.put("/{user}", response_model=MemberOut)
def set_member(
    project: str, user: str, body: MemberSet, actor: ActorDep, rt: RuntimeDep
) -> MemberOut:
    """Give a user a role in the project (owners only)."""
    with rt.db.session() as s:
        role = projects.set_member(s, actor, project, user, body.role)
    return MemberOut(user=user, role=role.name)


@members.delete("/{user}", status_code=204)
def remove_member(project: str, user: str, actor: ActorDep, rt: RuntimeDep) -> None:
    """Take a user out of the project (owners only; never the last owner)."""
    with rt.db.session() as s:
        projects.remove_member(s, actor, project, user)
