"""Use cases on users, tokens and login links: who may, the change, and its audit record.

Server admins manage users and mint tokens for others; anyone manages their own tokens; a job's
token manages nothing. The API, the CLI's ``--local`` commands and the UI call these.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from shipyard import audit
from shipyard.auth import service
from shipyard.auth.actor import Actor
from shipyard.auth.tables import Token, User
from shipyard.errors import Forbidden


def require_admin(session: Session, actor: Actor) -> None:
    """Refuse unless the actor is a server admin acting with an unscoped token."""
    if actor.scope is not None:
        raise actor.scope.refuse("act as a server admin")
    if not actor.is_admin:
        raise Forbidden(f"user {actor.name!r} is not a server admin")
    if actor.user_id != "":  # the server's own actors have no user row
        service.require_admin(service.user_by_id(session, actor.user_id))


def _unscoped(actor: Actor, what: str) -> None:
    if actor.scope is not None:
        raise actor.scope.refuse(what)


def _owner(session: Session, actor: Actor, user: str | None) -> User:
    """The user whose tokens are meant: the actor's own, or (admins) ``user``'s."""
    if user is None or user == actor.name and actor.system is None:
        return service.user_by_id(session, actor.user_id)
    require_admin(session, actor)
    return service.get_user(session, user)


def users(session: Session, actor: Actor) -> list[User]:
    """Every user, by name (admins)."""
    require_admin(session, actor)
    return service.list_users(session)


def add_user(session: Session, actor: Actor, name: str, is_admin: bool = False) -> User:
    """Add a user (admins)."""
    require_admin(session, actor)
    user = service.create_user(session, name, is_admin=is_admin)
    audit.record(session, actor, "user.create", "user", user.name, after={"is_admin": is_admin})
    return user


def issue_token(
    session: Session, actor: Actor, name: str = "", user: str | None = None
) -> tuple[Token, str]:
    """Mint a token for the actor's user (or, admins, for ``user``); the secret is returned
    once and never stored."""
    _unscoped(actor, "mint tokens")
    owner = _owner(session, actor, user)
    token, secret = service.create_token(session, owner, name)
    audit.record(
        session,
        actor,
        "token.create",
        "token",
        token.id,
        after={"user": owner.name, "name": token.name, "prefix": token.prefix},
    )
    return token, secret


def tokens(session: Session, actor: Actor, user: str | None = None) -> list[Token]:
    """The actor's tokens, or (admins) ``user``'s, newest first."""
    _unscoped(actor, "manage tokens")
    return service.list_tokens(session, _owner(session, actor, user))


def revoke_token(session: Session, actor: Actor, token_id: str) -> Token:
    """Revoke one of the actor's tokens (admins: anyone's); it stops working at once here."""
    _unscoped(actor, "manage tokens")
    if actor.user_id == "":  # the server itself (the CLI's --local): any token
        token = service.revoke_token(session, service.local_user(session), token_id)
    else:
        token = service.revoke_token(session, service.user_by_id(session, actor.user_id), token_id)
    audit.record(session, actor, "token.revoke", "token", token.id, after={"prefix": token.prefix})
    return token


def login_link(session: Session, actor: Actor) -> tuple[str, datetime]:
    """A one-time code signing a browser in as the actor's user, and when it expires."""
    _unscoped(actor, "sign browsers in")
    code, expires_at = service.create_login_link(
        session, service.user_by_id(session, actor.user_id)
    )
    audit.record(session, actor, "login_link.create", "user", actor.name)
    return code, expires_at
