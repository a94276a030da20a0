"""Users and tokens: create, authenticate, revoke. Tokens are random and stored as sha256.

Local mode's token lives in ``SHIPYARD_HOME/token`` (mode 0600), as Jupyter keeps its own: the
server writes it at first start and the SDK, the CLI and the UI's login link use it. A browser
signs in through a one-time login link (``/login?code=``): the code is stored hashed, used once,
and exchanged for a token of the browser's own that expires with its cookie.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.auth.scopes import TokenScope
from shipyard.auth.tables import LoginLink, Token, User
from shipyard.db import Database, utcnow
from shipyard.errors import Conflict, Forbidden, NotFound, Unauthorized

LOCAL_USER = "local"
TOKEN_PREFIX = "sy_"
LOCAL_TOKEN_NAME = "local token (SHIPYARD_HOME/token)"
LOGIN_LINK_TTL = timedelta(hours=24)  # long enough for the link `shipyard server` printed
BROWSER_TOKEN_TTL = timedelta(days=7)  # the UI cookie's own lifetime


def hash_token(secret: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_user(session: Session, name: str, *, is_admin: bool = False) -> User:
    """Add a user; names are unique."""
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise Conflict(f"user {name!r} already exists")
    user = User(name=name, is_admin=is_admin)
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, name: str) -> User:
    """The user called ``name``."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"user {name!r} does not exist")
    return user


def user_by_id(session: Session, user_id: str) -> User:
    """The user with ``user_id``; 401 if it was deleted since the token was checked."""
    user = session.get(User, user_id)
    if user is None:
        raise Unauthorized("the caller's user no longer exists")
    return user


def user_names(session: Session, user_ids: set[str]) -> dict[str, str]:
    """Names of users by id (for replies that show who did what)."""
    if not user_ids:
        return {}
    return {
        uid: name
        for uid, name in session.execute(select(User.id, User.name).where(User.id.in_(user_ids)))
    }


def list_users(session: Session) -> list[User]:
    """Every user, by name."""
    return list(session.scalars(select(User).order_by(User.name)))


def local_user(session: Session) -> User:
    """The user that anonymous requests act as in local mode (created on first use)."""
    user = session.scalar(select(User).where(User.name == LOCAL_USER))
    if user is None:
        user = User(name=LOCAL_USER, is_admin=True)
        session.add(user)
        session.flush()
    return user


def create_token(
    session: Session,
    user: User,
    name: str = "",
    *,
    scope: TokenScope | None = None,
    expires_at: datetime | None = None,
    secret: str | None = None,
) -> tuple[Token, str]:
    """Mint a token for ``user`` (scoped to a job when ``scope`` is given); returns the row and
    the secret, which is never stored (``secret`` registers a given one: the local token)."""
    secret = secret or TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = Token(
        user_id=user.id,
        name=name,
        token_hash=hash_token(secret),
        prefix=secret[:10],
        scope=scope.to_json() if scope else None,
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    return token, secret


def list_tokens(session: Session, user: User) -> list[Token]:
    """The tokens of ``user``, newest first."""
    stmt = select(Token).where(Token.user_id == user.id).order_by(Token.created_at.desc())
    return list(session.scalars(stmt))


def revoke_token(session: Session, user: User, token_id: str) -> Token:
    """Revoke one of ``user``'s tokens (admins may revoke any)."""
    token = session.get(Token, token_id)
    if token is None or (token.user_id != user.id and not user.is_admin):
        raise NotFound(f"token {token_id!r} does not exist")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token


def forget_revoked(db: Database, cache: dict[str, Any]) -> None:
    """Empty ``cache`` (tokens by hash) whenever a transaction on ``db`` that revoked a token
    commits, whatever revoked it (the API, a job's end): a revoked token stops working on this
    server at once, not when its cache entry expires."""

    def flushed(session: Session, _context: Any) -> None:
        if any(isinstance(o, Token) and o.revoked_at is not None for o in session.dirty):
            session.info["revoked_token"] = True

    def committed(session: Session) -> None:
        if session.info.pop("revoked_token", False):
            cache.clear()

    db.listen("after_flush", flushed)
    db.listen("after_commit", committed)


def authenticate(session: Session, secret: str) -> User:
    """The user a bearer token acts as; 401 when it is unknown, revoked or expired."""
    return authenticate_token(session, secret)[0]


def authenticate_token(session: Session, secret: str) -> tuple[User, TokenScope | None]:
    """The user a bearer token acts as and the token's scope (None: the user's full reach)."""
    token = session.scalar(select(Token).where(Token.token_hash == hash_token(secret)))
    if token is None or token.revoked_at is not None:
        raise Unauthorized(
            "the token is unknown or revoked; create one with `shipyard tokens create`"
        )
    if token.expires_at is not None and token.expires_at <= utcnow():
        raise Unauthorized("the token has expired; sign in again or create a new one")
    user = session.get(User, token.user_id)
    if user is None:
        raise Unauthorized("the token's user no longer exists")
    scope = TokenScope.from_json(token.scope, user.is_admin) if token.scope else None
    return user, scope


def ensure_local_token(session: Session, path: Path) -> str:
    """The local admin's token, kept in ``path`` (mode 0600): the one already there when this
    store knows it (or learns it: several stores may share a home), else a new one."""
    user = local_user(session)
    secret = _read_secret(path)
    if secret is not None:
        token = session.scalar(select(Token).where(Token.token_hash == hash_token(secret)))
        if token is None:
            create_token(session, user, LOCAL_TOKEN_NAME, secret=secret)
            return secret
        if token.user_id == user.id and token.revoked_at is None and token.scope is None:
            os.chmod(path, 0o600)
            return secret
    _, secret = create_token(session, user, LOCAL_TOKEN_NAME)
    write_secret(path, secret)
    return secret


def _read_secret(path: Path) -> str | None:
    try:
        secret = path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return secret if secret.startswith(TOKEN_PREFIX) and len(secret) > 20 else None


def write_secret(path: Path, secret: str) -> None:
    """Write a secret readable by its owner only, atomically (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    os.replace(tmp, path)


def create_login_link(session: Session, user: User) -> tuple[str, datetime]:
    """A one-time code signing a browser in as ``user``; returns it and when it expires."""
    code = secrets.token_urlsafe(24)
    expires_at = utcnow() + LOGIN_LINK_TTL
    session.add(LoginLink(code_hash=hash_token(code), user_id=user.id, expires_at=expires_at))
    session.flush()
    return code, expires_at


def redeem_login_link(session: Session, code: str) -> tuple[User, str]:
    """Use a login code once: the user and a new browser token (401 when the code is unknown,
    used or expired)."""
    link = session.get(LoginLink, hash_token(code), with_for_update=True)
    now = utcnow()
    if link is None or link.used_at is not None or link.expires_at <= now:
        raise Unauthorized(
            "this login link is unknown, used or expired: run `shipyard ui` for a new one"
        )
    link.used_at = now
    user = session.get(User, link.user_id)
    if user is None:
        raise Unauthorized("the login link's user no longer exists")
    _, secret = create_token(session, user, "browser login", expires_at=now + BROWSER_TOKEN_TTL)
    return user, secret


def require_admin(user: User, scope: TokenScope | None = None) -> None:
    """Refuse unless ``user`` is a server admin acting with an unscoped token."""
    if scope is not None:
        raise scope.refuse("act as a server admin")
    if not user.is_admin:
        raise Forbidden(f"user {user.name!r} is not a server admin")
