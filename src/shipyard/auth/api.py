"""Routes for users and tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from shipyard.audit import service as audit
from shipyard.auth import service
from shipyard.auth.deps import Caller, CallerDep, RuntimeDep
from shipyard.auth.schemas import (
    LoginLinkOut,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserCreate,
    UserOut,
)
from shipyard.auth.tables import Token, User

router = APIRouter(prefix="/api", tags=["auth"])


def _unscoped(caller: Caller, what: str) -> None:
    if caller.scope is not None:
        raise caller.scope.refuse(what)


@router.get("/whoami", response_model=UserOut)
def whoami(caller: CallerDep, rt: RuntimeDep) -> User:
    """The user this request acts as."""
    with rt.db.read() as s:
        return service.user_by_id(s, caller.user_id)


@router.get("/users", response_model=list[UserOut])
def list_users(caller: CallerDep, rt: RuntimeDep) -> list[User]:
    """Every user (admins only)."""
    with rt.db.read() as s:
        service.require_admin(service.user_by_id(s, caller.user_id), caller.scope)
        return service.list_users(s)


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, caller: CallerDep, rt: RuntimeDep) -> User:
    """Add a user (admins only)."""
    with rt.db.session() as s:
        service.require_admin(service.user_by_id(s, caller.user_id), caller.scope)
        user = service.create_user(s, body.name, is_admin=body.is_admin)
        audit.record(s, caller, "user.create", "user", user.name, after={"is_admin": user.is_admin})
        return user


@router.post("/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(body: TokenCreate, caller: CallerDep, rt: RuntimeDep) -> TokenCreated:
    """Mint a token for yourself (or, as an admin, for another user); the secret is shown once."""
    _unscoped(caller, "mint tokens")
    with rt.db.session() as s:
        me = service.user_by_id(s, caller.user_id)
        owner = me
        if body.user is not None and body.user != me.name:
            service.require_admin(me)
            owner = service.get_user(s, body.user)
        token, secret = service.create_token(s, owner, body.name)
        audit.record(
            s,
            caller,
            "token.create",
            "token",
            token.id,
            after={"user": owner.name, "name": token.name, "prefix": token.prefix},
        )
        return TokenCreated(**TokenOut.model_validate(token).model_dump(), token=secret)


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(caller: CallerDep, rt: RuntimeDep, user: str | None = None) -> list[Token]:
    """Your tokens, or (admins) another user's; secrets are never shown again."""
    _unscoped(caller, "manage tokens")
    with rt.db.read() as s:
        me = service.user_by_id(s, caller.user_id)
        owner = me
        if user is not None and user != me.name:
            service.require_admin(me)
            owner = service.get_user(s, user)
        return list(service.list_tokens(s, owner))


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(token_id: str, caller: CallerDep, rt: RuntimeDep) -> Token:
    """Revoke a token; it stops working at once on this server."""
    _unscoped(caller, "manage tokens")
    with rt.db.session() as s:
        token = service.revoke_token(s, service.user_by_id(s, caller.user_id), token_id)
        audit.record(s, caller, "token.revoke", "token", token.id, after={"prefix": token.prefix})
    return token  # this server's token cache forgot it at the commit (service.forget_revoked)


@router.post("/login-links", response_model=LoginLinkOut, status_code=status.HTTP_201_CREATED)
def create_login_link(request: Request, caller: CallerDep, rt: RuntimeDep) -> LoginLinkOut:
    """A one-time link that signs a browser in to the UI as you (``shipyard ui`` prints it)."""
    _unscoped(caller, "sign browsers in")
    with rt.db.session() as s:
        code, expires_at = service.create_login_link(s, service.user_by_id(s, caller.user_id))
        audit.record(s, caller, "login_link.create", "user", caller.name)
    base = str(request.base_url).rstrip("/")
    return LoginLinkOut(url=f"{base}/login?code={code}", expires_at=expires_at)
