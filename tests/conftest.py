"""Fixtures: settings -> app -> client (in process), real servers on 127.0.0.1, and PostgreSQL.

The store fixture is parametrized over SQLite and a real PostgreSQL started once per test run;
each PostgreSQL test gets a fresh database cloned from a migrated template.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from shipyard.app import create_app
from shipyard.client._config import ClientSettings
from shipyard.config import AuthMode, Settings
from shipyard.db import make_engine
from shipyard.migrations import metadata, upgrade
from shipyard.ui.render import COOKIE
from tests._postgres import PostgresServer, find_bin, free_port


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the run, with a migrated database ``shipyard_test``."""
    bindir = find_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: run `make test`, which installs it")
        pytest.skip("PostgreSQL is not installed (make test installs it)")
    server = PostgresServer(bindir)
    server.start()
    server.admin("CREATE DATABASE shipyard_test")
    engine = make_engine(server.url("shipyard_test"))
    upgrade(engine)
    engine.dispose()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated store: a new SQLite file, or the PostgreSQL test database emptied."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shipyard.db'}"
        return
    pg: PostgresServer = request.getfixturevalue("postgres")
    tables = ", ".join(t.name for t in metadata().sorted_tables)
    pg.admin(f"TRUNCATE {tables} RESTART IDENTITY CASCADE", database="shipyard_test")
    yield pg.url("shipyard_test")


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(home=tmp_path / "home", database_url=database_url, heartbeat_timeout_s=120)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


def app_token(app: FastAPI) -> str:
    """The local token a server in local mode (the default) keeps in SHIPYARD_HOME/token:
    what the SDK and CLI on its machine send."""
    path: Path = app.state.runtime.settings.token_file
    return path.read_text().strip()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def local_client(app: FastAPI, **kwargs: Any) -> TestClient:
    """A client of the app in process, with its local token as the SDK and CLI on its machine
    send it (bearer) and as a browser signed in through the login link keeps it (cookie)."""
    token = app_token(app)
    return TestClient(app, headers=bearer(token), cookies={COOKIE: token}, **kwargs)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """The app in process, calling as the SDK on its machine does (with the local token)."""
    with local_client(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def auth_settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(home=tmp_path / "home", database_url=database_url, auth=AuthMode.required)


def refused(args: list[str], env: dict[str, str], message: str) -> str:
    """Run ``python -m shipyard ARGS`` (``main()``, as a user runs it) and check it refuses
    with exit code 1 and one ``error:`` line holding ``message``; returns that line."""
    proc = subprocess.run(
        [sys.executable, "-m", "shipyard", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    line = proc.stderr.strip()
    assert proc.returncode == 1, (proc.returncode, proc.stdout[-500:], line)
    assert line.startswith("error:") and message in line, line
    assert "Traceback" not in line and len(line.splitlines()) == 1, line
    return line


class ServerThread:
    """uvicorn serving an app on a free 127.0.0.1 port, in a thread of the test process."""

    def __init__(self, app: FastAPI, port: int | None = None) -> None:
        self.port = port or free_port()  # the app's settings.port, when jobs must call back
        self.url = f"http://127.0.0.1:{self.port}"
        token_file: Path = app.state.runtime.settings.token_file
        self.token = token_file.read_text().strip() if token_file.exists() else None
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def server(app: FastAPI) -> Iterator[ServerThread]:
    """The app on a real socket."""
    with ServerThread(app) as s:
        yield s


@pytest.fixture
def sdk(server: ServerThread, tmp_path: Path) -> ClientSettings:
    """SDK settings pointing at the real server, with a spool of the test's own, and the token
    the server keeps in its home (the SDK reads it from there when both share one)."""
    return ClientSettings(url=server.url, home=tmp_path / "client", token=server.token)


class ServerProcess:
    """``python -m shipyard server`` in a child process, so a test can kill it."""

    def __init__(
        self,
        home: Path,
        port: int | None = None,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.home = home
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.env = env  # the whole environment (default: this process's)
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = ""  # the local token, once started
        self.stderr = ""  # what it printed, once killed (unless a test read it first)

    def start(self) -> ServerProcess:
        env = {**(os.environ if self.env is None else self.env), "SHIPYARD_HOME": str(self.home)}
        if self.database_url:
            env["SHIPYARD_DATABASE_URL"] = self.database_url
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shipyard",
                "server",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    token_file = self.home / "token"
                    self.token = token_file.read_text().strip() if token_file.exists() else ""
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError("server process did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc is not None and self.proc.stderr is not None:
            if not self.proc.stderr.closed:
                self.stderr += self.proc.stderr.read().decode(errors="replace")
            self.proc.stderr.close()
