"""The composition root: ``create_app(settings)`` wires the store, the features and the services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard import __version__
from shipyard.audit.api import router as audit_router
from shipyard.auth import service as auth_service
from shipyard.auth.api import members as members_router
from shipyard.auth.api import router as auth_router
from shipyard.auth.guard import RequestGuard
from shipyard.config import AuthMode, Settings
from shipyard.data.api import router as data_router
from shipyard.db import Database
from shipyard.errors import ShipyardError, Unavailable, Unprocessable
from shipyard.inputs import refuse_unstorable
from shipyard.jobs.api import router as jobs_router
from shipyard.jobs.background import JobServices
from shipyard.jobs.sweep_api import router as sweep_router
from shipyard.jobs.worker_api import router as worker_router
from shipyard.migrations import upgrade
from shipyard.monitoring.api import router as monitoring_router
from shipyard.monitoring.evaluator import AlertEvaluator
from shipyard.observability import HttpMetrics
from shipyard.registry.api import router as registry_router
from shipyard.runtime import Runtime
from shipyard.serving.api import router as serving_router
from shipyard.serving.controller import Controller
from shipyard.serving.inference import InferenceFastPath
from shipyard.serving.inference import router as inference_router
from shipyard.serving.metrics import ServingMetrics
from shipyard.serving.router import Router
from shipyard.serving.runtime import Serving
from shipyard.storage import Storage
from shipyard.tracking.api import router as tracking_router
from shipyard.tracking.reaper import CrashReaper
from shipyard.ui import STATIC_DIR
from shipyard.ui import router as ui_router

log = logging.getLogger("shipyard")
PROBLEM = "application/problem+json"


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: object
) -> JSONResponse:
    """An RFC 9457 problem response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field_errors(errors: list[dict[str, object]]) -> list[dict[str, object]]:
    return [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg"), "type": e.get("type")}  # type: ignore[attr-defined]
        for e in errors
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Render every error as problem+json; unknown errors say nothing internal."""

    @app.exception_handler(ShipyardError)
    async def _shipyard(_: Request, exc: ShipyardError) -> Response:
        if exc.status >= 500:
            log.error("%s: %s", type(exc).__name__, exc.detail)
        return JSONResponse(
            exc.problem(), status_code=exc.status, media_type=PROBLEM, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _request(_: Request, exc: RequestValidationError) -> Response:
        errors = _field_errors(list(exc.errors()))
        bad_json = any(e["type"] == "json_invalid" for e in errors)
        if bad_json:
            return problem(400, "Bad request", "the request body is not valid JSON", errors=errors)
        return problem(422, Unprocessable.title, "the request has invalid fields", errors=errors)

    @app.exception_handler(ValidationError)
    async def _pydantic(_: Request, exc: ValidationError) -> Response:
        errors = _field_errors(list(exc.errors()))  # type: ignore[arg-type]
        if any(e["type"] == "json_invalid" for e in errors):
            return problem(400, "Bad request", "the request body is not valid JSON", errors=errors)
        return problem(422, Unprocessable.title, "the request has invalid fields", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, title, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _unknown(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500,
            "Internal error",
            "the server failed; its log has the details (run with --log-level debug)",
        )


class _Wrap:
    """Adapts a function ``app -> app`` to ``add_middleware``'s class-based interface."""

    def __init__(self, app: ASGIApp, wrap: Callable[[ASGIApp], ASGIApp]) -> None:
        self.app = wrap(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the server: migrate the store, mount every feature, start background services."""
    settings = settings or Settings()
    settings.check_exposure()
    db = Database(settings.database)
    upgrade(db.engine)
    if settings.auth is AuthMode.local:
        with db.session() as s:
            auth_service.ensure_local_token(s, settings.token_file)
    elif settings.auth is AuthMode.none:
        log.warning(
            "SHIPYARD_AUTH=none: every program on this machine (and any web page that gets past "
            "the Host and Origin checks) can act as the admin 'local'"
        )
    storage = Storage(settings.artifact_root, s3_endpoint_url=settings.s3_endpoint_url)
    rt = Runtime(settings=settings, db=db, storage=storage)
    auth_service.forget_revoked(db, rt.token_cache)
    reaper = CrashReaper(db, settings.heartbeat_timeout_s)
    jobs = JobServices(db, storage, settings)
    http_metrics = HttpMetrics()
    serving_metrics = ServingMetrics(
        http_metrics.registry, settings.serving_sample_size, settings.serving_drift_window
    )
    controller = Controller(db, storage, settings.home, serving_metrics)
    serving = Serving(
        controller,
        Router(
            controller,
            serving_metrics,
            settings.serving_cold_start_timeout_s,
            settings.serving_request_timeout_s,
        ),
        settings,
    )

    alerts = AlertEvaluator(rt, serving, http_metrics.registry)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        reaper.start()
        controller.start()
        jobs.start()
        alerts.start()
        try:
            yield
        finally:
            await alerts.stop()
            await jobs.stop()
            await controller.stop()
            await serving.router.close()
            await reaper.stop()
            db.dispose()

    app = FastAPI(
        title="Shipyard",
        version=__version__,
        description="Self-hosted deep learning as a service.",
        lifespan=lifespan,
        # Every route: a NUL or lone surrogate in a parameter or a JSON body is a 422.
        dependencies=[Depends(refuse_unstorable)],
    )
    app.state.runtime = rt
    app.state.serving = serving
    app.state.dispatcher, app.state.sweeper = jobs.dispatcher, jobs.sweeper
    app.state.alerts = alerts
    app.add_middleware(InferenceFastPath)  # inside the metrics, which time it too
    app.add_middleware(_Wrap, wrap=http_metrics.middleware)
    # Outside everything a route does, inference's fast path included: foreign hosts, foreign
    # origins and cross-site simple-request bodies are refused before any of it runs.
    app.add_middleware(
        RequestGuard,
        allowed_hosts=settings.allowed_hosts,
        cors_origins=settings.cors_origins,
        bind_host=settings.host,
    )
    if settings.cors_origins:  # answers (preflights too) for the pages meant to call the API
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["authorization", "content-type", "x-content-sha256"],
            expose_headers=["location", "retry-after"],
            max_age=600,
        )
    install_error_handlers(app)
    app.include_router(auth_router)
    app.include_router(tracking_router)
    app.include_router(members_router)
    app.include_router(registry_router)
    app.include_router(audit_router)
    app.include_router(serving_router)
    app.include_router(inference_router)
    app.include_router(data_router)
    app.include_router(jobs_router)
    app.include_router(worker_router)
    app.include_router(sweep_router)
    app.include_router(monitoring_router)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(ui_router)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz() -> dict[str, str]:
        """Readiness: the metadata store answers."""
        try:
            with db.read() as s:
                s.execute(text("SELECT 1"))
        except Exception as exc:
            raise Unavailable("the metadata store does not answer") from exc
        return {"status": "ready"}

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    def prometheus() -> Response:
        """Prometheus exposition of the server's metrics."""
        return http_metrics.render()

    return app
