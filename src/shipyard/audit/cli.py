"""``shipyard audit ls``: who changed what, when."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shipyard.client import Client, ProjectOpt

audit_app = typer.Typer(help="The audit log (read only).", no_args_is_help=True)
out = Console()


@audit_app.command("ls")
def list_audit(
    project: ProjectOpt = None,
    since: Annotated[str | None, typer.Option(help="1d, 12h, 30m or an ISO time")] = None,
    actor: Annotated[str | None, typer.Option()] = None,
    action: Annotated[str | None, typer.Option(help="e.g. alias. or alias.set")] = None,
    limit: Annotated[int, typer.Option()] = 100,
) -> None:
    """Audit records, newest first (a project's for maintainers, all for admins)."""
    with Client() as c:
        rows = c.audit(project, since=since, actor=actor, action=action, limit=limit)
    table = Table("time", "actor", "action", "object", "project", "change", "client")
    for r in rows:
        change = json.dumps(
            {k: v for k, v in (("before", r["before"]), ("after", r["after"])) if v}
        )[:80]
        table.add_row(
            r["at"][:19].replace("T", " "),
            r["actor"],
            r["action"],
            r["object_id"],
            r["project"] or "",
            change,
            r["client"] or "",
        )
    out.print(table)
