"""A replica: one model package behind every protocol, with dynamic batching, in its own process.

State owned: the loaded model and its batching queue. The controller starts replicas as
``python -m shipyard.serving.replica --package DIR --port P`` and the router forwards requests
to them; ``shipyard serve DIR`` runs the same app standalone (the container entrypoint).
Inference runs off the event loop (but for sub-millisecond batches, see ``batching``), and the
GIL of one replica never serialises another.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard.errors import BadRequest, NotFound, PayloadTooLarge, ShipyardError
from shipyard.packages import LoadedModel, load_package
from shipyard.serving.batching import Batcher
from shipyard.serving.protocols import dumps, rows, tfserving, v2
from shipyard.serving.protocols.table import PROTOCOLS, Protocol, pattern
from shipyard.serving.wire import FRAME_PATH, decode_requests, encode_replies

log = logging.getLogger("shipyard.replica")
PROBLEM = "application/problem+json"
JSON = "application/json"
FRAME = "application/octet-stream"
Handler = Callable[[Request], Awaitable[Response]]
Predict = Callable[[bytes], Awaitable[tuple[bytes, int]]]  # body -> (reply body, batch rows)


async def _exit_with_parent() -> None:
    """A replica started by a server dies with it (no orphans after a server crash)."""
    parent = os.getppid()
    while True:
        await asyncio.sleep(1.0)
        if os.getppid() != parent:
            log.warning("the server that started this replica is gone; exiting")
            os._exit(0)


def create_replica_app(
    model: LoadedModel,
    name: str = "model",
    version: int | None = None,
    max_batch_size: int = 32,
    max_delay_ms: float = 5.0,
    max_body_bytes: int = 64 << 20,
    orphan_exit: bool = False,
) -> Starlette:
    """The replica's ASGI app for one loaded model (``orphan_exit``: die with the parent)."""
    # Compiled runtimes only: a python model may wait on anything, so it never runs on the loop.
    batcher = Batcher(
        model.run, max_batch_size, max_delay_ms, inline_small=model.manifest.flavor != "python"
    )
    signature = model.signature
    versions = [version] if version is not None else [1]
    registry = CollectorRegistry()
    batch_rows = Histogram(
        "shipyard_replica_batch_size",
        "Rows per executed batch.",
        registry=registry,
        buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
    )
    batcher.on_batch = lambda total, _requests: batch_rows.observe(total)

    def predictor(protocol: Protocol) -> Predict:
        decode, encode = protocol.decode, protocol.encode

        async def predict(body: bytes) -> tuple[bytes, int]:
            inputs, request = decode(signature, body)
            outputs, batch = await batcher.submit(inputs, rows(inputs))
            return dumps(encode(outputs, request, name, version)), batch

        return predict

    def route(predict: Predict) -> Handler:
        async def run(request: Request) -> Response:
            body = await request.body()
            status, content, headers = await _answer(
                predict, body if len(body) <= max_body_bytes else None, max_body_bytes
            )
            return Response(content, status, headers, PROBLEM if status != 200 else JSON)

        return run

    # Each inference path of the protocol table (and a standalone replica's extras).
    served = [(path, predictor(protocol)) for protocol in PROTOCOLS for path in protocol.on_replica]
    fast = [(pattern(path), predict) for path, predict in served]

    async def tf_status(_: Request) -> Response:
        return Response(
            dumps(tfserving.status(name, versions, True)), media_type="application/json"
        )

    async def tf_metadata(_: Request) -> Response:
        return Response(
            dumps(tfserving.metadata(name, versions[0], signature)), media_type="application/json"
        )

    async def v2_model(_: Request) -> Response:
        return Response(
            dumps(v2.metadata(name, versions, signature)), media_type="application/json"
        )

    async def ok(_: Request) -> Response:
        return Response(b'{"live": true, "ready": true}', media_type="application/json")

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/healthz", ok),
        Route("/metrics", metrics),
        *(Route(path, route(predict), methods=["POST"]) for path, predict in served),
        Route("/v1/models/{name}", tf_status),
        Route("/v1/models/{name}/versions/{version}", tf_status),
        Route("/v1/models/{name}/metadata", tf_metadata),
        Route("/v1/models/{name}/versions/{version}/metadata", tf_metadata),
        Route("/v2/health/live", ok),
        Route("/v2/health/ready", ok),
        Route("/v2/models/{name}", v2_model),
        Route("/v2/models/{name}/ready", ok),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        watch = asyncio.get_running_loop().create_task(_exit_with_parent()) if orphan_exit else None
        yield
        if watch is not None:
            watch.cancel()
        await batcher.close()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(_FastPredict, routes=fast, max_body_bytes=max_body_bytes)],
    )
    app.state.batcher = batcher
    return app


async def _answer(
    predict: Predict, body: bytes | None, limit: int
) -> tuple[int, bytes, dict[str, str]]:
    """Run a predict handler: (status, body, headers); errors become problem+json.

    ``body`` is None when the request's was larger than ``limit`` bytes.
    """
    try:
        if body is None:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
        content, batch = await predict(body)
        return 200, content, {"x-batch-size": str(batch)}
    except ShipyardError as exc:
        return exc.status, dumps(exc.problem()), {}
    except Exception:
        log.exception("inference failed")
        failed = ShipyardError("inference failed; see the replica's log")
        return failed.status, dumps(failed.problem()), {}


class _FastPredict:
    """Pure ASGI middleware: predict requests skip Starlette's routing and Request/Response.

    For a small model these layers cost as much as the inference; the answer (body, status,
    ``x-batch-size``, problem+json errors) is the one the routes give.
    """

    def __init__(
        self, app: ASGIApp, routes: Sequence[tuple[re.Pattern[str], Predict]], max_body_bytes: int
    ) -> None:
        self.app, self.routes, self.max_body_bytes = app, routes, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            if path == FRAME_PATH:
                await self._serve(self._frame, receive, send, FRAME)
                return
            predict = self._route(path)
            if predict is not None:
                await self._serve(predict, receive, send)
                return
        await self.app(scope, receive, send)

    def _route(self, path: str) -> Predict | None:
        for regex, predict in self.routes:
            if regex.match(path):
                return predict
        return None

    async def _frame(self, frame: bytes) -> tuple[bytes, int]:
        """The requests of a router's frame, run concurrently (batched together)."""
        try:
            requests = decode_requests(frame)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"malformed frame: {exc}") from None

        async def one(path: str, body: bytes) -> tuple[int, int, bytes]:
            predict = self._route(path)
            if predict is None:
                missing = NotFound(f"no predict route {path!r}")
                return missing.status, 0, dumps(missing.problem())
            status, content, headers = await _answer(predict, body, self.max_body_bytes)
            return status, int(headers.get("x-batch-size", 0)), content

        replies = await asyncio.gather(*(one(path, body) for path, body in requests))
        return encode_replies(list(replies)), len(replies)

    async def _serve(
        self, predict: Predict, receive: Receive, send: Send, media: str = JSON
    ) -> None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size <= self.max_body_bytes:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = None
        if size <= self.max_body_bytes:
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        status, content, extra = await _answer(predict, body, self.max_body_bytes)
        headers = [
            (b"content-type", media.encode() if status == 200 else PROBLEM.encode()),
            (b"content-length", str(len(content)).encode()),
            *((k.encode(), v.encode()) for k, v in extra.items()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def default_threads(replicas: int = 1) -> int:
    """Intra-op threads per replica: the machine's cores shared between its replicas."""
    return max(1, (os.cpu_count() or 1) // max(1, replicas))


def serve(
    package: str,
    host: str = "127.0.0.1",
    port: int = 8501,
    name: str = "model",
    version: int | None = None,
    max_batch_size: int = 32,
    max_delay_ms: float = 5.0,
    threads: int = 0,
    runtime: str | None = None,
    log_level: str = "warning",
    orphan_exit: bool = False,
) -> None:
    """Load a package and serve it until interrupted."""
    import uvicorn

    model = load_package(package, runtime=runtime, threads=threads or default_threads())
    app = create_replica_app(
        model, name, version, max_batch_size, max_delay_ms, orphan_exit=orphan_exit
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


def main() -> None:
    """``python -m shipyard.serving.replica``: what the controller runs for each replica."""
    p = argparse.ArgumentParser(description="A Shipyard replica (one model package).")
    p.add_argument("--package", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--name", default="model")
    p.add_argument("--version", type=int, default=None)
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--max-delay-ms", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--runtime", default=None)
    a = p.parse_args()
    serve(
        a.package,
        a.host,
        a.port,
        a.name,
        a.version,
        a.max_batch_size,
        a.max_delay_ms,
        a.threads,
        a.runtime,
    )


if __name__ == "__main__":
    main()
