"""``shipyard projects|runs|artifacts`` and ``shipyard sync``: the server, through the SDK."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from shipyard.client import Client, ClientSettings, Http, ProjectOpt, RunView, deliver, spooled_runs
from shipyard.errors import Unprocessable

projects_app = typer.Typer(help="Projects and their members.", no_args_is_help=True)
members_app = typer.Typer(help="Who has which role in a project.", no_args_is_help=True)
projects_app.add_typer(members_app, name="members")
runs_app = typer.Typer(help="Search, inspect and compare runs.", no_args_is_help=True)
artifacts_app = typer.Typer(help="Files stored with runs.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

FIELD = re.compile(r"(?:summary|metrics|min|max|config)\.[^\s<>=!~()]+")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _field(run: RunView, field: str) -> Any:
    root, _, key = field.partition(".")
    if root == "config":
        node: Any = run.config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node
    part = {"summary": "last", "metrics": "last", "min": "min", "max": "max"}[root]
    return run.summary.get(key, {}).get(part)


@projects_app.command("ls")
def list_projects() -> None:
    """List projects with their run counts."""
    table = Table("name", "runs", "created")
    with Client() as client:
        projects = client.projects()
    for p in projects:
        table.add_row(p["name"], str(p["runs"]), p["created_at"][:10])
    out.print(table)


@projects_app.command("create")
def create_project(name: str, description: Annotated[str, typer.Option()] = "") -> None:
    """Create a project; you become its owner."""
    with Client() as client:
        client.http.json("POST", "/api/projects", {"name": name, "description": description})
    out.print(f"created project {name}")


@members_app.command("ls")
def list_members(project: str) -> None:
    """Members of a project and their roles."""
    with Client() as client:
        rows = client.members(project)
    table = Table("user", "role")
    for r in rows:
        table.add_row(r["user"], r["role"])
    out.print(table)


@members_app.command("add")
def add_member(
    project: str,
    user: str,
    role: Annotated[str, typer.Option(help="viewer, developer, maintainer or owner")] = "viewer",
) -> None:
    """Give a user a role in a project (owners only); also changes an existing role."""
    with Client() as client:
        client.set_member(project, user, role)
    out.print(f"{user} is {role} in {project}")


@members_app.command("rm")
def remove_member(project: str, user: str) -> None:
    """Take a user out of a project (owners only)."""
    with Client() as client:
        client.remove_member(project, user)
    out.print(f"removed {user} from {project}")


@runs_app.command("ls")
def list_runs(
    project: ProjectOpt = None,
    filter: Annotated[
        str | None,
        typer.Option("--filter", "-f", help='e.g. "config.lr < 0.01 and summary.val/acc > 0.9"'),
    ] = None,
    sort: Annotated[
        list[str] | None,
        typer.Option(
            "--sort", "-s", help="Field to sort by, '-' first for descending; repeatable."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Search runs; columns follow the fields the filter and sort name."""
    with Client() as client:
        runs = client.runs(project, filter=filter, order_by=sort or [], limit=limit)
    if as_json:
        typer.echo(json.dumps([r.data for r in runs], indent=2))
        return
    fields: list[str] = []
    for text in [*(s.lstrip("-+") for s in sort or []), filter or ""]:
        for f in FIELD.findall(text):
            if f not in fields:
                fields.append(f)
    table = Table()
    table.add_column("id", no_wrap=True, min_width=32)
    table.add_column("name")
    table.add_column("status")
    table.add_column("created", no_wrap=True)
    for f in fields:
        table.add_column(f, no_wrap=True)
    for r in runs:
        table.add_row(
            r.id,
            r.name,
            r.status,
            r.data["created_at"][:19].replace("T", " "),
            *(_fmt(_field(r, f)) for f in fields),
        )
    out.print(table)
    err.print(f"{len(runs)} run(s)")


@runs_app.command("show")
def show_run(run_id: str) -> None:
    """A run's status, config, summary and environment."""
    with Client() as client:
        r = client.run(run_id)
    out.print(
        f"[bold]{r.name}[/]  {r.id}  project [cyan]{r.project}[/]  status [bold]{r.status}[/]"
    )
    out.print(
        f"created {r.data['created_at']}  by {r.data['user']}  tags {', '.join(r.tags) or '-'}"
    )
    table = Table("config", "value", title="Config")
    for k, v in _flat(r.config):
        table.add_row(k, _fmt(v))
    out.print(table)
    table = Table("metric", "last", "min", "max", "step", title="Summary")
    for k, s in sorted(r.summary.items()):
        table.add_row(k, _fmt(s["last"]), _fmt(s["min"]), _fmt(s["max"]), str(s["step"]))
    out.print(table)
    env = r.environment
    out.print(
        f"git {env.get('git_commit', '-')}{' (dirty)' if env.get('git_dirty') else ''}  "
        f"host {env.get('host', '-')}  python {env.get('python', '-')}"
    )


def _flat(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for k, v in d.items():
        if isinstance(v, dict) and v:
            rows.extend(_flat(v, f"{prefix}{k}."))
        else:
            rows.append((f"{prefix}{k}", v))
    return rows


@runs_app.command("diff")
def diff_runs(
    run_a: str,
    run_b: str,
    all_rows: Annotated[bool, typer.Option("--all", help="Show equal rows too.")] = True,
) -> None:
    """Config, summary and environment of two runs side by side, differences highlighted."""
    with Client() as client:
        d = client.diff(run_a, run_b)
    table = Table("", "key", run_a[:8], run_b[:8], title="Diff")
    for section in ("config", "summary", "environment"):
        for row in d[section]:
            if row["same"] and not all_rows:
                continue
            style = "" if row["same"] else "bold yellow"
            table.add_row(section, row["key"], _fmt(row["a"]), _fmt(row["b"]), style=style)
    out.print(table)


@artifacts_app.command("ls")
def list_artifacts(run_id: str, prefix: Annotated[str, typer.Option()] = "") -> None:
    """List a run's artifacts."""
    table = Table("path", "size", "sha256")
    with Client() as client:
        artifacts = client.run(run_id).artifacts(prefix)
    for a in artifacts:
        table.add_row(a["path"], str(a["size"]), a["sha256"][:16])
    out.print(table)


@artifacts_app.command("get")
def get_artifact(
    run_id: str,
    path: str,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File or folder.")] = None,
) -> None:
    """Download an artifact with a progress bar; the sha256 is checked."""
    import hashlib

    target = output or Path(Path(path).name)
    if target.is_dir():
        target = target / Path(path).name
    digest = hashlib.sha256()
    with (
        Client() as client,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err,
        ) as progress,
    ):
        run = client.run(run_id)
        expected = next((a["sha256"] for a in run.artifacts() if a["path"] == path), None)
        task = progress.add_task(path, total=None)
        with open(target, "wb") as f:
            for total, chunk in run.stream(path):
                progress.update(task, total=total or None, advance=len(chunk))
                digest.update(chunk)
                f.write(chunk)
    if expected and digest.hexdigest() != expected:
        target.unlink()
        raise Unprocessable(f"{path}: sha256 mismatch, download discarded")
    err.print(f"saved {target}")


@artifacts_app.command("put")
def put_artifact(
    run_id: str,
    path: Path,
    name: Annotated[str | None, typer.Option(help="Path in the run (default: its name).")] = None,
) -> None:
    """Upload a file or folder to a run with a progress bar; the server checks the sha256."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    base = name or path.name
    files = (
        [(path, base)]
        if path.is_file()
        else [
            (f, f"{base}/{f.relative_to(path).as_posix()}")
            for f in sorted(path.rglob("*"))
            if f.is_file()
        ]
    )
    total = sum(f.stat().st_size for f, _ in files)
    with (
        Client() as client,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err,
        ) as progress,
    ):
        task = progress.add_task(f"{len(files)} file(s)", total=total)
        run = client.run(run_id)
        for src, target in files:
            run.upload(src, target, on_chunk=lambda n: progress.advance(task, n))
    err.print(f"uploaded {len(files)} file(s) to run {run_id}")


def sync(
    path: Annotated[
        Path | None, typer.Option(help="Spool folder (default: SHIPYARD_HOME/spool).")
    ] = None,
) -> None:
    """Upload runs spooled while the server was unreachable (or in offline mode), exactly once."""
    settings = ClientSettings()
    spools = spooled_runs(path or settings.spool)
    if not spools:
        err.print("nothing to sync")
        return
    http = Http(settings.url, settings.token)
    try:
        with Progress(console=err) as progress:
            task = progress.add_task("syncing runs", total=len(spools))
            for spool in spools:
                done = deliver(http, spool)
                progress.advance(task)
                out.print(
                    f"{spool.run_id}: {done.points} points in {done.batches} batches "
                    f"({done.duplicates} already there), {done.files} files"
                    f"{', finished' if done.finished else ''}"
                )
    finally:
        http.close()
