"""Routes of serving: endpoint management (maintainers) and the inference protocols (viewers).

Protocol paths follow their specifications exactly (TF Serving REST, Open Inference V2, and a
Hugging Face-style body), so their existing clients work unchanged.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard import audit, auth
from shipyard.auth import Actor, ActorDep, Project, Role, RuntimeDep, cached_actor, current_actor
from shipyard.config import Settings
from shipyard.errors import NotFound, PayloadTooLarge, ShipyardError
from shipyard.packages import Signature
from shipyard.runtime import Runtime
from shipyard.serving import drift, service
from shipyard.serving.controller import Controller
from shipyard.serving.protocols import tfserving, v2
from shipyard.serving.router import Router
from shipyard.serving.schemas import (
    DriftOut,
    EndpointDeploy,
    EndpointOut,
    PredictionOut,
    Promote,
    Scale,
    StatsOut,
    StatsSummary,
    Traffic,
)
from shipyard.serving.tables import Endpoint
from shipyard.serving.traffic import WINDOW_S

router = APIRouter(tags=["serving"])
VersionInputs = tuple[Signature, dict[str, np.ndarray] | None]
ACCESS_CACHE_S = 10.0


class Serving:
    """The controller and router of this server, a short cache of who may invoke what, and the
    versions' reference data for drift."""

    def __init__(self, controller: Controller, router: Router) -> None:
        self.controller = controller
        self.router = router
        self.access: dict[tuple[str, str], float] = {}
        # (model id, version) -> signature and reference data; versions never change.
        self.references: dict[tuple[str, int], VersionInputs] = {}

    def version_inputs(
        self, s: Session, rt: Runtime, endpoint: Endpoint
    ) -> dict[int, VersionInputs]:
        """Signature and reference data (None: none) of each deployed version, cached."""
        out = {}
        for row in service.versions(s, endpoint):
            key = (endpoint.model_id, row.version)
            if key not in self.references:
                if len(self.references) >= 64:
                    self.references.clear()
                self.references[key] = service.version_inputs(s, rt.storage, endpoint, row.version)
            out[row.version] = self.references[key]
        return out

    def drift(self, name: str, inputs: dict[int, VersionInputs], settings: Settings) -> DriftOut:
        """The drift report of endpoint ``name``'s versions (``inputs``: ``version_inputs``)."""
        recent = self.router.metrics.traffic.of(name).recent_inputs()
        versions = [
            drift.version_drift(
                version,
                signature,
                reference,
                recent.get(str(version), []),
                settings.serving_drift_threshold,
                settings.serving_drift_min_rows,
            )
            for version, (signature, reference) in sorted(inputs.items())
        ]
        for v in versions:
            if v["status"] in drift.MEASURED:
                self.router.metrics.drift(name, str(v["version"]), *drift.totals(v["features"]))
        return DriftOut.model_validate(
            {
                "threshold": settings.serving_drift_threshold,
                "min_rows": settings.serving_drift_min_rows,
                "window": settings.serving_drift_window,
                "versions": versions,
            }
        )


async def serving(request: Request) -> Serving:
    s: Serving = request.app.state.serving
    return s


ServingDep = Annotated[Serving, Depends(serving)]


def endpoint_for(s: Session, caller: Actor, name: str, needed: Role) -> tuple[Endpoint, Project]:
    """The endpoint and its project, when the caller has ``needed`` on it (404/403 otherwise).
    Changes (maintainer and above) lock the endpoint's row against the controller's clean-up."""
    endpoint = service.get_endpoint(s, name, lock=needed >= Role.maintainer)
    project = auth.project_by_id(s, endpoint.project_id)
    assert project is not None
    auth.check_role(s, caller, project.id, needed, f"project {project.name!r}")
    return endpoint, project


def live_out(s: Session, sv: Serving, endpoint: Endpoint) -> EndpointOut:
    """The endpoint as stored, with the replicas this server runs for it now."""
    return service.endpoint_out(s, endpoint, sv.controller.replicas_of(endpoint.name))


@contextmanager
def _changing(
    rt: Runtime, sv: Serving, caller: Actor, name: str
) -> Iterator[tuple[Session, Endpoint, Project]]:
    """A maintainer's change to endpoint ``name``, in one transaction with the endpoint's row
    locked; once it is committed, the controller's next pass has taken it in before the reply
    (a request right after it is routed by the new state)."""
    with rt.db.session() as s:
        endpoint, project = endpoint_for(s, caller, name, Role.maintainer)
        yield s, endpoint, project
    sv.controller.settle()


def _record(
    s: Session,
    caller: Actor,
    action: str,
    p: Project,
    name: str,
    before: Any = None,
    after: Any = None,
) -> None:
    audit.record(
        s,
        caller,
        action,
        "endpoint",
        name,
        project_id=p.id,
        project=p.name,
        before=before,
        after=after,
    )


# -- management ---------------------------------------------------------------------------------


@router.post("/api/endpoints", response_model=EndpointOut, status_code=201)
def deploy(body: EndpointDeploy, caller: ActorDep, rt: RuntimeDep, sv: ServingDep) -> EndpointOut:
    """Create an endpoint, or roll it to another version (``canary`` to split the traffic)."""
    with rt.db.session() as s:
        project = auth.require_project(s, caller, body.project, Role.maintainer)
        endpoint, version, before = service.deploy(s, project, body, caller.user_id)
        _record(
            s,
            caller,
            "endpoint.deploy",
            project,
            endpoint.name,
            before={"traffic": before} if before else None,
            after={"version": version, "traffic": service.traffic(s, endpoint)},
        )
        out = live_out(s, sv, endpoint)
    sv.controller.settle()  # a request right after the reply finds the endpoint and version
    return out.model_copy(update={"replicas": sv.controller.replicas_of(out.name)})


@router.get("/api/endpoints", response_model=list[EndpointOut])
def list_endpoints(
    caller: ActorDep, rt: RuntimeDep, sv: ServingDep, project: str | None = None
) -> list[EndpointOut]:
    """Endpoints of one project, or of every project the caller can read."""
    with rt.db.read() as s:
        if project is not None:
            ids: list[str] | None = [auth.require_project(s, caller, project, Role.viewer).id]
        else:
            ids = auth.visible_projects(s, caller)
        return [live_out(s, sv, e) for e in service.list_endpoints(s, ids)]


@router.get("/api/endpoints/{name}", response_model=EndpointOut)
def get_endpoint(name: str, caller: ActorDep, rt: RuntimeDep, sv: ServingDep) -> EndpointOut:
    """An endpoint: traffic split, scaling bounds and live replicas."""
    with rt.db.read() as s:
        endpoint, _ = endpoint_for(s, caller, name, Role.viewer)
        return live_out(s, sv, endpoint)


@router.get("/api/endpoints/{name}/stats", response_model=StatsOut)
def endpoint_stats(
    name: str,
    caller: ActorDep,
    rt: RuntimeDep,
    sv: ServingDep,
    window_s: Annotated[int, Query(ge=10, le=WINDOW_S)] = 300,
    step_s: Annotated[int, Query(ge=1, le=60)] = 1,
) -> StatsOut:
    """Requests per second, error ratio and p50/p95/p99 latency over the last ``window_s``
    seconds, as this server routed them (its memory: it starts empty after a restart)."""
    with rt.db.read() as s:
        endpoint_for(s, caller, name, Role.viewer)
    traffic = sv.router.metrics.traffic.of(name)
    window = StatsSummary.model_validate(traffic.summary(window_s))
    return StatsOut(step_s=step_s, window=window, **traffic.series(window_s, step_s))


@router.get("/api/endpoints/{name}/predictions", response_model=list[PredictionOut])
def recent_predictions(
    name: str,
    caller: ActorDep,
    rt: RuntimeDep,
    sv: ServingDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> list[PredictionOut]:
    """The endpoint's latest requests and replies, newest first (``SHIPYARD_SERVING_SAMPLE_SIZE``
    of them are kept, each body cut to its first 2 KiB)."""
    with rt.db.read() as s:
        endpoint_for(s, caller, name, Role.viewer)
    return [
        PredictionOut.model_validate(p)
        for p in sv.router.metrics.traffic.of(name).predictions(limit)
    ]


@router.get("/api/endpoints/{name}/drift", response_model=DriftOut)
def endpoint_drift(name: str, caller: ActorDep, rt: RuntimeDep, sv: ServingDep) -> DriftOut:
    """Input drift of each deployed version: its latest answered requests (this server's
    memory, ``SHIPYARD_SERVING_DRIFT_WINDOW`` of them) against the reference data in its
    package, feature by feature (PSI and KS), most drifted first."""
    with rt.db.read() as s:
        endpoint, _ = endpoint_for(s, caller, name, Role.viewer)
        inputs = sv.version_inputs(s, rt, endpoint)
    return sv.drift(name, inputs, rt.settings)


@router.delete("/api/endpoints/{name}", status_code=204)
def delete_endpoint(name: str, caller: ActorDep, rt: RuntimeDep, sv: ServingDep) -> None:
    """Delete an endpoint; its replicas stop."""
    with _changing(rt, sv, caller, name) as (s, endpoint, project):
        before = service.traffic(s, endpoint)
        s.delete(endpoint)
        _record(s, caller, "endpoint.delete", project, name, before={"traffic": before})


@router.put("/api/endpoints/{name}/traffic", response_model=EndpointOut)
def set_traffic(
    name: str, body: Traffic, caller: ActorDep, rt: RuntimeDep, sv: ServingDep
) -> EndpointOut:
    """Split traffic between deployed versions (percentages adding up to 100)."""
    with _changing(rt, sv, caller, name) as (s, endpoint, project):
        before = service.set_traffic(s, endpoint, body.weights)
        _record(
            s,
            caller,
            "endpoint.traffic",
            project,
            name,
            before={"traffic": before},
            after={"traffic": body.weights},
        )
        s.flush()
        out = live_out(s, sv, endpoint)
    return out


@router.post("/api/endpoints/{name}/promote", response_model=EndpointOut)
def promote(
    name: str, body: Promote, caller: ActorDep, rt: RuntimeDep, sv: ServingDep
) -> EndpointOut:
    """Give one version all the traffic; the others drain and stop."""
    with _changing(rt, sv, caller, name) as (s, endpoint, project):
        before = service.promote(s, endpoint, body.version)
        _record(
            s,
            caller,
            "endpoint.promote",
            project,
            name,
            before={"traffic": before},
            after={"version": body.version},
        )
        s.flush()
        out = live_out(s, sv, endpoint)
    return out


@router.post("/api/endpoints/{name}/rollback", response_model=EndpointOut)
def rollback(name: str, caller: ActorDep, rt: RuntimeDep, sv: ServingDep) -> EndpointOut:
    """Send all traffic back to the version deployed before the newest."""
    with _changing(rt, sv, caller, name) as (s, endpoint, project):
        before = service.rollback(s, endpoint)
        s.flush()
        _record(
            s,
            caller,
            "endpoint.rollback",
            project,
            name,
            before={"traffic": before},
            after={"traffic": service.traffic(s, endpoint)},
        )
        out = live_out(s, sv, endpoint)
    return out


@router.put("/api/endpoints/{name}/scale", response_model=EndpointOut)
def scale(name: str, body: Scale, caller: ActorDep, rt: RuntimeDep, sv: ServingDep) -> EndpointOut:
    """Autoscaling bounds: between ``min_replicas`` and ``max_replicas`` (0 scales to zero)."""
    with _changing(rt, sv, caller, name) as (s, endpoint, project):
        before = service.scale(
            s,
            endpoint,
            body.min_replicas,
            body.max_replicas,
            body.target_in_flight,
            body.idle_timeout_s,
        )
        _record(
            s,
            caller,
            "endpoint.scale",
            project,
            name,
            before=before,
            after=body.model_dump(exclude_none=True),
        )
        out = live_out(s, sv, endpoint)
    return out


# -- inference protocols ------------------------------------------------------------------------


def _may_invoke(rt: Runtime, sv: Serving, caller: Actor, name: str) -> None:
    """Viewers of the endpoint's project may invoke it (cached for a few seconds)."""
    state = sv.router.state(name)
    if caller.is_admin:
        return
    key = (caller.user_id, state.project_id)
    if sv.access.get(key, 0.0) > time.monotonic():
        return
    with rt.db.read() as s:
        auth.check_role(s, caller, state.project_id, Role.viewer, f"endpoint {name!r}'s project")
    sv.access[key] = time.monotonic() + ACCESS_CACHE_S


async def _body(request: Request, limit: int) -> bytes:
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
    return body


def _version(text: str) -> int:
    if not (text.isascii() and text.isdigit()):  # "²" is a digit int() refuses
        raise NotFound(f"version {text!r} is not a number")
    return int(text)


@router.post("/v1/models/{name}:predict", include_in_schema=True)
async def tf_predict(
    name: str, request: Request, caller: ActorDep, rt: RuntimeDep, sv: ServingDep
) -> Response:
    """TensorFlow Serving predict (row ``instances`` or columnar ``inputs``)."""
    _may_invoke(rt, sv, caller, name)
    body = await _body(request, rt.settings.max_body_bytes)
    return await sv.router.forward(name, None, f"/v1/models/{name}:predict", body)


@router.post("/v1/models/{name}/versions/{version}:predict")
async def tf_predict_version(
    name: str, version: str, request: Request, caller: ActorDep, rt: RuntimeDep, sv: ServingDep
) -> Response:
    """TensorFlow Serving predict on one version."""
    _may_invoke(rt, sv, caller, name)
    body = await _body(request, rt.settings.max_body_bytes)
    return await sv.router.forward(name, _version(version), f"/v1/models/{name}:predict", body)


@router.get("/v1/models/{name}")
def tf_status(name: str, caller: ActorDep, rt: RuntimeDep, sv: ServingDep) -> JSONResponse:
    """TensorFlow Serving model status: each deployed version, AVAILABLE once a replica is up."""
    _may_invoke(rt, sv, caller, name)
    state = sv.router.state(name)
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
    _may_invoke(rt, sv, caller, name)
    state, v = sv.router.state(name), _version(version)
    if v not in state.deployed:
        raise NotFound(f"endpoint {name!r} does not serve version {v}")
    return JSONResponse(tfserving.status(name, [v], bool(state.ready(v))))


@router.get("/v1/models/{name}/metadata")
def tf_metadata(name: str, caller: ActorDep, rt: RuntimeDep, sv: ServingDep) -> JSONResponse:
    """TensorFlow Serving metadata: the serving_default signature of the main version."""
    _may_invoke(rt, sv, caller, name)
    state = sv.router.state(name)
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
    _may_invoke(rt, sv, caller, name)
    state = sv.router.state(name)
    if not state.deployed:
        raise NotFound(f"endpoint {name!r} serves no version")
    main = max(state.weights or {state.deployed[-1]: 1}, key=lambda v: state.weights.get(v, 1))
    return JSONResponse(v2.metadata(name, state.deployed, state.signatures[main]))


@router.get("/v2/models/{name}/ready")
def v2_model_ready(name: str, caller: ActorDep, rt: RuntimeDep, sv: ServingDep) -> JSONResponse:
    """Open Inference model readiness: 200 when a replica is ready, 503 otherwise."""
    _may_invoke(rt, sv, caller, name)
    ready = bool(sv.router.state(name).ready())
    return JSONResponse({"name": name, "ready": ready}, status_code=200 if ready else 503)


@router.post("/v2/models/{name}/infer")
async def v2_infer(
    name: str, request: Request, caller: ActorDep, rt: RuntimeDep, sv: ServingDep
) -> Response:
    """Open Inference infer with typed tensors."""
    _may_invoke(rt, sv, caller, name)
    body = await _body(request, rt.settings.max_body_bytes)
    return await sv.router.forward(name, None, f"/v2/models/{name}/infer", body)


@router.post("/v2/models/{name}/versions/{version}/infer")
async def v2_infer_version(
    name: str, version: str, request: Request, caller: ActorDep, rt: RuntimeDep, sv: ServingDep
) -> Response:
    """Open Inference infer on one version."""
    _may_invoke(rt, sv, caller, name)
    body = await _body(request, rt.settings.max_body_bytes)
    v = _version(version)
    return await sv.router.forward(name, v, f"/v2/models/{name}/versions/{v}/infer", body)


@router.post("/endpoints/{name}/predict")
async def hf_predict(
    name: str, request: Request, caller: ActorDep, rt: RuntimeDep, sv: ServingDep
) -> Response:
    """Hugging Face-style: ``{"inputs": ..., "parameters": {...}}``."""
    _may_invoke(rt, sv, caller, name)
    body = await _body(request, rt.settings.max_body_bytes)
    return await sv.router.forward(name, None, f"/endpoints/{name}/predict", body)


# -- the fast path for inference ----------------------------------------------------------------

# (route template, path regex, path on the replica) of each inference POST route above; the
# replica path's {name}/{version} are filled from the request.
_INVOKE_ROUTES = (
    (
        "/v1/models/{name}:predict",
        r"/v1/models/(?P<name>[^/]+):predict",
        "/v1/models/{name}:predict",
    ),
    (
        "/v1/models/{name}/versions/{version}:predict",
        r"/v1/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+):predict",
        "/v1/models/{name}:predict",
    ),
    ("/v2/models/{name}/infer", r"/v2/models/(?P<name>[^/]+)/infer", "/v2/models/{name}/infer"),
    (
        "/v2/models/{name}/versions/{version}/infer",
        r"/v2/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)/infer",
        "/v2/models/{name}/versions/{version}/infer",
    ),
    (
        "/endpoints/{name}/predict",
        r"/endpoints/(?P<name>[^/]+)/predict",
        "/endpoints/{name}/predict",
    ),
)
_PREFIXES = ("/v1/models/", "/v2/models/", "/endpoints/")


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
            return not (ok and isinstance(path, str) and path.startswith(_PREFIXES))
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
        self.routes = [
            (re.compile(f"^{regex}$"), templates[template], target)
            for template, regex, target in _INVOKE_ROUTES
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(_PREFIXES):
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
            _may_invoke(rt, sv, caller, name)
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
