"""A real HTTP receiver for notifications, and a server evaluating alerts five times a second."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shipyard import serving
from tests.registry.conftest import World, package_dir, world  # noqa: F401 (fixtures)
from tests.serving.conftest import DriftServer, actor, reference_server


class Receiver:
    """Takes JSON POSTs on 127.0.0.1: ``/fail`` answers 500, any other path 200."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                receiver.received.append((self.path, json.loads(self.rfile.read(length))))
                self.send_response(500 if self.path == "/fail" else 200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def at(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body in self.received if p == path]

    def wait(self, path: str, n: int, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.at(path)) < n:
            assert time.monotonic() < deadline, f"{path} got {self.at(path)}, wanted {n}"
            time.sleep(0.05)
        return self.at(path)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def alerting(tmp_path: Path, database_url: str) -> Iterator[DriftServer]:
    """SQLite and PostgreSQL; alerts evaluated every 0.2 s; channels may send to private
    addresses; version 1 of ``mlp`` has reference data."""
    with reference_server(
        tmp_path,
        database_url=database_url,
        alert_interval_s=0.2,
        allow_private_webhooks=True,  # the tests' receivers listen on loopback (127.0.0.1)
    ) as d:
        yield d


def shifted(rows: int, column: int = 12) -> np.ndarray:
    x = np.random.default_rng(3).normal(0, 1, (rows, 64)).astype(np.float32)
    x[:, column] += 3
    return x


@pytest.fixture
def endpoint(request: pytest.FixtureRequest) -> str:
    """An endpoint ``ep`` of the governed world's project ``proj`` (scaled to zero) for rules
    to watch."""
    w: World = request.getfixturevalue("world")
    app = w.client.app
    db, sv = app.state.runtime.db, app.state.serving  # type: ignore[attr-defined]
    body = serving.EndpointDeploy(
        name="ep", project="proj", model="m", version=1, min_replicas=0, idle_timeout_s=0.01
    )
    with db.session() as s:
        serving.deploy(s, actor(w, "mona"), sv, body)
    return "ep"
