"""Wire models of alert channels, rules and events."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator

NAME = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
Metric = Literal["rate", "error_ratio", "p50_ms", "p95_ms", "p99_ms", "drifted_features", "max_psi"]
Op = Literal[">", ">=", "<", "<="]
METRICS: dict[str, str] = {
    "rate": "requests per second over the window",
    "error_ratio": "share of 4xx/5xx answers over the window (0..1)",
    "p50_ms": "median latency over the window, ms",
    "p95_ms": "95th percentile latency over the window, ms",
    "p99_ms": "99th percentile latency over the window, ms",
    "drifted_features": "input features drifted (PSI over the threshold), the most of any version",
    "max_psi": "the largest PSI of any input feature of any version",
}


def _http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return url


def masked(url: str) -> str:
    """A channel URL without its secret part (Slack webhook paths are credentials)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/…"


class ChannelCreate(BaseModel):
    """A place notifications go: a Slack incoming webhook, or any URL taking a JSON POST."""

    name: str = Field(pattern=NAME)
    kind: Literal["slack", "webhook"] = "webhook"
    url: str = Field(max_length=2048, description="Where the POST goes (kept secret: not shown).")

    _url = field_validator("url")(_http_url)


class ChannelOut(BaseModel):
    name: str
    kind: str
    url: str = Field(description="Scheme and host only: the rest may be a credential.")
    created_at: datetime


class RuleCreate(BaseModel):
    """``metric op threshold`` on an endpoint, over the last ``window_s`` seconds."""

    name: str = Field(pattern=NAME)
    endpoint: str
    metric: Metric
    op: Op = ">"
    threshold: float = Field(allow_inf_nan=False)
    window_s: int = Field(300, ge=10, le=900, description="Seconds of traffic the metric covers.")
    for_s: float = Field(0.0, ge=0, le=86_400, description="How long it must hold to fire.")
    channels: list[str] = Field(default_factory=list, max_length=16)
    description: str = Field("", max_length=4096)
    enabled: bool = True


class RulePatch(BaseModel):
    """Change a rule; fields left out stay as they are."""

    op: Op | None = None
    threshold: float | None = Field(None, allow_inf_nan=False)
    window_s: int | None = Field(None, ge=10, le=900)
    for_s: float | None = Field(None, ge=0, le=86_400)
    channels: list[str] | None = Field(None, max_length=16)
    description: str | None = Field(None, max_length=4096)
    enabled: bool | None = None


class RuleOut(BaseModel):
    name: str
    project: str
    endpoint: str
    metric: str
    op: str
    threshold: float
    condition: str = Field(description="The rule as one line, e.g. 'error_ratio > 0.05'.")
    window_s: int
    for_s: float
    channels: list[str]
    description: str
    enabled: bool
    state: Literal["ok", "pending", "firing"]
    state_since: datetime
    value: float | None = Field(description="The metric at the last evaluation; null: no data.")
    evaluated_at: datetime | None
    created_at: datetime


class DeliveryOut(BaseModel):
    channel: str
    ok: bool
    status: int | None = Field(description="The HTTP status the channel answered.")
    error: str = ""
    attempts: int


class EventOut(BaseModel):
    id: int
    rule: str
    endpoint: str
    state: Literal["firing", "resolved"]
    value: float | None
    message: str
    deliveries: list[DeliveryOut]
    at: datetime
