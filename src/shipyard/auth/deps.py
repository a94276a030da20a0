"""Who is calling: the ``Caller`` dependency every route uses."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from shipyard.auth import service
from shipyard.errors import Unauthorized
from shipyard.runtime import Runtime, runtime, runtime_of

TOKEN_CACHE_S = 30.0  # a revoked token on another server process is refused within this


@dataclass(frozen=True)
class Caller:
    """The authenticated user of a request (the local user in local mode)."""

    user_id: str
    name: str
    is_admin: bool
    address: str | None = None


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


def current_caller(request: Request, rt: Annotated[Runtime, Depends(runtime)]) -> Caller:
    """Authenticate the request: a bearer token, or the local user when auth is off."""
    secret = _bearer(request)
    if secret is None:
        if rt.settings.auth_required:
            raise Unauthorized("this server requires a token: set SHIPYARD_TOKEN")
        cached = rt.token_cache.get("")
        if cached is None:
            with rt.db.session() as s:
                user = service.local_user(s)
                cached = (user.id, user.name, user.is_admin, float("inf"))
            rt.token_cache[""] = cached
        return Caller(cached[0], cached[1], cached[2], _address(request))
    key = service.hash_token(secret)
    hit = rt.token_cache.get(key)
    if hit is None or hit[3] < time.monotonic():
        with rt.db.read() as s:
            user = service.authenticate(s, secret)
            hit = (user.id, user.name, user.is_admin, time.monotonic() + TOKEN_CACHE_S)
        rt.token_cache[key] = hit
    return Caller(hit[0], hit[1], hit[2], _address(request))


def cached_caller(request: Request, rt: Runtime) -> Caller | None:
    """The caller when the token cache answers (no store access); ``None`` on a miss."""
    secret = _bearer(request)
    if secret is None:
        if rt.settings.auth_required:
            raise Unauthorized("this server requires a token: set SHIPYARD_TOKEN")
        hit = rt.token_cache.get("")
    else:
        hit = rt.token_cache.get(service.hash_token(secret))
        if hit is not None and hit[3] < time.monotonic():
            hit = None
    return None if hit is None else Caller(hit[0], hit[1], hit[2], _address(request))


async def caller(request: Request) -> Caller:
    """``current_caller`` as an async dependency: a cache hit costs no hop to a worker thread.

    Only a miss (a token not seen for ``TOKEN_CACHE_S``) reads the store, in the thread pool.
    """
    rt = runtime_of(request)
    hit = cached_caller(request, rt)
    if hit is not None:
        return hit
    return await run_in_threadpool(current_caller, request, rt)


CallerDep = Annotated[Caller, Depends(caller)]
RuntimeDep = Annotated[Runtime, Depends(runtime)]
