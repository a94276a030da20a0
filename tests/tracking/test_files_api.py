"""Artifacts, images and checkpoints over HTTP: streamed, hashed, confined to their run."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import local_client

PROBLEM = "application/problem+json"


@pytest.fixture
def run_id(client: TestClient) -> str:
    return str(client.post("/api/runs", json={"project": "p"}).json()["id"])


def png(w: int = 4, h: int = 3) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((h, w), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_artifact_round_trip_with_sha256(client: TestClient, run_id: str) -> None:
    data = bytes(range(256)) * 5000
    digest = hashlib.sha256(data).hexdigest()
    r = client.put(
        f"/api/runs/{run_id}/artifacts/model/weights.bin",
        content=data,
        headers={"x-content-sha256": digest},
    )
    assert r.status_code == 201
    assert r.json()["sha256"] == digest and r.json()["size"] == len(data)
    r = client.get(f"/api/runs/{run_id}/artifacts/model/weights.bin")
    assert r.content == data and r.headers["x-content-sha256"] == digest
    listing = client.get(f"/api/runs/{run_id}/artifacts", params={"prefix": "model"}).json()
    assert [a["path"] for a in listing] == ["model/weights.bin"]
    assert client.get(f"/api/runs/{run_id}/artifacts", params={"prefix": "other"}).json() == []


def test_reupload_replaces_and_wrong_hash_is_refused(client: TestClient, run_id: str) -> None:
    client.put(f"/api/runs/{run_id}/artifacts/a.txt", content=b"one")
    client.put(f"/api/runs/{run_id}/artifacts/a.txt", content=b"two")
    assert client.get(f"/api/runs/{run_id}/artifacts/a.txt").content == b"two"
    r = client.put(
        f"/api/runs/{run_id}/artifacts/b.txt",
        content=b"three",
        headers={"x-content-sha256": "0" * 64},
    )
    assert r.status_code == 422
    assert "does not match" in r.json()["detail"]
    assert client.get(f"/api/runs/{run_id}/artifacts/b.txt").status_code == 404


@pytest.mark.parametrize(
    "path", ["a/%2E%2E/%2E%2E/etc/passwd", "%2E%2E/x", "a/%2E/b", "a%5C..%5Cb", "%2Fetc%2Fpasswd"]
)
def test_paths_escaping_the_run_are_400(client: TestClient, run_id: str, path: str) -> None:
    r = client.put(f"/api/runs/{run_id}/artifacts/{path}", content=b"x")
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["title"] == "Path not allowed"
    assert client.get(f"/api/runs/{run_id}/artifacts/{path}").status_code == 400


def test_unknown_artifact_and_run_are_404(client: TestClient, run_id: str) -> None:
    assert client.get(f"/api/runs/{run_id}/artifacts/nothing").status_code == 404
    assert client.put("/api/runs/nope/artifacts/a", content=b"x").status_code == 404
    assert client.get("/api/runs/nope/artifacts").status_code == 404


def test_oversized_artifact_is_413_and_not_kept(tmp_path: object, database_url: str) -> None:
    from shipyard.app import create_app
    from shipyard.config import Settings

    app = create_app(Settings(home=tmp_path, database_url=database_url, max_artifact_bytes=10))
    with local_client(app) as c:
        run_id = c.post("/api/runs", json={"project": "p"}).json()["id"]
        r = c.put(f"/api/runs/{run_id}/artifacts/big", content=b"x" * 100)
        assert r.status_code == 413
        assert c.get(f"/api/runs/{run_id}/artifacts").json() == []


def test_images_are_stored_as_png_with_step_and_caption(client: TestClient, run_id: str) -> None:
    for step in (0, 3, 3):
        r = client.post(
            f"/api/runs/{run_id}/images",
            content=png(),
            params={"key": "samples", "step": step, "caption": f"s{step}"},
        )
        assert r.status_code == 201, r.text
    images = client.get(f"/api/runs/{run_id}/images").json()
    assert [(i["step"], i["caption"], i["width"], i["height"]) for i in images] == [
        (0, "s0", 4, 3),
        (3, "s3", 4, 3),
        (3, "s3", 4, 3),
    ]
    assert len({i["path"] for i in images}) == 3
    got = client.get(f"/api/runs/{run_id}/artifacts/{images[0]['path']}").content
    assert got == png()


@pytest.mark.parametrize("content", [b"", b"not an image", b"GIF89a" + b"\0" * 20])
def test_non_png_images_are_400(client: TestClient, run_id: str, content: bytes) -> None:
    r = client.post(f"/api/runs/{run_id}/images", content=content, params={"key": "k"})
    assert r.status_code == 400
    assert r.headers["content-type"] == PROBLEM


def test_checkpoints_list_and_best(client: TestClient, run_id: str) -> None:
    for i, acc in enumerate([0.7, 0.9, 0.8]):
        client.put(f"/api/runs/{run_id}/artifacts/checkpoints/e{i}.pt", content=b"w")
        r = client.post(
            f"/api/runs/{run_id}/checkpoints",
            json={
                "path": f"checkpoints/e{i}.pt",
                "step": i,
                "metrics": {"acc": acc, "loss": 1 - acc},
            },
        )
        assert r.status_code == 201
    assert len(client.get(f"/api/runs/{run_id}/checkpoints").json()) == 3
    best = client.get(f"/api/runs/{run_id}/checkpoints", params={"best": "acc"}).json()
    assert [c["path"] for c in best] == ["checkpoints/e1.pt"]
    low = client.get(
        f"/api/runs/{run_id}/checkpoints", params={"best": "loss", "goal": "min"}
    ).json()
    assert low[0]["path"] == "checkpoints/e1.pt"
    assert client.get(f"/api/runs/{run_id}/checkpoints", params={"best": "f1"}).status_code == 404
    assert (
        client.get(
            f"/api/runs/{run_id}/checkpoints", params={"best": "acc", "goal": "up"}
        ).status_code
        == 422
    )


def test_checkpoint_of_missing_artifact_is_404(client: TestClient, run_id: str) -> None:
    r = client.post(f"/api/runs/{run_id}/checkpoints", json={"path": "nope.pt"})
    assert r.status_code == 404
    assert "has no artifact 'nope.pt'" in r.json()["detail"]
