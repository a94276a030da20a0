"""Write and query audit records. There is no update and no delete, by design."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.audit.tables import AuditRecord
from shipyard.db import utcnow
from shipyard.errors import Unprocessable

MAX_LIMIT = 10_000
SINCE = re.compile(r"^(\d+)([smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

if TYPE_CHECKING:  # the audit log sits below identity: it only reads an actor's fields
    from shipyard.auth import Actor


def record(
    session: Session,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str,
    *,
    project_id: str | None = None,
    project: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append one record in the caller's transaction (it commits or rolls back with the change):
    the actor is the person, or the part of the system and whom it acted for."""
    row = AuditRecord(
        actor_id=actor.user_id,
        actor=actor.label[:64],
        action=action,
        object_type=object_type,
        object_id=object_id,
        project_id=project_id,
        project=project,
        before=before,
        after=after,
        client=actor.address,
    )
    session.add(row)
    return row


def parse_since(text: str | None) -> datetime | None:
    """``1d``, ``12h``, ``30m`` (relative) or an ISO 8601 timestamp."""
    if not text:
        return None
    if m := SINCE.match(text.strip()):
        return utcnow() - timedelta(**{UNITS[m.group(2)]: int(m.group(1))})
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise Unprocessable(f"since {text!r}: use 1d, 12h, 30m or an ISO 8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=utcnow().tzinfo)


def search(
    session: Session,
    *,
    project_ids: Sequence[str] | None = None,
    since: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    object_id: str | None = None,
    limit: int = 100,
) -> list[AuditRecord]:
    """Records matching the filters, newest first; ``project_ids=None`` means every project."""
    if not 1 <= limit <= MAX_LIMIT:
        raise Unprocessable(f"limit must be between 1 and {MAX_LIMIT}")
    stmt = select(AuditRecord)
    if project_ids is not None:
        stmt = stmt.where(AuditRecord.project_id.in_(project_ids))
    if since is not None:
        stmt = stmt.where(AuditRecord.at >= since)
    if actor:
        stmt = stmt.where(AuditRecord.actor == actor)
    if action:
        stmt = stmt.where(AuditRecord.action.startswith(action, autoescape=True))
    if object_id:
        stmt = stmt.where(AuditRecord.object_id == object_id)
    return list(session.scalars(stmt.order_by(AuditRecord.id.desc()).limit(limit)))
