"""The ``shipyard`` command: the root Typer app, the server, the store, the feature sub-apps."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from shipyard.audit.cli import audit_app
from shipyard.auth.cli import tokens_app, ui, users_app
from shipyard.auth.guard import host_name
from shipyard.client import ClientSettings
from shipyard.config import AuthMode, Settings
from shipyard.data.cli import datasets_app
from shipyard.errors import ShipyardError
from shipyard.jobs.cli import jobs_app, sweep_app, usage, worker
from shipyard.monitoring.cli import alerts_app
from shipyard.registry.cli import models_app
from shipyard.serving.cli import deploy, endpoints_app, serve
from shipyard.tracking.cli import artifacts_app, projects_app, runs_app, sync

app = typer.Typer(
    name="shipyard",
    help="Self-hosted deep learning as a service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="The metadata store.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(projects_app, name="projects")
app.add_typer(runs_app, name="runs")
app.add_typer(artifacts_app, name="artifacts")
app.add_typer(models_app, name="models")
app.add_typer(audit_app, name="audit")
app.add_typer(endpoints_app, name="endpoints")
app.add_typer(alerts_app, name="alerts")
app.command("deploy")(deploy)
app.command("serve")(serve)
app.command("sync")(sync)
app.add_typer(datasets_app, name="datasets")
app.add_typer(jobs_app, name="jobs")
app.add_typer(sweep_app, name="sweep")
app.command("usage")(usage)
app.command("worker")(worker)
app.command("ui")(ui)
err = Console(stderr=True)


@app.command()
def server(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    auth: Annotated[bool, typer.Option("--auth", help="Require a token on every request.")] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the server (API, UI, background services) until interrupted."""
    import uvicorn

    from shipyard.app import create_app

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if auth:
        overrides["auth"] = AuthMode.required
    settings = Settings(**overrides)  # type: ignore[arg-type]
    try:
        settings.check_exposure()
    except ValueError as exc:
        raise ShipyardError(str(exc)) from exc
    application = create_app(settings)
    base = f"http://{host_name(settings.host)}:{settings.port}"
    err.print(
        f"Shipyard on {base}  store: {settings.database}  "
        f"artifacts: {settings.artifact_root}  auth: {settings.auth.value}",
        soft_wrap=True,
    )
    if settings.auth is AuthMode.local:
        from shipyard.auth import service as auth_service

        with application.state.runtime.db.session() as s:
            code, _ = auth_service.create_login_link(s, auth_service.local_user(s))
        err.print(f"Web UI (a one-time login link): {base}/login?code={code}", soft_wrap=True)
        err.print(
            f"The SDK and CLI on this machine use the token in {settings.token_file}; "
            "`shipyard ui` prints a new login link.",
            soft_wrap=True,
        )
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        timeout_keep_alive=75,
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations to the store named by SHIPYARD_DATABASE_URL (or SHIPYARD_HOME)."""
    from shipyard.db import Database
    from shipyard.migrations import upgrade

    settings = Settings()
    db = Database(settings.database)
    upgrade(db.engine)
    db.dispose()
    err.print(f"[green]up to date[/]: {settings.database}")


def main() -> None:
    """Entry point: one line and exit 1 on a known error; ``--debug`` shows the traceback."""
    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    try:
        app()
    except ShipyardError as exc:
        if debug:
            raise
        err.print(f"[red]error:[/] {exc.detail}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except (FileNotFoundError, ValueError) as exc:
        if debug:
            raise
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)


__all__ = ["ClientSettings", "app", "main"]
