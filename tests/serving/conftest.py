"""Serving fixtures: small packages, a server with registered versions, helpers to wait on it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import torch
from torch import nn

from shipyard.app import create_app
from shipyard.auth import Actor
from shipyard.auth import service as auth_service
from shipyard.config import Settings
from shipyard.packages import save_model
from tests.conftest import ServerThread, bearer
from tests.registry.conftest import World, package_dir, world  # noqa: F401 (fixtures)

TRAIN = np.random.default_rng(11).normal(0, 1, (3000, 64)).astype(np.float32)  # reference data


def mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Two different MLPs on 64 features, as packages (version 1 and 2 of a model)."""
    out = {}
    for seed in (1, 2):
        path = tmp_path_factory.mktemp("pkg") / f"mlp{seed}"
        save_model(mlp(seed), path, input_example=np.ones((2, 64), np.float32))
        out[seed] = path
    return out


def actor(w: World, name: str) -> Actor:
    """The actor user ``name`` of a governed world is, as a route sees it: for calling the use
    cases directly."""
    with w.client.app.state.runtime.db.read() as s:  # type: ignore[attr-defined]
        user = auth_service.get_user(s, name)
        return Actor(user.id, user.name, user.is_admin)


class Deployer:
    """Registers packages and deploys endpoints on a live server, and waits for them."""

    def __init__(self, server: ServerThread, packages: dict[int, Path]) -> None:
        self.url = server.url
        self.token = str(server.token)  # the local token: what the SDK and CLI here send
        self.http = httpx.Client(base_url=self.url, timeout=60, headers=bearer(self.token))
        self.packages = packages
        self.run_id = self.http.post("/api/runs", json={"project": "p"}).json()["id"]

    def register(self, seed: int, model: str = "mlp") -> int:
        prefix = f"pkg{seed}"
        for file in sorted(self.packages[seed].rglob("*")):
            if file.is_file():
                rel = file.relative_to(self.packages[seed]).as_posix()
                self.http.put(
                    f"/api/runs/{self.run_id}/artifacts/{prefix}/{rel}", content=file.read_bytes()
                ).raise_for_status()
        r = self.http.post(
            f"/api/projects/p/models/{model}/versions",
            json={"source": f"runs:/{self.run_id}/{prefix}"},
        )
        r.raise_for_status()
        return int(r.json()["version"])

    def deploy(self, name: str = "ep", **body: Any) -> dict[str, Any]:
        r = self.http.post(
            "/api/endpoints", json={"name": name, "project": "p", "model": "mlp", **body}
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    def endpoint(self, name: str = "ep") -> dict[str, Any]:
        return dict(self.http.get(f"/api/endpoints/{name}").json())

    def wait(
        self, check: Callable[[dict[str, Any]], bool], name: str = "ep", timeout: float = 60
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            e = self.endpoint(name)
            if check(e):
                return e
            time.sleep(0.1)
        raise AssertionError(f"endpoint never got there: {self.endpoint(name)}")

    def ready(self, n: int, version: int | None = None, name: str = "ep") -> dict[str, Any]:
        return self.wait(
            lambda e: (
                sum(
                    1
                    for r in e["replicas"]
                    if r["state"] == "ready" and (version is None or r["version"] == version)
                )
                >= n
            ),
            name,
        )


class DriftServer(Deployer):
    def send(self, rows: np.ndarray, per_request: int = 50) -> None:
        """The rows in requests of ``per_request``, round-robin over the three protocols."""
        for i, start in enumerate(range(0, len(rows), per_request)):
            chunk = rows[start : start + per_request].tolist()
            path, body = [
                ("/v1/models/ep:predict", {"instances": chunk}),
                (
                    "/v2/models/ep/infer",
                    {
                        "inputs": [
                            {
                                "name": "x",
                                "shape": [len(chunk), 64],
                                "datatype": "FP32",
                                "data": chunk,
                            }
                        ]
                    },
                ),
                ("/endpoints/ep/predict", {"inputs": chunk}),
            ][i % 3]
            r = self.http.post(path, content=orjson.dumps(body))
            assert r.status_code == 200, r.text

    def drift(self, name: str = "ep") -> dict[str, Any]:
        r = self.http.get(f"/api/endpoints/{name}/drift")
        assert r.status_code == 200, r.text
        return dict(r.json())


@contextmanager
def reference_server(tmp_path: Path, **settings: Any) -> Iterator[DriftServer]:
    """A live server (SQLite unless ``database_url`` says) whose model ``mlp`` version 1 has
    reference data (``TRAIN``); drift over the last 20 requests, 500 rows needed."""
    package = tmp_path / "pkg-ref"
    save_model(mlp(1), package, input_example=TRAIN[:2], reference_data=TRAIN)
    options = {"serving_drift_window": 20, "serving_drift_min_rows": 500, **settings}
    with ServerThread(create_app(Settings(home=tmp_path / "home", **options))) as server:
        d = DriftServer(server, {1: package})
        d.register(1)
        yield d
        d.http.close()


@pytest.fixture
def deployer(server: ServerThread, packages: dict[int, Path]) -> Iterator[Deployer]:
    """A live server (SQLite and PostgreSQL) with versions 1 and 2 of model ``mlp``."""
    d = Deployer(server, packages)
    d.register(1)
    d.register(2)
    yield d
    d.http.close()


@pytest.fixture
def sqlite_deployer(tmp_path: Path, packages: dict[int, Path]) -> Iterator[Deployer]:
    """The same on SQLite only, for the slower fault and scaling tests."""
    with ServerThread(
        create_app(Settings(home=tmp_path / "home", serving_cold_start_timeout_s=120))
    ) as server:
        d = Deployer(server, packages)
        d.register(1)
        d.register(2)
        yield d
        d.http.close()
