"""``shipyard alerts``: rules on endpoints, their history, and notification channels.

shipyard alerts channels add ops --url https://hooks.slack.com/services/... --kind slack
shipyard alerts create errors --endpoint digits --when "error_ratio > 0.05" --for 2m --channel ops
shipyard alerts ls ; shipyard alerts history ; shipyard alerts pause errors
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.table import Table

from shipyard.client import Client, ProjectOpt, parse_duration, require_project
from shipyard.errors import ShipyardError, Unprocessable
from shipyard.monitoring.export import rule_file
from shipyard.monitoring.schemas import METRICS

alerts_app = typer.Typer(help="Alert rules on endpoints, and their channels.", no_args_is_help=True)
channels_app = typer.Typer(help="Where notifications go.", no_args_is_help=True)
alerts_app.add_typer(channels_app, name="channels")
out = Console()
CONDITION = re.compile(r"^\s*([a-z0-9_]+)\s*(>=|<=|>|<)\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*$")


class Undelivered(ShipyardError):
    """A test notification the channel did not take (the command's one-line error)."""

    status, title = 502, "Not delivered"


STATE_STYLE = {"ok": "green", "pending": "yellow", "firing": "bold red"}


def parse_condition(text: str) -> tuple[str, str, float]:
    """``"p99_ms > 250"`` as (metric, op, threshold)."""
    m = CONDITION.match(text)
    if m is None or m.group(1) not in METRICS:
        raise Unprocessable(
            f"--when {text!r}: write METRIC OP NUMBER, e.g. 'error_ratio > 0.05', with a metric "
            f"of {', '.join(METRICS)}"
        )
    try:
        return m.group(1), m.group(2), float(m.group(3))
    except ValueError:
        raise Unprocessable(f"--when {text!r}: {m.group(3)!r} is not a number") from None


@alerts_app.command("create")
def create(
    name: str,
    endpoint: Annotated[str, typer.Option(help="The endpoint it watches.")],
    when: Annotated[str, typer.Option(help="METRIC OP NUMBER, e.g. 'p99_ms > 250'.")],
    window: Annotated[str, typer.Option(help="Traffic the metric covers: 10s..15m.")] = "5m",
    for_: Annotated[str, typer.Option("--for", help="How long it must hold to fire.")] = "0s",
    channel: Annotated[list[str] | None, typer.Option(help="A channel to notify (repeat).")] = None,
    description: Annotated[str, typer.Option()] = "",
    project: ProjectOpt = None,
) -> None:
    """Alert when a condition holds on an endpoint (maintainers)."""
    metric, op, threshold = parse_condition(when)
    with Client() as c:
        rule = c.create_alert(
            require_project(project),
            name,
            endpoint,
            metric,
            op,
            threshold,
            window_s=int(parse_duration(window)),
            for_s=parse_duration(for_),
            channels=channel or [],
            description=description,
        )
    out.print(f"alert {rule['name']}: {rule['condition']} on endpoint {rule['endpoint']}")


@alerts_app.command("ls")
def list_rules(project: ProjectOpt = None) -> None:
    """The project's rules with their state and last value."""
    with Client() as c:
        rules = c.alerts(require_project(project))
    table = Table("rule", "endpoint", "condition", "window", "for", "state", "value", "channels")
    for r in rules:
        state = r["state"] if r["enabled"] else "paused"
        value = "no data" if r["value"] is None else f"{r['value']:.4g}"
        table.add_row(
            r["name"],
            r["endpoint"],
            r["condition"],
            f"{r['window_s']}s",
            f"{r['for_s']:g}s",
            f"[{STATE_STYLE.get(state, 'dim')}]{state}[/]",
            value,
            ", ".join(r["channels"]),
        )
    out.print(table)


@alerts_app.command("history")
def history(
    rule: Annotated[str | None, typer.Option(help="Only this rule's events.")] = None,
    limit: Annotated[int, typer.Option()] = 50,
    project: ProjectOpt = None,
) -> None:
    """Firing and resolved events, newest first, with what each channel answered."""
    with Client() as c:
        events = c.alert_events(require_project(project), rule, limit)
    table = Table("time", "rule", "state", "value", "notified", "message")
    for e in events:
        notified = ", ".join(
            f"{d['channel']} {'ok' if d['ok'] else 'FAILED'}" for d in e["deliveries"]
        )
        table.add_row(
            e["at"][:19].replace("T", " "),
            e["rule"],
            f"[{STATE_STYLE['firing' if e['state'] == 'firing' else 'ok']}]{e['state']}[/]",
            "" if e["value"] is None else f"{e['value']:.4g}",
            notified,
            e["message"],
        )
    out.print(table)


def _set_enabled(name: str, enabled: bool, project: str | None) -> None:
    with Client() as c:
        c.update_alert(require_project(project), name, enabled=enabled)
    out.print(f"alert {name} {'resumed' if enabled else 'paused'}")


@alerts_app.command("pause")
def pause(name: str, project: ProjectOpt = None) -> None:
    """Stop evaluating a rule (a firing one goes quiet without a resolved notice)."""
    _set_enabled(name, False, project)


@alerts_app.command("resume")
def resume(name: str, project: ProjectOpt = None) -> None:
    """Evaluate a paused rule again."""
    _set_enabled(name, True, project)


@alerts_app.command("rm")
def remove(name: str, project: ProjectOpt = None) -> None:
    """Delete a rule (its history stays)."""
    with Client() as c:
        c.delete_alert(require_project(project), name)
    out.print(f"deleted alert {name}")


@alerts_app.command("export")
def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default: stdout).")
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """The project's rules as a Prometheus rule file (for a Prometheus scraping /metrics)."""
    with Client() as c:
        rules = c.alerts(require_project(project))
    text = yaml.safe_dump(rule_file(rules), sort_keys=False, allow_unicode=True)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text)
    out.print(f"wrote {sum(r['enabled'] for r in rules)} rules to {output}")


@channels_app.command("add")
def add_channel(
    name: str,
    url: Annotated[str, typer.Option(help="The webhook URL (kept secret by the server).")],
    kind: Annotated[str, typer.Option(help="slack or webhook (a JSON POST).")] = "webhook",
    project: ProjectOpt = None,
) -> None:
    """Add a notification channel (maintainers)."""
    with Client() as c:
        ch = c.add_alert_channel(require_project(project), name, url, kind)
    out.print(f"channel {ch['name']} ({ch['kind']}) -> {ch['url']}")


@channels_app.command("ls")
def list_channels(project: ProjectOpt = None) -> None:
    """The project's channels (URLs shown as scheme and host)."""
    with Client() as c:
        channels = c.alert_channels(require_project(project))
    table = Table("channel", "kind", "url", "created")
    for ch in channels:
        table.add_row(ch["name"], ch["kind"], ch["url"], ch["created_at"][:19].replace("T", " "))
    out.print(table)


@channels_app.command("test")
def test_channel(name: str, project: ProjectOpt = None) -> None:
    """Send a test notification now; an error (exit 1) when the channel does not take it."""
    with Client() as c:
        d = c.test_alert_channel(require_project(project), name)
    if not d["ok"]:
        raise Undelivered(
            f"channel {name}: not delivered after {d['attempts']} tries: {d['error']}"
        )
    out.print(f"channel {name}: delivered (HTTP {d['status']})")


@channels_app.command("rm")
def remove_channel(name: str, project: ProjectOpt = None) -> None:
    """Delete a channel no rule uses."""
    with Client() as c:
        c.delete_alert_channel(require_project(project), name)
    out.print(f"deleted channel {name}")
