"""Routes of alerting: channels and rules per project (maintainers change them, viewers read),
the history of firing and resolved events, and a test notification for a channel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from shipyard import audit, auth
from shipyard.auth import Actor, ActorDep, Project, Role, RuntimeDep
from shipyard.monitoring import notify, service, targets
from shipyard.monitoring.schemas import (
    ChannelCreate,
    ChannelOut,
    DeliveryOut,
    EventOut,
    RuleCreate,
    RuleOut,
    RulePatch,
)

router = APIRouter(prefix="/api/projects/{project}/alerts", tags=["monitoring"])


def _audit(
    s: Session,
    caller: Actor,
    action: str,
    project: Project,
    object_id: str,
    before: dict[str, object] | None = None,
    after: dict[str, object] | None = None,
) -> None:
    audit.record(
        s,
        caller,
        action,
        "alert_rule" if action.startswith("alert.rule") else "alert_channel",
        object_id,
        project_id=project.id,
        project=project.name,
        before=before,
        after=after,
    )


@router.get("/channels", response_model=list[ChannelOut])
def list_channels(project: str, caller: ActorDep, rt: RuntimeDep) -> list[ChannelOut]:
    """The project's notification channels (URLs cut to scheme and host)."""
    with rt.db.read() as s:
        p = auth.require_project(s, caller, project, Role.viewer)
        return [service.channel_out(c) for c in service.list_channels(s, p.id)]


@router.post("/channels", response_model=ChannelOut, status_code=201)
def create_channel(
    project: str, body: ChannelCreate, caller: ActorDep, rt: RuntimeDep
) -> ChannelOut:
    """Add a Slack incoming webhook or a JSON webhook (maintainers); 422 for a URL this server
    may not send to (link-local, cloud metadata, itself; private unless allowed)."""
    policy = targets.Policy.of(rt.settings)
    with rt.db.session() as s:
        p = auth.require_project(s, caller, project, Role.maintainer)
        channel = service.create_channel(s, p, caller.user_id, body, policy)
        out = service.channel_out(channel)
        _audit(s, caller, "alert.channel.create", p, body.name, after=out.model_dump(mode="json"))
        return out


@router.delete("/channels/{name}", status_code=204)
def delete_channel(project: str, name: str, caller: ActorDep, rt: RuntimeDep) -> None:
    """Delete a channel no rule sends to (maintainers)."""
    with rt.db.session() as s:
        p = auth.require_project(s, caller, project, Role.maintainer)
        channel = service.delete_channel(s, p, name)
        before = service.channel_out(channel).model_dump(mode="json")
        _audit(s, caller, "alert.channel.delete", p, name, before=before)


@router.post("/channels/{name}/test", response_model=DeliveryOut)
def test_channel(project: str, name: str, caller: ActorDep, rt: RuntimeDep) -> DeliveryOut:
    """Send a test notification now and say how the channel answered (maintainers)."""
    with rt.db.session() as s:
        p = auth.require_project(s, caller, project, Role.maintainer)
        channel = service.get_channel(s, p, name)
        target = (channel.name, channel.kind, channel.url)
        _audit(s, caller, "alert.channel.test", p, name)
    text = f"[TEST] {project}/{name}: a test notification from Shipyard, sent by {caller.name}"
    fields = {"status": "test", "project": project, "rule": None, "endpoint": None}
    event = {**fields, "value": None, "text": text, "at": None}
    delivery = notify.deliver(*target, event, targets.Policy.of(rt.settings))
    return DeliveryOut.model_validate(delivery.to_dict())


@router.get("/rules", response_model=list[RuleOut])
def list_rules(project: str, caller: ActorDep, rt: RuntimeDep) -> list[RuleOut]:
    """The project's alert rules with their state and last value."""
    with rt.db.read() as s:
        p = auth.require_project(s, caller, project, Role.viewer)
        return [service.rule_out(r, p.name) for r in service.list_rules(s, [p.id])]


@router.post("/rules", response_model=RuleOut, status_code=201)
def create_rule(project: str, body: RuleCreate, caller: ActorDep, rt: RuntimeDep) -> RuleOut:
    """Alert when ``metric op threshold`` holds on an endpoint of the project (maintainers)."""
    with rt.db.session() as s:
        p = auth.require_project(s, caller, project, Role.maintainer)
        rule = service.create_rule(s, p, caller.user_id, body)
        _audit(s, caller, "alert.rule.create", p, rule.name, after=body.model_dump(mode="json"))
        return service.rule_out(rule, p.name)


@router.get("/rules/{name}", response_model=RuleOut)
def get_rule(project: str, name: str, caller: ActorDep, rt: RuntimeDep) -> RuleOut:
    """One rule."""
    with rt.db.read() as s:
        p = auth.require_project(s, caller, project, Role.viewer)
        return service.rule_out(service.get_rule(s, p, name), p.name)


@router.patch("/rules/{name}", response_model=RuleOut)
def update_rule(
    project: str, name: str, body: RulePatch, caller: ActorDep, rt: RuntimeDep
) -> RuleOut:
    """Change a rule's condition, window, channels, or pause it (``enabled: false``)."""
    with rt.db.session() as s:
        p = auth.require_project(s, caller, project, Role.maintainer)
        rule = service.get_rule(s, p, name)
        before = service.update_rule(s, p, rule, body)
        after = body.model_dump(mode="json", exclude_unset=True, exclude_none=True)
        _audit(s, caller, "alert.rule.update", p, name, before=before, after=after)
        return service.rule_out(rule, p.name)


@router.delete("/rules/{name}", status_code=204)
def delete_rule(project: str, name: str, caller: ActorDep, rt: RuntimeDep) -> None:
    """Delete a rule (its history stays)."""
    with rt.db.session() as s:
        p = auth.require_project(s, caller, project, Role.maintainer)
        rule = service.get_rule(s, p, name)
        before = service.rule_out(rule, p.name).model_dump(mode="json")
        s.delete(rule)
        _audit(s, caller, "alert.rule.delete", p, name, before=before)


@router.get("/events", response_model=list[EventOut])
def list_events(
    project: str,
    caller: ActorDep,
    rt: RuntimeDep,
    rule: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[EventOut]:
    """The project's alert history, newest first: each firing and resolution, with what its
    channels answered."""
    with rt.db.read() as s:
        p = auth.require_project(s, caller, project, Role.viewer)
        return [service.event_out(e) for e in service.list_events(s, p.id, rule, limit)]
