"""``shipyard worker`` on another machine (here: another process): it registers, takes jobs,
and when it is killed its jobs are lost and retried elsewhere; workers act as admins."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shipyard.app import create_app
from shipyard.auth import service as users
from shipyard.config import AuthMode, Settings
from tests.jobs.conftest import JobServer, alive, kill_quietly, script

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[JobServer, str], subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(js: JobServer, name: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "SHIPYARD_URL": js.url,
            "SHIPYARD_HOME": str(tmp_path / name),
            "SHIPYARD_TOKEN": str(js.sdk.token),
        }
        args = ["--cpus", "1", "--gpus", "", "--name", name, "--heartbeat", "0.5"]
        with open(tmp_path / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "shipyard", "worker", *args],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        procs.append(proc)
        deadline = time.monotonic() + 30
        while name not in [w["name"] for w in js.client.http.json("GET", "/api/workers")]:
            assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()
            assert time.monotonic() < deadline, "the worker did not register"
            time.sleep(0.1)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


STEADY = """
import os, pathlib, sys, time
pids = pathlib.Path(sys.argv[1])
if pids.exists():
    print("second attempt, on", os.environ["SHIPYARD_JOB_ID"])
    sys.exit(0)
pids.write_text(str(os.getpid()))
print("first attempt", flush=True)
time.sleep(120)
"""


def test_a_killed_worker_loses_its_job_which_is_retried_on_another(
    make_server: Callable[..., JobServer],
    start_worker: Callable[[JobServer, str], subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    js = make_server(executor="none", worker_timeout_s=2.0)
    first = start_worker(js, "w1")
    pids = tmp_path / "pid"
    code = script(tmp_path / "code", STEADY)
    job = js.client.submit_job(
        "p", ["python", "main.py", str(pids)], code, retries=1, retry_backoff_s=0.1
    )
    running = js.wait(job["id"], {"running"}, timeout_s=60)
    assert running["worker"] == "w1"
    deadline = time.monotonic() + 30
    while "first attempt" not in js.client.job_logs(job["id"]):  # live output, over HTTP
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.kill()  # the machine dies: the worker and what it ran
    kill_quietly(int(pids.read_text()))
    requeued = js.wait(job["id"], {"queued"}, timeout_s=30)
    assert "worker w1 stopped heartbeating" in requeued["message"]
    assert requeued["attempts"] == 1
    workers = js.client.http.json("GET", "/api/workers", params={"all": True})
    assert [w["status"] for w in workers if w["name"] == "w1"] == ["lost"]
    second = start_worker(js, "w2")
    done = js.wait(job["id"], timeout_s=60)
    log = js.client.job_logs(job["id"])
    assert done["state"] == "succeeded" and done["attempts"] == 2 and done["worker"] == "w2", log
    assert "first attempt" in log and "attempt 1 lost" in log and "second attempt" in log
    second.send_signal(signal.SIGTERM)  # a clean exit deregisters
    assert second.wait(30) == 0
    assert js.client.http.json("GET", "/api/workers") == []


def test_a_lost_job_without_retries_stays_lost(
    make_server: Callable[..., JobServer],
    start_worker: Callable[[JobServer, str], subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    js = make_server(executor="none", worker_timeout_s=2.0)
    worker = start_worker(js, "w1")
    pids = tmp_path / "pid"
    job = js.client.submit_job(
        "p", ["python", "main.py", str(pids)], script(tmp_path / "c", STEADY)
    )
    js.wait(job["id"], {"running"}, timeout_s=60)
    while not pids.exists():
        time.sleep(0.05)
    worker.kill()
    kill_quietly(int(pids.read_text()))
    done = js.wait(job["id"], timeout_s=30)
    assert done["state"] == "lost" and "stopped heartbeating" in done["message"]
    assert js.client.run(done["run_id"]).status == "failed"


def test_a_worker_stopped_cleanly_leaves_its_job_to_be_retried(
    make_server: Callable[..., JobServer],
    start_worker: Callable[[JobServer, str], subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    js = make_server(executor="none")
    worker = start_worker(js, "w1")
    pids = tmp_path / "pid"
    code = script(tmp_path / "c", STEADY)
    job = js.client.submit_job("p", ["python", "main.py", str(pids)], code, retries=1)
    js.wait(job["id"], {"running"}, timeout_s=60)
    while not pids.exists():
        time.sleep(0.05)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    assert not alive(int(pids.read_text()))
    requeued = js.wait(job["id"], {"queued"}, timeout_s=10)
    assert "worker w1 left" in requeued["message"]


def test_a_cancel_reaches_a_remote_worker(
    make_server: Callable[..., JobServer],
    start_worker: Callable[[JobServer, str], subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    js = make_server(executor="none")
    start_worker(js, "w1")
    pids = tmp_path / "pid"
    job = js.client.submit_job(
        "p", ["python", "main.py", str(pids)], script(tmp_path / "c", STEADY)
    )
    js.wait(job["id"], {"running"}, timeout_s=60)
    while not pids.exists():
        time.sleep(0.05)
    js.client.cancel_job(job["id"])
    done = js.wait(job["id"], timeout_s=30)
    assert done["state"] == "cancelled"
    assert not alive(int(pids.read_text()))


def test_workers_act_as_admins_and_cancel_is_for_submitters_and_maintainers(
    tmp_path: Path, database_url: str
) -> None:
    settings = Settings(
        home=tmp_path / "home", database_url=database_url, auth=AuthMode.required, executor="none"
    )
    with TestClient(create_app(settings)) as c:
        tokens = {}
        with c.app.state.runtime.db.session() as s:  # type: ignore[attr-defined]
            for name in ["root", "alice", "dev", "dev2", "mona"]:
                user = users.create_user(s, name, is_admin=name == "root")
                tokens[name] = {"authorization": f"Bearer {users.create_token(s, user)[1]}"}
        c.post("/api/projects", json={"name": "p"}, headers=tokens["alice"])
        for name, role in [("dev", "developer"), ("dev2", "developer"), ("mona", "maintainer")]:
            c.put(f"/api/projects/p/members/{name}", json={"role": role}, headers=tokens["alice"])

        def submit(who: str) -> str:
            r = c.post("/api/projects/p/jobs", json={"command": ["true"]}, headers=tokens[who])
            assert r.status_code == 201, r.text
            return str(r.json()["id"])

        job = submit("dev")
        r = c.post(f"/api/jobs/{job}/cancel", headers=tokens["dev2"])
        assert r.status_code == 403 and "needs maintainer" in r.json()["detail"]
        assert c.post(f"/api/jobs/{job}/cancel", headers=tokens["dev"]).status_code == 200
        job = submit("dev")
        assert c.post(f"/api/jobs/{job}/cancel", headers=tokens["mona"]).status_code == 200
        body = {"name": "w", "cpus": 1}
        r = c.post("/api/workers", json=body, headers=tokens["alice"])
        assert r.status_code == 403 and "not a server admin" in r.json()["detail"]
        assert c.post("/api/workers", json=body, headers=tokens["root"]).status_code == 201
        r = c.put("/api/projects/p/quota", json={"max_gpus": 1}, headers=tokens["alice"])
        assert r.status_code == 403
        assert c.get("/api/projects/p/quota", headers=tokens["dev"]).json()["max_gpus"] is None
