"""One replica app in process: the predict fast path answers as the routes do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from shipyard.packages import load_package
from shipyard.serving.replica import create_replica_app

X = np.random.default_rng(3).random((2, 64), dtype=np.float32)


@pytest.fixture
def client(packages: dict[int, Path]) -> Iterator[TestClient]:
    model = load_package(packages[1], threads=1)
    app = create_replica_app(model, "m", 1, max_body_bytes=10_000)
    with TestClient(app) as c:
        yield c


def test_every_protocol_and_its_errors(client: TestClient, packages: dict[int, Path]) -> None:
    want = load_package(packages[1]).predict(X)
    r = client.post("/v1/models/m:predict", json={"instances": X.tolist()})
    assert r.status_code == 200 and r.headers["x-batch-size"] == "2"
    assert r.headers["content-type"] == "application/json"
    np.testing.assert_allclose(r.json()["predictions"], want, atol=1e-5)
    r = client.post("/v1/models/m/versions/1:predict", json={"inputs": X.tolist()})
    np.testing.assert_allclose(r.json()["outputs"], want, atol=1e-5)
    tensor = {"name": "x", "shape": [2, 64], "datatype": "FP32", "data": X.ravel().tolist()}
    r = client.post("/v2/models/m/infer", json={"id": "7", "inputs": [tensor]})
    assert r.json()["id"] == "7" and r.json()["model_version"] == "1"
    r = client.post("/", json={"inputs": X[0].tolist()})
    np.testing.assert_allclose(r.json(), want[0], atol=1e-5)

    r = client.post("/v1/models/m:predict", content=b"{nope")
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["error"] == r.json()["detail"]
    r = client.post("/v1/models/m:predict", json={"instances": np.ones((200, 64)).tolist()})
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
    assert client.get("/v1/models/m").json()["model_version_status"][0]["state"] == "AVAILABLE"
