"""``shipyard users`` and ``shipyard tokens``: administration on this machine's store."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shipyard.auth import service
from shipyard.config import Settings
from shipyard.db import Database

users_app = typer.Typer(
    help="Users (acts on the store of SHIPYARD_DATABASE_URL / SHIPYARD_HOME).", no_args_is_help=True
)
tokens_app = typer.Typer(help="API tokens (shown once, stored hashed).", no_args_is_help=True)
out = Console()


def _db() -> Database:
    db = Database(Settings().database)
    db.upgrade()
    return db


@users_app.command("create")
def create_user(
    name: str,
    admin: Annotated[bool, typer.Option("--admin", help="Make a server admin.")] = False,
) -> None:
    """Add a user."""
    db = _db()
    with db.session() as s:
        user = service.create_user(s, name, is_admin=admin)
        out.print(f"created user [bold]{user.name}[/] ({'admin' if user.is_admin else 'user'})")


@users_app.command("ls")
def list_users() -> None:
    """List users."""
    db = _db()
    table = Table("name", "admin", "created")
    with db.read() as s:
        for u in service.list_users(s):
            table.add_row(u.name, "yes" if u.is_admin else "", u.created_at.strftime("%Y-%m-%d"))
    out.print(table)


@tokens_app.command("create")
def create_token(
    user: Annotated[str, typer.Option("--user", "-u", help="Whose token.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "",
) -> None:
    """Mint a token; it is printed once, on stdout alone, so it can be captured."""
    db = _db()
    with db.session() as s:
        _, secret = service.create_token(s, service.get_user(s, user), name)
    typer.echo(secret)


@tokens_app.command("ls")
def list_tokens(user: Annotated[str, typer.Option("--user", "-u")]) -> None:
    """List a user's tokens (never their secrets)."""
    db = _db()
    table = Table("id", "name", "prefix", "created", "revoked")
    with db.read() as s:
        for t in service.list_tokens(s, service.get_user(s, user)):
            table.add_row(
                t.id,
                t.name,
                t.prefix + "…",
                t.created_at.strftime("%Y-%m-%d %H:%M"),
                t.revoked_at.strftime("%Y-%m-%d") if t.revoked_at else "",
            )
    out.print(table)


@tokens_app.command("revoke")
def revoke_token(token_id: str, user: Annotated[str, typer.Option("--user", "-u")]) -> None:
    """Revoke a token."""
    db = _db()
    with db.session() as s:
        service.revoke_token(s, service.get_user(s, user), token_id)
    out.print(f"revoked {token_id}")
