"""``shipyard models``: list, show, alias, request and decide alias moves, archive, delete."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from shipyard.client import Client, ProjectOpt, require_project

models_app = typer.Typer(help="The model registry.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


@models_app.command("ls")
def list_models(
    project: ProjectOpt = None, query: Annotated[str | None, typer.Option("--query", "-q")] = None
) -> None:
    """Models with their latest version and aliases."""
    with Client() as c:
        models = c.models(project, query)
    table = Table("project", "name", "latest", "aliases", "description")
    for m in models:
        aliases = ", ".join(f"{a}→{v}" for a, v in sorted(m["aliases"].items()))
        table.add_row(
            m["project"], m["name"], str(m["latest_version"] or "-"), aliases, m["description"][:60]
        )
    out.print(table)


@models_app.command("show")
def show_model(name: str, project: ProjectOpt = None) -> None:
    """Versions, aliases, source-run metrics, lineage and the model card."""
    with Client() as c:
        m = c.model(require_project(project), name)
    out.print(f"[bold]{m['name']}[/] in [cyan]{m['project']}[/]  {m['description']}")
    table = Table("version", "status", "flavor", "aliases", "run", "metrics", "parent", "created")
    for v in m["versions"]:
        metrics = ", ".join(
            f"{k}={_num(x)}" for k, x in sorted(v["lineage"]["run"]["metrics"].items())[:4]
        )
        table.add_row(
            str(v["version"]),
            v["status"],
            v["flavor"],
            ", ".join(v["aliases"]),
            (v["run_id"] or "-")[:12],
            metrics,
            str(v["lineage"].get("parent_version") or "-"),
            f"{v['created_at'][:16]} {v['created_by']}",
        )
    out.print(table)
    if m["card"]:
        out.print(Markdown(m["card"]))


def _num(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


@models_app.command("alias")
def set_alias(name: str, alias: str, version: int, project: ProjectOpt = None) -> None:
    """Point an alias at a version (a protected alias needs a maintainer)."""
    with Client() as c:
        c.set_alias(require_project(project), name, alias, version)
    out.print(f"{name}@{alias} → version {version}")


@models_app.command("unalias")
def delete_alias(name: str, alias: str, project: ProjectOpt = None) -> None:
    """Remove an alias."""
    with Client() as c:
        c.delete_alias(require_project(project), name, alias)
    out.print(f"removed {name}@{alias}")


@models_app.command("request-alias")
def request_alias(
    name: str,
    alias: str,
    version: int,
    project: ProjectOpt = None,
    reason: Annotated[str, typer.Option(help="Why the alias should move.")] = "",
) -> None:
    """Ask a maintainer to move a protected alias; prints the request id."""
    with Client() as c:
        r = c.request_alias(require_project(project), name, alias, version, reason)
    out.print(f"request {r['id']}: {name}@{alias} → {version} (pending)")


@models_app.command("requests")
def list_requests(
    project: ProjectOpt = None,
    status: Annotated[str | None, typer.Option(help="pending, approved or rejected")] = None,
) -> None:
    """Alias requests of a project."""
    with Client() as c:
        rows = c.alias_requests(require_project(project), status)
    table = Table("id", "model", "alias", "version", "status", "by", "reason", "decided by")
    for r in rows:
        table.add_row(
            r["id"],
            r["model"],
            r["alias"],
            str(r["version"]),
            r["status"],
            r["requested_by"],
            r["reason"][:40],
            r["decided_by"] or "",
        )
    out.print(table)


def _decide(request_id: str, verb: str, note: str) -> None:
    with Client() as c:
        r = c.decide(request_id, verb == "approve", note)
    out.print(f"request {r['id']} {r['status']}: {r['model']}@{r['alias']} → {r['version']}")


@models_app.command("approve")
def approve(request_id: str, note: Annotated[str, typer.Option()] = "") -> None:
    """Approve an alias request (a maintainer other than the requester): the alias moves."""
    _decide(request_id, "approve", note)


@models_app.command("reject")
def reject(request_id: str, note: Annotated[str, typer.Option()] = "") -> None:
    """Reject an alias request."""
    _decide(request_id, "reject", note)


@models_app.command("archive")
def archive(
    name: str,
    version: int,
    project: ProjectOpt = None,
    restore: Annotated[bool, typer.Option("--restore")] = False,
) -> None:
    """Archive a version (or bring it back with --restore)."""
    status = "ready" if restore else "archived"
    with Client() as c:
        c.update_version(require_project(project), name, version, status=status)
    out.print(f"{name} version {version}: {status}")


@models_app.command("delete")
def delete(
    name: str,
    project: ProjectOpt = None,
    version: Annotated[int | None, typer.Option(help="Only this version.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Delete a version, or a whole model (the audit log keeps the record)."""
    what = f"{name} version {version}" if version else f"model {name} and all its versions"
    if not yes and not typer.confirm(f"delete {what}?"):
        raise typer.Exit(1)
    with Client() as c:
        c.delete_model(require_project(project), name, version)
    out.print(f"deleted {what}")


@models_app.command("protect")
def protect(aliases: list[str], project: ProjectOpt = None) -> None:
    """Set the project's protected aliases (owners only)."""
    with Client() as c:
        protected = c.protect_aliases(require_project(project), aliases)
    out.print(f"protected: {', '.join(protected) or '(none)'}")
