"""Alert rules and their history: the use cases, and the state machine of a rule.

A rule is ``ok`` while its condition does not hold (or there is no data: no request in the
window for a latency or error metric, no drift report yet); when it starts to hold the rule is
``pending`` and becomes ``firing`` once it has held for ``for_s`` (at once when 0); it goes back
to ``ok`` when the condition stops holding. Firing and resolving each write an event and notify
the rule's channels, as Prometheus' ``for:`` and Alertmanager's resolved notifications do.
Disabling a rule puts it back to ``ok`` without a notification.

Maintainers create, change and delete rules; viewers read them and the history. Each use case
takes the actor, checks its role, makes the change and writes the audit record in the caller's
transaction. The alert evaluator advances the rules (``evaluate``) as the system actor
``alert evaluator``: each change of a rule's state is audited with it (``alert.pending``,
``alert.fire``, ``alert.resolve``, ``alert.clear``), a pass that changes none writes none, and
what its channels answered is recorded on the event (``alert.notify``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard import audit, auth, serving
from shipyard.auth import Actor, Project, Role
from shipyard.db import utcnow
from shipyard.errors import Conflict, NotFound, Unprocessable
from shipyard.monitoring.channels import channels_of
from shipyard.monitoring.schemas import (
    DeliveryOut,
    EventOut,
    RuleCreate,
    RuleOut,
    RulePatch,
)
from shipyard.monitoring.tables import AlertEvent, AlertRule

STATES = ("ok", "pending", "firing")
# The audit action of each change of a rule's state (ok -> firing: a rule with no ``for_s``).
TRANSITIONS = {
    ("ok", "pending"): "alert.pending",
    ("ok", "firing"): "alert.fire",
    ("pending", "firing"): "alert.fire",
    ("firing", "ok"): "alert.resolve",
    ("pending", "ok"): "alert.clear",
}


# -- reads without a role check (the caller checked: a page of the project) --------------------


def condition(rule: AlertRule) -> str:
    return f"{rule.metric} {rule.op} {rule.threshold:g}"


def rule_out(rule: AlertRule, project: str) -> RuleOut:
    return RuleOut(
        name=rule.name,
        project=project,
        endpoint=rule.endpoint,
        metric=rule.metric,
        op=rule.op,
        threshold=rule.threshold,
        condition=condition(rule),
        window_s=rule.window_s,
        for_s=rule.for_s,
        channels=list(rule.channels),
        description=rule.description,
        enabled=rule.enabled,
        state=rule.state,
        state_since=rule.state_since,
        value=rule.value,
        evaluated_at=rule.evaluated_at,
        created_at=rule.created_at,
    )


def rules_of(s: Session, project_ids: Sequence[str] | None) -> list[AlertRule]:
    """Rules of the given projects (None: all), by name."""
    stmt = select(AlertRule).order_by(AlertRule.name)
    if project_ids is not None:
        stmt = stmt.where(AlertRule.project_id.in_(project_ids))
    return list(s.scalars(stmt))


def firing(s: Session, project_ids: Sequence[str] | None) -> list[AlertRule]:
    """Rules firing now, the longest-firing first."""
    stmt = select(AlertRule).where(AlertRule.state == "firing").order_by(AlertRule.state_since)
    if project_ids is not None:
        stmt = stmt.where(AlertRule.project_id.in_(project_ids))
    return list(s.scalars(stmt))


def rules_on(s: Session, project: Project, endpoint: str) -> list[RuleOut]:
    """The rules of a project watching one of its endpoints."""
    stmt = select(AlertRule).where(
        AlertRule.project_id == project.id, AlertRule.endpoint == endpoint
    )
    return [rule_out(r, project.name) for r in s.scalars(stmt.order_by(AlertRule.name))]


def firing_out(s: Session, project_ids: Sequence[str] | None) -> list[RuleOut]:
    """The rules firing now, as the API shows them."""
    rules = firing(s, project_ids)
    names = auth.project_names(s, (r.project_id for r in rules))
    return [rule_out(r, names[r.project_id]) for r in rules]


def _rule(s: Session, project: Project, name: str) -> AlertRule:
    rule = s.scalar(
        select(AlertRule).where(AlertRule.project_id == project.id, AlertRule.name == name)
    )
    if rule is None:
        raise NotFound(f"project {project.name!r} has no alert rule {name!r}")
    return rule


def _check_channels(s: Session, project: Project, names: list[str]) -> None:
    known = {c.name for c in channels_of(s, project.id)}
    missing = [n for n in names if n not in known]
    if missing:
        raise Unprocessable(
            f"project {project.name!r} has no alert channel {missing[0]!r} "
            f"(add it first: shipyard alerts channels add {missing[0]} --url ...)"
        )


def _audit(
    s: Session,
    actor: Actor,
    action: str,
    project_id: str,
    project: str,
    name: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    audit.record(
        s,
        actor,
        action,
        "alert_rule",
        name,
        project_id=project_id,
        project=project,
        before=before,
        after=after,
    )


# -- rules: maintainers change them, viewers read them -----------------------------------------


def list_rules(s: Session, actor: Actor, project: str) -> list[RuleOut]:
    """The project's alert rules with their state and last value (viewers)."""
    p = auth.require_project(s, actor, project, Role.viewer)
    return [rule_out(r, p.name) for r in rules_of(s, [p.id])]


def get_rule(s: Session, actor: Actor, project: str, name: str) -> RuleOut:
    """One rule (viewers)."""
    p = auth.require_project(s, actor, project, Role.viewer)
    return rule_out(_rule(s, p, name), p.name)


def create_rule(s: Session, actor: Actor, project: str, body: RuleCreate) -> RuleOut:
    """A rule on an endpoint of the project, sending to channels of the project (maintainers)."""
    p = auth.require_project(s, actor, project, Role.maintainer)
    endpoint = serving.find_endpoint(s, body.endpoint)
    if endpoint is None or endpoint.project_id != p.id:
        raise NotFound(f"project {p.name!r} has no endpoint {body.endpoint!r}")
    _check_channels(s, p, body.channels)
    if s.scalar(
        select(AlertRule.id).where(AlertRule.project_id == p.id, AlertRule.name == body.name)
    ):
        raise Conflict(f"project {p.name!r} already has a rule {body.name!r}")
    rule = AlertRule(project_id=p.id, created_by=actor.user_id, **body.model_dump())
    s.add(rule)
    s.flush()
    _audit(
        s, actor, "alert.rule.create", p.id, p.name, rule.name, after=body.model_dump(mode="json")
    )
    return rule_out(rule, p.name)


def update_rule(s: Session, actor: Actor, project: str, name: str, patch: RulePatch) -> RuleOut:
    """Change a rule's condition, window, channels, or pause it (maintainers)."""
    p = auth.require_project(s, actor, project, Role.maintainer)
    rule = _rule(s, p, name)
    changes = patch.model_dump(exclude_unset=True, exclude_none=True)
    if "channels" in changes:
        _check_channels(s, p, changes["channels"])
    before = {k: getattr(rule, k) for k in changes}
    for key, value in changes.items():
        setattr(rule, key, value)
    if changes.get("enabled") is False and rule.state != "ok":
        rule.state, rule.state_since = "ok", utcnow()  # silenced, not resolved: no notification
    after = patch.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    _audit(s, actor, "alert.rule.update", p.id, p.name, name, before=before, after=after)
    return rule_out(rule, p.name)


def delete_rule(s: Session, actor: Actor, project: str, name: str) -> None:
    """Delete a rule; its history stays (maintainers)."""
    p = auth.require_project(s, actor, project, Role.maintainer)
    rule = _rule(s, p, name)
    before = rule_out(rule, p.name).model_dump(mode="json")
    s.delete(rule)
    _audit(s, actor, "alert.rule.delete", p.id, p.name, name, before=before)


# -- history ------------------------------------------------------------------------------------


def event_out(event: AlertEvent) -> EventOut:
    return EventOut(
        id=event.id,
        rule=event.rule,
        endpoint=event.endpoint,
        state=event.state,
        value=event.value,
        message=event.message,
        deliveries=[DeliveryOut.model_validate(d) for d in event.deliveries],
        at=event.at,
    )


def list_events(
    s: Session, actor: Actor, project: str, rule: str | None = None, limit: int = 100
) -> list[EventOut]:
    """The project's alert history, newest first (viewers)."""
    p = auth.require_project(s, actor, project, Role.viewer)
    stmt = select(AlertEvent).where(AlertEvent.project_id == p.id)
    if rule is not None:
        stmt = stmt.where(AlertEvent.rule == rule)
    return [event_out(e) for e in s.scalars(stmt.order_by(AlertEvent.id.desc()).limit(limit))]


# -- evaluation -------------------------------------------------------------------------------


def holds(op: str, value: float, threshold: float) -> bool:
    if op == ">":
        return value > threshold
    if op == ">=":
        return value >= threshold
    if op == "<":
        return value < threshold
    return value <= threshold


def step(rule: AlertRule, value: float | None, now: datetime) -> str | None:
    """Advance a rule on a new value (None: no data); ``firing`` or ``resolved`` when that
    happened now (an event to write and notify), None otherwise."""
    rule.value, rule.evaluated_at = value, now
    if value is not None and holds(rule.op, value, rule.threshold):
        if rule.state == "ok":
            rule.state, rule.state_since = "pending", now
        if rule.state == "pending" and (now - rule.state_since).total_seconds() >= rule.for_s:
            rule.state, rule.state_since = "firing", now
            return "firing"
        return None
    was = rule.state
    if was != "ok":
        rule.state, rule.state_since = "ok", now
    return "resolved" if was == "firing" else None


def message(rule: AlertRule, project: str, state: str, value: float | None) -> str:
    """One line for humans (a Slack message, the UI's history)."""
    shown = "no data" if value is None else f"{value:.4g}"
    window = f"{rule.window_s // 60} min" if rule.window_s % 60 == 0 else f"{rule.window_s} s"
    head = "[FIRING]" if state == "firing" else "[RESOLVED]"
    return (
        f"{head} {project}/{rule.name}: endpoint {rule.endpoint} {rule.metric} is {shown} "
        f"(rule: {condition(rule)}, over {window})"
    )


def add_event(s: Session, rule: AlertRule, project: str, state: str) -> AlertEvent:
    event = AlertEvent(
        project_id=rule.project_id,
        rule_id=rule.id,
        rule=rule.name,
        endpoint=rule.endpoint,
        state=state,
        value=rule.value,
        message=message(rule, project, state, rule.value),
        at=rule.evaluated_at or utcnow(),
    )
    s.add(event)
    return event


def evaluate(
    s: Session, actor: Actor, rule: AlertRule, project: str, value: float | None, now: datetime
) -> AlertEvent | None:
    """Advance a rule of ``project`` on its metric's value now (None: no data), with the
    actor's authority (maintainers: the alert evaluator). A change of its state is audited;
    firing and resolving also write the event its channels are to be told of (returned)."""
    auth.check_role(s, actor, rule.project_id, Role.maintainer, f"project {project!r}")
    was = rule.state
    happened = step(rule, value, now)
    if rule.state != was:
        _audit(
            s,
            actor,
            TRANSITIONS[was, rule.state],
            rule.project_id,
            project,
            rule.name,
            before={"state": was},
            after={"state": rule.state, "value": value},
        )
    if happened is None:
        return None
    event = add_event(s, rule, project, happened)
    s.flush()
    return event


def record_deliveries(
    s: Session, actor: Actor, event_id: int, project: str, deliveries: list[dict[str, Any]]
) -> None:
    """Write on an event what its channels answered (the alert evaluator, after notifying)."""
    event = s.get(AlertEvent, event_id)
    if event is None:
        return  # its project went meanwhile
    auth.check_role(s, actor, event.project_id, Role.maintainer, f"project {project!r}")
    event.deliveries = deliveries
    _audit(
        s,
        actor,
        "alert.notify",
        event.project_id,
        project,
        event.rule,
        after={
            "event": event_id,
            "state": event.state,
            "deliveries": {d["channel"]: d["ok"] for d in deliveries},
        },
    )
