"""Monitoring's use cases refuse an actor below their least role themselves, whoever calls them
(no HTTP here): each change of a channel or rule is refused to a developer and made by a
maintainer, each read refused to a user with no role and answered to a viewer; the evaluator's
own use cases (a rule's evaluation, its deliveries) need a maintainer's authority too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from shipyard import monitoring
from shipyard.audit.tables import AuditRecord
from shipyard.auth import Actor
from shipyard.db import utcnow
from shipyard.errors import Forbidden
from shipyard.monitoring import ChannelCreate, Policy, RuleCreate, RulePatch
from shipyard.monitoring.tables import AlertEvent, AlertRule
from tests.registry.conftest import World
from tests.serving.conftest import actor

P = "proj"
CLOSED = "http://127.0.0.1:9/hook"  # nothing listens there
POLICY = Policy(allow_private=True)
Change = Callable[[Any, Actor], object]


def refused_then_done(w: World, below: str, least: str, change: Change) -> object:
    """``change`` refused (Forbidden, nothing written) to ``below``, then made by ``least``."""
    db = w.client.app.state.runtime.db  # type: ignore[attr-defined]
    with pytest.raises(Forbidden), db.session() as s:
        change(s, actor(w, below))
    with db.session() as s:
        return change(s, actor(w, least))


def test_each_change_needs_a_maintainer(world: World, endpoint: str) -> None:
    rule = RuleCreate(name="slow", endpoint=endpoint, metric="p99_ms", threshold=100)
    changes: list[tuple[str, Change]] = [
        (
            "alert.channel.create",
            lambda s, a: monitoring.create_channel(
                s, a, P, ChannelCreate(name="ops", url=CLOSED), POLICY
            ),
        ),
        (
            "alert.channel.create",
            lambda s, a: monitoring.create_channel(
                s, a, P, ChannelCreate(name="spare", url=CLOSED), POLICY
            ),
        ),
        ("alert.channel.test", lambda s, a: monitoring.test_channel(s, a, P, "ops")),
        ("alert.channel.delete", lambda s, a: monitoring.delete_channel(s, a, P, "spare")),
        ("alert.rule.create", lambda s, a: monitoring.create_rule(s, a, P, rule)),
        (
            "alert.rule.update",
            lambda s, a: monitoring.update_rule(
                s, a, P, "slow", RulePatch(threshold=50, channels=["ops"])
            ),
        ),
        ("alert.rule.delete", lambda s, a: monitoring.delete_rule(s, a, P, "slow")),
    ]
    for _, change in changes:
        refused_then_done(world, "dev", "mona", change)
    with world.client.app.state.runtime.db.read() as s:  # type: ignore[attr-defined]
        rows = s.scalars(select(AuditRecord).where(AuditRecord.action.like("alert.%")))
        made = [(r.action, r.actor, r.project) for r in rows]
    assert made == [(action, "mona", P) for action, _ in changes]


def test_a_channel_test_is_sent_after_its_record(world: World) -> None:
    db = world.client.app.state.runtime.db  # type: ignore[attr-defined]
    with db.session() as s:
        monitoring.create_channel(
            s, actor(world, "mona"), P, ChannelCreate(name="ops", url=CLOSED), POLICY
        )
    with db.session() as s:
        test = monitoring.test_channel(s, actor(world, "mona"), P, "ops")
    assert test.fields["text"] == "[TEST] proj/ops: a test notification from Shipyard, sent by mona"
    delivery = test.send(POLICY)
    assert (delivery.channel, delivery.ok, delivery.status) == ("ops", False, None)


def test_each_read_needs_a_viewer(world: World, endpoint: str) -> None:
    db = world.client.app.state.runtime.db  # type: ignore[attr-defined]
    with db.session() as s:
        body = RuleCreate(name="slow", endpoint=endpoint, metric="p99_ms", threshold=100)
        monitoring.create_rule(s, actor(world, "mona"), P, body)
    reads: list[Change] = [
        lambda s, a: monitoring.list_channels(s, a, P),
        lambda s, a: monitoring.list_rules(s, a, P),
        lambda s, a: monitoring.get_rule(s, a, P, "slow"),
        lambda s, a: monitoring.list_events(s, a, P, None, 10),
    ]
    for read in reads:
        refused_then_done(world, "otto", "vic", read)


def test_evaluating_a_rule_needs_a_maintainers_authority(world: World, endpoint: str) -> None:
    db = world.client.app.state.runtime.db  # type: ignore[attr-defined]
    with db.session() as s:
        body = RuleCreate(name="quiet", endpoint=endpoint, metric="rate", op="<", threshold=1)
        monitoring.create_rule(s, actor(world, "mona"), P, body)

    def evaluate(s: Any, a: Actor) -> object:
        rule = s.scalars(select(AlertRule).where(AlertRule.name == "quiet")).one()
        return monitoring.evaluate(s, a, rule, P, 0.0, utcnow())

    event = refused_then_done(world, "dev", "mona", evaluate)
    assert isinstance(event, AlertEvent) and event.state == "firing"
    deliveries = [{"channel": "ops", "ok": True, "status": 200, "error": "", "attempts": 1}]
    refused_then_done(
        world,
        "dev",
        "mona",
        lambda s, a: monitoring.record_deliveries(s, a, event.id, P, deliveries),
    )
    with db.read() as s:
        rows = s.scalars(select(AuditRecord).where(AuditRecord.object_id == "quiet"))
        made = [(r.action, r.actor) for r in rows]
    assert made == [("alert.rule.create", "mona"), ("alert.fire", "mona"), ("alert.notify", "mona")]
