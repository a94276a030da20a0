"""The crash detector: a background service that marks silent running runs as crashed."""

from __future__ import annotations

import asyncio
import logging

from shipyard.db import Database
from shipyard.tracking import service

log = logging.getLogger(__name__)


class CrashReaper:
    """Every ``interval_s``, marks runs whose heartbeat is older than ``timeout_s`` as crashed."""

    def __init__(self, db: Database, timeout_s: float) -> None:
        self.db = db
        self.timeout_s = timeout_s
        self.interval_s = max(0.2, min(30.0, timeout_s / 4))
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def reap(self) -> int:
        """One pass; how many runs it marked."""
        with self.db.session() as s:
            return service.mark_crashed(s, self.timeout_s)

    async def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval_s)
                return
            except TimeoutError:
                pass
            try:
                n = await asyncio.to_thread(self.reap)
                if n:
                    log.info("marked %d silent run(s) as crashed", n)
            except Exception:  # keep the loop alive through a transient store error
                log.exception("crash reaper pass failed; retrying in %.0fs", self.interval_s)

    def start(self) -> None:
        """Start the loop on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop the loop, after the pass in progress (a pass cut short would strand a store
        connection in its worker thread)."""
        self._stop.set()
        if self._task is not None:
            await self._task
