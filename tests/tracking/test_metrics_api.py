"""Metric batches: exactly-once, NaN/inf faithfully, summaries, history and downsampling."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from shipyard.tracking.metrics import Series, downsample
from tests.conftest import local_client


@pytest.fixture
def run_id(client: TestClient) -> str:
    r = client.post("/api/runs", json={"project": "p"})
    return str(r.json()["id"])


def post(client: TestClient, run_id: str, batch_id: str, *metrics: dict[str, object]) -> dict:
    r = client.post(
        f"/api/runs/{run_id}/log",
        content=orjson.dumps({"batch_id": batch_id, "metrics": list(metrics)}),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_resent_batch_is_acknowledged_once(client: TestClient, run_id: str) -> None:
    m = {"key": "loss", "steps": [0, 1, 2], "values": [3.0, 2.0, 1.0]}
    assert post(client, run_id, "b1", m) == {"points": 3, "duplicate": False}
    assert post(client, run_id, "b1", m) == {"points": 0, "duplicate": True}
    h = client.get(f"/api/runs/{run_id}/history", params={"key": "loss"}).json()
    assert h["step"] == [0, 1, 2] and h["value"] == [3.0, 2.0, 1.0] and h["total"] == 3


def test_nan_and_inf_round_trip_and_summary_ignores_nan(client: TestClient, run_id: str) -> None:
    body = (
        b'{"batch_id": "x", "metrics": [{"key": "v", "steps": [0, 1, 2, 3, 4],'
        b' "values": [1.5, NaN, "Infinity", "-Infinity", "NaN"]}]}'
    )
    r = client.post(f"/api/runs/{run_id}/log", content=body)
    assert r.status_code == 200
    h = client.get(f"/api/runs/{run_id}/history", params={"key": "v", "raw": True}).json()
    assert h["value"] == [1.5, "NaN", "Infinity", "-Infinity", "NaN"]
    s = client.get(f"/api/runs/{run_id}/metrics").json()["metrics"]["v"]
    assert s == {"last": "NaN", "min": "-Infinity", "max": "Infinity", "step": 4, "count": 5}


def test_summary_tracks_last_min_max_across_batches(client: TestClient, run_id: str) -> None:
    post(client, run_id, "1", {"key": "acc", "steps": [0, 1], "values": [0.2, 0.8]})
    post(
        client,
        run_id,
        "2",
        {"key": "acc", "steps": [2], "values": [0.5], "timestamps": [1700000000.0]},
    )
    s = client.get(f"/api/runs/{run_id}").json()["summary"]["acc"]
    assert s == {"last": 0.5, "min": 0.2, "max": 0.8, "step": 2, "count": 3}
    h = client.get(f"/api/runs/{run_id}/history", params={"key": "acc"}).json()
    assert h["timestamp"][2] == 1700000000.0


def test_many_small_batches_and_one_large_read_back_in_order(
    client: TestClient, run_id: str
) -> None:
    for i in range(30):  # merges into the tail chunk
        post(client, run_id, f"s{i}", {"key": "x", "steps": [i], "values": [float(i)]})
    big = np.arange(30, 200_030)
    post(client, run_id, "big", {"key": "x", "steps": big.tolist(), "values": big.tolist()})
    h = client.get(f"/api/runs/{run_id}/history", params={"key": "x", "raw": True}).json()
    assert h["total"] == 200_030
    assert h["step"] == list(range(200_030))
    assert h["value"][-1] == 200_029.0


def test_history_downsamples_long_series_keeping_extremes(client: TestClient, run_id: str) -> None:
    values = np.sin(np.arange(100_000) / 500.0)
    values[54_321] = 99.0
    values[77_777] = -99.0
    post(
        client, run_id, "1", {"key": "y", "steps": list(range(100_000)), "values": values.tolist()}
    )
    h = client.get(f"/api/runs/{run_id}/history", params={"key": "y", "max_points": 1000}).json()
    assert h["downsampled"] is True and h["total"] == 100_000
    assert len(h["value"]) <= 1000
    assert 99.0 in h["value"] and -99.0 in h["value"]
    assert h["step"] == sorted(h["step"]) and h["step"][0] == 0 and h["step"][-1] == 99_999


def test_downsample_is_identity_for_short_series() -> None:
    s = Series(np.arange(5), np.zeros(5), np.array([1.0, math.nan, 3, 4, 5]))
    assert downsample(s, 10) is s
    out = downsample(Series(np.arange(100), np.zeros(100), np.full(100, math.nan)), 10)
    assert len(out) <= 10


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"batch_id": "1", "metrics": [{"key": "a", "steps": [1, 2], "values": [1]}]}', 422),
        (b'{"batch_id": "", "metrics": []}', 422),
        (b'{"metrics": []}', 422),
        (b'{"batch_id": "1", "metrics": [{"key": "", "steps": [], "values": []}]}', 422),
        (b'{"batch_id": "1", "metrics": [{"key": "a", "steps": [1], "values": ["high"]}]}', 422),
        (b'{"batch_id": "1", "metrics": [{"key": "a", "steps', 400),
        (b"not json at all", 400),
    ],
)
def test_bad_batches_are_4xx(client: TestClient, run_id: str, body: bytes, status: int) -> None:
    r = client.post(f"/api/runs/{run_id}/log", content=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_oversized_batch_is_413(tmp_path: object, database_url: str) -> None:
    from shipyard.app import create_app
    from shipyard.config import Settings

    app = create_app(Settings(home=tmp_path, database_url=database_url, max_body_bytes=1000))
    with local_client(app) as c:
        run_id = c.post("/api/runs", json={"project": "p"}).json()["id"]
        body = orjson.dumps(
            {
                "batch_id": "1",
                "metrics": [{"key": "a", "steps": list(range(500)), "values": [0.5] * 500}],
            }
        )
        r = c.post(f"/api/runs/{run_id}/log", content=body)
        assert r.status_code == 413
        assert "larger than 1000 bytes" in r.json()["detail"]
        assert c.get(f"/api/runs/{run_id}/metrics").json() == {"metrics": {}}


def test_log_to_unknown_run_is_404(client: TestClient) -> None:
    r = client.post("/api/runs/nope/log", json={"batch_id": "1", "metrics": []})
    assert r.status_code == 404


def test_history_of_unknown_key_is_404_and_bad_params_422(client: TestClient, run_id: str) -> None:
    r = client.get(f"/api/runs/{run_id}/history", params={"key": "missing"})
    assert r.status_code == 404
    assert r.json()["detail"] == f"run '{run_id}' has no metric 'missing'"
    assert client.get(f"/api/runs/{run_id}/history").status_code == 422
    r = client.get(f"/api/runs/{run_id}/history", params={"key": "a", "max_points": 1})
    assert r.status_code == 422
