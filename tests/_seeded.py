"""Real objects on a live server for the tests that walk every route (tests/test_edge_values.py,
tests/test_schemathesis.py), so that a request reaches its handler instead of a 404.

``seed`` makes, through the API: a project with a member, two runs (metrics, an artifact, an
image, a checkpoint, a model package), a registered model version from that real package, an
alias and an alias request, a dataset version, an endpoint with no replicas (nothing loads), an
alert channel and rule, a worker of a class nobody runs, a job and a sweep queued on it, and a
token. ``path_values`` fills a route's path parameters with their names and ids; ``BODIES``
holds a valid body for each route that takes JSON.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from shipyard.config import Settings

BLOB = b"data"
SHA = hashlib.sha256(BLOB).hexdigest()
FILE = {"path": "a.txt", "size": len(BLOB), "sha256": SHA, "chunks": [SHA]}
# Scaled to zero: no replica starts unless a request comes (the walkers send none that would).
ENDPOINT = {"name": "ep", "project": "proj", "model": "m", "version": 1, "min_replicas": 0}
SWEEP = {
    "method": "grid",
    "metric": {"name": "acc", "goal": "maximize"},
    "parameters": {"x": {"values": [1, 2]}},
    "command": ["true", "${args}"],
    "resources": {"resource_class": "fake"},
}


@pytest.fixture(scope="session")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small torch package (an MLP on 8 features), made once."""
    import torch
    from torch import nn

    from shipyard.packages import save_model

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    path = tmp_path_factory.mktemp("edge-package") / "pkg"
    save_model(model, path, input_example=np.ones((2, 8), np.float32))
    return path


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """No local worker (jobs wait for the fake one), a loopback alert channel allowed, and a
    worker silent for the whole test still online."""
    return settings.model_copy(
        update={"executor": "none", "allow_private_webhooks": True, "worker_timeout_s": 3600.0}
    )


def auth_headers(server: Any) -> dict[str, str]:
    """The server's local token as a header, when it keeps one (conftest's ``ServerThread``)."""
    token = getattr(server, "token", None)
    return {"authorization": f"Bearer {token}"} if token else {}


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (255, 0, 0)).save(out, format="PNG")
    return out.getvalue()


@dataclass
class Seeded:
    """The ids of what ``seed`` made."""

    run: str = ""
    other_run: str = ""
    token: str = ""
    request: str = ""
    worker: str = ""
    job: str = ""
    sweep: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def _ok(r: httpx.Response) -> Any:
    assert r.status_code < 300, (r.request.method, r.request.url, r.status_code, r.text[:500])
    return r.json() if r.content else None


def seed(http: httpx.Client, package: Path) -> Seeded:
    """Make the objects every route's path parameters name (see the module docstring)."""
    w = Seeded()
    _ok(http.post("/api/projects", json={"name": "proj"}))
    _ok(http.post("/api/users", json={"name": "bob"}))
    _ok(http.put("/api/projects/proj/members/bob", json={"role": "viewer"}))
    w.token = _ok(http.post("/api/tokens", json={"name": "spare"}))["id"]
    w.run = _ok(http.post("/api/runs", json={"project": "proj", "config": {"lr": 0.1}}))["id"]
    w.other_run = _ok(http.post("/api/runs", json={"project": "proj"}))["id"]
    batch = {"batch_id": "seed", "metrics": [{"key": "loss", "steps": [0, 1], "values": [1, 0.5]}]}
    _ok(http.post(f"/api/runs/{w.run}/log", json=batch))
    _ok(http.put(f"/api/runs/{w.run}/artifacts/a.txt", content=BLOB))
    _ok(http.post(f"/api/runs/{w.run}/images", params={"key": "img"}, content=png()))
    _ok(http.post(f"/api/runs/{w.run}/checkpoints", json={"path": "a.txt", "step": 1}))
    for file in sorted(package.rglob("*")):
        if file.is_file():
            rel = file.relative_to(package).as_posix()
            _ok(http.put(f"/api/runs/{w.run}/artifacts/model/{rel}", content=file.read_bytes()))
    model = "/api/projects/proj/models/m"
    _ok(http.post(model + "/versions", json={"source": f"runs:/{w.run}/model"}))
    _ok(http.put(model + "/aliases/champion", json={"version": 1}))
    request = {"alias": "staging", "version": 1}
    w.request = _ok(http.post(model + "/alias-requests", json=request))["id"]
    _ok(http.put(f"/api/projects/proj/blobs/{SHA}", content=BLOB))
    _ok(http.post("/api/projects/proj/datasets/ds/versions", json={"files": [FILE]}))
    _ok(http.post("/api/endpoints", json=ENDPOINT))
    channel = {"name": "ch", "url": "http://127.0.0.1:9/hook"}  # nothing listens: fails fast
    _ok(http.post("/api/projects/proj/alerts/channels", json=channel))
    rule = {"name": "r", "endpoint": "ep", "metric": "rate", "threshold": 1, "channels": ["ch"]}
    _ok(http.post("/api/projects/proj/alerts/rules", json=rule))
    worker = {"name": "fake", "cpus": 1000, "resource_class": "fake"}
    w.worker = _ok(http.post("/api/workers", json=worker))["id"]
    _ok(http.post(f"/api/workers/{w.worker}/heartbeat", json={"running": []}))
    job = {"command": ["true"], "resource_class": "fake"}
    w.job = _ok(http.post("/api/projects/proj/jobs", json=job))["id"]
    w.sweep = _ok(http.post("/api/projects/proj/sweeps", json={"config": SWEEP}))["id"]
    return w


_ENDPOINT_PREFIXES = ("/api/endpoints/", "/v1/models/", "/v2/models/", "/endpoints/")


def path_values(template: str, w: Seeded) -> dict[str, str]:
    """The real value of each path parameter of route ``template``."""
    if template.startswith(_ENDPOINT_PREFIXES):
        name = "ep"
    elif "/datasets/" in template:
        name = "ds"
    elif "/alerts/channels/" in template:
        name = "ch"
    elif "/alerts/rules/" in template:
        name = "r"
    else:
        name = "m"
    values = {
        "project": "proj",
        "name": name,
        "run_id": w.run,
        "other_id": w.other_run,
        "path": "shipyard-model.yaml" if "/models/" in template else "a.txt",
        "version": "1",
        "alias": "champion",
        "request_id": w.request,
        "token_id": w.token,
        "user": "bob",
        "sha256": SHA,
        "job_id": w.job,
        "worker_id": w.worker,
        "sweep_id": w.sweep,
    }
    names = [part[1:-1] for part in template.split("/") if part.startswith("{")]
    names = [n.split("}")[0] for n in names]  # "{name}:predict"
    return {n: values[n] for n in names}


def query_values(template: str, w: Seeded) -> dict[str, str]:
    """Values for a route's required query parameters."""
    return {
        "/api/runs/{run_id}/history": {"key": "loss"},
        "/api/runs/{run_id}/images": {"key": "img"},
        "/api/models/resolve": {"uri": "models:/proj/m@champion"},
        "/api/jobs/{job_id}/logs": {"worker_id": w.worker, "attempt": "1"},
    }.get(template, {})


def bodies(w: Seeded) -> dict[tuple[str, str], Any]:
    """A valid JSON body for each route that takes one (the walkers change one field of it)."""
    m = "/api/projects/{project}/models/{name}"
    a = "/api/projects/{project}/alerts"
    return {
        ("POST", "/api/users"): {"name": "carol"},
        ("POST", "/api/tokens"): {"name": "t2"},
        ("POST", "/api/projects"): {"name": "proj2"},
        ("POST", "/api/runs"): {"project": "proj"},
        ("PATCH", "/api/runs/{run_id}"): {},
        ("POST", "/api/runs/{run_id}/log"): {
            "batch_id": "b1",
            "metrics": [{"key": "loss", "steps": [2], "values": [0.4], "timestamps": [1.0]}],
        },
        ("POST", "/api/runs/{run_id}/checkpoints"): {"path": "a.txt", "step": 2},
        ("PUT", "/api/projects/{project}/members/{user}"): {"role": "viewer"},
        ("POST", "/api/projects/{project}/models"): {"name": "m2"},
        ("PATCH", m): {},
        ("POST", m + "/versions"): {"source": f"runs:/{w.run}/model"},
        ("PATCH", m + "/versions/{version}"): {},
        ("PUT", m + "/aliases/{alias}"): {"version": 1},
        ("POST", m + "/alias-requests"): {"alias": "staging", "version": 1},
        ("POST", "/api/alias-requests/{request_id}/approve"): {},
        ("POST", "/api/alias-requests/{request_id}/reject"): {},
        ("PUT", "/api/projects/{project}/protected-aliases"): {"aliases": ["champion"]},
        ("POST", "/api/endpoints"): ENDPOINT,
        ("PUT", "/api/endpoints/{name}/traffic"): {"weights": {"1": 100}},
        ("POST", "/api/endpoints/{name}/promote"): {"version": 1},
        ("PUT", "/api/endpoints/{name}/scale"): {"min_replicas": 0, "max_replicas": 1},
        ("POST", "/api/projects/{project}/datasets/{name}/versions"): {"files": [FILE]},
        ("POST", "/api/projects/{project}/blobs/missing"): {"hashes": [SHA]},
        ("POST", "/api/runs/{run_id}/datasets"): {"ref": "ds@1"},
        ("POST", "/api/projects/{project}/jobs"): {
            "command": ["true"],
            "resource_class": "fake",
            "snapshot": [FILE],
            "datasets": ["ds@1"],
        },
        ("PUT", "/api/projects/{project}/quota"): {"max_gpus": 1},
        ("POST", "/api/workers"): {"name": "w2", "cpus": 1, "resource_class": "fake"},
        ("POST", "/api/workers/{worker_id}/heartbeat"): {"running": [w.job]},
        ("POST", "/api/jobs/{job_id}/state"): {
            "worker_id": w.worker,
            "attempt": 1,
            "state": "running",
        },
        ("POST", "/api/projects/{project}/sweeps"): {"config": SWEEP, "snapshot": [FILE]},
        ("POST", a + "/channels"): {"name": "ch2", "url": "http://127.0.0.1:9/x"},
        ("POST", a + "/rules"): {
            "name": "r2",
            "endpoint": "ep",
            "metric": "rate",
            "threshold": 1,
            "channels": ["ch"],
        },
        ("PATCH", a + "/rules/{name}"): {},
    }


def raw_bodies() -> dict[tuple[str, str], bytes]:
    """The body of each route that takes raw bytes."""
    return {
        ("POST", "/api/runs/{run_id}/images"): png(),
        ("PUT", "/api/runs/{run_id}/artifacts/{path}"): BLOB,
        ("PUT", "/api/projects/{project}/blobs/{sha256}"): BLOB,
        ("POST", "/api/jobs/{job_id}/logs"): b"a line\n",
    }
