"""Alert channels of a project, where its notifications go: maintainers add, delete and test
them, viewers list them (URLs cut to scheme and host: a Slack webhook's path is a credential).

Each use case takes the actor, checks its role in the project, makes the change and writes the
audit record, in the caller's transaction. A channel URL is judged by the server's target
policy (``targets.Policy``) when it is added, and again before each delivery. A test
notification is recorded first and sent after the caller's commit (``ChannelTest.send``): no
transaction stays open while a channel answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard import audit, auth
from shipyard.auth import Actor, Project, Role
from shipyard.errors import Conflict, NotFound, Unprocessable
from shipyard.monitoring import notify
from shipyard.monitoring.schemas import ChannelCreate, ChannelOut, DeliveryOut, masked
from shipyard.monitoring.tables import AlertChannel, AlertRule
from shipyard.monitoring.targets import Policy, Refused, check_new


def channel_out(channel: AlertChannel) -> ChannelOut:
    return ChannelOut(
        name=channel.name,
        kind=channel.kind,
        url=masked(channel.url),
        created_at=channel.created_at,
    )


def channels_of(s: Session, project_id: str) -> list[AlertChannel]:
    """A project's channels, by name."""
    stmt = select(AlertChannel).where(AlertChannel.project_id == project_id)
    return list(s.scalars(stmt.order_by(AlertChannel.name)))


def get_channel(s: Session, project: Project, name: str) -> AlertChannel:
    channel = s.scalar(
        select(AlertChannel).where(AlertChannel.project_id == project.id, AlertChannel.name == name)
    )
    if channel is None:
        raise NotFound(f"project {project.name!r} has no alert channel {name!r}")
    return channel


def _audit(
    s: Session,
    actor: Actor,
    action: str,
    project: Project,
    name: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    audit.record(
        s,
        actor,
        action,
        "alert_channel",
        name,
        project_id=project.id,
        project=project.name,
        before=before,
        after=after,
    )


def list_channels(s: Session, actor: Actor, project: str) -> list[ChannelOut]:
    """The project's notification channels (viewers)."""
    p = auth.require_project(s, actor, project, Role.viewer)
    return [channel_out(c) for c in channels_of(s, p.id)]


def create_channel(
    s: Session, actor: Actor, project: str, body: ChannelCreate, policy: Policy
) -> ChannelOut:
    """Add a channel whose URL ``policy`` allows (maintainers; 422 naming the rule otherwise; a
    host that does not resolve yet is accepted, and checked again before each delivery)."""
    p = auth.require_project(s, actor, project, Role.maintainer)
    if any(c.name == body.name for c in channels_of(s, p.id)):
        raise Conflict(f"project {p.name!r} already has a channel {body.name!r}")
    try:
        check_new(body.url, policy)
    except Refused as exc:
        raise Unprocessable(str(exc)) from exc
    channel = AlertChannel(
        project_id=p.id, name=body.name, kind=body.kind, url=body.url, created_by=actor.user_id
    )
    s.add(channel)
    s.flush()
    out = channel_out(channel)
    _audit(s, actor, "alert.channel.create", p, body.name, after=out.model_dump(mode="json"))
    return out


def delete_channel(s: Session, actor: Actor, project: str, name: str) -> None:
    """Delete a channel no rule sends to (maintainers; 409 naming the rules otherwise)."""
    p = auth.require_project(s, actor, project, Role.maintainer)
    channel = get_channel(s, p, name)
    rules = s.scalars(
        select(AlertRule).where(AlertRule.project_id == p.id).order_by(AlertRule.name)
    )
    users = [r.name for r in rules if name in r.channels]
    if users:
        raise Conflict(f"channel {name!r} is used by rules {users}: change them first")
    before = channel_out(channel).model_dump(mode="json")
    s.delete(channel)
    _audit(s, actor, "alert.channel.delete", p, name, before=before)


@dataclass(frozen=True, slots=True)
class ChannelTest:
    """A test notification, recorded; ``send`` delivers it (after the record is committed)."""

    channel: str
    kind: str
    url: str
    fields: dict[str, Any]

    def send(self, policy: Policy) -> DeliveryOut:
        """Deliver it to a target ``policy`` allows now, and say how the channel answered."""
        delivery = notify.deliver(self.channel, self.kind, self.url, self.fields, policy)
        return DeliveryOut.model_validate(delivery.to_dict())


def test_channel(s: Session, actor: Actor, project: str, name: str) -> ChannelTest:
    """A test notification for a channel (maintainers): recorded here, sent by its ``send``."""
    p = auth.require_project(s, actor, project, Role.maintainer)
    channel = get_channel(s, p, name)
    _audit(s, actor, "alert.channel.test", p, name)
    text = f"[TEST] {p.name}/{name}: a test notification from Shipyard, sent by {actor.name}"
    fields = {"status": "test", "project": p.name, "rule": None, "endpoint": None}
    return ChannelTest(
        channel.name, channel.kind, channel.url, {**fields, "value": None, "text": text, "at": None}
    )
