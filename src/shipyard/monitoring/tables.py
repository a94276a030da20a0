"""Alert channels (where notifications go), rules (a condition on an endpoint, and its state)
and events (each time a rule fired or resolved, with what was notified)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shipyard.db import Base, new_id, utcnow


class AlertChannel(Base):
    """A Slack incoming webhook or a generic JSON webhook of a project."""

    __tablename__ = "alert_channels"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # slack | webhook
    url: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertRule(Base):
    """``metric op threshold`` on an endpoint over the last ``window_s`` seconds; it fires once
    the condition has held for ``for_s`` (pending meanwhile) and resolves when it stops."""

    __tablename__ = "alert_rules"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    endpoint: Mapped[str] = mapped_column(String(128), index=True)
    metric: Mapped[str] = mapped_column(String(32))
    op: Mapped[str] = mapped_column(String(2))
    threshold: Mapped[float] = mapped_column(Float)
    window_s: Mapped[int] = mapped_column(Integer, default=300)
    for_s: Mapped[float] = mapped_column(Float, default=0.0)
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    state: Mapped[str] = mapped_column(String(16), default="ok")  # ok | pending | firing
    state_since: Mapped[datetime] = mapped_column(default=utcnow)
    value: Mapped[float | None] = mapped_column(Float, default=None)
    evaluated_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertEvent(Base):
    """A rule fired or resolved: the value, the message, and each channel's delivery."""

    __tablename__ = "alert_events"
    __table_args__ = (Index("ix_alert_events_project_at", "project_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    rule_id: Mapped[str] = mapped_column(String(32), index=True)  # kept after the rule goes
    rule: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))  # firing | resolved
    value: Mapped[float | None] = mapped_column(Float, default=None)
    message: Mapped[str] = mapped_column(Text)
    deliveries: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    at: Mapped[datetime] = mapped_column(default=utcnow)
