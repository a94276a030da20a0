"""The server's own Prometheus metrics: requests by route and status, latency, and store gauges."""

from __future__ import annotations

import time
from typing import Any

from fastapi import Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HttpMetrics:
    """Counters and a latency histogram, on a registry of this app's own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "shipyard_http_requests_total",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "shipyard_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["route", "method"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        # Children by label values (route templates are few): ``labels()`` on every request
        # costs more than the observation itself.
        self._latency: dict[tuple[str, str], Any] = {}
        self._requests: dict[tuple[str, str, int], Any] = {}

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Pure ASGI middleware timing and counting requests under their route template.

        (Starlette's BaseHTTPMiddleware costs about a millisecond a request: too much in
        front of inference.)
        """

        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            start = time.perf_counter()
            status = [500]

            async def send_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                route = scope.get("route")
                template = getattr(route, "path", "unmatched")
                method = scope.get("method", "")
                key = (template, method)
                latency = self._latency.get(key)
                if latency is None:
                    latency = self._latency[key] = self.latency.labels(template, method)
                latency.observe(time.perf_counter() - start)
                counted = (template, method, status[0])
                requests = self._requests.get(counted)
                if requests is None:
                    requests = self._requests[counted] = self.requests.labels(
                        template, method, str(status[0])
                    )
                requests.inc()

        return wrapped

    def render(self) -> Response:
        """The exposition text for ``/metrics``."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
