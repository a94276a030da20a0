"""Wire models of endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, model_validator

ENDPOINT_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"


class EndpointDeploy(BaseModel):
    """Create an endpoint, or roll an existing one to another version (``canary`` to split)."""

    name: str = Field(pattern=ENDPOINT_NAME, description="DNS-style: a-z, 0-9, -")
    project: str
    model: str = Field(description="Registered model name.")
    version: int | None = Field(None, ge=1)
    alias: str | None = Field(None, description="Deploy the version this alias points at.")
    replicas: int | None = Field(None, ge=0, le=64, description="Fixed replica count.")
    min_replicas: int | None = Field(None, ge=0, le=64)
    max_replicas: int | None = Field(None, ge=1, le=64)
    target_in_flight: float | None = Field(None, gt=0, le=10_000)
    idle_timeout_s: float | None = Field(None, gt=0)
    max_batch_size: int | None = Field(None, ge=1, le=4096)
    max_delay_ms: float | None = Field(None, ge=0, le=10_000)
    canary: int | None = Field(None, ge=1, le=99, description="Percent of traffic for it.")

    @model_validator(mode="after")
    def _one_target(self) -> EndpointDeploy:
        if (self.version is None) == (self.alias is None):
            raise ValueError("give exactly one of version or alias")
        return self


class Traffic(BaseModel):
    weights: dict[int, int] = Field(description="version -> percent; they must add up to 100")


class Promote(BaseModel):
    version: int = Field(ge=1)


class Scale(BaseModel):
    min_replicas: int = Field(ge=0, le=64)
    max_replicas: int = Field(ge=1, le=64)
    target_in_flight: float | None = Field(None, gt=0)
    idle_timeout_s: float | None = Field(None, gt=0)


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
