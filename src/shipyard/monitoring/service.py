"""Alert channels, rules and their history in the store, and the state machine of a rule.

A rule is ``ok`` while its condition does not hold (or there is no data: no request in the
window for a latency or error metric, no drift report yet); when it starts to hold the rule is
``pending`` and becomes ``firing`` once it has held for ``for_s`` (at once when 0); it goes back
to ``ok`` when the condition stops holding. Firing and resolving each write an event and notify
the rule's channels, as Prometheus' ``for:`` and Alertmanager's resolved notifications do.
Disabling a rule puts it back to ``ok`` without a notification.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard import auth
from shipyard.auth import Project
from shipyard.db import utcnow
from shipyard.errors import Conflict, NotFound, Unprocessable
from shipyard.monitoring.schemas import (
    ChannelCreate,
    ChannelOut,
    DeliveryOut,
    EventOut,
    RuleCreate,
    RuleOut,
    RulePatch,
    masked,
)
from shipyard.monitoring.tables import AlertChannel, AlertEvent, AlertRule
from shipyard.monitoring.targets import Policy, Refused, check_new
from shipyard.serving import service as serving

STATES = ("ok", "pending", "firing")


# -- channels -------------------------------------------------------------------------------


def channel_out(channel: AlertChannel) -> ChannelOut:
    return ChannelOut(
        name=channel.name,
        kind=channel.kind,
        url=masked(channel.url),
        created_at=channel.created_at,
    )


def list_channels(s: Session, project_id: str) -> list[AlertChannel]:
    stmt = select(AlertChannel).where(AlertChannel.project_id == project_id)
    return list(s.scalars(stmt.order_by(AlertChannel.name)))


def get_channel(s: Session, project: Project, name: str) -> AlertChannel:
    channel = s.scalar(
        select(AlertChannel).where(AlertChannel.project_id == project.id, AlertChannel.name == name)
    )
    if channel is None:
        raise NotFound(f"project {project.name!r} has no alert channel {name!r}")
    return channel


def create_channel(
    s: Session, project: Project, user_id: str, body: ChannelCreate, policy: Policy
) -> AlertChannel:
    """Add a channel whose URL ``policy`` allows (422 with the rule otherwise; a host that
    does not resolve yet is accepted, and checked again before each delivery)."""
    if any(c.name == body.name for c in list_channels(s, project.id)):
        raise Conflict(f"project {project.name!r} already has a channel {body.name!r}")
    try:
        check_new(body.url, policy)
    except Refused as exc:
        raise Unprocessable(str(exc)) from exc
    channel = AlertChannel(
        project_id=project.id, name=body.name, kind=body.kind, url=body.url, created_by=user_id
    )
    s.add(channel)
    s.flush()
    return channel


def delete_channel(s: Session, project: Project, name: str) -> AlertChannel:
    """Delete a channel no rule sends to (409 naming the rules otherwise)."""
    channel = get_channel(s, project, name)
    users = [r.name for r in list_rules(s, [project.id]) if name in r.channels]
    if users:
        raise Conflict(f"channel {name!r} is used by rules {users}: change them first")
    s.delete(channel)
    return channel


# -- rules ----------------------------------------------------------------------------------


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


def list_rules(s: Session, project_ids: Sequence[str] | None) -> list[AlertRule]:
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


def get_rule(s: Session, project: Project, name: str) -> AlertRule:
    rule = s.scalar(
        select(AlertRule).where(AlertRule.project_id == project.id, AlertRule.name == name)
    )
    if rule is None:
        raise NotFound(f"project {project.name!r} has no alert rule {name!r}")
    return rule


def _check_channels(s: Session, project: Project, names: list[str]) -> None:
    known = {c.name for c in list_channels(s, project.id)}
    missing = [n for n in names if n not in known]
    if missing:
        raise Unprocessable(
            f"project {project.name!r} has no alert channel {missing[0]!r} "
            f"(add it first: shipyard alerts channels add {missing[0]} --url ...)"
        )


def create_rule(s: Session, project: Project, user_id: str, body: RuleCreate) -> AlertRule:
    """A rule on an endpoint of the project, sending to channels of the project."""
    try:
        endpoint = serving.get_endpoint(s, body.endpoint)
    except NotFound:
        endpoint = None
    if endpoint is None or endpoint.project_id != project.id:
        raise NotFound(f"project {project.name!r} has no endpoint {body.endpoint!r}")
    _check_channels(s, project, body.channels)
    if s.scalar(
        select(AlertRule.id).where(AlertRule.project_id == project.id, AlertRule.name == body.name)
    ):
        raise Conflict(f"project {project.name!r} already has a rule {body.name!r}")
    rule = AlertRule(project_id=project.id, created_by=user_id, **body.model_dump())
    s.add(rule)
    s.flush()
    return rule


def update_rule(s: Session, project: Project, rule: AlertRule, patch: RulePatch) -> dict[str, Any]:
    """Apply a patch; the fields it changed, as they were before."""
    changes = patch.model_dump(exclude_unset=True, exclude_none=True)
    if "channels" in changes:
        _check_channels(s, project, changes["channels"])
    before = {k: getattr(rule, k) for k in changes}
    for key, value in changes.items():
        setattr(rule, key, value)
    if changes.get("enabled") is False and rule.state != "ok":
        rule.state, rule.state_since = "ok", utcnow()  # silenced, not resolved: no notification
    return before


# -- evaluation -----------------------------------------------------------------------------


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
    s: Session, project_id: str, rule: str | None = None, limit: int = 100
) -> list[AlertEvent]:
    """A project's alert history, newest first."""
    stmt = select(AlertEvent).where(AlertEvent.project_id == project_id)
    if rule is not None:
        stmt = stmt.where(AlertEvent.rule == rule)
    return list(s.scalars(stmt.order_by(AlertEvent.id.desc()).limit(limit)))
