"""Server settings, read once from ``SHIPYARD_*`` environment variables and passed in explicitly."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class AuthMode(StrEnum):
    """Whether requests need a token, and where the first one comes from."""

    # Tokens on every request; the server keeps one for the admin ``local`` in
    # SHIPYARD_HOME/token, which the SDK, the CLI and the printed UI link use. Loopback only.
    local = "local"
    # Tokens on every request, none written for you (`shipyard users create --local`). Any bind.
    required = "required"
    # No tokens at all: anyone who reaches the port is the admin ``local``. Loopback only.
    none = "none"


def _names(value: Any) -> Any:
    """A comma-separated list (as an environment variable writes it) as a list."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


class Settings(BaseSettings):
    """Everything the server needs to know; built once, passed to ``create_app``."""

    model_config = SettingsConfigDict(env_prefix="SHIPYARD_", env_nested_delimiter="__")

    home: Path = Field(
        Path.home() / ".shipyard",
        description="Folder for the embedded database, artifacts and the SDK spool.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the metadata store; default: SQLite file under the home.",
    )
    artifacts: str | None = Field(
        None,
        description="Artifact store root: a folder or s3://bucket/prefix; default: home/artifacts.",
    )
    host: str = Field("127.0.0.1", description="Address the server binds to.")
    port: int = Field(8000, description="Port the server listens on.")
    auth: AuthMode = Field(
        AuthMode.local,
        description="local: a token on every request, the first kept in SHIPYARD_HOME/token "
        "(loopback only); required: tokens you create (any bind); none: no tokens (loopback only).",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the server answers to besides its own address, localhost, "
        "127.0.0.1 and [::1] (comma-separated; name, name:port, *.domain, or * for any).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Web origins (https://app.example.com, comma-separated) whose pages may call "
        "the API: they get CORS answers and may change things; every other origin is refused.",
    )
    heartbeat_timeout_s: float = Field(
        120.0,
        description="A running run with no heartbeat for this long is marked crashed.",
    )
    max_body_bytes: int = Field(
        64 * 1024 * 1024,
        description="Largest JSON request body accepted (artifact uploads are streamed).",
    )
    max_artifact_bytes: int = Field(
        50 * 1024**3,
        description="Largest single artifact file accepted.",
    )
    serving_cold_start_timeout_s: float = Field(
        60.0,
        description="How long a request waits for a replica to start before a 503.",
    )
    serving_request_timeout_s: float = Field(
        60.0,
        description="Longest an inference request may take at a replica.",
    )
    serving_sample_size: int = Field(
        20,
        ge=0,
        le=1000,
        description="Recent predictions each endpoint keeps in memory for the UI (request and "
        "reply, their first 2 KiB); 0 keeps none.",
    )
    serving_drift_window: int = Field(
        1000,
        ge=0,
        le=100_000,
        description="Latest answered requests per endpoint version kept for input drift "
        "(bodies up to 256 KiB); 0 keeps none.",
    )
    serving_drift_threshold: float = Field(
        0.2,
        gt=0,
        description="PSI at or above which a feature counts as drifted.",
    )
    serving_drift_min_rows: int = Field(
        100,
        ge=1,
        description="Rows of recent input a version needs before its drift is reported.",
    )
    alert_interval_s: float = Field(
        15.0,
        gt=0,
        description="How often alert rules are evaluated (and the granularity of their 'for').",
    )
    allow_private_webhooks: bool = Field(
        False,
        description="Let alert channels send to private and loopback addresses (10/8, "
        "192.168/16, 127/8, fc00::/7...); link-local, metadata and this server stay refused.",
    )
    s3_endpoint_url: str | None = Field(
        None,
        description="Endpoint of an S3-compatible store (MinIO, Ceph, moto) for s3:// artifacts.",
    )

    # -- training jobs (shipyard.jobs) ------------------------------------------------------
    executor: str = Field(
        "local",
        description="Where jobs run: local (worker processes of the server), none (only "
        "`shipyard worker` machines), or ray://HOST:PORT (a Ray cluster).",
    )
    public_url: str | None = Field(
        None,
        description="URL jobs and Ray tasks use to reach this server; default http://HOST:PORT.",
    )
    worker_cpus: float | None = Field(
        None, description="CPU slots of the local worker; default: the machine's cores."
    )
    worker_gpus: str | None = Field(
        None,
        description="GPU indices of the local worker (0,1); default: what nvidia-smi lists.",
    )
    worker_memory_gb: float = Field(
        0.0, description="Memory the local worker offers jobs, in GB (0: not scheduled by it)."
    )
    worker_resource_class: str = Field(
        "default", description="Price class of the local worker (a key of SHIPYARD_PRICES)."
    )
    worker_timeout_s: float = Field(
        30.0, description="A worker silent this long is lost; its jobs are retried or lost."
    )
    jobs_dir: Path | None = Field(
        None, description="Folder the local worker runs jobs in; default: home/jobs."
    )
    dispatch_interval_s: float = Field(
        1.0, description="How often the dispatcher scans the queue (it also runs on submit)."
    )
    cancel_grace_s: float = Field(
        10.0, description="Seconds from SIGTERM to SIGKILL when a job is cancelled or times out."
    )
    max_snapshot_bytes: int = Field(
        100 * 1024 * 1024, description="Largest code snapshot a job may upload."
    )
    prices: dict[str, dict[str, float]] = Field(
        {"default": {"cpu": 0.04, "gpu": 2.5, "memory_gb": 0.005}},
        description="Price per resource-hour by worker class, as JSON: "
        '{"CLASS": {"cpu": .., "gpu": .., "memory_gb": ..}}.',
    )
    currency: str = Field("USD", description="Currency of SHIPYARD_PRICES, shown in reports.")
    sweep_interval_s: float = Field(
        2.0, description="How often sweeps start trials and check early stopping."
    )

    @property
    def database(self) -> str:
        """The metadata store URL, defaulting to SQLite under the home."""
        return self.database_url or f"sqlite:///{self.home / 'shipyard.db'}"

    @property
    def artifact_root(self) -> str:
        """The artifact store root, defaulting to a folder under the home."""
        return self.artifacts or str(self.home / "artifacts")

    @property
    def jobs_path(self) -> Path:
        """Where the local worker runs jobs."""
        return self.jobs_dir or self.home / "jobs"

    @property
    def server_url(self) -> str:
        """The URL jobs reach this server at."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @field_validator("auth", mode="before")
    @classmethod
    def _auth_alias(cls, value: Any) -> Any:
        return AuthMode.local if value == "auto" else value  # "auto", the old name of local

    _split_hosts = field_validator("allowed_hosts", "cors_origins", mode="before")(_names)

    @property
    def auth_required(self) -> bool:
        """True when every request must carry a token (local and required modes)."""
        return self.auth is not AuthMode.none

    @property
    def token_file(self) -> Path:
        """Where local mode keeps the local admin's token (mode 0600)."""
        return self.home / "token"

    def check_exposure(self) -> None:
        """Refuse a non-loopback bind unless tokens are created on purpose: the local token
        and an open server are for one machine."""
        if not is_loopback(self.host) and self.auth is not AuthMode.required:
            raise ValueError(
                f"refusing to listen on {self.host} without auth: pass --auth "
                "(or SHIPYARD_AUTH=required) and create tokens with `shipyard tokens create`"
            )


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
