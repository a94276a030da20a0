"""Who is calling: the ``Actor`` of a request, the dependency every route uses."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from shipyard.auth import service
from shipyard.auth.actor import Actor
from shipyard.auth.scopes import TokenScope
from shipyard.errors import Unauthorized
from shipyard.runtime import Runtime, runtime, runtime_of

TOKEN_CACHE_S = 30.0  # a revoked token on another server process is refused within this
NO_TOKEN = (
    "this server requires a token: the SDK and CLI on this machine read SHIPYARD_HOME/token "
    "(local mode); elsewhere set SHIPYARD_TOKEN"
)


def actor_of(user_id: str, name: str, is_admin: bool, scope: TokenScope | None) -> Actor:
    """The actor a token stands for (a scoped token is no admin, whoever its user)."""
    return Actor(user_id, name, is_admin and scope is None, None, scope)


def _authorization(request: Request) -> str | None:
    # The raw header list (names are lower-case in ASGI): cheaper than ``request.headers``,
    # which raises and catches a KeyError for every request without the header.
    for key, value in request.scope["headers"]:
        if key == b"authorization":
            return str(value.decode("latin-1"))
    return None


def _bearer(request: Request) -> str | None:
    header = _authorization(request)
    if not header:
        return None
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return secret.strip()


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _with_address(c: Actor, request: Request) -> Actor:
    return Actor(c.user_id, c.name, c.is_admin, _address(request), c.scope)


def authenticate_secret(rt: Runtime, secret: str) -> Actor:
    """The actor a token stands for, through the short cache (reads the store on a miss)."""
    key = service.hash_token(secret)
    hit = rt.token_cache.get(key)
    if hit is None or hit[1] < time.monotonic():
        with rt.db.read() as s:
            user, scope = service.authenticate_token(s, secret)
            hit = (
                actor_of(user.id, user.name, user.is_admin, scope),
                time.monotonic() + TOKEN_CACHE_S,
            )
        rt.token_cache[key] = hit
    return hit[0]


def current_actor(request: Request, rt: Runtime) -> Actor:
    """Authenticate the request: a bearer token, or the local user when auth is none."""
    secret = _bearer(request)
    if secret is None:
        if rt.settings.auth_required:
            raise Unauthorized(NO_TOKEN)
        cached = rt.token_cache.get("")
        if cached is None:
            with rt.db.session() as s:
                user = service.local_user(s)
                cached = (actor_of(user.id, user.name, user.is_admin, None), float("inf"))
            rt.token_cache[""] = cached
        return _with_address(cached[0], request)
    return _with_address(authenticate_secret(rt, secret), request)


def cached_actor(request: Request, rt: Runtime) -> Actor | None:
    """The actor when the token cache answers (no store access); ``None`` on a miss."""
    secret = _bearer(request)
    if secret is None:
        if rt.settings.auth_required:
            raise Unauthorized(NO_TOKEN)
        hit = rt.token_cache.get("")
    else:
        hit = rt.token_cache.get(service.hash_token(secret))
        if hit is not None and hit[1] < time.monotonic():
            hit = None
    return None if hit is None else _with_address(hit[0], request)


async def request_actor(request: Request) -> Actor:
    """``current_actor`` as an async dependency: a cache hit costs no hop to a worker thread.

    Only a miss (a token not seen for ``TOKEN_CACHE_S``) reads the store, in the thread pool.
    """
    rt = runtime_of(request)
    hit = cached_actor(request, rt)
    if hit is not None:
        return hit
    return await run_in_threadpool(current_actor, request, rt)


ActorDep = Annotated[Actor, Depends(request_actor)]
RuntimeDep = Annotated[Runtime, Depends(runtime)]
