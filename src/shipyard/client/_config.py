"""Where the SDK and CLI find the server and keep local state."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ClientSettings(BaseSettings):
    """Where the server is and who we are: ``SHIPYARD_URL``, ``SHIPYARD_TOKEN`` and friends."""

    model_config = SettingsConfigDict(env_prefix="SHIPYARD_", extra="ignore")

    url: str = Field("http://127.0.0.1:8000", description="The server the SDK and CLI talk to.")
    token: str | None = Field(None, description="API token sent as 'Authorization: Bearer'.")
    home: Path = Field(Path.home() / ".shipyard", description="Local state, including the spool.")
    project: str | None = Field(None, description="Default project for the SDK and CLI.")
    run_id: str | None = Field(None, description="Run to resume (set for jobs by the server).")
    max_snapshot_bytes: int = Field(
        100 * 1024 * 1024, description="Largest job code snapshot; refused before upload."
    )

    @property
    def spool(self) -> Path:
        """The folder where unsent batches and files wait for ``shipyard sync``."""
        return self.home / "spool"
