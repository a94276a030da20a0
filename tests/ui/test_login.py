"""Signing in to the UI with an API token when auth is on; every UI route needs it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

import shipyard
from shipyard.app import create_app
from shipyard.auth import service as auth_service
from shipyard.client._config import ClientSettings
from shipyard.config import AuthMode, Settings
from shipyard.ui import auth, operations, pages, platform
from shipyard.ui.render import COOKIE
from tests.conftest import ServerThread
from tests.ui.conftest import SERIES_BLUE, drawn_pixels, open_tab

DATA_ROUTES = {
    "/runs/{run_id}/history",
    "/runs/{run_id}/artifacts/{path:path}",
    "/jobs/{job_id}/logs",
}


def make_token(app: FastAPI, name: str, admin: bool = True) -> str:
    with app.state.runtime.db.session() as s:
        user = auth_service.create_user(s, name, is_admin=admin)
        _, secret = auth_service.create_token(s, user, "ui test")
    return secret


@dataclass
class AuthServer:
    server: ServerThread
    token: str
    run_id: str


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    home = tmp_path_factory.mktemp("ui-auth")
    app = create_app(Settings(home=home / "server", auth=AuthMode.required))
    token = make_token(app, "alice")
    with ServerThread(app) as server:
        sdk = ClientSettings(url=server.url, home=home / "client", token=token)
        run = shipyard.init(project="secure", name="guarded", settings=sdk, system_metrics=False)
        run.log_series("loss", np.arange(100), np.linspace(1, 0, 100))
        run.finish()
        yield AuthServer(server, token, run.id)


def test_login_refuses_a_wrong_token_and_lets_the_right_one_in(
    browser: Browser, auth_server: AuthServer
) -> None:
    tab, close = open_tab(browser, auth_server.server.url)
    page = tab.page
    try:
        tab.goto(f"/runs/{auth_server.run_id}")
        expect(page).to_have_url(re.compile(r"/login\?next=%2Fruns%2F"))
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

        page.get_by_label("API token").fill("sy_not-a-token")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#login-error")).to_contain_text("unknown or revoked")
        assert page.context.cookies() == []

        page.get_by_label("API token").fill(auth_server.token)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{auth_server.server.url}/runs/{auth_server.run_id}")
        expect(page.locator("header .user")).to_have_text("alice")
        chart = page.locator(".chart").first
        expect(chart).to_have_attribute("data-drawn", "1")  # chart data came via the cookie
        assert drawn_pixels(chart, SERIES_BLUE) > 50

        (cookie,) = page.context.cookies()
        assert cookie["name"] == COOKIE and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert auth_server.token not in page.evaluate("document.cookie")

        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(re.compile(r"/login$"))
        tab.goto("/")
        expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    finally:
        close()
    assert tab.unexpected_errors() == [], tab.errors


@pytest.fixture
def auth_client(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    app = create_app(Settings(home=tmp_path, auth=AuthMode.required))
    token = make_token(app, "bob")
    with TestClient(app, follow_redirects=False) as client:
        yield client, token


def ui_routes() -> list[tuple[str, str]]:
    return sorted(
        (method, route.path)
        for router in (
            auth.router,
            pages.router,
            pages.data_router,
            platform.router,
            operations.router,
            operations.data_router,
        )
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    )


def concrete(path: str) -> str:
    return path.replace("{run_id}", "0" * 32).replace("{name}", "p").replace("{path:path}", "a")


@pytest.mark.parametrize("route", ui_routes(), ids=lambda r: f"{r[0]} {r[1]}")
def test_every_ui_route_needs_a_login_when_auth_is_on(
    auth_client: tuple[TestClient, str], route: tuple[str, str]
) -> None:
    client, _ = auth_client
    method, path = route
    for cookies in ({}, {COOKIE: "sy_forged"}):
        client.cookies.clear()
        client.cookies.update(cookies)
        r = client.request(method, concrete(path))
        if path in DATA_ROUTES:  # fetched by scripts: a problem, not a redirect
            assert r.status_code == 401
            assert r.headers["content-type"] == "application/problem+json"
        elif path in ("/login", "/logout"):  # the way in and out are open
            assert r.status_code in (200, 303, 401), r.text
        else:
            assert r.status_code == 303, (method, path, r.status_code)
            assert r.headers["location"].startswith("/login?next=%2F")


def test_pages_act_as_the_cookies_user(auth_client: tuple[TestClient, str]) -> None:
    client, token = auth_client
    r = client.post("/login", data={"token": token, "next": "/"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert "httponly" in r.headers["set-cookie"].lower()
    page = client.get("/")
    assert (
        page.status_code == 200 and '<span class="user" title="signed in">bob</span>' in page.text
    )
    # the API still wants its bearer token: the UI's cookie is no way in
    assert client.get("/api/projects").status_code == 401
    assert client.get("/api/projects", headers={"authorization": f"Bearer {token}"}).is_success


def test_pages_show_only_what_the_users_role_allows(auth_client: tuple[TestClient, str]) -> None:
    client, admin = auth_client
    bearer = {"authorization": f"Bearer {admin}"}
    run_id = client.post("/api/runs", json={"project": "secret"}, headers=bearer).json()["id"]
    client.put(f"/api/runs/{run_id}/artifacts/a.txt", content=b"x", headers=bearer)
    outsider = make_token(client.app, "carol", admin=False)  # type: ignore[arg-type]
    client.post("/login", data={"token": outsider})
    home = client.get("/")
    assert home.status_code == 200 and "secret" not in home.text
    for path in ("/projects/secret/runs", f"/runs/{run_id}", f"/runs/{run_id}/live"):
        r = client.get(path)
        assert r.status_code == 403 and r.headers["content-type"].startswith("text/html"), path
        assert "has no role in project" in r.text
    assert client.get(f"/compare?runs={run_id}").status_code == 403
    for path in (f"/runs/{run_id}/history?key=k", f"/runs/{run_id}/artifacts/a.txt"):
        r = client.get(path)
        assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"


def test_a_revoked_token_is_refused_at_once(auth_client: tuple[TestClient, str]) -> None:
    client, token = auth_client
    client.post("/login", data={"token": token})
    assert client.get("/").status_code == 200
    app = client.app
    with app.state.runtime.db.session() as s:  # type: ignore[attr-defined]
        user = auth_service.get_user(s, "bob")
        auth_service.revoke_token(s, user, auth_service.list_tokens(s, user)[0].id)
    r = client.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2F"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example", "\\\\evil", ""])
def test_login_never_redirects_off_the_server(
    auth_client: tuple[TestClient, str], target: str
) -> None:
    client, token = auth_client
    r = client.post("/login", data={"token": token, "next": target})
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_login_from_another_site_is_refused(auth_client: tuple[TestClient, str]) -> None:
    client, token = auth_client
    r = client.post("/login", data={"token": token}, headers={"origin": "http://evil.example"})
    assert r.status_code == 403 and "text/html" in r.headers["content-type"]
    assert "set-cookie" not in r.headers


def test_without_auth_there_is_no_login(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, auth=AuthMode.none)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        r = client.get("/login?next=/projects/p/runs")
        assert r.status_code == 303 and r.headers["location"] == "/projects/p/runs"
        r = client.get("/")
        assert r.status_code == 200 and "Sign out" not in r.text
