"""The authorization matrix: every route of the app, every role, read from the router itself.

Each route names the least role that may call it; callers below get 403 (or 404 where the
object is hidden from them), callers at or above it never get 401 or 403. A route missing
from ``MATRIX`` fails the test, so a new route cannot be forgotten.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from shipyard.auth import service
from tests.auth.test_auth_api import api_routes
from tests.jobs import routes as jobs_routes
from tests.monitoring import routes as monitoring_routes
from tests.registry.conftest import World

LADDER = ["otto", "vic", "dev", "mona", "alice", "root"]  # none < viewer < ... < owner < admin
LEVEL = {"any": 0, "viewer": 1, "developer": 2, "maintainer": 3, "owner": 4, "admin": 5}
M = "/api/projects/proj/models/m"
_n = itertools.count()
Build = Callable[[World, str], tuple[str, Any]]


def fixed(url: str, body: Any = None) -> Build:
    return lambda w, who: (url.replace("{run}", w.run_id), body)


def fresh_request(w: World, who: str) -> str:
    requester = "dev" if who != "dev" else "vic"
    if requester == "vic":  # viewers cannot request; let a maintainer ask instead
        requester = "mike"
    r = w.ok(requester, "POST", f"{M}/alias-requests", json={"alias": "production", "version": 1})
    return str(r["id"])


def fresh_model(w: World, who: str) -> str:
    name = f"tmp{next(_n)}"
    w.ok("root", "POST", "/api/projects/proj/models", json={"name": name})
    return f"/api/projects/proj/models/{name}"


def fresh_version(w: World, who: str) -> str:
    return f"{M}/versions/{w.register('root')['version']}"


def fresh_alias(w: World, who: str) -> str:
    w.ok("root", "PUT", f"{M}/aliases/challenger", json={"version": 1})
    return f"{M}/aliases/challenger"


def fresh_member(w: World, who: str) -> str:
    name = f"temp{next(_n)}"
    with w.client.app.state.runtime.db.session() as s:  # type: ignore[attr-defined]
        service.create_user(s, name)
    w.ok("root", "PUT", f"/api/projects/proj/members/{name}", json={"role": "viewer"})
    return f"/api/projects/proj/members/{name}"


def own_token(w: World, who: str) -> str:
    with w.client.app.state.runtime.db.session() as s:  # type: ignore[attr-defined]
        token, _ = service.create_token(s, service.get_user(s, who))
    return f"/api/tokens/{token.id}"


def batch(w: World, who: str) -> tuple[str, Any]:
    return (
        f"/api/runs/{w.run_id}/log",
        {"batch_id": f"b{next(_n)}", "metrics": [{"key": "x", "steps": [1], "values": [1]}]},
    )


ROW = [0.0] * 64
V1 = {"instances": [ROW]}
V2 = {"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP32", "data": ROW}]}
HF = {"inputs": ROW}
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    "3a7e9b550000000a49444154789c636000000002000154a24f5d0000000049454e44ae426082"
)

# (method, route) -> (least role, how to build a call as that user)
MATRIX: dict[tuple[str, str], tuple[str, Build]] = {
    ("GET", "/api/whoami"): ("any", fixed("/api/whoami")),
    ("GET", "/api/users"): ("admin", fixed("/api/users")),
    ("POST", "/api/users"): ("admin", lambda w, who: ("/api/users", {"name": f"u{next(_n)}"})),
    ("GET", "/api/tokens"): ("any", fixed("/api/tokens")),
    ("POST", "/api/tokens"): ("any", fixed("/api/tokens", {"name": "x"})),
    ("DELETE", "/api/tokens/{token_id}"): ("any", lambda w, who: (own_token(w, who), None)),
    ("POST", "/api/login-links"): ("any", fixed("/api/login-links")),
    ("GET", "/api/projects"): ("any", fixed("/api/projects")),
    ("POST", "/api/projects"): ("any", lambda w, who: ("/api/projects", {"name": f"p{next(_n)}"})),
    ("POST", "/api/runs"): ("developer", fixed("/api/runs", {"project": "proj"})),
    ("GET", "/api/runs"): ("viewer", fixed("/api/runs?project=proj")),
    ("GET", "/api/runs/{run_id}"): ("viewer", fixed("/api/runs/{run}")),
    ("PATCH", "/api/runs/{run_id}"): ("developer", fixed("/api/runs/{run}", {"notes": "n"})),
    ("POST", "/api/runs/{run_id}/heartbeat"): ("developer", fixed("/api/runs/{run}/heartbeat")),
    ("POST", "/api/runs/{run_id}/log"): ("developer", batch),
    ("GET", "/api/runs/{run_id}/metrics"): ("viewer", fixed("/api/runs/{run}/metrics")),
    ("GET", "/api/runs/{run_id}/history"): ("viewer", fixed("/api/runs/{run}/history?key=val/acc")),
    ("GET", "/api/runs/{run_id}/diff/{other_id}"): ("viewer", fixed("/api/runs/{run}/diff/{run}")),
    ("POST", "/api/runs/{run_id}/images"): ("developer", fixed("/api/runs/{run}/images?key=k")),
    ("GET", "/api/runs/{run_id}/images"): ("viewer", fixed("/api/runs/{run}/images")),
    ("PUT", "/api/runs/{run_id}/artifacts/{path}"): (
        "developer",
        fixed("/api/runs/{run}/artifacts/a.txt"),
    ),
    ("GET", "/api/runs/{run_id}/artifacts/{path}"): (
        "viewer",
        fixed("/api/runs/{run}/artifacts/model/shipyard-model.yaml"),
    ),
    ("GET", "/api/runs/{run_id}/artifacts"): ("viewer", fixed("/api/runs/{run}/artifacts")),
    ("POST", "/api/runs/{run_id}/checkpoints"): (
        "developer",
        fixed("/api/runs/{run}/checkpoints", {"path": "model/model.pt2"}),
    ),
    ("GET", "/api/runs/{run_id}/checkpoints"): ("viewer", fixed("/api/runs/{run}/checkpoints")),
    ("GET", "/api/projects/{project}/members"): ("viewer", fixed("/api/projects/proj/members")),
    ("PUT", "/api/projects/{project}/members/{user}"): (
        "owner",
        fixed("/api/projects/proj/members/mike", {"role": "maintainer"}),
    ),
    ("DELETE", "/api/projects/{project}/members/{user}"): (
        "owner",
        lambda w, who: (fresh_member(w, who), None),
    ),
    ("GET", "/api/models"): ("any", fixed("/api/models")),
    ("GET", "/api/models/resolve"): ("viewer", fixed("/api/models/resolve?uri=models:/m/1")),
    ("POST", "/api/projects/{project}/models"): (
        "developer",
        lambda w, who: ("/api/projects/proj/models", {"name": f"n{next(_n)}"}),
    ),
    ("GET", "/api/projects/{project}/models/{name}"): ("viewer", fixed(M)),
    ("PATCH", "/api/projects/{project}/models/{name}"): (
        "developer",
        fixed(M, {"description": "d"}),
    ),
    ("DELETE", "/api/projects/{project}/models/{name}"): (
        "maintainer",
        lambda w, who: (fresh_model(w, who), None),
    ),
    ("POST", "/api/projects/{project}/models/{name}/versions"): (
        "developer",
        lambda w, who: (f"{M}/versions", {"source": f"runs:/{w.run_id}/model"}),
    ),
    ("GET", "/api/projects/{project}/models/{name}/versions"): ("viewer", fixed(f"{M}/versions")),
    ("GET", "/api/projects/{project}/models/{name}/versions/{version}"): (
        "viewer",
        fixed(f"{M}/versions/1"),
    ),
    ("PATCH", "/api/projects/{project}/models/{name}/versions/{version}"): (
        "developer",
        fixed(f"{M}/versions/1", {"description": "d"}),
    ),
    ("DELETE", "/api/projects/{project}/models/{name}/versions/{version}"): (
        "maintainer",
        lambda w, who: (fresh_version(w, who), None),
    ),
    ("GET", "/api/projects/{project}/models/{name}/versions/{version}/files/{path}"): (
        "viewer",
        fixed(f"{M}/versions/1/files/shipyard-model.yaml"),
    ),
    ("PUT", "/api/projects/{project}/models/{name}/aliases/{alias}"): (
        "developer",
        fixed(f"{M}/aliases/challenger", {"version": 1}),
    ),
    ("DELETE", "/api/projects/{project}/models/{name}/aliases/{alias}"): (
        "developer",
        lambda w, who: (fresh_alias(w, who), None),
    ),
    ("POST", "/api/projects/{project}/models/{name}/alias-requests"): (
        "developer",
        fixed(f"{M}/alias-requests", {"alias": "production", "version": 2}),
    ),
    ("GET", "/api/projects/{project}/alias-requests"): (
        "viewer",
        fixed("/api/projects/proj/alias-requests"),
    ),
    ("POST", "/api/alias-requests/{request_id}/approve"): (
        "maintainer",
        lambda w, who: (f"/api/alias-requests/{fresh_request(w, who)}/approve", {}),
    ),
    ("POST", "/api/alias-requests/{request_id}/reject"): (
        "maintainer",
        lambda w, who: (f"/api/alias-requests/{fresh_request(w, who)}/reject", {}),
    ),
    ("GET", "/api/projects/{project}/protected-aliases"): (
        "viewer",
        fixed("/api/projects/proj/protected-aliases"),
    ),
    ("PUT", "/api/projects/{project}/protected-aliases"): (
        "owner",
        fixed("/api/projects/proj/protected-aliases", {"aliases": ["champion", "production"]}),
    ),
    ("GET", "/api/audit"): ("maintainer", fixed("/api/audit?project=proj")),
    ("POST", "/api/endpoints"): (
        "maintainer",
        lambda w, who: (
            "/api/endpoints",
            {
                "name": f"e{next(_n)}",
                "project": "proj",
                "model": "m",
                "version": 1,
                "min_replicas": 0,
                "max_replicas": 1,
                "idle_timeout_s": 0.01,
            },
        ),
    ),
    ("GET", "/api/endpoints"): ("any", fixed("/api/endpoints")),
    ("GET", "/api/endpoints/{name}"): ("viewer", fixed("/api/endpoints/ep")),
    ("GET", "/api/endpoints/{name}/stats"): ("viewer", fixed("/api/endpoints/ep/stats")),
    ("GET", "/api/endpoints/{name}/drift"): ("viewer", fixed("/api/endpoints/ep/drift")),
    ("GET", "/api/endpoints/{name}/predictions"): (
        "viewer",
        fixed("/api/endpoints/ep/predictions"),
    ),
    ("DELETE", "/api/endpoints/{name}"): (
        "maintainer",
        lambda w, who: (fresh_endpoint(w, who), None),
    ),
    ("PUT", "/api/endpoints/{name}/traffic"): (
        "maintainer",
        fixed("/api/endpoints/ep/traffic", {"weights": {"1": 100}}),
    ),
    ("POST", "/api/endpoints/{name}/promote"): (
        "maintainer",
        fixed("/api/endpoints/ep/promote", {"version": 1}),
    ),
    ("POST", "/api/endpoints/{name}/rollback"): (
        "maintainer",
        lambda w, who: (with_canary(w), None),
    ),
    ("PUT", "/api/endpoints/{name}/scale"): (
        "maintainer",
        fixed("/api/endpoints/ep/scale", {"min_replicas": 1, "max_replicas": 1}),
    ),
    ("POST", "/v1/models/{name}:predict"): ("viewer", fixed("/v1/models/ep:predict", V1)),
    ("POST", "/v1/models/{name}/versions/{version}:predict"): (
        "viewer",
        fixed("/v1/models/ep/versions/1:predict", V1),
    ),
    ("GET", "/v1/models/{name}"): ("viewer", fixed("/v1/models/ep")),
    ("GET", "/v1/models/{name}/versions/{version}"): ("viewer", fixed("/v1/models/ep/versions/1")),
    ("GET", "/v1/models/{name}/metadata"): ("viewer", fixed("/v1/models/ep/metadata")),
    ("GET", "/v2/models/{name}"): ("viewer", fixed("/v2/models/ep")),
    ("GET", "/v2/models/{name}/ready"): ("viewer", fixed("/v2/models/ep/ready")),
    ("POST", "/v2/models/{name}/infer"): ("viewer", fixed("/v2/models/ep/infer", V2)),
    ("POST", "/v2/models/{name}/versions/{version}/infer"): (
        "viewer",
        fixed("/v2/models/ep/versions/1/infer", V2),
    ),
    ("POST", "/endpoints/{name}/predict"): ("viewer", fixed("/endpoints/ep/predict", HF)),
}


def with_canary(w: World) -> str:
    w.ok(
        "root",
        "POST",
        "/api/endpoints",
        json={"name": "ep", "project": "proj", "model": "m", "version": 2, "canary": 10},
    )
    return "/api/endpoints/ep/rollback"


def fresh_endpoint(w: World, who: str) -> str:
    name = f"gone{next(_n)}"
    w.ok(
        "root",
        "POST",
        "/api/endpoints",
        json={
            "name": name,
            "project": "proj",
            "model": "m",
            "version": 1,
            "min_replicas": 0,
            "max_replicas": 1,
            "idle_timeout_s": 0.01,
        },
    )
    return f"/api/endpoints/{name}"


MATRIX.update(jobs_routes.MATRIX)
MATRIX.update(monitoring_routes.MATRIX)


def test_matrix_covers_every_route(world: World) -> None:
    served = set(api_routes(world.client.app))  # type: ignore[arg-type]
    assert served == set(MATRIX), "add the new route to MATRIX with its least role"


def test_each_role_gets_exactly_what_it_should(world: World) -> None:
    world.ok(
        "root",
        "POST",
        "/api/endpoints",
        json={"name": "ep", "project": "proj", "model": "m", "version": 1, "replicas": 1},
    )
    failures = []
    for (method, route), (least, build) in sorted(MATRIX.items()):
        for who in LADDER:
            url, body = build(world, who)
            kwargs: dict[str, Any] = {"json": body} if body is not None else {}
            if route.endswith("/images"):
                kwargs = {"content": PNG}
            elif method == "PUT" and "/artifacts/" in route:
                kwargs = {"content": b"data"}
            status = world.call(who, method, url, **kwargs).status_code
            allowed = LADDER.index(who) >= LEVEL[least]
            if allowed and status in (401, 403):
                failures.append(f"{who} {method} {route}: {status}, should be allowed")
            if not allowed and status not in (403, 404):
                failures.append(f"{who} {method} {route}: {status}, should be refused")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("who", ["otto", "vic"])
def test_lists_show_only_readable_projects(world: World, who: str) -> None:
    projects = [p["name"] for p in world.ok(who, "GET", "/api/projects")]
    assert projects == ([] if who == "otto" else ["proj"])
    runs = world.ok(who, "GET", "/api/runs")["runs"]
    assert len(runs) == (0 if who == "otto" else 1)


def test_whole_audit_log_is_for_admins(world: World) -> None:
    r = world.call("alice", "GET", "/api/audit")
    assert r.status_code == 403 and "pass a project" in r.json()["detail"]
    assert world.ok("root", "GET", "/api/audit")
