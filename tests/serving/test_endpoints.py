"""Endpoints end to end over HTTP against real replica processes: every protocol, bad input,
canary, promote and rollback, rolling updates under load, crashes, scaling, metrics."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

import shipyard
from shipyard.client._config import ClientSettings
from shipyard.serving.inference import _QUIET
from tests.conftest import bearer
from tests.serving.conftest import Deployer, mlp

X = np.random.default_rng(0).random((3, 64), dtype=np.float32)


def want(seed: int, x: np.ndarray = X) -> np.ndarray:
    return mlp(seed)(torch.from_numpy(x)).detach().numpy()


def test_every_protocol_through_the_router(deployer: Deployer) -> None:
    deployer.deploy(version=1, replicas=1)
    deployer.ready(1)
    h = deployer.http
    r = h.post("/v1/models/ep:predict", json={"instances": X.tolist()})
    assert r.status_code == 200 and r.headers["x-model-version"] == "1"
    np.testing.assert_allclose(r.json()["predictions"], want(1), atol=1e-5)
    r = h.post("/v1/models/ep/versions/1:predict", json={"inputs": {"x": X.tolist()}})
    np.testing.assert_allclose(r.json()["outputs"], want(1), atol=1e-5)
    r = h.post(
        "/v2/models/ep/infer",
        json={
            "id": "42",
            "inputs": [
                {"name": "x", "shape": [3, 64], "datatype": "FP32", "data": X.reshape(-1).tolist()}
            ],
        },
    )
    body = r.json()
    assert body["model_name"] == "ep" and body["id"] == "42" and body["model_version"] == "1"
    (out,) = body["outputs"]
    assert out["shape"] == [3, 10] and out["datatype"] == "FP32"
    np.testing.assert_allclose(np.reshape(out["data"], (3, 10)), want(1), atol=1e-5)
    r = h.post("/endpoints/ep/predict", json={"inputs": X[0].tolist(), "parameters": {}})
    np.testing.assert_allclose(r.json(), want(1)[0], atol=1e-5)
    assert h.get("/v1/models/ep").json()["model_version_status"][0]["state"] == "AVAILABLE"
    meta = h.get("/v1/models/ep/metadata").json()["metadata"]["signature_def"]
    assert meta["signature_def"]["serving_default"]["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert h.get("/v2/models/ep").json()["inputs"] == [
        {"name": "x", "datatype": "FP32", "shape": [-1, 64]}
    ]
    assert h.get("/v2/models/ep/ready").json()["ready"] is True
    assert h.get("/v2/health/live").json() == {"live": True}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "detail"),
    [
        (
            "POST",
            "/v1/models/ep:predict",
            {"instances": [[1.0] * 10]},
            400,
            "input 'x': expected shape float32[-1, 64], got float64[1, 10]",
        ),
        ("POST", "/v1/models/ep:predict", {"nothing": 1}, 400, "exactly one of"),
        (
            "POST",
            "/v2/models/ep/infer",
            {"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP32", "data": [1.0]}]},
            400,
            "1 values do not fill shape [1, 64]",
        ),
        (
            "POST",
            "/v2/models/ep/infer",
            {"inputs": [{"name": "x"}]},
            400,
            "lacks shape, datatype, data",
        ),
        (
            "POST",
            "/v2/models/ep/infer",
            {"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP99", "data": []}]},
            400,
            "unknown datatype",
        ),
        ("POST", "/endpoints/ep/predict", {"inputs": "text"}, 400, "expected shape"),
        (
            "POST",
            "/v1/models/nope:predict",
            {"instances": [[1]]},
            404,
            "endpoint 'nope' does not exist",
        ),
        (
            "POST",
            "/v1/models/ep/versions/7:predict",
            {"instances": [[1]]},
            404,
            "does not serve version 7",
        ),
        ("GET", "/v2/models/nope", None, 404, "does not exist"),
    ],
)
def test_bad_inference_requests(
    deployer: Deployer, method: str, path: str, body: object, status: int, detail: str
) -> None:
    deployer.deploy(version=1)
    deployer.ready(1)
    r = deployer.http.request(method, path, json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert detail in r.json()["detail"]
    if status == 400:
        assert r.json()["error"] == r.json()["detail"]  # what TF Serving/KServe clients read


def test_malformed_json_and_oversized_body(deployer: Deployer) -> None:
    deployer.deploy(version=1)
    deployer.ready(1)
    r = deployer.http.post("/v2/models/ep/infer", content=b"{not json")
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
    r = deployer.http.post("/v1/models/ep:predict", content=b"[" + b"1," * 40_000_000 + b"1]")
    assert r.status_code == 413


def test_bad_request_in_a_batch_fails_alone(sqlite_deployer: Deployer) -> None:
    d = sqlite_deployer
    d.deploy(version=1, replicas=1, max_batch_size=64, max_delay_ms=50)
    d.ready(1)
    results: dict[int, httpx.Response] = {}

    def call(i: int) -> None:
        width = 10 if i == 5 else 64
        with httpx.Client(base_url=d.url, timeout=30, headers=bearer(d.token)) as c:
            results[i] = c.post(
                "/v1/models/ep:predict", json={"instances": np.ones((1, width)).tolist()}
            )

    threads = [threading.Thread(target=call, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[5].status_code == 400
    assert all(results[i].status_code == 200 for i in results if i != 5)


def test_concurrent_requests_get_their_own_answers(sqlite_deployer: Deployer) -> None:
    """Concurrent requests share frames to the replica and batches in it: each gets its own."""
    d = sqlite_deployer
    d.deploy(version=1, replicas=1, max_batch_size=64, max_delay_ms=5)
    d.ready(1)
    inputs = np.random.default_rng(5).random((24, 64), dtype=np.float32)
    expected = want(1, inputs)
    answers: dict[int, int] = {}
    wrong: list[str] = []

    def call(i: int) -> None:
        with httpx.Client(base_url=d.url, timeout=30, headers=bearer(d.token)) as c:
            for _ in range(5):
                r = c.post("/v1/models/ep:predict", json={"instances": inputs[i : i + 1].tolist()})
                if r.status_code != 200:
                    wrong.append(r.text)
                elif not np.allclose(r.json()["predictions"][0], expected[i], atol=1e-5):
                    wrong.append(f"request {i} got another's answer")
                answers[i] = answers.get(i, 0) + 1

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong and sum(answers.values()) == 5 * len(inputs)


def test_canary_promote_and_rollback(deployer: Deployer) -> None:
    deployer.deploy(version=1, replicas=1)
    e = deployer.deploy(version=2, canary=20)
    assert e["traffic"] == {"1": 80, "2": 20}
    deployer.ready(1, version=2)
    deployer.ready(1, version=1)  # both serve (a loaded machine may have made one blink)
    seen = Counter(
        deployer.http.post("/v1/models/ep:predict", json={"instances": X[:1].tolist()}).headers[
            "x-model-version"
        ]
        for _ in range(200)
    )
    assert 20 < seen["2"] < 70 and seen["1"] + seen["2"] == 200
    r = deployer.http.post("/v1/models/ep/versions/2:predict", json={"instances": X.tolist()})
    np.testing.assert_allclose(r.json()["predictions"], want(2), atol=1e-5)
    r = deployer.http.put("/api/endpoints/ep/traffic", json={"weights": {"1": 50, "2": 40}})
    assert r.status_code == 422 and "add up to 100" in r.json()["detail"]
    r = deployer.http.put("/api/endpoints/ep/traffic", json={"weights": {"9": 100}})
    assert r.status_code == 404
    assert deployer.http.post("/api/endpoints/ep/promote", json={"version": 2}).json()[
        "traffic"
    ] == {"2": 100}
    deployer.wait(lambda e: {r["version"] for r in e["replicas"]} == {2})
    r = deployer.http.post("/api/endpoints/ep/rollback")
    assert r.status_code == 409  # version 1 drained away: nothing earlier is deployed
    deployer.deploy(version=1)
    assert deployer.http.post("/api/endpoints/ep/rollback").json()["traffic"] == {"2": 100}


def test_rolling_update_under_load_drops_nothing(sqlite_deployer: Deployer) -> None:
    d = sqlite_deployer
    d.deploy(version=1, replicas=1)
    d.ready(1)
    stop = threading.Event()
    statuses: list[int] = []
    versions: list[str] = []

    def load() -> None:
        with httpx.Client(base_url=d.url, timeout=30, headers=bearer(d.token)) as c:
            deadline = time.monotonic() + 60
            while not stop.is_set() and time.monotonic() < deadline:
                r = c.post("/v1/models/ep:predict", json={"instances": X[:1].tolist()})
                statuses.append(r.status_code)
                versions.append(r.headers.get("x-model-version", "?"))

    workers = [threading.Thread(target=load) for _ in range(4)]
    for w in workers:
        w.start()
    time.sleep(0.5)
    d.deploy(version=2)  # roll to version 2 while requests flow
    d.wait(
        lambda e: (
            {r["version"] for r in e["replicas"]} == {2} and e["replicas"][0]["state"] == "ready"
        )
    )
    time.sleep(0.5)
    stop.set()
    for w in workers:
        w.join()
    assert len(statuses) > 50 and set(statuses) == {200}
    assert versions[0] == "1" and versions[-1] == "2"


def test_dead_replica_is_restarted_and_requests_survive(sqlite_deployer: Deployer) -> None:
    d = sqlite_deployer
    d.deploy(version=1, replicas=2)
    e = d.ready(2)
    victim = e["replicas"][0]
    os.kill(victim["pid"], signal.SIGKILL)
    for _ in range(20):  # in-flight and new requests go to the survivor or are retried
        r = d.http.post("/v1/models/ep:predict", json={"instances": X[:1].tolist()})
        assert r.status_code == 200
    e = d.wait(
        lambda e: (
            sum(r["restarts"] for r in e["replicas"]) >= 1
            and all(r["state"] == "ready" for r in e["replicas"])
        )
    )
    assert len(e["replicas"]) == 2


def test_scale_to_zero_and_cold_start(sqlite_deployer: Deployer) -> None:
    d = sqlite_deployer
    d.deploy(version=1, replicas=1)
    d.ready(1)
    r = d.http.put(
        "/api/endpoints/ep/scale",
        json={"min_replicas": 0, "max_replicas": 2, "idle_timeout_s": 0.5},
    )
    assert r.status_code == 200
    d.wait(lambda e: not e["replicas"])
    start = time.monotonic()
    r = d.http.post("/v1/models/ep:predict", json={"instances": X[:1].tolist()})
    assert r.status_code == 200  # held until a replica was ready
    assert time.monotonic() - start > 0.05
    assert 'shipyard_endpoint_cold_starts_total{endpoint="ep"}' in d.http.get("/metrics").text


def test_autoscale_up_under_load(sqlite_deployer: Deployer) -> None:
    d = sqlite_deployer
    d.deploy(version=1, min_replicas=1, max_replicas=2, target_in_flight=0.5)
    d.ready(1)
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=d.url, timeout=30, headers=bearer(d.token)) as c:
            while not stop.is_set():
                c.post("/v1/models/ep:predict", json={"instances": np.ones((64, 64)).tolist()})

    workers = [threading.Thread(target=load) for _ in range(6)]
    for w in workers:
        w.start()
    try:
        d.ready(2)
    finally:
        stop.set()
        for w in workers:
            w.join()


def test_metrics_per_endpoint_and_version(deployer: Deployer) -> None:
    deployer.deploy(version=1)
    deployer.ready(1)
    for _ in range(3):
        deployer.http.post("/v1/models/ep:predict", json={"instances": X.tolist()})
    text = deployer.http.get("/metrics").text
    assert 'shipyard_endpoint_requests_total{endpoint="ep",status="200",version="1"} 3.0' in text
    assert 'shipyard_endpoint_batch_size_bucket{endpoint="ep",le="4.0",version="1"} 3.0' in text
    assert 'shipyard_endpoint_replicas{endpoint="ep",state="ready",version="1"} 1.0' in text
    assert "shipyard_endpoint_request_duration_seconds_bucket" in text
    assert 'shipyard_endpoint_in_flight{endpoint="ep"} 0.0' in text


def test_recent_stats_and_predictions_sample(deployer: Deployer) -> None:
    """The last minutes by second (rate, error ratio, latency percentiles) and the latest
    request/reply pairs, newest first: what the endpoint page charts and lists."""
    deployer.deploy(version=1)
    deployer.ready(1)
    h = deployer.http
    for _ in range(4):
        assert h.post("/v1/models/ep:predict", json={"instances": X.tolist()}).is_success
    assert h.post("/v1/models/ep:predict", json={"instances": [[1.0] * 10]}).status_code == 400
    stats = h.get("/api/endpoints/ep/stats", params={"window_s": 60, "step_s": 5}).json()
    assert stats["step_s"] == 5 and len(stats["time"]) == 12 == len(stats["p99_ms"])
    assert stats["time"] == sorted(stats["time"]) and stats["time"][1] - stats["time"][0] == 5
    assert sum(stats["rate"]) * 5 == pytest.approx(5)
    busy = [i for i, r in enumerate(stats["rate"]) if r]
    errors = sum(stats["error_ratio"][i] * stats["rate"][i] * 5 for i in busy)
    assert errors == pytest.approx(1)
    window = stats["window"]  # the minute as one: percentiles of all five, not averaged
    assert window["requests"] == 5 and window["error_ratio"] == pytest.approx(0.2)
    assert window["rate"] == pytest.approx(5 / 60) and window["p50_ms"] <= window["p99_ms"]
    for i, r in enumerate(stats["rate"]):
        p50, p99 = stats["p50_ms"][i], stats["p99_ms"][i]
        assert (p50 is None) == (r == 0) and (r == 0 or 0 < p50 <= p99 < 30_000)
    newest, *older = h.get("/api/endpoints/ep/predictions", params={"limit": 3}).json()
    assert len(older) == 2 and newest["status"] == 400 and newest["version"] == "1"
    assert "expected shape" in newest["reply"] and newest["request"].startswith('{"instances"')
    ok = older[0]
    assert ok["status"] == 200 and ok["latency_ms"] > 0 and ok["at"] <= newest["at"]
    np.testing.assert_allclose(
        json.loads(ok["reply"])["predictions"], want(1), atol=1e-5
    )  # whole: under 2 KiB
    assert ok["request_bytes"] > 2048 and ok["request"].endswith("…")
    assert len(ok["request"].encode()) <= 2048 + len("…".encode())


def test_inference_fast_path_keeps_route_metrics_and_errors(deployer: Deployer) -> None:
    """The inference routes answered before FastAPI's routing are still counted by template."""
    deployer.deploy(version=1)
    deployer.ready(1)
    h = deployer.http
    assert h.post("/v1/models/ep/versions/1:predict", json={"instances": X.tolist()}).is_success
    r = h.post("/v1/models/ep/versions/x:predict", json={"instances": X.tolist()})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert "not a number" in r.json()["detail"]
    r = h.post("/endpoints/ep/predict", json={"inputs": X[0].tolist()})
    np.testing.assert_allclose(r.json(), want(1)[0], atol=1e-5)
    text = h.get("/metrics").text
    route = 'route="/v1/models/{name}/versions/{version}:predict"'
    assert f'shipyard_http_requests_total{{method="POST",{route},status="200"}} 1.0' in text
    assert f'shipyard_http_requests_total{{method="POST",{route},status="404"}} 1.0' in text


def test_successful_inference_is_not_access_logged() -> None:
    def line(method: str, path: str, status: int) -> logging.LogRecord:
        args = ("127.0.0.1:5000", method, path, "1.1", status)
        return logging.LogRecord("uvicorn.access", logging.INFO, "", 0, "%s", args, None)

    assert not _QUIET.filter(line("POST", "/v1/models/ep%3Apredict", 200))
    assert not _QUIET.filter(line("POST", "/v2/models/ep/infer", 200))
    assert _QUIET.filter(line("POST", "/v1/models/ep%3Apredict", 400))  # failures still log
    assert _QUIET.filter(line("GET", "/v1/models/ep", 200))
    assert _QUIET.filter(line("POST", "/api/runs", 201))


def test_deploy_bad_input(deployer: Deployer) -> None:
    h = deployer.http
    cases = [
        ({"name": "Bad_Name", "project": "p", "model": "mlp", "version": 1}, 422),
        ({"name": "x", "project": "p", "model": "mlp"}, 422),
        ({"name": "x", "project": "p", "model": "mlp", "version": 9}, 404),
        ({"name": "x", "project": "p", "model": "ghost", "version": 1}, 404),
        ({"name": "x", "project": "p", "model": "mlp", "alias": "nope"}, 404),
        (
            {
                "name": "x",
                "project": "p",
                "model": "mlp",
                "version": 1,
                "min_replicas": 3,
                "max_replicas": 2,
            },
            422,
        ),
    ]
    for body, status in cases:
        r = h.post("/api/endpoints", json=body)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert h.get("/api/endpoints/none").status_code == 404
    assert h.delete("/api/endpoints/none").status_code == 404


def test_the_sdk_deploys_predicts_splits_and_reads_traffic(
    deployer: Deployer, tmp_path: Path
) -> None:
    sdk = ClientSettings(url=deployer.url, home=tmp_path / "client", token=deployer.token)
    with shipyard.Client(settings=sdk) as client:
        e = client.deploy("p", "mlp", "sdk-ep", version=1, replicas=1, max_batch_size=8)
        assert e["traffic"] == {"1": 100} and e["max_batch_size"] == 8
        np.testing.assert_allclose(client.predict("sdk-ep", X), want(1), atol=1e-5)
        client.deploy("p", "mlp", "sdk-ep", version=2, canary=10)
        assert client.set_traffic("sdk-ep", {1: 50, 2: 50})["traffic"] == {"1": 50, "2": 50}
        got = client.predict("sdk-ep", X[:1].tolist(), version=2)  # waits for its replica
        np.testing.assert_allclose(got, want(2)[:1], atol=1e-5)
        assert [e["name"] for e in client.endpoints("p")] == ["sdk-ep"]
        assert client.endpoint("sdk-ep")["traffic"] == {"1": 50, "2": 50}
        stats = client.endpoint_stats("sdk-ep", window_s=60, step_s=60)
        assert stats["rate"][-1] * 60 >= 2 or stats["rate"][-2] * 60 >= 1  # a minute boundary
        newest = client.recent_predictions("sdk-ep", limit=1)[0]
        assert newest["version"] == "2" and newest["status"] == 200
        with pytest.raises(shipyard.errors.NotFound, match="does not serve version 7"):
            client.predict("sdk-ep", X, version=7)
        client.delete_endpoint("sdk-ep")
        with pytest.raises(shipyard.errors.NotFound):
            client.endpoint("sdk-ep")
