"""Serving from the ``shipyard`` command against a live server: deploy, list, show with the
last minute's traffic, canary split, scale, delete, and one-line refusals."""

from __future__ import annotations

import os

from typer.testing import CliRunner

from shipyard.cli import app as cli
from tests.conftest import refused
from tests.serving.conftest import Deployer
from tests.serving.test_endpoints import X

runner = CliRunner()


def sy(deployer: Deployer, *args: str) -> str:
    env = {
        "SHIPYARD_URL": deployer.url,
        "SHIPYARD_TOKEN": deployer.token,
        "SHIPYARD_PROJECT": "p",
        "COLUMNS": "200",
    }
    result = runner.invoke(cli, list(args), env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_endpoints_from_the_cli(deployer: Deployer) -> None:
    out = sy(deployer, "deploy", "mlp/1", "--endpoint", "cli-ep", "--max-batch-size", "16")
    assert "cli-ep" in out
    assert "no requests in the last 60 s" in sy(deployer, "endpoints", "show", "cli-ep")
    for _ in range(3):
        r = deployer.http.post("/v1/models/cli-ep:predict", json={"instances": X.tolist()})
        assert r.status_code == 200  # at once: the deploy answered after the controller saw it
    out = sy(deployer, "endpoints", "show", "cli-ep")
    assert "last 60 s: 3 requests" in out and "errors 0.0%" in out and "p99" in out
    sy(deployer, "deploy", "mlp/2", "--endpoint", "cli-ep", "--canary", "10")
    sy(deployer, "endpoints", "traffic", "cli-ep", "--set", "1=70,2=30")
    assert "{'1': 70, '2': 30}" in sy(deployer, "endpoints", "show", "cli-ep")
    sy(deployer, "endpoints", "scale", "cli-ep", "--min", "0", "--max", "2")
    out = sy(deployer, "endpoints", "ls")
    assert "cli-ep" in out and "mlp" in out
    sy(deployer, "endpoints", "delete", "cli-ep")
    for args, message in [
        (["endpoints", "show", "cli-ep"], "endpoint 'cli-ep' does not exist"),
        (["deploy", "mlp", "--endpoint", "x"], "use MODEL@ALIAS or MODEL/VERSION"),
        (["endpoints", "traffic", "ghost", "--set", "1=100"], "endpoint 'ghost' does not exist"),
        (["endpoints", "traffic", "ghost", "--set", "1:100"], "use VERSION=PERCENT"),
    ]:
        env = {
            **os.environ,
            "SHIPYARD_URL": deployer.url,
            "SHIPYARD_TOKEN": deployer.token,
            "SHIPYARD_PROJECT": "p",
        }
        refused(args, env, message)
