"""The shape of the server's periodic background services (the crash reaper, the alert
evaluator): every ``interval_s`` a pass runs in a worker thread (it talks to the store), until
``stop()``, which waits for the pass in progress (a pass cut short would strand a store
connection in its thread). A failed pass is logged and the next one comes as usual."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("shipyard")


class Periodic:
    """Subclasses set ``interval_s`` and ``what`` (for the log) and implement ``run_once``."""

    interval_s: float = 1.0
    what: str = "background pass"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def run_once(self) -> Any:
        raise NotImplementedError

    def after(self, result: Any) -> None:
        """Called on the event loop with what a pass returned (nothing by default)."""

    async def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval_s)
                return
            except TimeoutError:
                pass
            try:
                self.after(await asyncio.to_thread(self.run_once))
            except Exception:  # keep the loop alive through a transient store error
                log.exception("%s failed; retrying in %.1fs", self.what, self.interval_s)

    def start(self) -> None:
        """Start the loop on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop the loop, after the pass in progress."""
        self._stop.set()
        if self._task is not None:
            await self._task
