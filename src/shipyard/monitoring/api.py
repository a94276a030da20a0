"""Routes of alerting: channels and rules per project (maintainers change them, viewers read),
the history of firing and resolved events, and a test notification for a channel.

Each parses the request, calls the use case (``monitoring.channels``, ``monitoring.service``)
and renders its answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from shipyard.auth import ActorDep, RuntimeDep
from shipyard.monitoring import channels, service, targets
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


@router.get("/channels", response_model=list[ChannelOut])
def list_channels(project: str, caller: ActorDep, rt: RuntimeDep) -> list[ChannelOut]:
    """The project's notification channels (URLs cut to scheme and host)."""
    with rt.db.read() as s:
        return channels.list_channels(s, caller, project)


@router.post("/channels", response_model=ChannelOut, status_code=201)
def create_channel(
    project: str, body: ChannelCreate, caller: ActorDep, rt: RuntimeDep
) -> ChannelOut:
    """Add a Slack incoming webhook or a JSON webhook (maintainers); 422 for a URL this server
    may not send to (link-local, cloud metadata, itself; private unless allowed)."""
    with rt.db.session() as s:
        return channels.create_channel(s, caller, project, body, targets.Policy.of(rt.settings))


@router.delete("/channels/{name}", status_code=204)
def delete_channel(project: str, name: str, caller: ActorDep, rt: RuntimeDep) -> None:
    """Delete a channel no rule sends to (maintainers)."""
    with rt.db.session() as s:
        channels.delete_channel(s, caller, project, name)


@router.post("/channels/{name}/test", response_model=DeliveryOut)
def test_channel(project: str, name: str, caller: ActorDep, rt: RuntimeDep) -> DeliveryOut:
    """Send a test notification now and say how the channel answered (maintainers)."""
    with rt.db.session() as s:
        test = channels.test_channel(s, caller, project, name)
    return test.send(targets.Policy.of(rt.settings))


@router.get("/rules", response_model=list[RuleOut])
def list_rules(project: str, caller: ActorDep, rt: RuntimeDep) -> list[RuleOut]:
    """The project's alert rules with their state and last value."""
    with rt.db.read() as s:
        return service.list_rules(s, caller, project)


@router.post("/rules", response_model=RuleOut, status_code=201)
def create_rule(project: str, body: RuleCreate, caller: ActorDep, rt: RuntimeDep) -> RuleOut:
    """Alert when ``metric op threshold`` holds on an endpoint of the project (maintainers)."""
    with rt.db.session() as s:
        return service.create_rule(s, caller, project, body)


@router.get("/rules/{name}", response_model=RuleOut)
def get_rule(project: str, name: str, caller: ActorDep, rt: RuntimeDep) -> RuleOut:
    """One rule."""
    with rt.db.read() as s:
        return service.get_rule(s, caller, project, name)


@router.patch("/rules/{name}", response_model=RuleOut)
def update_rule(
    project: str, name: str, body: RulePatch, caller: ActorDep, rt: RuntimeDep
) -> RuleOut:
    """Change a rule's condition, window, channels, or pause it (``enabled: false``)."""
    with rt.db.session() as s:
        return service.update_rule(s, caller, project, name, body)


@router.delete("/rules/{name}", status_code=204)
def delete_rule(project: str, name: str, caller: ActorDep, rt: RuntimeDep) -> None:
    """Delete a rule (its history stays)."""
    with rt.db.session() as s:
        service.delete_rule(s, caller, project, name)


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
        return service.list_events(s, caller, project, rule, limit)
