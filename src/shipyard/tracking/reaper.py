"""The crash detector: a background service that marks silent running runs as crashed."""

from __future__ import annotations

import logging

from shipyard.background import Periodic
from shipyard.db import Database
from shipyard.tracking import service

log = logging.getLogger(__name__)


class CrashReaper(Periodic):
    """Every ``interval_s``, marks runs whose heartbeat is older than ``timeout_s`` as crashed."""

    what = "crash reaper pass"

    def __init__(self, db: Database, timeout_s: float) -> None:
        super().__init__()
        self.db = db
        self.timeout_s = timeout_s
        self.interval_s = max(0.2, min(30.0, timeout_s / 4))

    def run_once(self) -> int:
        """One pass; how many runs it marked."""
        with self.db.session() as s:
            return service.mark_crashed(s, self.timeout_s)

    def after(self, result: int) -> None:
        if result:
            log.info("marked %d silent run(s) as crashed", result)
