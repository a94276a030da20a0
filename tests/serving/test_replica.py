"""One replica app in process: the predict fast path answers as the routes do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
from starlette.testclient import TestClient

from shipyard.packages import load_package
from shipyard.serving.replica import create_replica_app
from shipyard.serving.wire import (
    FRAME_PATH,
    decode_replies,
    decode_requests,
    encode_replies,
    encode_requests,
)

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


def test_a_frame_of_requests_answers_each_alone(client: TestClient) -> None:
    good = orjson.dumps({"instances": X.tolist()})
    frame = encode_requests(
        [
            ("/v1/models/m:predict", good),
            ("/v1/models/m:predict", b"{nope"),
            ("/v2/models/m/infer", b"{}"),
            ("/nowhere", good),
            ("/v1/models/m/versions/1:predict", good),
        ]
    )
    r = client.post(FRAME_PATH, content=frame)
    assert r.status_code == 200
    replies = decode_replies(r.content)
    assert [x.status for x in replies] == [200, 400, 400, 404, 200]
    assert replies[0].headers["x-batch-size"] in ("2", "4")  # merged with the last one, or not
    assert replies[0].body == replies[4].body
    assert replies[1].headers["content-type"] == "application/problem+json"
    assert "not valid JSON" in orjson.loads(replies[1].body)["detail"]
    assert client.post(FRAME_PATH, content=b"\x01\x00").status_code == 400  # truncated


def test_frame_encoding_round_trips() -> None:
    requests = [("/a", b""), ("/b/\u00e9", b"x" * 70_000)]
    assert decode_requests(encode_requests(requests)) == requests
    replies = decode_replies(encode_replies([(200, 3, b"{}"), (503, 0, b"no")]))
    assert [(x.status, x.headers.get("x-batch-size"), x.body) for x in replies] == [
        (200, "3", b"{}"),
        (503, None, b"no"),
    ]
