"""What a running server holds: settings, the metadata store and the blob store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from shipyard.config import Settings
from shipyard.db import Database
from shipyard.storage import Storage

if TYPE_CHECKING:
    from shipyard.auth import Actor


@dataclass
class Runtime:
    """Built once by ``create_app`` and reached by routes through :func:`runtime`."""

    settings: Settings
    db: Database
    storage: Storage
    # token hash -> (the caller it stands for, expiry monotonic time): spares the store a
    # lookup on every logging call; revocation clears it.
    token_cache: dict[str, tuple[Actor, float]] = field(default_factory=dict)


def runtime_of(request: Request) -> Runtime:
    """The server's runtime of a request."""
    rt: Runtime = request.app.state.runtime
    return rt


async def runtime(request: Request) -> Runtime:
    """The server's runtime, for route dependencies (async: no hop to a worker thread)."""
    return runtime_of(request)
