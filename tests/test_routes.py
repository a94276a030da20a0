"""Every route answers bad input with a 4xx problem+json, never a 500; the table lists all."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.auth.test_auth_api import api_routes

R = "{run}"
# (method, route) -> (method, concrete url, kwargs, expected status) of a bad request.
BAD: dict[tuple[str, str], tuple[str, dict[str, object], int]] = {
    ("GET", "/api/whoami"): ("/api/whoami", {"headers": {"authorization": "Bearer x"}}, 401),
    ("GET", "/api/users"): ("/api/users", {"headers": {"authorization": "Basic x"}}, 401),
    ("POST", "/api/users"): ("/api/users", {"json": {"name": ""}}, 422),
    ("POST", "/api/tokens"): ("/api/tokens", {"json": {"user": "ghost"}}, 404),
    ("GET", "/api/tokens"): ("/api/tokens", {"headers": {"authorization": "Bearer"}}, 401),
    ("DELETE", "/api/tokens/{token_id}"): ("/api/tokens/unknown", {}, 404),
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
        "/api/projects/p/members/local", {"json": {"role": "king"}}, 422),
    ("DELETE", "/api/projects/{project}/members/{user}"): (
        "/api/projects/p/members/local", {}, 422),
    ("GET", "/api/audit"): ("/api/audit", {"params": {"since": "yesterday"}}, 422),
    ("GET", "/api/runs/{run_id}/checkpoints"): (
        f"/api/runs/{R}/checkpoints",
        {"params": {"best": "acc", "goal": "x"}},
        422,
    ),
}


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
