"""Blob storage: path confinement, and the same artifact round trip on a local folder and on S3.

The S3 case runs against moto's server, which speaks the S3 API over HTTP on 127.0.0.1 (there is
no MinIO server to install on our machines); s3fs talks to it exactly as to any S3 endpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipyard.app import create_app
from shipyard.config import Settings
from shipyard.errors import PathNotAllowed
from shipyard.storage import safe_path
from tests._postgres import free_port
from tests.conftest import local_client


@pytest.mark.parametrize("path", ["", "/abs", "../up", "a/../../b", "a/./b", "a\\b", "a\0b", "."])
def test_unsafe_paths_are_refused(path: str) -> None:
    with pytest.raises(PathNotAllowed):
        safe_path(path)


@pytest.mark.parametrize("path", ["a", "a/b/c.txt", "checkpoints/epoch-1.pt", "a..b/c"])
def test_safe_paths_pass(path: str) -> None:
    assert safe_path(path) == path


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    httpx.put(f"{url}/shipyard-test")  # create the bucket
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(params=["local", "s3"])
def artifact_settings(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    if request.param == "local":
        return Settings(home=tmp_path)
    endpoint = request.getfixturevalue("s3_endpoint")
    # botocore reads credentials from the environment; the server would get them the same way.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return Settings(
        home=tmp_path, artifacts=f"s3://shipyard-test/{tmp_path.name}", s3_endpoint_url=endpoint
    )


def test_artifact_round_trip_on_each_store(artifact_settings: Settings) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    with local_client(create_app(artifact_settings)) as client:
        run_id = client.post("/api/runs", json={"project": "p"}).json()["id"]
        r = client.put(f"/api/runs/{run_id}/artifacts/model/w.bin", content=data)
        assert r.status_code == 201, r.text
        assert client.get(f"/api/runs/{run_id}/artifacts/model/w.bin").content == data
        r = client.put(
            f"/api/runs/{run_id}/artifacts/x", content=b"1", headers={"x-content-sha256": "0" * 64}
        )
        assert r.status_code == 422
        assert client.get(f"/api/runs/{run_id}/artifacts/x").status_code == 404
