"""``shipyard jobs``, ``shipyard usage``, ``shipyard worker`` and ``shipyard sweep``."""

from __future__ import annotations

import json
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from shipyard.client import (
    Client,
    ClientSettings,
    ProjectOpt,
    follow_job,
    iter_jobs,
    job_logs,
    parse_duration,
    require_project,
    submit_job,
    upload_snapshot,
)
from shipyard.errors import Unprocessable

jobs_app = typer.Typer(help="Training jobs on the queue.", no_args_is_help=True)
sweep_app = typer.Typer(help="Hyper-parameter sweeps (sweep.yaml).", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
    )


def _money(x: float) -> str:
    return f"{x:,.4f}" if x < 1 else f"{x:,.2f}"


@jobs_app.command(
    "submit", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def submit(
    command: Annotated[list[str], typer.Argument(help="The command, after --.")],
    project: ProjectOpt = None,
    cpus: Annotated[float, typer.Option(help="CPU cores.")] = 1.0,
    gpus: Annotated[int, typer.Option(help="GPUs (CUDA_VISIBLE_DEVICES).")] = 0,
    memory_gb: Annotated[float, typer.Option("--memory-gb", help="Memory in GB.")] = 0.0,
    dataset: Annotated[
        list[str] | None, typer.Option("--dataset", "-d", help="NAME@VERSION; repeatable.")
    ] = None,
    timeout: Annotated[str | None, typer.Option(help="30m, 2h...")] = None,
    retries: Annotated[int, typer.Option(help="Retries after a failure.")] = 0,
    priority: Annotated[int, typer.Option(help="Higher runs first.")] = 0,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="NAME=VALUE")] = None,
    name: Annotated[str | None, typer.Option(help="Job (and run) name.")] = None,
    resource_class: Annotated[str | None, typer.Option("--class", help="Worker class.")] = None,
    directory: Annotated[Path, typer.Option("--dir", help="Code to snapshot.")] = Path("."),
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream the logs.")] = False,
) -> None:
    """Snapshot the working directory (.gitignore honoured), upload it, and queue the job."""
    settings = ClientSettings()
    variables = {}
    for item in env or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise Unprocessable(f"--env {item!r}: use NAME=VALUE")
        variables[key] = value
    with Client() as client, _bar() as bar:
        task = bar.add_task("code snapshot", total=None)
        job = submit_job(
            client.http,
            require_project(project),
            list(command),
            root=directory,
            max_snapshot_bytes=settings.max_snapshot_bytes,
            on_progress=lambda n: bar.advance(task, n),
            cpus=cpus,
            gpus=gpus,
            memory_gb=memory_gb,
            datasets=dataset or [],
            timeout_s=parse_duration(timeout) if timeout else None,
            retries=retries,
            priority=priority,
            env=variables,
            name=name,
            resource_class=resource_class,
        )
    out.print(
        f"job [bold]{job['id']}[/] {job['state']}: {job['snapshot_files']} file(s) of code, "
        f"{job['cpus']:g} CPU, {job['gpus']} GPU"
    )
    if follow:
        _follow(job["id"])


def _follow(job_id: str) -> None:
    with Client() as client:
        state = follow_job(client.http, job_id, lambda text: print(text, end="", flush=True))
    err.print(f"job {job_id} {state}")
    if state != "succeeded":
        raise typer.Exit(1)


@jobs_app.command("ls")
def ls(
    project: ProjectOpt = None,
    state: Annotated[str | None, typer.Option(help="queued, running, failed...")] = None,
    sweep: Annotated[str | None, typer.Option(help="Only a sweep's trials.")] = None,
    limit: int = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Jobs, newest first."""
    with Client() as client:
        jobs = list(iter_jobs(client.http, project=project, state=state, sweep=sweep, limit=limit))
    if as_json:
        typer.echo(json.dumps(jobs, indent=2))
        return
    table = Table("id", "project", "name", "state", "res", "worker", "run", "cost", "submitted")
    for j in jobs:
        table.add_row(
            j["id"],
            j["project"],
            j["name"][:40],
            j["state"],
            f"{j['cpus']:g}c {j['gpus']}g",
            j["worker"] or "-",
            (j["run_id"] or "-")[:12],
            _money(j["cost"]),
            j["submitted_at"][:19].replace("T", " "),
        )
    out.print(table)


@jobs_app.command("show")
def show(job_id: str) -> None:
    """A job's state, resources, worker, run and cost."""
    with Client() as client:
        j = client.http.json("GET", f"/api/jobs/{job_id}")
    for key in (
        "id", "project", "name", "state", "message", "command", "cpus", "gpus", "memory_gb",
        "datasets", "attempts", "retries", "worker", "gpu_ids", "run_id", "exit_code",
        "cost", "cpu_hours", "user", "submitted_at", "started_at", "finished_at",
    ):  # fmt: skip
        value = j[key]
        out.print(f"[bold]{key:>13}[/] {json.dumps(value) if isinstance(value, list) else value}")


@jobs_app.command("logs")
def logs(
    job_id: str,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream until it ends.")] = False,
) -> None:
    """A job's output; ``-f`` streams it live (server-sent events) until the job ends."""
    if follow:
        _follow(job_id)
        return
    with Client() as client:
        print(job_logs(client.http, job_id), end="")


@jobs_app.command("cancel")
def cancel(job_id: str) -> None:
    """Cancel a job: SIGTERM to its process group, SIGKILL after the grace period."""
    with Client() as client:
        j = client.http.json("POST", f"/api/jobs/{job_id}/cancel")
    out.print(f"job {job_id}: {j['state']}{' (stopping)' if j['state'] == 'running' else ''}")


@jobs_app.command("workers")
def workers(all_: Annotated[bool, typer.Option("--all", help="Also gone ones.")] = False) -> None:
    """Workers with their slots and how many jobs they hold."""
    with Client() as client:
        rows = client.http.json("GET", "/api/workers", params={"all": all_})
    table = Table("name", "kind", "status", "cpus", "gpus", "memory", "class", "jobs", "heartbeat")
    for w in rows:
        table.add_row(
            w["name"],
            w["kind"],
            w["status"],
            f"{w['cpus']:g}",
            ",".join(w["gpus"]) or "-",
            f"{w['memory_gb']:g} GB" if w["memory_gb"] else "-",
            w["resource_class"],
            str(w["running"]),
            w["heartbeat_at"][:19].replace("T", " "),
        )
    out.print(table)


@jobs_app.command("quota")
def quota(
    project: ProjectOpt = None,
    max_gpus: Annotated[int | None, typer.Option(help="GPUs at once (admins).")] = None,
    cpu_hours: Annotated[float | None, typer.Option(help="CPU-hours a month (admins).")] = None,
) -> None:
    """Show a project's quota, or set it (server admins) with --max-gpus / --cpu-hours."""
    url = f"/api/projects/{require_project(project)}/quota"
    with Client() as client:
        if max_gpus is not None or cpu_hours is not None:
            q = client.http.json(
                "PUT", url, {"max_gpus": max_gpus, "cpu_hours_per_month": cpu_hours}
            )
        else:
            q = client.http.json("GET", url)
    gpus = "unlimited" if q["max_gpus"] is None else q["max_gpus"]
    hours = "unlimited" if q["cpu_hours_per_month"] is None else q["cpu_hours_per_month"]
    out.print(
        f"{q['project']}: GPUs {q['gpus_in_use']} in use of {gpus}; "
        f"CPU-hours this month {q['cpu_hours_this_month']:.2f} of {hours}"
    )


def usage(
    project: ProjectOpt = None,
    since: Annotated[str, typer.Option(help="30d, 12h, or an ISO time.")] = "30d",
    by: Annotated[str, typer.Option(help="project, user, run or job.")] = "project",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Compute hours and cost by project, user, run or job over a period."""
    with Client() as client:
        params = {"since": since, "by": by, **({"project": project} if project else {})}
        u = client.http.json("GET", "/api/usage", params=params)
    if as_json:
        typer.echo(json.dumps(u, indent=2))
        return
    table = Table(by, "jobs", "hours", "CPU-hours", "GPU-hours", f"cost ({u['currency']})")
    for r in [*u["rows"], u["total"]]:
        table.add_row(
            r["key"],
            str(r["jobs"]),
            f"{r['hours']:.3f}",
            f"{r['cpu_hours']:.3f}",
            f"{r['gpu_hours']:.3f}",
            _money(r["cost"]),
            style="bold" if r is u["total"] else "",
        )
    out.print(table)


def worker(
    cpus: Annotated[float | None, typer.Option(help="CPU slots (default: all cores).")] = None,
    gpus: Annotated[str | None, typer.Option(help="GPU indices, e.g. 0,1.")] = None,
    memory_gb: Annotated[float, typer.Option("--memory-gb", help="Memory for jobs.")] = 0.0,
    name: Annotated[str | None, typer.Option(help="Default: worker@HOST.")] = None,
    resource_class: Annotated[str, typer.Option("--class", help="Price class.")] = "default",
    directory: Annotated[Path | None, typer.Option("--dir", help="Where jobs run.")] = None,
    heartbeat: Annotated[float, typer.Option(help="Seconds between heartbeats.")] = 5.0,
) -> None:
    """Run jobs from the server (SHIPYARD_URL, with an admin's SHIPYARD_TOKEN) on this
    machine until interrupted; a second Ctrl-C stops running jobs at once."""
    import logging
    import os

    from shipyard.client import Http
    from shipyard.jobs.schemas import WorkerCreate
    from shipyard.jobs.worker import RemoteWorker, parse_gpus

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    settings = ClientSettings()
    host = socket.gethostname()
    spec = WorkerCreate(
        name=name or f"worker@{host}",
        host=host,
        cpus=cpus or float(os.cpu_count() or 1),
        gpus=parse_gpus(gpus),
        memory_gb=memory_gb,
        resource_class=resource_class,
    )
    loop = RemoteWorker(
        Http(settings.url, settings.token),
        spec,
        directory or settings.home / "worker",
        heartbeat_s=heartbeat,
    )
    stopped = threading.Event()

    def on_signal(signum: int, _: Any) -> None:
        if stopped.is_set():
            sys.exit(130)
        stopped.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    err.print(
        f"worker {spec.name}: {spec.cpus:g} CPU, GPUs [{','.join(spec.gpus)}] -> {settings.url}"
    )
    loop.start()
    stopped.wait()
    err.print("stopping: running jobs are stopped and reported")
    loop.shutdown()
    loop.deregister()


@sweep_app.command("create")
def sweep_create(
    config: Path,
    project: ProjectOpt = None,
    directory: Annotated[Path, typer.Option("--dir", help="Code to snapshot.")] = Path("."),
) -> None:
    """Start a sweep from a sweep.yaml (grid, random or bayes; early_terminate optional)."""
    spec = yaml.safe_load(config.read_text())
    if not isinstance(spec, dict):
        raise Unprocessable(f"{config} is not a YAML mapping")
    settings = ClientSettings()
    proj = require_project(project or spec.get("project"))
    with Client() as client:
        snapshot = upload_snapshot(client.http, proj, directory, settings.max_snapshot_bytes)
        s = client.http.json(
            "POST", f"/api/projects/{proj}/sweeps", {"config": spec, "snapshot": snapshot}
        )
    out.print(f"sweep [bold]{s['id']}[/] {s['name']}: {s['method']} on {s['metric']} ({s['goal']})")


@sweep_app.command("ls")
def sweep_ls(project: ProjectOpt = None) -> None:
    """A project's sweeps."""
    with Client() as client:
        rows = client.http.json("GET", f"/api/projects/{require_project(project)}/sweeps")
    table = Table("id", "name", "method", "metric", "state", "trials", "best")
    for s in rows:
        best = s["best"]
        table.add_row(
            s["id"],
            s["name"],
            s["method"],
            f"{s['metric']} ({s['goal'][:3]})",
            s["state"],
            str(len(s["trials"])),
            f"{best['value']:.4g} #{best['number']}" if best else "-",
        )
    out.print(table)


@sweep_app.command("show")
def sweep_show(sweep_id: str) -> None:
    """A sweep's trials and the best so far."""
    with Client() as client:
        s = client.http.json("GET", f"/api/sweeps/{sweep_id}")
    out.print(f"[bold]{s['name']}[/] {s['id']}  {s['method']}  {s['state']}  {s['message']}")
    table = Table("#", "state", s["metric"], "params", "job", "run")
    best = s["best"]["number"] if s["best"] else None
    for t in s["trials"]:
        table.add_row(
            str(t["number"]),
            t["state"],
            f"{t['value']:.4g}" if t["value"] is not None else "-",
            json.dumps(t["params"]),
            t["job_id"][:12],
            (t["run_id"] or "-")[:12],
            style="bold green" if t["number"] == best else "",
        )
    out.print(table)


@sweep_app.command("cancel")
def sweep_cancel(sweep_id: str) -> None:
    """Stop a sweep and cancel its unfinished trials."""
    with Client() as client:
        s = client.http.json("POST", f"/api/sweeps/{sweep_id}/cancel")
    out.print(f"sweep {sweep_id}: {s['state']}")
