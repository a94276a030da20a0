"""Where the SDK and CLI find the server and keep local state."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TOKEN_FILE = "token"  # SHIPYARD_HOME/token: local mode's token, written by the server (0600)


class ClientSettings(BaseSettings):
    """Where the server is and who we are: ``SHIPYARD_URL``, ``SHIPYARD_TOKEN`` and friends."""

    model_config = SettingsConfigDict(env_prefix="SHIPYARD_", extra="ignore")

    url: str = Field("http://127.0.0.1:8000", description="The server the SDK and CLI talk to.")
    token: str | None = Field(
        None,
        description="API token sent as 'Authorization: Bearer'; unset, a server on this machine "
        "is reached with the local token in SHIPYARD_HOME/token.",
    )
    home: Path = Field(Path.home() / ".shipyard", description="Local state, including the spool.")
    project: str | None = Field(None, description="Default project for the SDK and CLI.")
    run_id: str | None = Field(None, description="Run to resume (set for jobs by the server).")
    max_snapshot_bytes: int = Field(
        100 * 1024 * 1024, description="Largest job code snapshot; refused before upload."
    )

    @model_validator(mode="after")
    def _local_token(self) -> ClientSettings:
        """No token given and the server is on this machine: the one it keeps in the home."""
        if self.token is None and is_local_url(self.url):
            self.token = read_token(self.home / TOKEN_FILE)
        return self

    @property
    def spool(self) -> Path:
        """The folder where unsent batches and files wait for ``shipyard sync``."""
        return self.home / "spool"


def is_local_url(url: str) -> bool:
    """True when ``url`` names this machine (127.0.0.0/8, ::1 or localhost): the only servers
    the local token is ever sent to."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(path: Path) -> str | None:
    """The token kept in ``path``, if the file is there and readable."""
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
