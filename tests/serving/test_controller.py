"""The controller's one change to the store, forgetting a version once it drained, is made as the
system actor ``serving controller`` and leaves an audit record; a version a change leaves with
nothing to drain goes with that change, in its transaction and under its record."""

from __future__ import annotations

import time
from typing import Any

from tests.serving.conftest import Deployer


def served(d: Deployer) -> list[str]:
    """The versions the endpoint has deployed (TF Serving's status lists each)."""
    r = d.http.get("/v1/models/ep")
    assert r.status_code == 200, r.text
    return [v["version"] for v in r.json()["model_version_status"]]


def audit(d: Deployer, action: str) -> list[tuple[str, str, Any]]:
    r = d.http.get("/api/audit", params={"project": "p", "action": action})
    assert r.status_code == 200, r.text
    return [(x["actor"], x["object_id"], x["before"]) for x in reversed(r.json())]


def test_a_drained_version_is_forgotten_by_the_controller_as_itself(
    sqlite_deployer: Deployer,
) -> None:
    d = sqlite_deployer
    d.deploy(version=1, replicas=1)
    d.ready(1, version=1)
    d.deploy(version=2, replicas=1)  # v1 drains: it answers until v2 is ready, then stops
    assert served(d) == ["1", "2"]  # v1 has a replica: it stays until that replica stopped
    deadline = time.monotonic() + 120
    while served(d) != ["2"]:
        assert time.monotonic() < deadline, d.endpoint()
        time.sleep(0.1)
    assert audit(d, "endpoint.version.drop") == [
        ("serving controller", "ep", {"version": 1, "weight": 0})
    ]
    assert [actor for actor, _, _ in audit(d, "endpoint.deploy")] == ["local", "local"]
    r = d.http.post("/v1/models/ep:predict", json={"instances": [[0.0] * 64]})
    assert r.status_code == 200 and r.headers["x-model-version"] == "2", r.text


def test_a_version_with_nothing_to_drain_goes_with_the_change(sqlite_deployer: Deployer) -> None:
    d = sqlite_deployer
    idle = {"min_replicas": 0, "max_replicas": 1, "idle_timeout_s": 0.01}  # scaled to zero
    d.deploy(version=1, **idle)
    d.wait(lambda e: not e["replicas"], timeout=120)
    d.deploy(version=2, canary=10)
    r = d.http.post("/api/endpoints/ep/promote", json={"version": 2})
    assert r.status_code == 200 and r.json()["traffic"] == {"2": 100}, r.text
    assert served(d) == ["2"]  # v1 had no replica: it went with the promotion
    assert audit(d, "endpoint.version.drop") == []
    assert [actor for actor, _, _ in audit(d, "endpoint.promote")] == ["local"]
