"""A web page the user visits cannot drive a server on 127.0.0.1: foreign Host headers (DNS
rebinding), foreign origins on state-changing requests and cross-site "simple" bodies are refused
on every route, before any handler (inference's fast path included)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from shipyard.app import create_app
from shipyard.config import Settings
from tests.auth.test_auth_api import api_routes, concrete
from tests.conftest import ServerThread, app_token, bearer, local_client

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
API_PREFIXES = ("/api/", "/v1/", "/v2/", "/endpoints/")
# One route of each kind: the API, a page, inference (the fast path), metrics, health, assets.
KINDS = [
    ("GET", "/api/projects"),
    ("GET", "/"),
    ("POST", "/v1/models/digits:predict"),
    ("POST", "/v2/models/digits/infer"),
    ("GET", "/metrics"),
    ("GET", "/healthz"),
    ("GET", "/static/shipyard.css"),
    ("GET", "/docs"),
]


def every_route(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app serves: the API's (from OpenAPI) and the pages' own."""
    pages = {
        (method, r.path)
        for r in app.routes
        if isinstance(r, APIRoute) and not r.include_in_schema
        for method in r.methods
    }
    return sorted({*api_routes(app), *pages})


def page_path(path: str) -> str:
    return (
        concrete(path)
        .replace("{project}", "p")
        .replace("{name}", "p")
        .replace("{model}", "m")
        .replace("{alias}", "a")
        .replace("{version}", "1")
        .replace("{request_id}", "r")
        .replace("{job_id}", "0" * 32)
        .replace("{sweep_id}", "0" * 32)
        .replace("{worker_id}", "w")
        .replace("{user}", "u")
        .replace("{sha256}", "0" * 64)
        .replace("{dataset}", "d")
        .replace("{rule}", "r")
        .replace("{channel}", "c")
    )


@pytest.fixture
def live(app: FastAPI) -> Iterator[ServerThread]:
    with ServerThread(app) as server:
        yield server


@pytest.mark.parametrize(("method", "path"), KINDS)
@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "[::2]"])
def test_a_foreign_host_is_refused_on_every_kind_of_route(
    live: ServerThread, method: str, path: str, host: str
) -> None:
    headers = {**bearer(str(live.token)), "host": host.format(port=live.port)}
    r = httpx.request(method, live.url + path, headers=headers, json={})
    assert r.status_code == 421, (method, path, r.status_code, r.text[:200])
    if path.startswith(API_PREFIXES):
        assert r.headers["content-type"] == "application/problem+json"
        assert "SHIPYARD_ALLOWED_HOSTS" in r.json()["detail"]
    else:
        assert r.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}"])
def test_the_loopback_names_with_the_port_are_answered(live: ServerThread, host: str) -> None:
    headers = {**bearer(str(live.token)), "host": host.format(port=live.port)}
    assert httpx.get(live.url + "/api/projects", headers=headers).status_code == 200


def test_allowed_hosts_add_names(tmp_path: object, database_url: str) -> None:
    settings = Settings(
        home=tmp_path,  # type: ignore[arg-type]
        database_url=database_url,
        allowed_hosts="shipyard.lab, *.gpu.example:8443",  # type: ignore[arg-type]
    )
    assert settings.allowed_hosts == ["shipyard.lab", "*.gpu.example:8443"]
    with local_client(create_app(settings)) as c:
        for host, status in [
            ("shipyard.lab", 200),
            ("shipyard.lab:9000", 200),
            ("box1.gpu.example:8443", 200),
            ("box1.gpu.example:9000", 421),
            ("gpu.example.evil:8443", 421),
            ("evil.example", 421),
        ]:
            assert c.get("/api/projects", headers={"host": host}).status_code == status, host


def test_a_foreign_origin_is_refused_on_every_state_changing_route(
    client: TestClient,
) -> None:
    """Walks the router: each POST, PUT, PATCH and DELETE, the API's and the pages' forms."""
    routes = [(m, p) for m, p in every_route(client.app) if m in UNSAFE]  # type: ignore[arg-type]
    assert len(routes) > 50
    for origin_header in (
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"referer": "http://evil.example/page.html"},
        {"origin": "http://127.0.0.1:1"},
    ):
        for method, path in routes:
            r = client.request(method, page_path(path), headers=origin_header, json={})
            assert r.status_code == 403, (origin_header, method, path, r.status_code)
            assert "another site" in r.text, (method, path)


def test_the_servers_own_origin_and_programs_are_let_through(client: TestClient) -> None:
    same = ({}, {"origin": "http://testserver"}, {"referer": "http://testserver/runs"})
    for i, headers in enumerate(same):
        r = client.post("/api/projects", json={"name": f"p{i}"}, headers=headers)
        assert r.status_code == 201, (headers, r.text)


def test_a_text_body_on_each_json_route_is_415(client: TestClient) -> None:
    """The three types a cross-site form or ``fetch`` may send without a preflight."""
    routes = [
        (m, p)
        for m, p in api_routes(client.app)  # type: ignore[arg-type]
        if m in {"POST", "PUT", "PATCH"} and p.startswith(API_PREFIXES)
    ]
    assert len(routes) > 30
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"):
        for method, path in routes:
            r = client.request(
                method, page_path(path), content=b'{"name": "x"}', headers={"content-type": ctype}
            )
            assert r.status_code == 415, (ctype, method, path, r.status_code)
            assert r.headers["content-type"] == "application/problem+json"
            assert "application/json" in r.json()["detail"]


def test_json_and_files_still_go_through(client: TestClient) -> None:
    run = client.post("/api/runs", json={"project": "p"}).json()
    r = client.post(
        f"/api/runs/{run['id']}/log",
        content=b'{"batch_id": "1", "metrics": [{"key": "x", "steps": [1], "values": [1.0]}]}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200, r.text
    r = client.put(
        f"/api/runs/{run['id']}/artifacts/a.txt",
        content=b"hello",
        headers={"content-type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text


def test_cors_origins_get_cors_answers_and_may_change_things(
    tmp_path: object, database_url: str
) -> None:
    settings = Settings(
        home=tmp_path,  # type: ignore[arg-type]
        database_url=database_url,
        cors_origins="https://notebook.example",  # type: ignore[arg-type]
    )
    app = create_app(settings)
    with TestClient(app) as c:
        preflight = c.options(
            "/api/projects",
            headers={
                "origin": "https://notebook.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://notebook.example"
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        r = c.post(
            "/api/projects",
            json={"name": "from-notebook"},
            headers={**bearer(app_token(app)), "origin": "https://notebook.example"},
        )
        assert r.status_code == 201
        assert r.headers["access-control-allow-origin"] == "https://notebook.example"
        r = c.post(
            "/api/projects",
            json={"name": "from-evil"},
            headers={**bearer(app_token(app)), "origin": "https://evil.example"},
        )
        assert r.status_code == 403 and "access-control-allow-origin" not in r.headers


def test_the_inference_fast_path_is_guarded_too(live: ServerThread) -> None:
    """The inference POST routes are answered by a middleware before routing; the guard is
    outside it."""
    url = live.url + "/v1/models/nope:predict"
    token = bearer(str(live.token))
    r = httpx.post(url, headers={**token, "origin": "http://evil.example"}, json={})
    assert r.status_code == 403
    r = httpx.post(url, headers={**token, "content-type": "text/plain"}, content=b"{}")
    assert r.status_code == 415
    r = httpx.post(url, headers=token, json={"instances": [[0.0]]})
    assert r.status_code == 404  # through the guard: the endpoint does not exist
