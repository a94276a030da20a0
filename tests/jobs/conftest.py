"""A real server on a known port (jobs reach it at SHIPYARD_PUBLIC_URL), its local worker,
and helpers to write tiny job scripts and wait for jobs to end."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from shipyard.app import create_app
from shipyard.client._client import Client
from shipyard.client._config import ClientSettings
from shipyard.config import Settings
from tests._postgres import free_port
from tests.conftest import app_token

FINAL = {"succeeded", "failed", "cancelled", "timed_out", "lost"}


@dataclass
class JobServer:
    app: FastAPI
    settings: Settings
    url: str
    sdk: ClientSettings
    client: Client
    stop: Callable[[], None]

    def wait(self, job_id: str, states: set[str] = FINAL, timeout_s: float = 60) -> dict[str, Any]:
        """Poll the job until it reaches one of ``states``."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.client.job(job_id)
            if job["state"] in states:
                return job
            assert time.monotonic() < deadline, f"job stuck in {job['state']}: {job['message']}"
            time.sleep(0.05)


def serve(app: FastAPI, port: int) -> Callable[[], None]:
    """Run ``app`` on 127.0.0.1:``port`` in a thread; returns a stop function."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "test server did not start"
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(30)  # stopping twice is harmless

    return stop


def job_settings(tmp_path: Path, database_url: str, port: int, **overrides: Any) -> Settings:
    """Settings for a jobs server: short timeouts so fault cases take seconds."""
    values: dict[str, Any] = {
        "home": tmp_path / "home",
        "database_url": database_url,
        "port": port,
        "worker_cpus": 2.0,
        "worker_gpus": "",
        "cancel_grace_s": 1.0,
        "dispatch_interval_s": 0.2,
        "sweep_interval_s": 0.2,
        "worker_timeout_s": 3.0,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def make_server(tmp_path: Path, database_url: str) -> Iterator[Callable[..., JobServer]]:
    """Start a jobs server with settings overrides (at most one per test)."""
    stops: list[Callable[[], None]] = []
    clients: list[Client] = []

    def make(**overrides: Any) -> JobServer:
        port = free_port()
        settings = job_settings(tmp_path, database_url, port, **overrides)
        app = create_app(settings)
        stop = serve(app, port)
        stops.append(stop)
        url = f"http://127.0.0.1:{port}"
        sdk = ClientSettings(url=url, home=tmp_path / "client", token=app_token(app))
        client = Client(settings=sdk)
        clients.append(client)
        return JobServer(app, settings, url, sdk, client, stop)

    yield make
    for c in clients:
        c.close()
    for stop in stops:
        stop()


@pytest.fixture
def js(make_server: Callable[..., JobServer]) -> JobServer:
    """A jobs server with its local worker (2 CPU slots, no GPUs)."""
    return make_server()


def script(folder: Path, body: str, name: str = "main.py") -> Path:
    """Write a job's code folder with one Python file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(body)
    return folder


def alive(pid: int) -> bool:
    """Whether a process exists (and is not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def kill_quietly(pid: int) -> None:
    """Kill a process left behind by a test (by its id)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
