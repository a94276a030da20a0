"""Experiment tracking: Shipyard's server and SDK against an MLflow tracking server, same work.

Run it with the project's virtual environment::

    .venv/bin/python benchmarks/tracking.py [--json PATH] [--quick]

MLflow (3.x, from PyPI) is installed by this script into its own virtual environment,
``.bench/mlflow-venv`` (git-ignored), on first use. Both servers run here as subprocesses on free
127.0.0.1 ports with fresh temporary data folders; MLflow uses a SQLite backend, like Shipyard's
default store. The Shipyard SDK runs in this process; the MLflow client runs in the MLflow venv's
Python, driven by a small script (``DRIVER`` below) that performs one case and prints its
timings as JSON.

Cases (every ratio is > 1 when Shipyard is better):

- ``per_step``: a training loop logging 10 metrics per step through each tool's ordinary per-step
  call (``run.log`` vs synchronous ``mlflow.log_metrics``), timed until the data is on the server
  (Shipyard: until ``run.finish()`` returns; MLflow: every call is synchronous, ``end_run``
  included). Steps per second. MLflow runs fewer steps so the case stays within a minute.
- ``per_step_work_bound``: the same Shipyard rate against MLflow's REST ``runs/log-batch`` sent
  with a fresh HTTP connection per call (no keep-alive).
- ``per_step_mlflow_async``: against ``mlflow.log_metrics(..., synchronous=False)`` plus
  ``flush_async_logging()`` and ``end_run``.
- ``bulk``: points per second through each batch call (``run.log_series`` + ``finish`` vs
  ``MlflowClient.log_batch`` with 1,000 metrics per call, its maximum).
- ``history``: reading back a 100,000-point series raw, points per second (median of repeats).
- ``history_downsampled``: Shipyard's default (downsampled) read of that series in ms; the peer
  column holds the 50 ms target and the ratio is 50 / ms.
- ``search``: 1,000 runs searched with a filter on a metric, runs per second (median of repeats);
  both tools hold the same ``acc`` values, so both must return the same runs.
- ``startup``: seconds from spawning the server until its health endpoint answers.
- ``idle_memory``: RSS of the idle server's whole process tree, MiB, before any work (MLflow 3
  runs uvicorn plus a job runner with several huey consumers); ``idle_memory_pss`` is the same
  with shared pages split between processes (proportional set size), so they are not counted
  once per process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    BenchError,
    Deadline,
    Server,
    deadline,
    ensure_mlflow,
    free_port,
    row,
)
from rich.console import Console
from rich.table import Table

import shipyard

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENV = ROOT / ".bench" / "mlflow-venv"
KEYS = [f"train/m{i}" for i in range(10)]

FULL = {
    "sy_steps": 10_000,
    "ml_steps": 300,
    "ml_work_steps": 300,
    "ml_async_steps": 1_000,
    "sy_bulk": 1_000_000,
    "ml_bulk": 100_000,
    "history": 100_000,
    "runs": 1_000,
    "rate_reps": 3,
    "sy_reps": 5,
    "ml_reps": 3,
    "search_reps": 5,
    "ds_reps": 20,
}
QUICK = {
    "sy_steps": 1_000,
    "ml_steps": 20,
    "ml_work_steps": 20,
    "ml_async_steps": 50,
    "sy_bulk": 100_000,
    "ml_bulk": 5_000,
    "history": 10_000,
    "runs": 50,
    "rate_reps": 1,
    "sy_reps": 2,
    "ml_reps": 1,
    "search_reps": 2,
    "ds_reps": 5,
}
DOWNSAMPLED_TARGET_MS = 50.0
TARGETS = {  # what the issue asks of each ratio (shown, never used to alter a figure)
    "per_step": 500,
    "per_step_work_bound": 50,
    "bulk": 50,
    "history": 20,
    "history_downsampled": 1,
    "search": 5,
}

# Quiet, offline MLflow: no telemetry calls home, no retries hiding a failure.
MLFLOW_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "PYTHONUNBUFFERED": "1",
}

DRIVER = r'''
"""MLflow side of benchmarks/tracking.py: one case per process, JSON timings on the last line."""
import json
import os
import sys
import time

import mlflow
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric

KEYS = [f"train/m{i}" for i in range(10)]


def values(step):
    return {k: 0.001 * step + i for i, k in enumerate(KEYS)}


def experiment(name):
    return mlflow.set_experiment(name).experiment_id


def per_step(p):
    experiment(p["experiment"])
    client = MlflowClient()
    run = mlflow.start_run()
    run_id = run.info.run_id
    t0 = time.perf_counter()
    for step in range(p["steps"]):
        mlflow.log_metrics(values(step), step=step)
    mlflow.end_run()
    seconds = time.perf_counter() - t0
    stored = len(client.get_metric_history(run_id, KEYS[0]))
    return {"seconds": seconds, "steps": p["steps"], "stored": stored}


def per_step_async(p):
    experiment(p["experiment"])
    client = MlflowClient()
    run = mlflow.start_run()
    run_id = run.info.run_id
    t0 = time.perf_counter()
    for step in range(p["steps"]):
        mlflow.log_metrics(values(step), step=step, synchronous=False)
    mlflow.flush_async_logging()
    mlflow.end_run()
    seconds = time.perf_counter() - t0
    stored = len(client.get_metric_history(run_id, KEYS[0]))
    return {"seconds": seconds, "steps": p["steps"], "stored": stored}


def per_step_work_bound(p):
    exp_id = experiment(p["experiment"])
    client = MlflowClient()
    run_id = client.create_run(exp_id).info.run_id
    url = p["url"].rstrip("/") + "/api/2.0/mlflow/runs/log-batch"
    t0 = time.perf_counter()
    for step in range(p["steps"]):
        ts = int(time.time() * 1000)
        body = {"run_id": run_id, "metrics": [
            {"key": k, "value": v, "timestamp": ts, "step": step} for k, v in values(step).items()
        ]}
        with requests.Session() as session:  # a fresh connection for every call
            r = session.post(url, json=body, headers={"Connection": "close"}, timeout=60)
            r.raise_for_status()
    seconds = time.perf_counter() - t0
    client.set_terminated(run_id)
    stored = len(client.get_metric_history(run_id, KEYS[0]))
    return {"seconds": seconds, "steps": p["steps"], "stored": stored}


def log_points(client, run_id, key, n):
    ts = int(time.time() * 1000)
    for a in range(0, n, 1000):
        client.log_batch(run_id, metrics=[
            Metric(key, 0.5 + 0.0001 * (i % 1000), ts, i) for i in range(a, min(n, a + 1000))
        ])


def bulk(p):
    exp_id = experiment(p["experiment"])
    client = MlflowClient()
    run_id = client.create_run(exp_id).info.run_id
    t0 = time.perf_counter()
    log_points(client, run_id, "bulk/loss", p["points"])
    client.set_terminated(run_id)
    seconds = time.perf_counter() - t0
    stored = client.get_run(run_id).data.metrics.get("bulk/loss") is not None
    return {"seconds": seconds, "points": p["points"], "stored": stored}


def history(p):
    exp_id = experiment(p["experiment"])
    client = MlflowClient()
    run_id = client.create_run(exp_id).info.run_id
    log_points(client, run_id, "hist/loss", p["points"])  # setup, not timed
    client.set_terminated(run_id)
    times, counts = [], []
    for _ in range(p["reps"]):
        t0 = time.perf_counter()
        h = client.get_metric_history(run_id, "hist/loss")
        times.append(time.perf_counter() - t0)
        counts.append(len(h))
    return {"times": times, "counts": counts, "points": p["points"]}


def search(p):
    exp_id = experiment(p["experiment"])
    client = MlflowClient()
    ts = int(time.time() * 1000)
    for i, acc in enumerate(p["acc"]):  # setup, not timed
        run_id = client.create_run(exp_id, run_name=f"r{i}").info.run_id
        client.log_batch(run_id, metrics=[Metric("acc", acc, ts, 0)])
    times, counts = [], []
    for _ in range(p["reps"]):
        t0 = time.perf_counter()
        found = client.search_runs([exp_id], filter_string="metrics.acc > 0.5",
                                   max_results=len(p["acc"]))
        times.append(time.perf_counter() - t0)
        counts.append(len(found))
    return {"times": times, "counts": counts, "runs": len(p["acc"])}


def warmup(p):
    """Untimed: the server's first requests are several times slower than later ones."""
    exp_id = experiment(p["experiment"])
    client = MlflowClient()
    with mlflow.start_run() as run:
        for step in range(p["steps"]):
            mlflow.log_metrics(values(step), step=step)
        log_points(client, run.info.run_id, "warm/loss", 5000)
    client.get_metric_history(run.info.run_id, "warm/loss")
    client.search_runs([exp_id], filter_string="metrics.`warm/loss` > 0.5", max_results=1000)
    return {}


CASES = {f.__name__: f for f in (per_step, per_step_async, per_step_work_bound, bulk, history,
                                  search, warmup)}

if __name__ == "__main__":
    case, params = sys.argv[1], json.loads(open(sys.argv[2]).read())
    result = CASES[case](params)
    result["mlflow"] = mlflow.__version__
    print(json.dumps(result), flush=True)
'''


# -- processes ------------------------------------------------------------------------------


# -- the MLflow side ------------------------------------------------------------------------


class MlflowDriver:
    def __init__(self, python: Path, url: str, workdir: Path) -> None:
        self.python, self.url, self.workdir = python, url, workdir
        self.script = workdir / "mlflow_driver.py"
        self.script.write_text(DRIVER)
        self.env = {**os.environ, **MLFLOW_ENV, "MLFLOW_TRACKING_URI": url}
        self.env.pop("VIRTUAL_ENV", None)
        self.version = "?"

    def run(self, case: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        params_path = self.workdir / f"{case}-{uuid.uuid4().hex[:8]}.json"
        params_path.write_text(json.dumps({**params, "url": self.url}))
        try:
            out = subprocess.run(
                [str(self.python), str(self.script), case, str(params_path)],
                env=self.env,
                cwd=self.workdir,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"MLflow case {case} ran past {timeout:.0f} s") from exc
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        if out.returncode != 0 or not lines:
            raise BenchError(
                f"MLflow case {case} failed ({out.returncode}):\n"
                f"{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
            )
        result: dict[str, Any] = json.loads(lines[-1])
        self.version = result.get("mlflow", self.version)
        return result


# -- the Shipyard side ----------------------------------------------------------------------


def values(step: int) -> dict[str, float]:
    return {k: 0.001 * step + i for i, k in enumerate(KEYS)}


class ShipyardSide:
    def __init__(self, url: str, home: Path) -> None:
        self.settings = shipyard.ClientSettings(url=url, home=home)
        self.client = shipyard.Client(settings=self.settings)

    def init(self, project: str, name: str) -> shipyard.Run:
        return shipyard.init(
            project=project,
            name=name,
            config={"bench": name},
            system_metrics=False,
            settings=self.settings,
        )

    def count(self, run_id: str, key: str) -> int:
        return int(self.client.run(run_id).summary[key]["count"])

    def warmup(self, steps: int) -> None:
        """Untimed first use of each path, as the MLflow side gets."""
        run = self.init("bench-warmup", "warmup")
        for step in range(steps):
            run.log(values(step), step=step)
        run.log_series("warm/loss", np.arange(5000), np.full(5000, 0.5))
        run.finish()
        self.client.run(run.id).history("warm/loss", raw=True)
        self.client.run(run.id).history("warm/loss")
        self.client.runs("bench-warmup", filter="summary.warm/loss > 0.5")

    def per_step(self, steps: int) -> float:
        """Steps per second: ``run.log`` each step, timed until ``run.finish()`` returns."""
        run = self.init("bench-tracking", "per-step")
        t0 = time.perf_counter()
        for step in range(steps):
            run.log(values(step), step=step)
        run.finish()
        seconds = time.perf_counter() - t0
        stored = self.count(run.id, KEYS[0])
        if stored != steps:
            raise BenchError(f"Shipyard per_step: the server holds {stored} of {steps} points")
        return steps / seconds

    def bulk(self, points: int) -> float:
        """Points per second: ``run.log_series`` then ``run.finish()``."""
        steps = np.arange(points, dtype=np.int64)
        vals = 0.5 + 0.0001 * (steps % 1000)
        run = self.init("bench-tracking", "bulk")
        t0 = time.perf_counter()
        run.log_series("bulk/loss", steps, vals)
        run.finish()
        seconds = time.perf_counter() - t0
        stored = self.count(run.id, "bulk/loss")
        if stored != points:
            raise BenchError(f"Shipyard bulk: the server holds {stored} of {points} points")
        return points / seconds

    def history(self, points: int, reps: int, ds_reps: int) -> tuple[float, float]:
        """(raw points per second, downsampled read in ms), medians of repeats."""
        steps = np.arange(points, dtype=np.int64)
        run = self.init("bench-tracking", "history")
        run.log_series("hist/loss", steps, 0.5 + 0.0001 * (steps % 1000))
        run.finish()
        view = self.client.run(run.id)
        raw_times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            h = view.history("hist/loss", raw=True)
            raw_times.append(time.perf_counter() - t0)
            if len(h["value"]) != points:
                raise BenchError(f"Shipyard history: read {len(h['value'])} of {points} points")
        ds_times = []
        for _ in range(ds_reps):
            t0 = time.perf_counter()
            h = view.history("hist/loss")
            ds_times.append(time.perf_counter() - t0)
            if h["total"] != points or len(h["value"]) > 2000:
                raise BenchError(
                    f"Shipyard history: downsampled read gave {len(h['value'])} "
                    f"points of {h['total']}"
                )
        return points / statistics.median(raw_times), 1000 * statistics.median(ds_times)

    def search(self, acc: list[float], reps: int) -> tuple[float, int]:
        """(runs searched per second, runs matched); the runs are made over HTTP, not timed."""
        project = "bench-search"
        http = self.client.http
        for i, a in enumerate(acc):
            run_id = uuid.uuid4().hex
            http.json(
                "POST",
                "/api/runs",
                {"id": run_id, "project": project, "name": f"r{i}", "config": {"i": i}},
            )
            http.json(
                "POST",
                f"/api/runs/{run_id}/log",
                {"batch_id": f"acc-{i}", "metrics": [{"key": "acc", "steps": [0], "values": [a]}]},
            )
            http.json("PATCH", f"/api/runs/{run_id}", {"status": "finished"})
        times, counts = [], set()
        for _ in range(reps):
            t0 = time.perf_counter()
            found = self.client.runs(project, filter="summary.acc > 0.5", limit=len(acc))
            times.append(time.perf_counter() - t0)
            counts.add(len(found))
        if len(counts) != 1:
            raise BenchError(f"Shipyard search: repeats found different counts {counts}")
        return len(acc) / statistics.median(times), counts.pop()


# -- the run --------------------------------------------------------------------------------


def measure(args: argparse.Namespace, console: Console) -> tuple[list[dict[str, Any]], str]:
    n = QUICK if args.quick else FULL
    python = ensure_mlflow(args.mlflow_venv, console)
    rows: list[dict[str, Any]] = []
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "shipyard-home").mkdir()
        (tmp / "mlflow").mkdir()
        (tmp / "client").mkdir()
        sy_port, ml_port = free_port(), free_port()
        sy_url, ml_url = f"http://127.0.0.1:{sy_port}", f"http://127.0.0.1:{ml_port}"
        sy_env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
        sy_env["SHIPYARD_HOME"] = str(tmp / "shipyard-home")
        shipyard_bin = Path(sys.executable).parent / "shipyard"
        sy_server = Server(
            "Shipyard",
            [str(shipyard_bin), "server", "--port", str(sy_port)],
            sy_env,
            f"{sy_url}/healthz",
            tmp / "shipyard.log",
        )
        ml_env = {**os.environ, **MLFLOW_ENV}
        ml_env.pop("VIRTUAL_ENV", None)
        ml_server = Server(
            "MLflow",
            [
                str(args.mlflow_venv / "bin" / "mlflow"),
                "server",
                "--backend-store-uri",
                f"sqlite:///{tmp / 'mlflow' / 'mlflow.db'}",
                "--default-artifact-root",
                str(tmp / "mlflow" / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(ml_port),
                "--workers",
                "1",
            ],
            ml_env,
            f"{ml_url}/health",
            tmp / "mlflow.log",
        )
        try:
            # One server at a time, so neither start-up competes with the other for the CPUs.
            for server in (sy_server, ml_server):
                servers.append(server)
                server.start(timeout=120)
            # Idle memory once each tree stops growing (MLflow's job workers finish importing).
            sy_rss, sy_pss, sy_procs = sy_server.settle()
            ml_rss, ml_pss, ml_procs = ml_server.settle()
            console.print(f"[dim]server processes: Shipyard {sy_procs}, MLflow {ml_procs}[/]")
            rows.append(
                row(
                    "startup",
                    sy_server.startup_s,
                    ml_server.startup_s,
                    "s",
                    ml_server.startup_s / sy_server.startup_s,
                )
            )
            rows.append(row("idle_memory", sy_rss / 2**20, ml_rss / 2**20, "MiB", ml_rss / sy_rss))
            rows.append(
                row("idle_memory_pss", sy_pss / 2**20, ml_pss / 2**20, "MiB", ml_pss / sy_pss)
            )
            sy = ShipyardSide(sy_url, tmp / "client")
            ml = MlflowDriver(python, ml_url, tmp)

            console.print("[dim]warm-up (not timed)...[/]")
            sy.warmup(100)
            ml.run("warmup", {"experiment": "warmup", "steps": 100}, timeout=300)

            # (a) per-step logging
            console.print("[dim]per_step...[/]")
            # Shipyard's runs take well under a second each: the median of a few, against
            # MLflow's single run of hundreds of calls (itself an average over many calls).
            sy_rate = statistics.median(sy.per_step(n["sy_steps"]) for _ in range(n["rate_reps"]))
            for case, driver_case, steps in (
                ("per_step", "per_step", n["ml_steps"]),
                ("per_step_work_bound", "per_step_work_bound", n["ml_work_steps"]),
                ("per_step_mlflow_async", "per_step_async", n["ml_async_steps"]),
            ):
                console.print(f"[dim]{case} (MLflow)...[/]")
                r = ml.run(driver_case, {"experiment": case, "steps": steps}, timeout=300)
                if r["stored"] != steps:
                    raise BenchError(f"MLflow {case}: the server holds {r['stored']} of {steps}")
                peer = steps / r["seconds"]
                rows.append(row(case, sy_rate, peer, "steps/s", sy_rate / peer))

            # (b) bulk
            console.print("[dim]bulk...[/]")
            sy_bulk = statistics.median(sy.bulk(n["sy_bulk"]) for _ in range(n["rate_reps"]))
            r = ml.run("bulk", {"experiment": "bulk", "points": n["ml_bulk"]}, timeout=300)
            if not r["stored"]:
                raise BenchError("MLflow bulk: the server holds no bulk/loss")
            ml_bulk = n["ml_bulk"] / r["seconds"]
            rows.append(row("bulk", sy_bulk, ml_bulk, "points/s", sy_bulk / ml_bulk))

            # (c) history
            console.print("[dim]history...[/]")
            sy_hist, sy_ds_ms = sy.history(n["history"], n["sy_reps"], n["ds_reps"])
            r = ml.run(
                "history",
                {"experiment": "history", "points": n["history"], "reps": n["ml_reps"]},
                timeout=300,
            )
            if any(c != n["history"] for c in r["counts"]):
                raise BenchError(f"MLflow history: read {r['counts']} of {n['history']} points")
            ml_hist = n["history"] / statistics.median(r["times"])
            rows.append(row("history", sy_hist, ml_hist, "points/s", sy_hist / ml_hist))
            rows.append(
                row(
                    "history_downsampled",
                    sy_ds_ms,
                    DOWNSAMPLED_TARGET_MS,
                    "ms",
                    DOWNSAMPLED_TARGET_MS / sy_ds_ms,
                )
            )

            # (d) search
            console.print("[dim]search...[/]")
            acc = np.random.default_rng(7).random(n["runs"]).round(6).tolist()
            expected = sum(a > 0.5 for a in acc)
            sy_search, sy_found = sy.search(acc, n["search_reps"])
            r = ml.run(
                "search",
                {"experiment": "search", "acc": acc, "reps": n["search_reps"]},
                timeout=600,
            )
            if sy_found != expected or any(c != expected for c in r["counts"]):
                raise BenchError(
                    f"search: expected {expected} matches, Shipyard found "
                    f"{sy_found}, MLflow {r['counts']}"
                )
            ml_search = n["runs"] / statistics.median(r["times"])
            rows.append(row("search", sy_search, ml_search, "runs/s", sy_search / ml_search))
            sy.client.close()
            return rows, ml.version
        except BenchError:
            for server in servers:
                console.print(
                    f"[red]{server.name} log tail:[/]\n{server.log_tail(1500)}", markup=False
                )
            raise
        finally:
            for server in servers:
                server.stop()


def report(rows: list[dict[str, Any]], console: Console, mlflow_version: str, quick: bool) -> None:
    n = QUICK if quick else FULL
    table = Table(
        title=f"Shipyard {shipyard.__version__} vs MLflow {mlflow_version} "
        f"(SQLite backends, 127.0.0.1){' [--quick]' if quick else ''}"
    )
    table.add_column("case")
    table.add_column("Shipyard", justify="right")
    table.add_column("peer", justify="right")
    table.add_column("unit")
    table.add_column("ratio", justify="right")
    table.add_column("target", justify="right")
    for r in rows:
        target = TARGETS.get(r["case"])
        ok = "" if target is None else ("green" if r["ratio"] >= target else "red")
        ratio = f"{r['ratio']:,.1f}x" if r["ratio"] >= 10 else f"{r['ratio']:,.2f}x"
        table.add_row(
            r["case"],
            f"{r['shipyard']:,.4g}" if r["shipyard"] < 100 else f"{r['shipyard']:,.0f}",
            f"{r['peer']:,.4g}" if r["peer"] < 100 else f"{r['peer']:,.0f}",
            r["unit"],
            f"[{ok}]{ratio}[/]" if ok else ratio,
            ""
            if target is None
            else (
                f">= {target}x"
                if r["case"] != "history_downsampled"
                else f"< {DOWNSAMPLED_TARGET_MS:.0f} ms"
            ),
        )
    console.print(table)
    console.print(
        f"work: Shipyard per_step {n['sy_steps']:,} steps x 10 metrics; MLflow {n['ml_steps']:,} "
        f"(sync), {n['ml_work_steps']:,} (fresh connection each), {n['ml_async_steps']:,} (async). "
        f"bulk: Shipyard {n['sy_bulk']:,} points, MLflow {n['ml_bulk']:,}. history: "
        f"{n['history']:,} points. search: {n['runs']:,} runs. ratio > 1: Shipyard better.",
        style="dim",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here (DESIGN.md format)")
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke test")
    parser.add_argument(
        "--mlflow-venv",
        type=Path,
        default=DEFAULT_VENV,
        help=f"virtual environment holding MLflow (default {DEFAULT_VENV})",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=1800,
        help="give up (and stop the servers) after this long",
    )
    args = parser.parse_args()
    console = Console()
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    try:
        with deadline(args.max_seconds):
            rows, version = measure(args, console)
    except (BenchError, Deadline, subprocess.CalledProcessError) as exc:
        console.print(f"[red]benchmark failed:[/] {exc}", markup=True, highlight=False)
        return 1
    report(rows, console, version, args.quick)
    console.print(
        f"took {time.perf_counter() - t0:.0f} s on {os.cpu_count()} CPUs; load average "
        f"at start {load0[0]:.1f}, at end {os.getloadavg()[0]:.1f} (other work on the "
        "machine skews every figure)",
        style="dim",
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
