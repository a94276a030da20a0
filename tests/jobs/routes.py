"""The data and jobs routes in the cross-cutting route tables: the authorization matrix (least
role of each route), the telemetry exempt from auditing, and a bad request for each route."""

from __future__ import annotations

import hashlib
import itertools
import time
from typing import Any

from tests.registry.conftest import World

BLOB = b"data"
SHA = hashlib.sha256(BLOB).hexdigest()
_n = itertools.count()
Build = Any


def _cache(w: World) -> dict[str, Any]:
    cache: dict[str, Any] | None = getattr(w, "_jobs", None)
    if cache is None:
        cache = {}
        w._jobs = cache  # type: ignore[attr-defined]
    return cache


def dataset(w: World) -> None:
    """A blob and dataset ``ds`` version 1 in project ``proj``."""
    cache = _cache(w)
    if "dataset" not in cache:
        w.ok("root", "PUT", f"/api/projects/proj/blobs/{SHA}", content=BLOB)
        entry = {"path": "a.txt", "size": len(BLOB), "sha256": SHA, "chunks": [SHA]}
        w.ok("root", "POST", "/api/projects/proj/datasets/ds/versions", json={"files": [entry]})
        cache["dataset"] = True


def fake_worker(w: World) -> str:
    """A worker of class ``fake`` nobody runs: jobs of that class stay where the test puts them."""
    cache = _cache(w)
    if "worker" not in cache:
        body = {"name": "fake", "cpus": 1000, "resource_class": "fake"}
        cache["worker"] = w.ok("root", "POST", "/api/workers", json=body)["id"]
    w.ok("root", "POST", f"/api/workers/{cache['worker']}/heartbeat", json={"running": []})
    return str(cache["worker"])


def fake_job(w: World, claim: bool = True) -> tuple[str, str]:
    """A job assigned to the fake worker (and claimed by it)."""
    wid = fake_worker(w)
    body = {"command": ["true"], "resource_class": "fake"}
    job = w.ok("root", "POST", "/api/projects/proj/jobs", json=body)["id"]
    deadline = time.monotonic() + 10
    while claim:
        w.client.app.state.dispatcher.run_once()  # type: ignore[attr-defined]
        claimed = w.ok("root", "POST", f"/api/workers/{wid}/claim")
        if any(a["job_id"] == job for a in claimed):
            break
        assert time.monotonic() < deadline, "the fake worker never got its job"
    return job, wid


def any_job(w: World) -> str:
    cache = _cache(w)
    if "job" not in cache:
        cache["job"] = fake_job(w)[0]
    return str(cache["job"])


SWEEP = {
    "method": "grid",
    "metric": {"name": "acc", "goal": "maximize"},
    "parameters": {"x": {"values": [1]}},
    "command": ["true", "${args}"],
}


def fresh_sweep(w: World) -> str:
    return str(w.ok("root", "POST", "/api/projects/proj/sweeps", json={"config": SWEEP})["id"])


def any_sweep(w: World) -> str:
    cache = _cache(w)
    if "sweep" not in cache:
        cache["sweep"] = fresh_sweep(w)
    return str(cache["sweep"])


def _fixed(url: str, body: Any = None, setup: Any = None) -> Build:
    def build(w: World, who: str) -> tuple[str, Any]:
        if setup is not None:
            setup(w)
        return url, body

    return build


def _version(w: World, who: str) -> tuple[str, Any]:
    dataset(w)
    entry = {"path": f"f{next(_n)}.txt", "size": len(BLOB), "sha256": SHA, "chunks": [SHA]}
    return "/api/projects/proj/datasets/ds/versions", {"files": [entry]}


def _state(w: World, who: str) -> tuple[str, Any]:
    job, wid = fake_job(w)
    return f"/api/jobs/{job}/state", {"worker_id": wid, "attempt": 1, "state": "running"}


def _log(w: World, who: str) -> tuple[str, Any]:
    job, wid = fake_job(w)
    return f"/api/jobs/{job}/logs?worker_id={wid}&attempt=1", "a line"


def _worker_gone(w: World, who: str) -> tuple[str, Any]:
    wid = w.ok("root", "POST", "/api/workers", json={"name": f"gone{next(_n)}", "cpus": 1})["id"]
    return f"/api/workers/{wid}", None


P = "/api/projects/{project}"
DS = P + "/datasets/{name}"
MATRIX: dict[tuple[str, str], tuple[str, Build]] = {
    ("GET", P + "/datasets"): ("viewer", _fixed("/api/projects/proj/datasets")),
    ("GET", DS): ("viewer", _fixed("/api/projects/proj/datasets/ds", setup=dataset)),
    ("GET", DS + "/versions/{version}"): (
        "viewer",
        _fixed("/api/projects/proj/datasets/ds/versions/latest", setup=dataset),
    ),
    ("POST", DS + "/versions"): ("developer", _version),
    ("POST", P + "/blobs/missing"): (
        "developer",
        _fixed("/api/projects/proj/blobs/missing", {"hashes": [SHA]}),
    ),
    ("PUT", P + "/blobs/{sha256}"): (
        "developer",
        _fixed(f"/api/projects/proj/blobs/{SHA}", setup=dataset),  # stored: the body is unread
    ),
    ("GET", P + "/blobs/{sha256}"): (
        "viewer",
        _fixed(f"/api/projects/proj/blobs/{SHA}", setup=dataset),
    ),
    ("POST", "/api/runs/{run_id}/datasets"): (
        "developer",
        lambda w, who: (dataset(w), (f"/api/runs/{w.run_id}/datasets", {"ref": "ds@1"}))[1],
    ),
    ("POST", P + "/jobs"): ("developer", _fixed("/api/projects/proj/jobs", {"command": ["true"]})),
    ("GET", "/api/jobs"): ("viewer", _fixed("/api/jobs?project=proj")),
    ("GET", "/api/jobs/{job_id}"): ("viewer", lambda w, who: (f"/api/jobs/{any_job(w)}", None)),
    ("POST", "/api/jobs/{job_id}/cancel"): (
        "maintainer",  # or the job's own submitter (tests/jobs/test_authz.py)
        lambda w, who: (f"/api/jobs/{fake_job(w, claim=False)[0]}/cancel", None),
    ),
    ("GET", "/api/jobs/{job_id}/logs"): (
        "viewer",
        lambda w, who: (f"/api/jobs/{any_job(w)}/logs", None),
    ),
    ("GET", "/api/usage"): ("viewer", _fixed("/api/usage?project=proj")),
    ("GET", P + "/quota"): ("viewer", _fixed("/api/projects/proj/quota")),
    ("PUT", P + "/quota"): ("admin", _fixed("/api/projects/proj/quota", {"max_gpus": 8})),
    ("GET", "/api/workers"): ("any", _fixed("/api/workers")),
    ("POST", "/api/workers"): (
        "admin",
        lambda w, who: ("/api/workers", {"name": f"w{next(_n)}", "cpus": 1}),
    ),
    ("DELETE", "/api/workers/{worker_id}"): ("admin", _worker_gone),
    ("POST", "/api/workers/{worker_id}/heartbeat"): (
        "admin",
        lambda w, who: (f"/api/workers/{fake_worker(w)}/heartbeat", {"running": []}),
    ),
    ("POST", "/api/workers/{worker_id}/claim"): (
        "admin",
        lambda w, who: (f"/api/workers/{fake_worker(w)}/claim", None),
    ),
    ("POST", "/api/jobs/{job_id}/logs"): ("admin", _log),
    ("POST", "/api/jobs/{job_id}/state"): ("admin", _state),
    ("POST", P + "/sweeps"): ("developer", _fixed("/api/projects/proj/sweeps", {"config": SWEEP})),
    ("GET", P + "/sweeps"): ("viewer", _fixed("/api/projects/proj/sweeps")),
    ("GET", "/api/sweeps/{sweep_id}"): (
        "viewer",
        lambda w, who: (f"/api/sweeps/{any_sweep(w)}", None),
    ),
    ("POST", "/api/sweeps/{sweep_id}/cancel"): (
        "maintainer",  # or the sweep's creator
        lambda w, who: (f"/api/sweeps/{fresh_sweep(w)}/cancel", None),
    ),
}

# Data, not governance: blob uploads (the version naming them is audited), queries sent as
# POST, and what workers send all the time (heartbeats, claims polled, output).
TELEMETRY = {
    ("POST", P + "/blobs/missing"),
    ("PUT", P + "/blobs/{sha256}"),
    ("POST", "/api/workers/{worker_id}/heartbeat"),
    ("POST", "/api/workers/{worker_id}/claim"),
    ("POST", "/api/jobs/{job_id}/logs"),
}

R = "{run}"
BAD: dict[tuple[str, str], tuple[str, dict[str, object], int]] = {
    ("GET", P + "/datasets"): ("/api/projects/nope/datasets", {}, 404),
    ("GET", DS): ("/api/projects/p/datasets/nope", {}, 404),
    ("GET", DS + "/versions/{version}"): ("/api/projects/p/datasets/nope/versions/1", {}, 404),
    ("POST", DS + "/versions"): (
        "/api/projects/p/datasets/d/versions",
        {"json": {"files": [{"path": "../x", "size": 1, "sha256": SHA, "chunks": [SHA]}]}},
        400,
    ),
    ("POST", P + "/blobs/missing"): (
        "/api/projects/p/blobs/missing",
        {"json": {"hashes": ["not-a-hash"]}},
        422,
    ),
    ("PUT", P + "/blobs/{sha256}"): (f"/api/projects/p/blobs/{SHA}", {"content": b"other"}, 422),
    ("GET", P + "/blobs/{sha256}"): (f"/api/projects/p/blobs/{SHA}", {}, 404),
    ("POST", "/api/runs/{run_id}/datasets"): (
        f"/api/runs/{R}/datasets",
        {"json": {"ref": "ghost@1"}},
        404,
    ),
    ("POST", P + "/jobs"): ("/api/projects/p/jobs", {"json": {"command": [], "cpus": 0}}, 422),
    ("GET", "/api/jobs"): ("/api/jobs", {"params": {"state": "sleeping"}}, 422),
    ("GET", "/api/jobs/{job_id}"): ("/api/jobs/nope", {}, 404),
    ("POST", "/api/jobs/{job_id}/cancel"): ("/api/jobs/nope/cancel", {}, 404),
    ("GET", "/api/jobs/{job_id}/logs"): ("/api/jobs/nope/logs", {}, 404),
    ("GET", "/api/usage"): ("/api/usage", {"params": {"by": "planet"}}, 422),
    ("GET", P + "/quota"): ("/api/projects/nope/quota", {}, 404),
    ("PUT", P + "/quota"): ("/api/projects/p/quota", {"json": {"max_gpus": -1}}, 422),
    ("GET", "/api/workers"): ("/api/workers", {"headers": {"authorization": "Basic x"}}, 401),
    ("POST", "/api/workers"): ("/api/workers", {"json": {"name": "w", "cpus": 0}}, 422),
    ("DELETE", "/api/workers/{worker_id}"): ("/api/workers/nope", {}, 404),
    ("POST", "/api/workers/{worker_id}/heartbeat"): (
        "/api/workers/nope/heartbeat",
        {"json": {"running": []}},
        404,
    ),
    ("POST", "/api/workers/{worker_id}/claim"): ("/api/workers/nope/claim", {}, 404),
    ("POST", "/api/jobs/{job_id}/logs"): (
        "/api/jobs/nope/logs?worker_id=w&attempt=1",
        {"content": b"x"},
        404,
    ),
    ("POST", "/api/jobs/{job_id}/state"): (
        "/api/jobs/nope/state",
        {"json": {"worker_id": "w", "attempt": 0, "state": "running"}},
        422,
    ),
    ("POST", P + "/sweeps"): (
        "/api/projects/p/sweeps",
        {"json": {"config": {"method": "annealing"}}},
        422,
    ),
    ("GET", P + "/sweeps"): ("/api/projects/nope/sweeps", {}, 404),
    ("GET", "/api/sweeps/{sweep_id}"): ("/api/sweeps/nope", {}, 404),
    ("POST", "/api/sweeps/{sweep_id}/cancel"): ("/api/sweeps/nope/cancel", {}, 404),
}
