"""Users and tokens: create, authenticate, revoke. Tokens are random and stored as sha256."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.auth.tables import Token, User
from shipyard.db import utcnow
from shipyard.errors import Conflict, Forbidden, NotFound, Unauthorized

LOCAL_USER = "local"
TOKEN_PREFIX = "sy_"


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


def create_token(session: Session, user: User, name: str = "") -> tuple[Token, str]:
    """Mint a token for ``user``; returns the row and the secret (never stored)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = Token(user_id=user.id, name=name, token_hash=hash_token(secret), prefix=secret[:10])
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


def authenticate(session: Session, secret: str) -> User:
    """The user a bearer token acts as; 401 when it is unknown or revoked."""
    token = session.scalar(select(Token).where(Token.token_hash == hash_token(secret)))
    if token is None or token.revoked_at is not None:
        raise Unauthorized(
            "the token is unknown or revoked; create one with `shipyard tokens create`"
        )
    user = session.get(User, token.user_id)
    if user is None:
        raise Unauthorized("the token's user no longer exists")
    return user


def require_admin(user: User) -> None:
    """Refuse unless ``user`` is a server admin."""
    if not user.is_admin:
        raise Forbidden(f"user {user.name!r} is not a server admin")
