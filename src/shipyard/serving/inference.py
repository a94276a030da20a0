"""Routes of the inference protocols (viewers of an endpoint's project invoke it) and their fast
path, a pure ASGI middleware answering the inference POSTs before FastAPI's routing.

The paths are the protocol table's (``serving.protocols.table``) and follow their specifications
exactly (TF Serving REST, Open Inference V2, and a Hugging Face-style body), so their existing
clients work unchanged. Who may invoke is ``service.may_invoke``, with its short cache.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard.auth import ActorDep, RuntimeDep, cached_actor, current_actor
from shipyard.errors import NotFound, PayloadTooLarge, ShipyardError
from shipyard.runtime import Runtime
from shipyard.serving import service
from shipyard.serving.protocols import tfserving, v2
from shipyard.serving.protocols.table import PATHS, PREFIXES, InferPath, Protocol
from shipyard.serving.runtime import Serving, ServingDep

router = APIRouter(tags=["serving"])


async def _body(request: Request, limit: int) -> bytes:
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
    return body


def _version(text: str) -> int:
    if not (text.isascii() and text.isdigit()):  # "²" is a digit int() refuses
        raise NotFound(f"version {text!r} is not a number")
    return int(text)


# -- the inference POSTs, one route per path of the protocol table ------------------------------


def _route(path: InferPath) -> Callable[..., Awaitable[Response]]:
    """The route of one inference path: the actor may invoke, the body fits, on to a replica."""
    if path.versioned:

        async def invoke_version(
            name: str,
            version: str,
            request: Request,
            caller: ActorDep,
            rt: RuntimeDep,
            sv: ServingDep,
        ) -> Response:
            service.may_invoke(rt.db, sv, caller, name)
            body = await _body(request, rt.settings.max_body_bytes)
            v = _version(version)
            return await sv.router.forward(name, v, path.replica.format(name=name, version=v), body)

        return invoke_version

    async def invoke(
        name: str, request: Request, caller: ActorDep, rt: RuntimeDep, sv: ServingDep
    ) -> Response:
        service.may_invoke(rt.db, sv, caller, name)
        body = await _body(request, rt.settings.max_body_bytes)
        return await sv.router.forward(name, None, path.replica.format(name=name), body)

    return invoke


def _route_name(protocol: Protocol, path: InferPath) -> str:
    return f"{protocol.name}_{'version_' if path.versioned else ''}infer"


for _protocol, _path in PATHS:
    router.add_api_route(
        _path.template,
        _route(_path),
        methods=["POST"],
        name=_route_name(_protocol, _path),
        description=_path.summary,
    )


# -- the protocols' status and metadata ---------------------------------------------------------


@router.get("/v1/models/{name}")
def tf_status(name: str, caller: ActorDep, rt: RuntimeDep, sv: ServingDep) -> JSONResponse:
    """TensorFlow Serving model status: each deployed version, AVAILABLE once a replica is up."""
    state = service.may_invoke(rt.db, sv, caller, name)
    statuses = [
        tfserving.status(name, [v], bool(state.ready(v)))["model_version_status"][0]
        for v in state.deployed
    ]
    return JSONResponse({"model_version_status": statuses})


@router.get("/v1/models/{name}/versions/{version}")
def tf_version_status(
    name: str, version: str, caller: ActorDep, rt: RuntimeDep, sv: ServingDep
) -> JSONResponse:
    """TensorFlow Serving status of one version."""
    state = service.may_invoke(rt.db, sv, caller, name)
    v = _version(version)
    if v not in state.deployed:
        raise NotFound(f"endpoint {name!r} does not serve version {v}")
    return JSONResponse(tfserving.status(name, [v], bool(state.ready(v))))


@router.get("/v1/models/{name}/metadata")
def tf_metadata(name: str, caller: ActorDep, rt: RuntimeDep, sv: ServingDep) -> JSONResponse:
    """TensorFlow Serving metadata: the serving_default signature of the main version."""
    state = service.may_invoke(rt.db, sv, caller, name)
    if not state.weights:
        raise NotFound(f"endpoint {name!r} serves no version")
    main = max(state.weights, key=lambda v: state.weights[v])
    return JSONResponse(tfserving.metadata(name, main, state.signatures[main]))


@router.get("/v2/health/live")
def v2_live() -> dict[str, bool]:
    """Open Inference: the server is live."""
    return {"live": True}


@router.get("/v2/health/ready")
def v2_ready() -> dict[str, bool]:
    """Open Inference: the server is ready (models report their own readiness)."""
    return {"ready": True}


@router.get("/v2/models/{name}")
def v2_metadata(name: str, caller: ActorDep, rt: RuntimeDep, sv: ServingDep) -> JSONResponse:
    """Open Inference model metadata: versions and typed inputs/outputs."""
    state = service.may_invoke(rt.db, sv, caller, name)
    if not state.deployed:
        raise NotFound(f"endpoint {name!r} serves no version")
    main = max(state.weights or {state.deployed[-1]: 1}, key=lambda v: state.weights.get(v, 1))
    return JSONResponse(v2.metadata(name, state.deployed, state.signatures[main]))


@router.get("/v2/models/{name}/ready")
def v2_model_ready(name: str, caller: ActorDep, rt: RuntimeDep, sv: ServingDep) -> JSONResponse:
    """Open Inference model readiness: 200 when a replica is ready, 503 otherwise."""
    ready = bool(service.may_invoke(rt.db, sv, caller, name).ready())
    return JSONResponse({"name": name, "ready": ready}, status_code=200 if ready else 503)


# -- the fast path ------------------------------------------------------------------------------


class _QuietInference(logging.Filter):
    """Drops uvicorn's access-log line of a successful inference request.

    ``/metrics`` counts and times those by endpoint, version and status; at thousands of
    requests a second the line (formatted, written and flushed each time) cost more CPU than
    the server's whole routing. Failed ones (status >= 400) and every other route still log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and args[1] == "POST":
            path, status = args[2], args[4]
            ok = isinstance(status, int) and status < 400
            return not (ok and isinstance(path, str) and path.startswith(PREFIXES))
        return True


_QUIET = _QuietInference()


class InferenceFastPath:
    """Pure ASGI middleware answering the inference POST routes before FastAPI's routing.

    For a small model, FastAPI's routing (a scan of every route of the server) and dependency
    solving cost more than the rest of the request. These routes need neither: this answers
    them with the same checks in the same order as the routes above (token, the caller's role
    in the endpoint's project, body size, version), the same problem+json errors (through the
    app's own ``ShipyardError`` handler; anything else propagates to the app's 500 handler),
    and sets ``scope["route"]`` so the HTTP metrics label them by template. The FastAPI routes
    stay: they document the protocols in OpenAPI and serve an app built without this.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        logging.getLogger("uvicorn.access").addFilter(_QUIET)  # once: the same filter object
        templates = {r.path: r for r in router.routes if isinstance(r, APIRoute)}
        self.routes = [(path.pattern, templates[path.template], path.replica) for _, path in PATHS]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(PREFIXES):
                for regex, route, target in self.routes:
                    m = regex.match(path)
                    if m is not None:
                        scope["route"] = route
                        await self._invoke(scope, receive, send, m.groupdict(), target)
                        return
        await self.app(scope, receive, send)

    async def _invoke(
        self, scope: Scope, receive: Receive, send: Send, params: dict[str, str], target: str
    ) -> None:
        request = Request(scope, receive)
        app = scope["app"]
        rt: Runtime = app.state.runtime
        sv: Serving = app.state.serving
        try:
            caller = cached_actor(request, rt)
            if caller is None:
                caller = await run_in_threadpool(current_actor, request, rt)
            name = params["name"]
            service.may_invoke(rt.db, sv, caller, name)
            body = await _read_body(receive, rt.settings.max_body_bytes)
            if body is None:
                return  # the client went away
            version = _version(params["version"]) if "version" in params else None
            path = target.format(name=name, version=version)
            response = await sv.router.forward(name, version, path, body)
        except ShipyardError as exc:
            response = await app.exception_handlers[ShipyardError](request, exc)
        await response(scope, receive, send)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or ``None`` when the client disconnected; 413 past ``limit`` (the
    rest is read and dropped, so the client still gets the answer)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif chunks:
            chunks.clear()
        if not message.get("more_body", False):
            break
    if size > limit:
        raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
