"""A run whose process stops sending heartbeats is marked crashed."""

from __future__ import annotations

import time
from datetime import timedelta

from fastapi import FastAPI

from shipyard.app import create_app
from shipyard.config import Settings
from shipyard.db import utcnow
from shipyard.tracking.reaper import CrashReaper
from shipyard.tracking.tables import Run
from tests.conftest import local_client


def test_silent_run_is_marked_crashed_and_live_one_is_not(settings: Settings) -> None:
    """The server's own reaper, on a 0.4 s timeout. The live run's heartbeat is a day ahead,
    so no delay of a busy machine between two heartbeats can make it look silent: the test is
    of which runs the reaper picks, not of how fast a loop heartbeats."""
    app: FastAPI = create_app(settings.model_copy(update={"heartbeat_timeout_s": 0.4}))
    with local_client(app) as client:
        silent = client.post("/api/runs", json={"project": "p"}).json()["id"]
        live = client.post("/api/runs", json={"project": "p"}).json()["id"]
        done = client.post("/api/runs", json={"project": "p"}).json()["id"]
        client.patch(f"/api/runs/{done}", json={"status": "finished"})
        assert client.post(f"/api/runs/{live}/heartbeat").status_code == 204
        with app.state.runtime.db.session() as s:
            s.get(Run, live).heartbeat_at = utcnow() + timedelta(days=1)  # type: ignore[union-attr]
        deadline = time.monotonic() + 30
        while client.get(f"/api/runs/{silent}").json()["status"] != "crashed":
            assert time.monotonic() < deadline, "the reaper never marked the silent run"
            time.sleep(0.05)
        assert client.get(f"/api/runs/{silent}").json()["finished_at"] is not None
        assert client.get(f"/api/runs/{live}").json()["status"] == "running"
        assert client.get(f"/api/runs/{done}").json()["status"] == "finished"


def test_reap_pass_counts_marked_runs(settings: Settings) -> None:
    app = create_app(settings)
    reaper = CrashReaper(app.state.runtime.db, timeout_s=0.0)
    with local_client(app) as client:
        client.post("/api/runs", json={"project": "p"})
        time.sleep(0.01)
        assert reaper.run_once() == 1
        assert reaper.run_once() == 0
