"""The alert evaluator changes rules' states as the system actor ``alert evaluator``: each
change of a state leaves one audit record, in the transaction that made it, and so does what a
firing's channels answered; a pass that changes nothing writes nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from shipyard import monitoring
from shipyard.audit.tables import AuditRecord
from shipyard.monitoring import ChannelCreate, Policy, RuleCreate, RulePatch
from tests.monitoring.conftest import Receiver
from tests.registry.conftest import World
from tests.serving.conftest import actor

P = "proj"


def by_evaluator(w: World) -> list[tuple[str, str, Any, Any]]:
    with w.client.app.state.runtime.db.read() as s:  # type: ignore[attr-defined]
        rows = s.scalars(select(AuditRecord).order_by(AuditRecord.id))
        return [
            (r.action, r.object_id, r.before, r.after)
            for r in rows
            if r.actor == "alert evaluator" and r.actor_id == "" and r.project == P
        ]


def test_each_change_of_a_rules_state_is_audited_as_the_evaluator(
    world: World, endpoint: str, receiver: Receiver
) -> None:
    app = world.client.app
    db, evaluator = app.state.runtime.db, app.state.alerts  # type: ignore[attr-defined]
    mona = actor(world, "mona")
    quiet = {"endpoint": endpoint, "metric": "rate", "op": "<", "threshold": 1}  # no traffic
    with db.session() as s:
        hook = ChannelCreate(name="ops", url=receiver.url + "/hook")
        monitoring.create_channel(s, mona, P, hook, Policy(allow_private=True))
        monitoring.create_rule(s, mona, P, RuleCreate(name="idle", channels=["ops"], **quiet))
        monitoring.create_rule(s, mona, P, RuleCreate(name="long", for_s=3600, **quiet))

    evaluator.run_once()  # idle fires at once (and notifies), long waits its hour
    fired = [
        ("alert.fire", "idle", {"state": "ok"}, {"state": "firing", "value": 0.0}),
        ("alert.pending", "long", {"state": "ok"}, {"state": "pending", "value": 0.0}),
        (
            "alert.notify",
            "idle",
            None,
            {"event": 1, "state": "firing", "deliveries": {"ops": True}},
        ),
    ]
    assert by_evaluator(world) == fired
    evaluator.run_once()
    evaluator.run_once()  # the same states: nothing recorded
    assert by_evaluator(world) == fired

    with db.session() as s:  # neither condition holds any more
        for name in ("idle", "long"):
            monitoring.update_rule(s, mona, P, name, RulePatch(threshold=-1))
    evaluator.run_once()
    evaluator.run_once()
    assert by_evaluator(world) == [
        *fired,
        ("alert.resolve", "idle", {"state": "firing"}, {"state": "ok", "value": 0.0}),
        ("alert.clear", "long", {"state": "pending"}, {"state": "ok", "value": 0.0}),
        (
            "alert.notify",
            "idle",
            None,
            {"event": 2, "state": "resolved", "deliveries": {"ops": True}},
        ),
    ]
    assert [body["status"] for body in receiver.at("/hook")] == ["firing", "resolved"]
    with db.read() as s:
        events = monitoring.list_events(s, mona, P)
    assert [(e.state, [d.ok for d in e.deliveries]) for e in events] == [
        ("resolved", [True]),
        ("firing", [True]),
    ]
