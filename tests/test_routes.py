"""Every route answers bad input with a 4xx problem+json, never a 500; the table lists all."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.auth.test_auth_api import api_routes
from tests.jobs import routes as jobs_routes
from tests.monitoring import routes as monitoring_routes

R = "{run}"
MODEL = "/api/projects/{project}/models/{name}"
# (method, route) -> (method, concrete url, kwargs, expected status) of a bad request.
BAD: dict[tuple[str, str], tuple[str, dict[str, object], int]] = {
    ("GET", "/api/whoami"): ("/api/whoami", {"headers": {"authorization": "Bearer x"}}, 401),
    ("GET", "/api/users"): ("/api/users", {"headers": {"authorization": "Basic x"}}, 401),
    ("POST", "/api/users"): ("/api/users", {"json": {"name": ""}}, 422),
    ("POST", "/api/tokens"): ("/api/tokens", {"json": {"user": "ghost"}}, 404),
    ("GET", "/api/tokens"): ("/api/tokens", {"headers": {"authorization": "Bearer"}}, 401),
    ("DELETE", "/api/tokens/{token_id}"): ("/api/tokens/unknown", {}, 404),
    ("POST", "/api/login-links"): (
        "/api/login-links",
        {"headers": {"authorization": "Bearer sy_nope"}},
        401,
    ),
    ("GET", "/api/projects"): ("/api/projects", {"headers": {"authorization": "x"}}, 401),
    ("POST", "/api/projects"): ("/api/projects", {"json": {"name": "a b"}}, 422),
    ("POST", "/api/runs"): ("/api/runs", {"json": {"project": 5}}, 422),
    ("GET", "/api/runs"): ("/api/runs", {"params": {"filter": "config.x >"}}, 422),
    ("GET", "/api/runs/{run_id}"): ("/api/runs/nope", {}, 404),
    ("PATCH", "/api/runs/{run_id}"): (f"/api/runs/{R}", {"json": {"status": 3}}, 422),
    ("POST", "/api/runs/{run_id}/heartbeat"): ("/api/runs/nope/heartbeat", {}, 404),
    ("POST", "/api/runs/{run_id}/log"): (f"/api/runs/{R}/log", {"content": b"[1, 2"}, 400),
    ("GET", "/api/runs/{run_id}/metrics"): ("/api/runs/nope/metrics", {}, 404),
    ("GET", "/api/runs/{run_id}/history"): (
        f"/api/runs/{R}/history",
        {"params": {"key": "k"}},
        404,
    ),
    ("GET", "/api/runs/{run_id}/diff/{other_id}"): (f"/api/runs/{R}/diff/nope", {}, 404),
    ("POST", "/api/runs/{run_id}/images"): (f"/api/runs/{R}/images?key=k", {"content": b"x"}, 400),
    ("GET", "/api/runs/{run_id}/images"): ("/api/runs/nope/images", {}, 404),
    ("PUT", "/api/runs/{run_id}/artifacts/{path}"): (
        f"/api/runs/{R}/artifacts/%2E%2E/x",
        {"content": b"x"},
        400,
    ),
    ("GET", "/api/runs/{run_id}/artifacts"): (f"/api/runs/{R}/artifacts?prefix=%2E%2E", {}, 400),
    ("GET", "/api/runs/{run_id}/artifacts/{path}"): (f"/api/runs/{R}/artifacts/none", {}, 404),
    ("POST", "/api/runs/{run_id}/checkpoints"): (f"/api/runs/{R}/checkpoints", {"json": {}}, 422),
    ("GET", "/api/projects/{project}/members"): ("/api/projects/nope/members", {}, 404),
    ("PUT", "/api/projects/{project}/members/{user}"): (
        "/api/projects/p/members/local",
        {"json": {"role": "king"}},
        422,
    ),
    ("DELETE", "/api/projects/{project}/members/{user}"): (
        "/api/projects/p/members/local",
        {},
        422,
    ),
    ("GET", "/api/models"): ("/api/models", {"params": {"project": "nope"}}, 404),
    ("GET", "/api/models/resolve"): ("/api/models/resolve", {"params": {"uri": "x"}}, 422),
    ("POST", "/api/projects/{project}/models"): (
        "/api/projects/p/models",
        {"json": {"name": "a/b"}},
        422,
    ),
    ("GET", MODEL): ("/api/projects/p/models/nope", {}, 404),
    ("PATCH", MODEL): ("/api/projects/p/models/nope", {"json": {"tags": "x"}}, 422),
    ("DELETE", MODEL): ("/api/projects/p/models/nope", {}, 404),
    ("POST", MODEL + "/versions"): (
        "/api/projects/p/models/m/versions",
        {"json": {"source": "ftp://x"}},
        422,
    ),
    ("GET", MODEL + "/versions"): ("/api/projects/p/models/nope/versions", {}, 404),
    ("GET", MODEL + "/versions/{version}"): ("/api/projects/p/models/m/versions/x", {}, 422),
    ("PATCH", MODEL + "/versions/{version}"): (
        "/api/projects/p/models/m/versions/1",
        {"json": {"status": "gone"}},
        422,
    ),
    ("DELETE", MODEL + "/versions/{version}"): ("/api/projects/p/models/m/versions/1", {}, 404),
    ("GET", MODEL + "/versions/{version}/files/{path}"): (
        "/api/projects/p/models/m/versions/1/files/a",
        {},
        404,
    ),
    ("PUT", MODEL + "/aliases/{alias}"): (
        "/api/projects/p/models/m/aliases/UP",
        {"json": {"version": 1}},
        422,
    ),
    ("DELETE", MODEL + "/aliases/{alias}"): ("/api/projects/p/models/m/aliases/UP", {}, 422),
    ("POST", MODEL + "/alias-requests"): (
        "/api/projects/p/models/m/alias-requests",
        {"json": {"alias": "a"}},
        422,
    ),
    ("GET", "/api/projects/{project}/alias-requests"): ("/api/projects/no/alias-requests", {}, 404),
    ("POST", "/api/alias-requests/{request_id}/approve"): (
        "/api/alias-requests/x/approve",
        {"json": {}},
        404,
    ),
    ("POST", "/api/alias-requests/{request_id}/reject"): (
        "/api/alias-requests/x/reject",
        {"json": {"note": 5}},
        422,
    ),
    ("GET", "/api/projects/{project}/protected-aliases"): (
        "/api/projects/no/protected-aliases",
        {},
        404,
    ),
    ("PUT", "/api/projects/{project}/protected-aliases"): (
        "/api/projects/p/protected-aliases",
        {"json": {"aliases": ["Bad!"]}},
        422,
    ),
    ("POST", "/api/endpoints"): ("/api/endpoints", {"json": {"name": "UPPER"}}, 422),
    ("GET", "/api/endpoints"): ("/api/endpoints", {"params": {"project": "nope"}}, 404),
    ("GET", "/api/endpoints/{name}"): ("/api/endpoints/nope", {}, 404),
    ("GET", "/api/endpoints/{name}/stats"): (
        "/api/endpoints/nope/stats",
        {"params": {"window_s": 5}},
        422,
    ),
    ("GET", "/api/endpoints/{name}/predictions"): ("/api/endpoints/nope/predictions", {}, 404),
    ("GET", "/api/endpoints/{name}/drift"): ("/api/endpoints/nope/drift", {}, 404),
    ("DELETE", "/api/endpoints/{name}"): ("/api/endpoints/nope", {}, 404),
    ("PUT", "/api/endpoints/{name}/traffic"): (
        "/api/endpoints/nope/traffic",
        {"json": {"weights": "x"}},
        422,
    ),
    ("POST", "/api/endpoints/{name}/promote"): (
        "/api/endpoints/nope/promote",
        {"json": {"version": 0}},
        422,
    ),
    ("POST", "/api/endpoints/{name}/rollback"): ("/api/endpoints/nope/rollback", {}, 404),
    ("PUT", "/api/endpoints/{name}/scale"): (
        "/api/endpoints/nope/scale",
        {"json": {"min_replicas": -1}},
        422,
    ),
    ("POST", "/v1/models/{name}:predict"): ("/v1/models/nope:predict", {"json": {}}, 404),
    ("POST", "/v1/models/{name}/versions/{version}:predict"): (
        "/v1/models/nope/versions/1:predict",
        {"json": {}},
        404,
    ),
    ("GET", "/v1/models/{name}"): ("/v1/models/nope", {}, 404),
    ("GET", "/v1/models/{name}/versions/{version}"): ("/v1/models/nope/versions/1", {}, 404),
    ("GET", "/v1/models/{name}/metadata"): ("/v1/models/nope/metadata", {}, 404),
    ("GET", "/v2/models/{name}"): ("/v2/models/nope", {}, 404),
    ("GET", "/v2/models/{name}/ready"): ("/v2/models/nope/ready", {}, 404),
    ("POST", "/v2/models/{name}/infer"): ("/v2/models/nope/infer", {"json": {}}, 404),
    ("POST", "/v2/models/{name}/versions/{version}/infer"): (
        "/v2/models/nope/versions/x/infer",
        {"json": {}},
        404,
    ),
    ("POST", "/endpoints/{name}/predict"): ("/endpoints/nope/predict", {"json": {}}, 404),
    ("GET", "/api/audit"): ("/api/audit", {"params": {"since": "yesterday"}}, 422),
    ("GET", "/api/runs/{run_id}/checkpoints"): (
        f"/api/runs/{R}/checkpoints",
        {"params": {"best": "acc", "goal": "x"}},
        422,
    ),
}


BAD.update(jobs_routes.BAD)
BAD.update(monitoring_routes.BAD)


def test_the_table_lists_every_route(client: TestClient) -> None:
    served = {(m, p) for m, p in api_routes(client.app)}  # type: ignore[arg-type]
    assert served == set(BAD), "add the new route to BAD with a bad request and its status"


@pytest.mark.parametrize("route", sorted(BAD), ids=lambda r: f"{r[0]} {r[1]}")
def test_bad_input_is_a_4xx_problem(client: TestClient, route: tuple[str, str]) -> None:
    run_id = client.post("/api/runs", json={"project": "p"}).json()["id"]
    url, kwargs, status = BAD[route]
    send: Callable[..., object] = client.request
    r = send(route[0], url.replace(R, run_id), **kwargs)
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    assert r.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert body["status"] == status and body["title"] and body["detail"]


def test_unknown_paths_and_methods_are_problems(client: TestClient) -> None:
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = client.delete("/api/projects")
    assert r.status_code == 405 and r.json()["title"] == "Method not allowed"


def test_ops_routes(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    client.get("/api/projects")
    text = client.get("/metrics").text
    assert 'shipyard_http_requests_total{method="GET",route="/api/projects",status="200"}' in text
    assert client.get("/docs").status_code == 200
    assert "/api/runs" in client.get("/openapi.json").json()["paths"]
