"""The ``shipyard`` command against a real server: tables, diffs, downloads, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import shipyard
from shipyard.app import create_app
from shipyard.auth import service as auth_service
from shipyard.cli import app as cli
from shipyard.client._config import ClientSettings
from shipyard.config import AuthMode, Settings
from tests.conftest import ServerThread, bearer, refused

runner = CliRunner()


def invoke(sdk: ClientSettings, *args: str) -> str:
    result = runner.invoke(
        cli,
        list(args),
        env={
            "SHIPYARD_URL": sdk.url,
            "SHIPYARD_HOME": str(sdk.home),
            "SHIPYARD_TOKEN": sdk.token,
            "COLUMNS": "250",
        },
    )
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def two_runs(sdk: ClientSettings, tmp_path: Path) -> tuple[str, str]:
    ids = []
    (tmp_path / "ckpt.pt").write_bytes(b"0123456789" * 10_000)
    for lr, acc in [(0.001, 0.95), (0.1, 0.5)]:
        with shipyard.init(
            project="digits", name=f"lr{lr}", config={"lr": lr}, settings=sdk, system_metrics=False
        ) as run:
            run.log({"val/acc": acc})
            run.log_checkpoint(tmp_path / "ckpt.pt", metrics={"val/acc": acc})
        ids.append(run.id)
    return ids[0], ids[1]


def test_runs_ls_filters_sorts_and_shows_the_named_fields(
    sdk: ClientSettings, two_runs: tuple[str, str]
) -> None:
    out = invoke(
        sdk,
        "runs",
        "ls",
        "--project",
        "digits",
        "--filter",
        "config.lr < 0.01 and summary.val/acc > 0.9",
        "--sort",
        "-summary.val/acc",
    )
    assert two_runs[0] in out and two_runs[1] not in out
    assert "config.lr" in out and "summary.val/acc" in out and "0.95" in out
    out = invoke(sdk, "runs", "ls", "-p", "digits", "--sort", "summary.val/acc")
    assert out.index(two_runs[1]) < out.index(two_runs[0])
    assert '"config"' in invoke(sdk, "runs", "ls", "--json")


def test_runs_show_and_diff(sdk: ClientSettings, two_runs: tuple[str, str]) -> None:
    out = invoke(sdk, "runs", "show", two_runs[0])
    assert "lr0.001" in out and "finished" in out and "val/acc" in out
    out = invoke(sdk, "runs", "diff", *two_runs)
    assert "config" in out and "lr" in out and "0.001" in out and "0.1" in out


def test_artifacts_ls_and_get_with_hash_check(
    sdk: ClientSettings, two_runs: tuple[str, str], tmp_path: Path
) -> None:
    assert "checkpoints/ckpt.pt" in invoke(sdk, "artifacts", "ls", two_runs[0])
    target = tmp_path / "out"
    target.mkdir()
    invoke(sdk, "artifacts", "get", two_runs[0], "checkpoints/ckpt.pt", "-o", str(target))
    assert (target / "ckpt.pt").read_bytes() == b"0123456789" * 10_000
    assert "digits" in invoke(sdk, "projects", "ls")


def test_artifacts_put_file_and_folder(
    sdk: ClientSettings, two_runs: tuple[str, str], tmp_path: Path
) -> None:
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "a.bin").write_bytes(b"a" * 3_000_000)
    (tmp_path / "data" / "sub" / "b.txt").write_text("b")
    out = invoke(sdk, "artifacts", "put", two_runs[1], str(tmp_path / "data"), "--name", "ds")
    assert "uploaded 2 file(s)" in out
    listing = invoke(sdk, "artifacts", "ls", two_runs[1])
    assert "ds/a.bin" in listing and "ds/sub/b.txt" in listing and "3000000" in listing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["runs", "show", "nope"], "run 'nope' does not exist"),
        (["runs", "ls", "--filter", "config.lr <"], "ends too early"),
        (["artifacts", "get", "0" * 32, "x"], "does not exist"),
    ],
)
def test_errors_are_one_line_and_exit_1(sdk: ClientSettings, args: list[str], message: str) -> None:
    env = {
        "SHIPYARD_URL": sdk.url,
        "SHIPYARD_HOME": str(sdk.home),
        "SHIPYARD_TOKEN": str(sdk.token),
        "COLUMNS": "250",
        "PATH": "/usr/bin:/bin",
    }
    refused(args, env, message)


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "shipyard", "projects", "ls"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"SHIPYARD_URL": "http://127.0.0.1:9", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 1
    assert "127.0.0.1:9 did not answer" in proc.stderr and "Traceback" not in proc.stderr


def test_users_and_tokens_on_the_local_store(tmp_path: Path) -> None:
    """``--local``: the first admin of a server that requires tokens, before any token exists."""
    env = {"SHIPYARD_HOME": str(tmp_path)}
    result = runner.invoke(cli, ["users", "create", "alice", "--admin", "--local"], env=env)
    assert result.exit_code == 0 and "alice" in result.output
    result = runner.invoke(
        cli, ["tokens", "create", "--user", "alice", "--name", "laptop", "--local"], env=env
    )
    token = result.output.strip()
    assert result.exit_code == 0 and token.startswith("sy_") and "\n" not in token
    listed = runner.invoke(cli, ["tokens", "ls", "-u", "alice", "--local", "--json"], env=env)
    assert [t["name"] for t in json.loads(listed.output)] == ["laptop"]
    assert "alice" in runner.invoke(cli, ["users", "ls", "--local"], env=env).output
    proc = subprocess.run(
        [sys.executable, "-m", "shipyard", "users", "create", "alice", "--local"],
        capture_output=True,
        text=True,
        env={**env, "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 1 and "already exists" in proc.stderr
    refused(["tokens", "create", "--local"], {**env, "PATH": "/usr/bin:/bin"}, "needs --user")
    with TestClient(create_app(Settings(home=tmp_path, auth=AuthMode.required))) as c:
        assert c.get("/api/whoami", headers=bearer(token)).json()["name"] == "alice"
        (record,) = c.get("/api/audit", params={"action": "token."}, headers=bearer(token)).json()
        assert record["actor"] == "shipyard --local" and record["client"] is None


def test_users_and_tokens_through_the_api(tmp_path: Path) -> None:
    """Without --local, the commands are API calls with the caller's token, so an admin manages
    a remote server from a laptop; anyone manages their own tokens."""
    app = create_app(Settings(home=tmp_path / "server", auth=AuthMode.required))
    with app.state.runtime.db.session() as s:
        root = auth_service.create_user(s, "root", is_admin=True)
        _, admin = auth_service.create_token(s, root, "laptop")
    with ServerThread(app) as server:
        base = {"SHIPYARD_URL": server.url, "SHIPYARD_HOME": str(tmp_path / "laptop")}
        as_root = {**base, "SHIPYARD_TOKEN": admin, "COLUMNS": "200"}

        def sy(env: dict[str, str], *args: str) -> str:
            result = runner.invoke(cli, list(args), env=env)
            assert result.exit_code == 0, result.output
            return result.output

        assert "created user bob (user)" in sy(as_root, "users", "create", "bob")
        assert {u["name"] for u in json.loads(sy(as_root, "users", "ls", "--json"))} == {
            "bob",
            "root",
        }
        bobs = sy(as_root, "tokens", "create", "--user", "bob", "--name", "ci").strip()
        assert bobs.startswith("sy_")
        as_bob = {**base, "SHIPYARD_TOKEN": bobs, "PATH": "/usr/bin:/bin"}
        (mine,) = json.loads(sy(as_bob, "tokens", "ls", "--json"))
        assert mine["name"] == "ci" and "token" not in mine
        second = sy(as_bob, "tokens", "create", "--name", "notebook").strip()
        listed = json.loads(sy(as_root, "tokens", "ls", "--user", "bob", "--json"))
        assert sorted(t["name"] for t in listed) == ["ci", "notebook"]
        refused(["users", "create", "eve"], as_bob, "is not a server admin")
        refused(["tokens", "ls", "--user", "root"], as_bob, "is not a server admin")
        notebook = next(t for t in listed if t["name"] == "notebook")
        assert f"revoked {notebook['id']}" in sy(as_bob, "tokens", "revoke", notebook["id"])
        refused(["projects", "ls"], {**as_bob, "SHIPYARD_TOKEN": second}, "unknown or revoked")
        link = sy(as_bob, "ui").strip()
        assert link.startswith(f"{server.url}/login?code=")
        with httpx.Client(follow_redirects=False) as browser:
            r = browser.get(link)
            assert r.status_code == 303 and "shipyard_token" in r.headers["set-cookie"]
            again = browser.get(link)  # one time only
            assert again.status_code == 200 and "unknown, used or expired" in again.text


def test_server_refuses_open_non_loopback_bind(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "shipyard", "server", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"SHIPYARD_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 1
    assert "refusing to listen on 0.0.0.0 without auth" in proc.stderr


def test_db_upgrade(tmp_path: Path) -> None:
    result = runner.invoke(cli, ["db", "upgrade"], env={"SHIPYARD_HOME": str(tmp_path)})
    assert result.exit_code == 0 and "up to date" in result.output
    assert (tmp_path / "shipyard.db").exists()
