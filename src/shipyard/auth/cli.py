"""``shipyard users``, ``shipyard tokens`` and ``shipyard ui``: through the server's API.

They act with the caller's token (``SHIPYARD_TOKEN``, or local mode's token file) on whichever
server ``SHIPYARD_URL`` names, so an admin manages a remote server from a laptop. ``--local``
acts on this machine's store directly (``SHIPYARD_DATABASE_URL`` / ``SHIPYARD_HOME``), for the
first admin of a server that requires tokens, before any token exists.
"""

from __future__ import annotations

import json
import webbrowser
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from shipyard.client import Client

users_app = typer.Typer(help="Users of the server (admins).", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (shown once, stored hashed).", no_args_is_help=True)
out = Console()

LocalOpt = Annotated[
    bool,
    typer.Option(
        "--local",
        help="Act on this machine's store (SHIPYARD_DATABASE_URL / SHIPYARD_HOME) directly, "
        "without a server or a token: for the first admin.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
LOCAL_ACTOR = "shipyard --local"  # how the audit log names changes made with --local


@contextmanager
def _store() -> Iterator[Any]:
    """A session on this machine's store, migrated, as ``--local`` commands use it."""
    from shipyard.config import Settings
    from shipyard.db import Database
    from shipyard.migrations import upgrade

    db = Database(Settings().database)
    upgrade(db.engine)
    try:
        with db.session() as s:
            yield s
    finally:
        db.dispose()


def _local_actor() -> Any:
    """Who a ``--local`` change is made by: the server's own store, from its machine."""
    from shipyard.auth.actor import system_actor

    return system_actor(LOCAL_ACTOR)


def _day(value: str | None) -> str:
    return value[:16].replace("T", " ") if value else ""


@users_app.command("create")
def create_user(
    name: str,
    admin: Annotated[bool, typer.Option("--admin", help="Make a server admin.")] = False,
    local: LocalOpt = False,
) -> None:
    """Add a user."""
    if local:
        from shipyard.auth import accounts

        with _store() as s:
            accounts.add_user(s, _local_actor(), name, admin)
    else:
        with Client() as c:
            c.create_user(name, admin=admin)
    out.print(f"created user [bold]{name}[/] ({'admin' if admin else 'user'})")


@users_app.command("ls")
def list_users(local: LocalOpt = False, as_json: JsonOpt = False) -> None:
    """List users."""
    if local:
        from shipyard.auth import service
        from shipyard.auth.schemas import UserOut

        with _store() as s:
            rows = [
                UserOut.model_validate(u).model_dump(mode="json") for u in service.list_users(s)
            ]
    else:
        with Client() as c:
            rows = c.users()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("name", "admin", "created")
    for u in rows:
        table.add_row(u["name"], "yes" if u["is_admin"] else "", u["created_at"][:10])
    out.print(table)


@tokens_app.command("create")
def create_token(
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="Whose token (admins; default: yours).")
    ] = None,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "",
    local: LocalOpt = False,
) -> None:
    """Mint a token; it is printed once, on stdout alone, so it can be captured."""
    if local:
        from shipyard.auth import accounts
        from shipyard.errors import Unprocessable

        if not user:
            raise Unprocessable("--local needs --user: whose token to mint")
        with _store() as s:
            _, secret = accounts.issue_token(s, _local_actor(), name, user)
    else:
        with Client() as c:
            secret = c.create_token(name, user=user)["token"]
    typer.echo(secret)


@tokens_app.command("ls")
def list_tokens(
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="Whose tokens (admins; default: yours).")
    ] = None,
    local: LocalOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List tokens (never their secrets)."""
    if local:
        from shipyard.auth import accounts
        from shipyard.auth.schemas import TokenOut
        from shipyard.errors import Unprocessable

        if not user:
            raise Unprocessable("--local needs --user: whose tokens to list")
        with _store() as s:
            rows = [
                TokenOut.model_validate(t).model_dump(mode="json")
                for t in accounts.tokens(s, _local_actor(), user)
            ]
    else:
        with Client() as c:
            rows = c.tokens(user)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("id", "name", "prefix", "created", "revoked")
    for t in rows:
        table.add_row(
            t["id"], t["name"], t["prefix"] + "…", _day(t["created_at"]), _day(t["revoked_at"])
        )
    out.print(table)


@tokens_app.command("revoke")
def revoke_token(token_id: str, local: LocalOpt = False) -> None:
    """Revoke a token (yours; admins: anyone's)."""
    if local:
        from shipyard.auth import accounts

        with _store() as s:
            accounts.revoke_token(s, _local_actor(), token_id)
    else:
        with Client() as c:
            c.revoke_token(token_id)
    out.print(f"revoked {token_id}")


def ui(
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open it in this machine's browser too.")
    ] = False,
) -> None:
    """Print a one-time link that signs a browser in to the web UI as you."""
    with Client() as c:
        link = c.login_link()
    typer.echo(link["url"])
    if open_browser:
        webbrowser.open(link["url"])
