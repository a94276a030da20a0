"""Sweeps: grid, random and bayes searches run as jobs, the best trial is reported, and early
termination cancels the trials that fall behind, from the metrics they log."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shipyard.cli import app as cli
from shipyard.client import _jobs
from shipyard.errors import Unprocessable
from tests.jobs.conftest import JobServer, script

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

TRAIN = """
import os, sys, time, shipyard
args = dict(a.lstrip("-").split("=", 1) for a in sys.argv[1:])
trial = int(os.environ["SHIPYARD_SWEEP_TRIAL"])
with shipyard.init(system_metrics=False) as run:
    if args.get("mode") == "prune" and trial >= 2:  # a loser: low, then it would run long
        for step in range(3):
            run.log({"score": 0.0}, step=step)
        run.flush()
        time.sleep(60)
    for step in range(3):
        run.log({"score": float(args.get("a", 1)) * float(args.get("b", 1))}, step=step)
"""


def sweep(js: JobServer, code: Path, config: dict[str, Any]) -> dict[str, Any]:
    snapshot = _jobs.upload_snapshot(js.client.http, "p", code, 10**8)
    result: dict[str, Any] = js.client.http.json(
        "POST", "/api/projects/p/sweeps", {"config": config, "snapshot": snapshot}
    )
    return result


def finished(js: JobServer, sweep_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        s: dict[str, Any] = js.client.http.json("GET", f"/api/sweeps/{sweep_id}")
        if s["state"] != "running":
            return s
        assert time.monotonic() < deadline, s
        time.sleep(0.2)


def test_grid_sweep_runs_every_point_and_reports_the_best(js: JobServer, tmp_path: Path) -> None:
    code = script(tmp_path / "code", TRAIN, "train.py")
    config = {
        "name": "grid",
        "method": "grid",
        "program": "train.py",
        "metric": {"name": "score", "goal": "maximize"},
        "parameters": {"a": {"values": [1, 2]}, "b": {"values": [3, 5]}, "mode": {"value": "x"}},
        "parallelism": 2,
    }
    created = sweep(js, code, config)
    assert created["state"] == "running" and created["method"] == "grid"
    s = finished(js, created["id"])
    assert s["state"] == "finished" and len(s["trials"]) == 4
    assert {(t["params"]["a"], t["params"]["b"]) for t in s["trials"]} == {
        (1, 3),
        (1, 5),
        (2, 3),
        (2, 5),
    }
    assert all(t["state"] == "complete" for t in s["trials"])
    assert s["best"]["params"] == {"a": 2, "b": 5, "mode": "x"} and s["best"]["value"] == 10
    run = js.client.run(s["best"]["run_id"])
    assert run.config["a"] == 2 and run.summary["score"]["last"] == 10
    jobs = js.client.http.json("GET", "/api/jobs", params={"sweep": created["id"]})
    assert len(jobs) == 4 and jobs[0]["command"][:2] == ["python", "train.py"]


def test_bayes_sweep_searches_a_range(js: JobServer, tmp_path: Path) -> None:
    code = script(tmp_path / "code", TRAIN, "train.py")
    config = {
        "method": "bayes",
        "program": "train.py",
        "metric": {"name": "score", "goal": "minimize"},
        "parameters": {"a": {"distribution": "log_uniform_values", "min": 0.01, "max": 1.0}},
        "run_cap": 3,
        "parallelism": 3,
    }
    s = finished(js, sweep(js, code, config)["id"])
    values = [t["value"] for t in s["trials"]]
    assert len(values) == 3 and s["best"]["value"] == min(values)
    assert all(0.01 <= t["params"]["a"] <= 1.0 for t in s["trials"])


def test_median_stopping_cancels_the_trial_that_falls_behind(js: JobServer, tmp_path: Path) -> None:
    code = script(tmp_path / "code", TRAIN, "train.py")
    config = {
        "method": "random",
        "program": "train.py",
        "metric": {"name": "score", "goal": "maximize"},
        "parameters": {"a": {"values": [1]}, "mode": {"value": "prune"}},
        "run_cap": 3,
        "parallelism": 1,
        "early_terminate": {"type": "median", "min_trials": 2, "min_iter": 1},
        "resources": {"timeout_s": 90},
    }
    s = finished(js, sweep(js, code, config)["id"])
    states = [t["state"] for t in s["trials"]]
    assert states == ["complete", "complete", "pruned"]
    loser = js.wait(s["trials"][2]["job_id"])
    assert loser["state"] == "cancelled" and "pruned by median" in loser["message"]


def test_bad_sweep_configs_are_refused_with_the_reason(js: JobServer) -> None:
    js.client.http.json("POST", "/api/projects", {"name": "p"})
    cases = [
        ({"method": "annealing"}, "method 'annealing'"),
        ({"method": "grid", "metric": {"name": "m"}}, "parameters"),
        (
            {
                "method": "grid",
                "metric": {"name": "m"},
                "parameters": {"lr": {"min": 0.1, "max": 1.0}},
                "command": ["true"],
            },
            "grid needs values lists; lr",
        ),
        (
            {"metric": {"name": "m", "goal": "up"}, "parameters": {"x": {"value": 1}}},
            "metric.goal 'up'",
        ),
    ]
    for config, message in cases:
        with pytest.raises(Unprocessable, match=message):
            js.client.http.json("POST", "/api/projects/p/sweeps", {"config": config})
    assert js.client.http.json("GET", "/api/projects/p/sweeps") == []


def test_sweep_cli_create_show_cancel(js: JobServer, tmp_path: Path) -> None:
    code = script(tmp_path / "code", "import time; time.sleep(60)\n", "train.py")
    (tmp_path / "sweep.yaml").write_text(
        "project: p\nmethod: random\nprogram: train.py\nmetric: {name: score}\n"
        "parameters:\n  lr: {min: 0.001, max: 0.1}\nrun_cap: 2\nparallelism: 1\n"
    )
    env = {
        "SHIPYARD_URL": js.url,
        "SHIPYARD_HOME": str(tmp_path / "c"),
        "SHIPYARD_TOKEN": str(js.sdk.token),
        "COLUMNS": "200",
    }
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output

    out = run("sweep", "create", str(tmp_path / "sweep.yaml"), "--dir", str(code))
    sweep_id = out.split()[1]
    deadline = time.monotonic() + 30
    while not js.client.http.json("GET", f"/api/sweeps/{sweep_id}")["trials"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert "random" in run("sweep", "ls", "-p", "p")
    assert "lr" in run("sweep", "show", sweep_id)
    assert "cancelled" in run("sweep", "cancel", sweep_id)
    s = js.client.http.json("GET", f"/api/sweeps/{sweep_id}")
    assert s["state"] == "cancelled" and s["trials"][0]["state"] == "cancelled"
    assert js.wait(s["trials"][0]["job_id"])["state"] == "cancelled"


@pytest.mark.parametrize(
    ("early", "pruner"),
    [
        ({"type": "hyperband", "min_iter": 2, "eta": 3}, "HyperbandPruner"),
        ({"type": "asha", "min_iter": 1}, "SuccessiveHalvingPruner"),
        ({"type": "median", "min_trials": 2}, "MedianPruner"),
        (None, "NopPruner"),
    ],
)
def test_each_early_termination_maps_to_an_optuna_pruner(
    early: dict[str, Any] | None, pruner: str, database_url: str
) -> None:
    from shipyard.jobs.sweeps import make_study, parse_config, trial_command

    config: dict[str, Any] = {
        "method": "bayes",
        "program": "train.py",
        "metric": {"name": "acc"},
        "parameters": {"lr": {"min": 0.1, "max": 1.0}, "layers": {"values": [[64, 32], [16]]}},
        "early_terminate": early,
    }
    spec = parse_config(config)
    assert type(make_study(spec, seed=1).pruner).__name__ == pruner
    assert trial_command(spec, {"lr": 0.5, "layers": [16]}) == [
        "python",
        "train.py",
        "--lr=0.5",
        "--layers=[16]",
    ]
