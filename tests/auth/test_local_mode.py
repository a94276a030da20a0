"""Local mode, the default: a token in SHIPYARD_HOME/token that the SDK, the CLI and jobs use with
no set-up, a one-time login link for the browser, and every request without a token refused."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

import shipyard
from shipyard.app import create_app
from shipyard.client._config import ClientSettings
from shipyard.config import AuthMode, Settings
from tests.conftest import ServerProcess, bearer

LINK = re.compile(r"Web UI \(a one-time login link\): (http://\S+/login\?code=\S+)")


def cli(home: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``shipyard ARGS`` as a user on the server's machine runs it: no token in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update({"SHIPYARD_URL": url, "SHIPYARD_HOME": str(home), "COLUMNS": "200"})
    return subprocess.run(
        [sys.executable, "-m", "shipyard", *args], capture_output=True, text=True, env=env
    )


def test_the_local_token_flow_end_to_end(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = ServerProcess(home).start()
    try:
        # the token file: written at first start, the owner's alone
        token_file = home / "token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert token.startswith("sy_") and token == server.token

        # a request without it is refused, with the way out
        r = httpx.get(f"{server.url}/api/projects")
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        assert "SHIPYARD_HOME/token" in r.json()["detail"]
        assert httpx.get(f"{server.url}/api/whoami", headers=bearer(token)).json()["name"] == (
            "local"
        )

        # the SDK on this machine finds it with no set-up
        sdk = ClientSettings(url=server.url, home=home)
        assert sdk.token == token
        with shipyard.init(project="p", name="from-sdk", settings=sdk, system_metrics=False) as run:
            run.log({"loss": 0.5})
        # ... and the CLI too
        out = cli(home, server.url, "runs", "ls", "-p", "p", "--json")
        assert out.returncode == 0, out.stderr
        assert [r["name"] for r in json.loads(out.stdout)] == ["from-sdk"]

        # a job logs into its own run with the token minted for it, not the local one
        code = tmp_path / "code"
        code.mkdir()
        (code / "train.py").write_text(
            "import os, shipyard\n"
            "assert os.environ['SHIPYARD_TOKEN'] != open(os.path.expanduser("
            f"{str(token_file)!r})).read().strip()\n"
            "with shipyard.init() as run:\n"
            "    run.log({'acc': 0.9})\n"
        )
        out = cli(
            home, server.url, "jobs", "submit", "-p", "p", "--dir", str(code), "-f",
            "--", "python", "train.py",
        )  # fmt: skip
        assert out.returncode == 0 and "succeeded" in out.stdout, out.stdout + out.stderr
        with shipyard.Client(settings=sdk) as client:
            (job_run,) = [r for r in client.runs("p") if r.name != "from-sdk"]
            assert job_run.summary["acc"]["last"] == 0.9

        # the browser: the link the server printed signs it in, once
        assert server.proc is not None and server.proc.stderr is not None
        printed = b"".join(server.proc.stderr.readline() for _ in range(3)).decode()
        link = LINK.search(printed)
        assert link, printed
        with httpx.Client(base_url=server.url, follow_redirects=False) as browser:
            r = browser.get("/")
            assert r.status_code == 303 and r.headers["location"].startswith("/login")
            assert "shipyard ui" in browser.get("/login").text
            r = browser.get(link.group(1))
            assert r.status_code == 303 and r.headers["location"] == "/"
            page = browser.get("/")
            assert page.status_code == 200 and "from-sdk" in page.text
            browser.cookies.clear()
            again = browser.get(link.group(1))
            assert again.status_code == 200 and "unknown, used or expired" in again.text
            assert browser.get("/").status_code == 303
        # `shipyard ui` prints a fresh one
        out = cli(home, server.url, "ui")
        assert out.returncode == 0 and out.stdout.startswith(f"{server.url}/login?code=")
    finally:
        server.kill()


def test_the_token_file_survives_restarts_and_a_revoked_one_is_replaced(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    with TestClient(create_app(settings)):
        first = settings.token_file.read_text().strip()
    with TestClient(create_app(settings)) as c:
        assert settings.token_file.read_text().strip() == first
        mine = c.get("/api/tokens", headers=bearer(first)).json()
        (local,) = [t for t in mine if t["prefix"] == first[:10]]
        assert c.delete(f"/api/tokens/{local['id']}", headers=bearer(first)).status_code == 200
    with TestClient(create_app(settings)) as c:
        second = settings.token_file.read_text().strip()
        assert second != first and stat.S_IMODE(settings.token_file.stat().st_mode) == 0o600
        assert c.get("/api/whoami", headers=bearer(first)).status_code == 401
        assert c.get("/api/whoami", headers=bearer(second)).status_code == 200


def test_a_home_shared_by_two_stores_keeps_one_token(tmp_path: Path) -> None:
    """A second store (another SHIPYARD_DATABASE_URL) on the same home learns the token
    already there rather than replacing it under the first server's clients."""
    one = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'one.db'}")
    two = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'two.db'}")
    create_app(one)
    token = one.token_file.read_text().strip()
    with TestClient(create_app(two)) as c:
        assert one.token_file.read_text().strip() == token
        assert c.get("/api/whoami", headers=bearer(token)).json()["name"] == "local"


def test_the_local_token_is_only_sent_to_this_machine(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sy_" + "x" * 40)
    assert ClientSettings(url="http://127.0.0.1:8000", home=tmp_path).token == "sy_" + "x" * 40
    assert ClientSettings(url="http://localhost:9", home=tmp_path).token == "sy_" + "x" * 40
    assert ClientSettings(url="https://shipyard.example.com", home=tmp_path).token is None
    assert ClientSettings(url="http://10.0.0.5:8000", home=tmp_path).token is None
    given = ClientSettings(url="http://127.0.0.1:8000", home=tmp_path, token="sy_mine")
    assert given.token == "sy_mine"


def test_auth_none_is_open_and_says_so(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    server = ServerProcess(home, env={**env, "SHIPYARD_AUTH": "none"}).start()
    try:
        assert not (home / "token").exists()
        r = httpx.get(f"{server.url}/api/whoami")
        assert r.status_code == 200 and r.json()["name"] == "local"
        server.kill()
        assert server.proc is not None
        assert "SHIPYARD_AUTH=none" in server.stderr
    finally:
        server.kill()


def test_auth_auto_is_the_old_name_of_local(tmp_path: Path) -> None:
    assert Settings(home=tmp_path, auth="auto").auth is AuthMode.local  # type: ignore[arg-type]
