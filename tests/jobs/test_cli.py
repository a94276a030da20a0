"""The ``shipyard jobs``, ``shipyard usage`` commands against a real server and worker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli import app as cli
from tests.jobs.conftest import JobServer, script

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_submit_follow_ls_show_usage_cancel(js: JobServer, tmp_path: Path) -> None:
    code = script(tmp_path / "code", "import sys\nprint('lr is', sys.argv[2])\n", "train.py")
    env = {
        "SHIPYARD_URL": js.url,
        "SHIPYARD_HOME": str(tmp_path / "c"),
        "SHIPYARD_TOKEN": str(js.sdk.token),
        "COLUMNS": "250",
    }
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, list(args), env=env)
        assert result.exit_code == code, result.output
        return result.output + (str(result.exception) if code else "")

    out = run(
        "jobs", "submit", "-p", "p", "--dir", str(code), "--cpus", "1", "--timeout", "5m",
        "--env", "A=1", "-f", "--", "python", "train.py", "--lr", "0.01",
    )  # fmt: skip
    assert "queued" in out and "lr is 0.01" in out
    job_id = re.search(r"job ([0-9a-f]{32})", out).group(1)  # type: ignore[union-attr]
    assert job_id in run("jobs", "ls", "-p", "p") and "succeeded" in run("jobs", "ls", "-p", "p")
    shown = run("jobs", "show", job_id)
    assert "timeout" not in shown and "succeeded" in shown and '["python", "train.py"' in shown
    assert "lr is 0.01" in run("jobs", "logs", job_id)
    assert "lr is 0.01" in run("jobs", "logs", job_id, "-f")
    usage = run("usage", "-p", "p", "--since", "1d")
    assert "p" in usage and "total" in usage
    assert job_id in run("usage", "--by", "job")
    assert "local@" in run("jobs", "workers")
    assert "unlimited" in run("jobs", "quota", "-p", "p")
    out = run("jobs", "submit", "-p", "p", "--dir", str(code), "--", "sleep", "30")
    sleeper = re.search(r"job ([0-9a-f]{32})", out).group(1)  # type: ignore[union-attr]
    js.wait(sleeper, {"running"})
    assert "stopping" in run("jobs", "cancel", sleeper)
    assert js.wait(sleeper)["state"] == "cancelled"
    failed = run("jobs", "submit", "-p", "p", "--dir", str(code), "-f", "--", "false", code=1)
    assert "failed" in failed
    bad = run(
        "jobs", "submit", "-p", "p", "--dir", str(code), "--timeout", "soon", "--", "x", code=1
    )
    assert "duration 'soon'" in bad
