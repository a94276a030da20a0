"""The jobs feature's background services, built from settings and started by the app:
the dispatcher, the executor (a local worker or the Ray executor) and the sweep controller."""

from __future__ import annotations

from shipyard.config import Settings
from shipyard.db import Database
from shipyard.jobs.dispatcher import Dispatcher
from shipyard.jobs.ray_executor import RayExecutor
from shipyard.jobs.sweeper import SweepController
from shipyard.jobs.worker import LocalWorker
from shipyard.storage import Storage


class JobServices:
    """Start and stop the jobs feature's services together (executor per SHIPYARD_EXECUTOR)."""

    def __init__(self, db: Database, storage: Storage, settings: Settings) -> None:
        self.dispatcher = Dispatcher(db, storage, settings)
        self.executor: LocalWorker | RayExecutor | None = None
        if settings.executor == "local":
            self.executor = LocalWorker(db, storage, settings, self.dispatcher.poke)
        elif settings.executor.startswith("ray://"):
            self.executor = RayExecutor(db, storage, settings, self.dispatcher.poke)
        elif settings.executor != "none":
            raise ValueError(
                f"SHIPYARD_EXECUTOR={settings.executor!r}: use local, none or ray://HOST:PORT"
            )
        if self.executor is not None:
            self.dispatcher.listeners.append(self.executor.wake)
        self.sweeper = SweepController(db, storage, settings, self.dispatcher.poke)

    def start(self) -> None:
        """Start dispatching, executing and sweeping."""
        self.dispatcher.start()
        if self.executor is not None:
            self.executor.start()
        self.sweeper.start()

    async def stop(self) -> None:
        """Stop in reverse order; jobs the executor was running are lost (and retried later
        when they may be)."""
        await self.sweeper.stop()
        if self.executor is not None:
            await self.executor.stop()
        await self.dispatcher.stop()
