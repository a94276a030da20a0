"""Runs and what runs log (projects are identity: ``shipyard.auth``).

Metric series are stored as chunks of packed arrays (int64 steps, float64 timestamps and
values) rather than a row per point: a million points is a few hundred rows, appends are
single inserts, and NaN and inf round-trip bit for bit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shipyard.db import Base, new_id, utcnow


class Run(Base):
    """One execution of training code."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_project_created", "project_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    environment: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)


class MetricSummary(Base):
    """Last, min and max of one metric of a run (min/max ignore NaN; a NULL last is NaN)."""

    __tablename__ = "metric_summaries"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    last: Mapped[float | None] = mapped_column(Float(precision=53))
    min: Mapped[float | None] = mapped_column(Float(precision=53))
    max: Mapped[float | None] = mapped_column(Float(precision=53))
    last_step: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)


class MetricChunk(Base):
    """A contiguous slice of one metric series, as packed little-endian arrays."""

    __tablename__ = "metric_chunks"
    __table_args__ = (Index("ix_metric_chunks_series", "run_id", "key", "seq", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(256))
    seq: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    steps: Mapped[bytes] = mapped_column(LargeBinary)
    timestamps: Mapped[bytes] = mapped_column(LargeBinary)
    values: Mapped[bytes] = mapped_column(LargeBinary)


class LoggedBatch(Base):
    """A batch id the server already applied: a resent batch is acknowledged, not re-applied."""

    __tablename__ = "logged_batches"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    points: Mapped[int] = mapped_column(Integer)


class Artifact(Base):
    """A file stored for a run (images and checkpoints are artifacts too)."""

    __tablename__ = "artifacts"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Image(Base):
    """An image logged at a step, stored as a PNG artifact."""

    __tablename__ = "images"
    __table_args__ = (Index("ix_images_run_key_step", "run_id", "key", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(256))
    step: Mapped[int] = mapped_column(Integer)
    caption: Mapped[str] = mapped_column(Text, default="")
    path: Mapped[str] = mapped_column(String(1024))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Checkpoint(Base):
    """An artifact marked as a checkpoint, with the metrics it scored."""

    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(1024))
    step: Mapped[int | None] = mapped_column(Integer)
    metrics: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConfigValue(Base):
    """One leaf of a run's config, flattened (``optimizer.lr``), typed for filtering and sorting.

    Numbers (and booleans as 0/1) fill ``num``; strings, booleans ("true"/"false") and lists (as
    JSON) fill ``text``. The run's ``config`` column keeps the nested original.
    """

    __tablename__ = "config_values"
    __table_args__ = (Index("ix_config_values_key_num", "key", "num"),)

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    num: Mapped[float | None] = mapped_column(Float(precision=53))
    text: Mapped[str | None] = mapped_column(Text)
