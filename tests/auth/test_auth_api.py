"""Identity: tokens on every route when auth is on, attribution, users and tokens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from shipyard.app import create_app
from shipyard.auth import service
from shipyard.config import AuthMode, Settings

OPEN = {"/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"}


@pytest.fixture
def auth_app(auth_settings: Settings) -> FastAPI:
    return create_app(auth_settings)


@pytest.fixture
def anon(auth_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(auth_app) as c:
        yield c


def make_token(app: FastAPI, name: str, admin: bool = False) -> str:
    with app.state.runtime.db.session() as s:
        user = service.create_user(s, name, is_admin=admin)
        _, secret = service.create_token(s, user, "test")
    return secret


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, read from its OpenAPI schema."""
    return sorted(
        (method.upper(), path)
        for path, ops in app.openapi()["paths"].items()
        if path not in OPEN
        for method in ops
    )


def concrete(path: str) -> str:
    return (
        path.replace("{run_id}", "0" * 32)
        .replace("{other_id}", "1" * 32)
        .replace("{token_id}", "t")
        .replace("{path:path}", "a.txt")
    )


def test_every_route_refuses_anonymous_callers_when_auth_is_on(
    auth_app: FastAPI, anon: TestClient
) -> None:
    routes = api_routes(auth_app)
    assert len(routes) >= 20
    for method, path in routes:
        r = anon.request(method, concrete(path))
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.headers["content-type"] == "application/problem+json"
        assert "SHIPYARD_TOKEN" in r.json()["detail"]


@pytest.mark.parametrize("header", ["Bearer nope", "Basic dXNlcjpwYXNz", "Bearer ", "token"])
def test_bad_credentials_are_401(anon: TestClient, header: str) -> None:
    r = anon.get("/api/projects", headers={"authorization": header})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"


def test_ops_endpoints_stay_open(anon: TestClient) -> None:
    assert anon.get("/healthz").json() == {"status": "ok"}
    assert anon.get("/readyz").json() == {"status": "ready"}
    assert anon.get("/metrics").status_code == 200


def test_writes_are_attributed_to_the_token_user(auth_app: FastAPI, anon: TestClient) -> None:
    token = make_token(auth_app, "alice")
    run = anon.post("/api/runs", json={"project": "p"}, headers=bearer(token)).json()
    assert run["user"] == "alice"
    assert anon.get("/api/whoami", headers=bearer(token)).json()["name"] == "alice"
    hits = anon.get("/api/runs", params={"filter": "user = alice"}, headers=bearer(token))
    assert hits.json()["total"] == 1


def test_revoked_token_stops_working(auth_app: FastAPI, anon: TestClient) -> None:
    admin = make_token(auth_app, "root", admin=True)
    r = anon.post("/api/tokens", json={"name": "ci"}, headers=bearer(admin))
    assert r.status_code == 201
    created = r.json()
    assert created["token"].startswith("sy_") and created["prefix"] == created["token"][:10]
    assert anon.get("/api/projects", headers=bearer(created["token"])).status_code == 200
    listed = anon.get("/api/tokens", headers=bearer(admin)).json()
    assert all("token" not in t for t in listed) and len(listed) == 2
    r = anon.delete(f"/api/tokens/{created['id']}", headers=bearer(admin))
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert anon.get("/api/projects", headers=bearer(created["token"])).status_code == 401
    assert anon.delete("/api/tokens/unknown", headers=bearer(admin)).status_code == 404


def test_tokens_are_stored_hashed(auth_app: FastAPI) -> None:
    secret = make_token(auth_app, "bob")
    from sqlalchemy import select

    from shipyard.auth.tables import Token

    with auth_app.state.runtime.db.read() as s:
        stored = s.scalars(select(Token.token_hash)).all()
    assert secret not in stored
    assert service.hash_token(secret) in stored


def test_only_admins_manage_users(auth_app: FastAPI, anon: TestClient) -> None:
    admin = make_token(auth_app, "root", admin=True)
    user = make_token(auth_app, "carol")
    r = anon.post("/api/users", json={"name": "dave"}, headers=bearer(user))
    assert r.status_code == 403
    assert anon.get("/api/users", headers=bearer(user)).status_code == 403
    r = anon.post("/api/users", json={"name": "dave"}, headers=bearer(admin))
    assert r.status_code == 201
    assert anon.post("/api/users", json={"name": "dave"}, headers=bearer(admin)).status_code == 409
    assert (
        anon.post("/api/users", json={"name": "no spaces"}, headers=bearer(admin)).status_code
        == 422
    )
    names = [u["name"] for u in anon.get("/api/users", headers=bearer(admin)).json()]
    assert names == ["carol", "dave", "root"]
    r = anon.post("/api/tokens", json={"user": "dave"}, headers=bearer(user))
    assert r.status_code == 403
    r = anon.post("/api/tokens", json={"user": "dave"}, headers=bearer(admin))
    assert r.status_code == 201
    r = anon.post("/api/tokens", json={"user": "nobody"}, headers=bearer(admin))
    assert r.status_code == 404


def test_local_mode_acts_as_the_local_user(client: TestClient) -> None:
    assert client.get("/api/whoami").json()["name"] == "local"
    assert client.post("/api/runs", json={"project": "p"}).json()["user"] == "local"


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.org"])
def test_binding_beyond_loopback_needs_auth(tmp_path: object, host: str) -> None:
    with pytest.raises(ValueError, match="without auth"):
        create_app(Settings(home=tmp_path, host=host))  # type: ignore[arg-type]
    create_app(Settings(home=tmp_path, host=host, auth=AuthMode.required))  # type: ignore[arg-type]
