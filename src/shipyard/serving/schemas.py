"""Wire models of endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from shipyard.inputs import Finite, Version

ENDPOINT_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"


class EndpointDeploy(BaseModel):
    """Create an endpoint, or roll an existing one to another version (``canary`` to split)."""

    name: str = Field(pattern=ENDPOINT_NAME, description="DNS-style: a-z, 0-9, -")
    project: str
    model: str = Field(description="Registered model name.")
    version: Version | None = None
    alias: str | None = Field(None, description="Deploy the version this alias points at.")
    replicas: int | None = Field(None, ge=0, le=64, description="Fixed replica count.")
    min_replicas: int | None = Field(None, ge=0, le=64)
    max_replicas: int | None = Field(None, ge=1, le=64)
    target_in_flight: Finite | None = Field(None, gt=0, le=10_000)
    idle_timeout_s: Finite | None = Field(None, gt=0)
    max_batch_size: int | None = Field(None, ge=1, le=4096)
    max_delay_ms: Finite | None = Field(None, ge=0, le=10_000)
    canary: int | None = Field(None, ge=1, le=99, description="Percent of traffic for it.")

    @model_validator(mode="after")
    def _one_target(self) -> EndpointDeploy:
        if (self.version is None) == (self.alias is None):
            raise ValueError("give exactly one of version or alias")
        return self


class Traffic(BaseModel):
    weights: dict[Version, Annotated[int, Field(ge=0, le=100)]] = Field(
        description="version -> percent; they must add up to 100"
    )


class Promote(BaseModel):
    version: Version


class Scale(BaseModel):
    min_replicas: int = Field(ge=0, le=64)
    max_replicas: int = Field(ge=1, le=64)
    target_in_flight: Finite | None = Field(None, gt=0)
    idle_timeout_s: Finite | None = Field(None, gt=0)


class ReplicaOut(BaseModel):
    version: int
    port: int
    pid: int | None
    state: str
    in_flight: int
    restarts: int


class EndpointOut(BaseModel):
    name: str
    project: str
    model: str
    traffic: dict[int, int]
    min_replicas: int
    max_replicas: int
    target_in_flight: float
    idle_timeout_s: float
    max_batch_size: int
    max_delay_ms: float
    replicas: list[ReplicaOut] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class StatsSummary(BaseModel):
    """The whole window as one (percentiles of all its requests)."""

    requests: int
    rate: float = Field(description="Requests per second over the window.")
    error_ratio: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class StatsOut(BaseModel):
    """An endpoint's recent requests in steps of ``step_s`` seconds (this server's memory)."""

    step_s: int
    window: StatsSummary
    time: list[float] = Field(description="Each step's start, Unix seconds.")
    rate: list[float] = Field(description="Requests per second.")
    error_ratio: list[float | None] = Field(description="Share of 4xx/5xx answers; null: none.")
    p50_ms: list[float | None]
    p95_ms: list[float | None]
    p99_ms: list[float | None]


class PredictionOut(BaseModel):
    """One recent request and its reply, bodies cut to their first 2 KiB."""

    at: datetime
    version: str = Field(description="The version that answered; 'none' when none could.")
    status: int
    latency_ms: float
    request: str
    reply: str
    request_bytes: int
    reply_bytes: int


class FeatureDriftOut(BaseModel):
    """One input feature's recent values against the package's reference data."""

    model_config = {"from_attributes": True}

    name: str = Field(description="'x[3]' for a column of input x; 'mean(x)'/'std(x)' when wide.")
    psi: float = Field(description="Population stability index (0: the same distribution).")
    ks: float = Field(description="Kolmogorov-Smirnov statistic (largest gap of the ECDFs).")
    reference_mean: float
    current_mean: float
    drifted: bool = Field(description="PSI at or above the threshold.")


class VersionDriftOut(BaseModel):
    """Input drift of one deployed version."""

    version: int
    status: Literal["no_reference", "collecting", "ok", "drift"]
    requests: int = Field(description="Recent answered requests kept for drift.")
    rows: int = Field(description="Input rows in those requests.")
    reference_rows: int = Field(description="Rows of reference data in the package.")
    features: list[FeatureDriftOut] = Field(description="Most drifted first.")


class DriftOut(BaseModel):
    """Input drift of an endpoint's versions (this server's memory of recent requests)."""

    threshold: float
    min_rows: int
    window: int = Field(description="Latest requests kept per version.")
    versions: list[VersionDriftOut]
