"""Registry, members and audit from the ``shipyard`` command, on a real server with auth."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from shipyard.app import create_app
from shipyard.cli import app as cli
from tests.conftest import ServerThread, refused
from tests.registry.conftest import World

runner = CliRunner()


@pytest.fixture
def url(world: World) -> Iterator[str]:
    with ServerThread(_second_app(world)) as server:
        yield server.url


def sy(world: World, url: str, who: str, *args: str, code: int = 0) -> str:
    env = {
        "SHIPYARD_URL": url,
        "SHIPYARD_TOKEN": world.tokens[who],
        "SHIPYARD_PROJECT": "proj",
        "COLUMNS": "200",
    }
    result = runner.invoke(cli, list(args), env=env)
    assert result.exit_code == code, result.output
    return result.output


def test_models_flow_from_the_cli(world: World, url: str) -> None:
    out = sy(world, url, "vic", "models", "ls")
    assert "m" in out and "2" in out
    world.ok("dev", "PATCH", "/api/projects/proj/models/m", json={"card": "# Digits model"})
    out = sy(world, url, "vic", "models", "show", "m")
    assert "val/acc=0.97" in out and "Digits model" in out and "torch" in out
    sy(world, url, "mona", "models", "alias", "m", "champion", "2")
    out = sy(
        world,
        url,
        "dev",
        "models",
        "request-alias",
        "m",
        "production",
        "2",
        "--reason",
        "beats v1 by 1.4 pts",
    )
    request_id = out.split()[1].rstrip(":")
    assert "pending" in sy(world, url, "vic", "models", "requests", "--status", "pending")
    out = sy(world, url, "mona", "models", "approve", request_id, "--note", "ok")
    assert "approved" in out
    out = sy(world, url, "vic", "models", "ls", "-p", "proj")
    assert "champion→2" in out and "production→2" in out
    sy(world, url, "alice", "projects", "members", "add", "proj", "otto", "--role", "developer")
    assert "otto" in sy(world, url, "vic", "projects", "members", "ls", "proj")
    out = sy(world, url, "alice", "audit", "ls", "--since", "1d")
    for action in ("alias.set", "alias_request.approve", "member.set"):
        assert action in out
    sy(world, url, "mona", "models", "archive", "m", "1")
    sy(world, url, "mona", "models", "delete", "m", "--version", "1", "--yes")
    versions = world.ok("vic", "GET", "/api/projects/proj/models/m/versions")
    assert [v["version"] for v in versions] == [2]


def test_refusals_are_one_line_errors(world: World, url: str) -> None:
    for who, args, message in [
        ("dev", ["models", "alias", "m", "champion", "1"], "this needs maintainer or above"),
        ("vic", ["audit", "ls"], "user 'vic' is viewer in project 'proj'"),
        ("dev", ["models", "show", "ghost"], "model 'ghost' does not exist"),
    ]:
        env = {
            **os.environ,
            "SHIPYARD_URL": url,
            "SHIPYARD_TOKEN": world.tokens[who],
            "SHIPYARD_PROJECT": "proj",
        }
        refused(args, env, message)


def _second_app(world: World) -> FastAPI:
    """Another app on the same store: one app's background services run in one event loop."""
    return create_app(world.client.app.state.runtime.settings)  # type: ignore[attr-defined]
