"""Wire models of projects, runs and what runs log.

Non-finite floats travel as the strings "NaN", "Infinity" and "-Infinity" (the proto3 JSON
mapping), since JSON has no literal for them; NaN/Infinity tokens are accepted on input too.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shipyard.inputs import FreeForm, Int32, Int64

PROJECT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
RUN_ID_PATTERN = r"^[0-9a-f]{32}$"
KEY_PATTERN = r"^[^\x00-\x1f]{1,256}$"


class RunStatus(StrEnum):
    running = "running"
    finished = "finished"
    failed = "failed"
    crashed = "crashed"


class ProjectCreate(BaseModel):
    name: str = Field(pattern=PROJECT_PATTERN)
    description: str = Field("", max_length=10_000)


class ProjectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    description: str
    created_at: datetime
    runs: int = 0


class RunCreate(BaseModel):
    """Start a run, or resume one: an ``id`` that exists is resumed (status back to running)."""

    id: str | None = Field(None, pattern=RUN_ID_PATTERN, description="Client-chosen id (resume).")
    project: str = Field(pattern=PROJECT_PATTERN)
    name: str | None = Field(None, max_length=256)
    config: FreeForm = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list, max_length=256)
    notes: str = Field("", max_length=100_000)
    environment: FreeForm = Field(default_factory=dict)
    created_at: datetime | None = Field(None, description="When it started (offline runs).")


class RunUpdate(BaseModel):
    name: str | None = Field(None, max_length=256)
    status: RunStatus | None = None
    tags: list[str] | None = Field(None, max_length=256)
    notes: str | None = Field(None, max_length=100_000)
    config: FreeForm | None = Field(None, description="Merged into the run's config.")
    finished_at: datetime | None = None


class SummaryOut(BaseModel):
    last: float | str | None
    min: float | str | None
    max: float | str | None
    step: int
    count: int


class RunOut(BaseModel):
    id: str
    project: str
    name: str
    status: RunStatus
    config: dict[str, Any]
    tags: list[str]
    notes: str
    environment: dict[str, Any]
    user: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    heartbeat_at: datetime
    summary: dict[str, SummaryOut]


class RunPage(BaseModel):
    runs: list[RunOut]
    total: int
    limit: int
    offset: int


class MetricSeriesIn(BaseModel):
    """Points of one metric, columnar; ``timestamps`` default to the time of receipt."""

    key: str = Field(pattern=KEY_PATTERN)
    steps: list[Int64]
    values: list[float]
    timestamps: list[float] | None = None

    @model_validator(mode="after")
    def _same_lengths(self) -> MetricSeriesIn:
        n = len(self.steps)
        if len(self.values) != n or (self.timestamps is not None and len(self.timestamps) != n):
            raise ValueError(f"metric {self.key!r}: steps, values and timestamps differ in length")
        return self


class LogBatchIn(BaseModel):
    """Metric points; a ``batch_id`` already applied is acknowledged, not applied twice."""

    batch_id: str = Field(min_length=1, max_length=64)
    metrics: list[MetricSeriesIn] = Field(default_factory=list)


class LogBatchOut(BaseModel):
    points: int
    duplicate: bool


class HistoryOut(BaseModel):
    key: str
    step: list[int]
    timestamp: list[float]
    value: list[float | str]
    total: int = Field(description="Points in the full series.")
    downsampled: bool


class ArtifactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    path: str
    size: int
    sha256: str
    created_at: datetime


class ImageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    step: int
    caption: str
    path: str
    width: int
    height: int


class CheckpointCreate(BaseModel):
    path: str = Field(min_length=1, max_length=1024, description="An artifact of the run.")
    step: Int32 | None = None
    metrics: dict[str, float] = Field(default_factory=dict)


class CheckpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    path: str
    step: int | None
    metrics: dict[str, float | str]
    created_at: datetime


class DiffRow(BaseModel):
    key: str
    a: Any
    b: Any
    same: bool


class RunDiff(BaseModel):
    a: str
    b: str
    config: list[DiffRow]
    summary: list[DiffRow]
    environment: list[DiffRow]
