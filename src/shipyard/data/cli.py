"""``shipyard datasets``: push a folder as a version, list, pull with every hash checked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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

from shipyard.client import (
    Client,
    ProjectOpt,
    folder_files,
    pull_dataset,
    push_dataset,
    require_project,
)

datasets_app = typer.Typer(help="Versioned, content-addressed datasets.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
    )


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


@datasets_app.command("push")
def push(
    folder: Path,
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset name.")],
    project: ProjectOpt = None,
    description: Annotated[str, typer.Option("--description", "-d")] = "",
) -> None:
    """Push a folder as the next version: only chunks the server lacks are sent (so an
    interrupted push resumes, and pushing unchanged data sends nothing)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    total = sum(f.stat().st_size for f, _ in folder_files(folder))
    with Client() as client, _bar() as bar:
        hashing = bar.add_task("hashing", total=total)
        sending = bar.add_task("uploading", total=total)
        version, done = push_dataset(
            client.http,
            require_project(project),
            name,
            folder,
            description,
            on_hash=lambda n: bar.advance(hashing, n),
            on_progress=lambda n: bar.advance(sending, n),
        )
    out.print(
        f"{name}@{version['version']}: {done.files} file(s), {_mb(done.size)}; "
        f"sent {_mb(done.sent)} ({done.skipped} chunk(s) already stored)"
    )


@datasets_app.command("ls")
def ls(name: Annotated[str | None, typer.Argument()] = None, project: ProjectOpt = None) -> None:
    """The project's datasets, or the versions of one."""
    with Client() as client:
        if name is None:
            rows = client.http.json("GET", f"/api/projects/{require_project(project)}/datasets")
            table = Table("name", "latest", "updated", "by")
            for d in rows:
                table.add_row(
                    d["name"],
                    str(d["latest_version"] or "-"),
                    d["updated_at"][:16],
                    d["created_by"],
                )
        else:
            d = client.http.json("GET", f"/api/projects/{require_project(project)}/datasets/{name}")
            table = Table("version", "files", "size", "created", "by", "from", "description")
            for v in d["versions"]:
                source = v["source"]
                table.add_row(
                    str(v["version"]),
                    str(v["file_count"]),
                    _mb(v["size"]),
                    v["created_at"][:16],
                    v["created_by"],
                    f"{source.get('host', '')}:{source.get('path', '')}",
                    v["description"][:50],
                )
    out.print(table)


@datasets_app.command("pull")
def pull(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION, NAME@latest or PROJECT/NAME@VERSION")],
    dest: Path,
    project: ProjectOpt = None,
) -> None:
    """Pull a version into a folder: every chunk and file hash is checked, files already
    there and intact are kept, an interrupted pull resumes."""
    with Client() as client, _bar() as bar:
        task = bar.add_task(ref, total=None)
        info, done = pull_dataset(
            client.http,
            project or "",
            ref,
            dest,
            on_start=lambda v: bar.update(task, total=v["size"]),
            on_progress=lambda n: bar.advance(task, n),
        )
    out.print(
        f"{info['dataset']}@{info['version']} -> {dest}: {done.files} file(s), {_mb(done.size)} "
        f"(received {_mb(done.sent)}, {done.skipped} file(s) already there)"
    )
