"""Jobs end to end on the local worker: code snapshots, datasets, runs, logs, cost, and the
ways a job ends (success, a missing command, a timeout, a cancel, retries)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from shipyard.client import _jobs
from shipyard.errors import NotFound, PayloadTooLarge, Unprocessable
from shipyard.jobs.tables import Job
from tests.conftest import bearer
from tests.jobs.conftest import JobServer, alive, kill_quietly, script

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_job_runs_its_snapshot_with_its_dataset_into_its_run(js: JobServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "numbers.txt").write_text("1 2 3\n")
    js.client.push_dataset("p", "nums", data)
    code = script(
        tmp_path / "code",
        "import os\n"
        "import shipyard\n"
        "total = sum(map(int, open('datasets/nums/numbers.txt').read().split()))\n"
        "print('total', total, 'run', os.environ['SHIPYARD_RUN_ID'])\n"
        "with shipyard.init(project='p', system_metrics=False) as run:\n"
        "    run.log({'total': total})\n",
    )
    (code / ".gitignore").write_text("big/\n")
    (code / "big").mkdir()
    (code / "big" / "weights.bin").write_bytes(b"x" * 1000)
    job = js.client.submit_job(
        "p", ["python", "main.py"], code, datasets=["nums@latest"], env={"GREETING": "hi"}
    )
    assert job["state"] == "queued" and job["snapshot_files"] == 2  # main.py, .gitignore
    assert job["datasets"][0]["version"] == 1
    done = js.wait(job["id"])
    assert done["state"] == "succeeded", js.client.job_logs(job["id"])
    assert done["exit_code"] == 0 and done["worker"].startswith("local@")
    assert done["cost"] > 0 and done["cpu_hours"] > 0
    log = js.client.job_logs(job["id"])
    assert f"total 6 run {done['run_id']}" in log and "dataset nums@1" in log
    run = js.client.run(done["run_id"])
    assert run.status == "finished" and run.summary["total"]["last"] == 6
    assert run.environment["job"] == job["id"]
    assert [d["name"] for d in run.environment["datasets"]] == ["nums"]
    assert f"logs/{job['id']}.log" in [a["path"] for a in run.artifacts()]
    usage = js.client.http.json("GET", "/api/usage", params={"project": "p", "by": "run"})
    assert usage["rows"][0]["key"] == done["run_id"] and usage["total"]["jobs"] == 1


@SQLITE_ONLY
def test_a_command_that_does_not_exist_fails_with_that_in_its_log(js: JobServer) -> None:
    job = js.client.submit_job("p", ["no-such-command-xyz", "--flag"], None)
    done = js.wait(job["id"])
    assert done["state"] == "failed" and done["exit_code"] == 127
    assert "cannot run 'no-such-command-xyz'" in js.client.job_logs(job["id"])


@SQLITE_ONLY
def test_a_failing_command_fails_with_its_exit_code(js: JobServer) -> None:
    job = js.client.submit_job("p", ["python", "-c", "print('oops'); raise SystemExit(3)"], None)
    done = js.wait(job["id"])
    assert (done["state"], done["exit_code"], done["message"]) == ("failed", 3, "exit code 3")
    assert js.client.run(done["run_id"]).status == "failed"


GROUP = (
    "import os, subprocess, sys, time, signal\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN if 'stubborn' in sys.argv else signal.SIG_DFL)\n"
    "child = subprocess.Popen(['sleep', '60'])\n"
    "open(sys.argv[1], 'w').write(f'{os.getpid()} {child.pid}')\n"
    "print('started', flush=True)\n"
    "time.sleep(60)\n"
)


def _pids(path: Path) -> list[int]:
    deadline = time.monotonic() + 30
    while not path.exists() or len(path.read_text().split()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return [int(p) for p in path.read_text().split()]


@SQLITE_ONLY
def test_timeout_kills_the_whole_process_group(js: JobServer, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    code = script(tmp_path / "code", GROUP)
    job = js.client.submit_job("p", ["python", "main.py", str(pids)], code, timeout_s=1.5)
    procs = _pids(pids)
    try:
        done = js.wait(job["id"])
        assert done["state"] == "timed_out" and "timeout of 1.5s" in done["message"]
        assert not any(alive(p) for p in procs), "the job or its child survived"
        assert "timed out: SIGTERM to the process group" in js.client.job_logs(job["id"])
    finally:
        for p in procs:
            kill_quietly(p)


@SQLITE_ONLY
def test_a_job_over_its_memory_request_is_killed_and_one_within_it_runs(
    js: JobServer, tmp_path: Path
) -> None:
    # The line is printed before the allocation: the kill can land while the bytes are being
    # filled, and what the job printed before it must still reach the log.
    hog = "import time; print('allocating', flush=True); held = b'x' * 600_000_000; time.sleep(60)"
    job = js.client.submit_job("p", ["python", "-c", hog], None, memory_gb=0.3)
    done = js.wait(job["id"])
    assert done["state"] == "failed", done
    assert "over its request of 0.3 GB" in done["message"] and done["memory_gb"] == 0.3
    log = js.client.job_logs(job["id"])
    assert "allocating" in log and "SIGKILL to the process group" in log
    small = js.client.submit_job("p", ["python", "-c", "print('fine')"], None, memory_gb=2)
    assert js.wait(small["id"])["state"] == "succeeded"


@SQLITE_ONLY
def test_cancel_sends_sigterm_then_sigkill_after_the_grace(js: JobServer, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    code = script(tmp_path / "code", GROUP)
    job = js.client.submit_job("p", ["python", "main.py", str(pids), "stubborn"], code)
    procs = _pids(pids)
    try:
        js.wait(job["id"], {"running"})
        assert js.client.cancel_job(job["id"])["cancel_requested"] is True
        done = js.wait(job["id"])
        assert done["state"] == "cancelled"
        assert not any(alive(p) for p in procs)
        log = js.client.job_logs(job["id"])
        assert "cancelled: SIGTERM" in log and "still running after 1s: SIGKILL" in log
        with pytest.raises(Exception, match="already ended"):
            js.client.cancel_job(job["id"])
    finally:
        for p in procs:
            kill_quietly(p)


@SQLITE_ONLY
def test_a_queued_job_is_cancelled_at_once(make_server: Callable[..., JobServer]) -> None:
    js = make_server(executor="none")
    job = js.client.submit_job("p", ["true"], None)
    time.sleep(0.3)
    assert js.client.job(job["id"])["state"] == "queued"  # no worker
    done = js.client.cancel_job(job["id"])
    assert done["state"] == "cancelled" and done["message"] == "cancelled by local before it ran"


@SQLITE_ONLY
def test_a_failed_attempt_is_retried_after_a_backoff(js: JobServer, tmp_path: Path) -> None:
    marker = tmp_path / "tried"
    code = (
        "import pathlib, sys\n"
        f"m = pathlib.Path({str(marker)!r})\n"
        "if not m.exists():\n"
        "    m.write_text('1'); print('first try fails'); sys.exit(1)\n"
        "print('second try works')\n"
    )
    job = js.client.submit_job("p", ["python", "-c", code], None, retries=2, retry_backoff_s=0.2)
    done = js.wait(job["id"])
    assert done["state"] == "succeeded" and done["attempts"] == 2
    log = js.client.job_logs(job["id"])
    assert "attempt 1 failed: exit code 1; retry 1 of 2 in 0.2s" in log
    assert log.index("first try fails") < log.index("second try works")
    attempts = [a for a in js.client.http.json("GET", "/api/usage", params={"by": "job"})["rows"]]
    assert attempts[0]["jobs"] == 1


@SQLITE_ONLY
def test_logs_stream_live_as_server_sent_events(js: JobServer) -> None:
    code = "import time\nfor i in range(5):\n    print('line', i, flush=True); time.sleep(0.2)\n"
    job = js.client.submit_job("p", ["python", "-c", code], None)
    seen: list[str] = []
    stamps: list[float] = []

    def on_text(text: str) -> None:
        seen.append(text)
        stamps.append(time.monotonic())

    state = _jobs.follow_job(js.client.http, job["id"], on_text)
    text = "".join(seen)
    assert state == "succeeded"
    assert all(f"line {i}\n" in text for i in range(5))
    assert stamps[-1] - stamps[0] > 0.4, "the lines arrived in one piece, not live"
    url = f"{js.url}/api/jobs/{job['id']}/logs?follow=true"
    with httpx.stream("GET", url, headers=bearer(str(js.sdk.token))) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        body = r.read().decode()
    assert "data: line 4" in body and body.rstrip().endswith("event: end\ndata: succeeded")


@SQLITE_ONLY
def test_gpus_are_handed_out_as_cuda_visible_devices(
    make_server: Callable[..., JobServer],
) -> None:
    js = make_server(worker_gpus="0,1", worker_cpus=4.0)
    show = "import os, time; time.sleep(1); print('CVD=' + os.environ['CUDA_VISIBLE_DEVICES'])"
    jobs = [js.client.submit_job("p", ["python", "-c", show], None, gpus=1) for _ in range(2)]
    cpu_only = js.client.submit_job("p", ["python", "-c", show], None)
    seen = set()
    for job in jobs:
        done = js.wait(job["id"])
        assert done["state"] == "succeeded"
        seen.add(re.search(r"CVD=(\S*)", js.client.job_logs(job["id"])).group(1))  # type: ignore[union-attr]
    assert seen == {"0", "1"}  # both ran at once, each on its own GPU
    js.wait(cpu_only["id"])
    assert "CVD=\n" in js.client.job_logs(cpu_only["id"])
    with pytest.raises(Unprocessable, match="no worker can ever run this job"):
        js.client.submit_job("p", ["true"], None, gpus=3)


@SQLITE_ONLY
def test_bad_submissions_are_refused_with_the_reason(js: JobServer, tmp_path: Path) -> None:
    with pytest.raises(Unprocessable) as e:
        js.client.submit_job("p", ["true"], None, cpus=0)
    assert e.value.errors and e.value.errors[0]["loc"][-1] == "cpus"
    with pytest.raises(Unprocessable, match="no worker can ever run this job: it asks for 64"):
        js.client.submit_job("p", ["true"], None, cpus=64)
    with pytest.raises(NotFound, match="dataset 'ghost' does not exist"):
        js.client.submit_job("p", ["true"], None, datasets=["ghost@1"])
    big = tmp_path / "big"
    big.mkdir()
    (big / "blob.bin").write_bytes(b"0" * 2048)
    with pytest.raises(PayloadTooLarge, match="over the limit") as too_big:
        _jobs.submit_job(js.client.http, "p", ["true"], big, max_snapshot_bytes=1000)
    assert "blob.bin" in too_big.value.detail
    missing = js.client.http.json("POST", "/api/projects/p/blobs/missing", {"hashes": ["0" * 64]})[
        "missing"
    ]
    assert missing == ["0" * 64]  # nothing was uploaded


@SQLITE_ONLY
def test_quotas_refuse_jobs_at_submit(js: JobServer) -> None:
    js.client.http.json("POST", "/api/projects", {"name": "p"})
    q = js.client.http.json("PUT", "/api/projects/p/quota", {"max_gpus": 0})
    assert q["max_gpus"] == 0 and q["gpus_in_use"] == 0
    with pytest.raises(Unprocessable, match="may use 0 GPU"):
        js.client.submit_job("p", ["true"], None, gpus=1)
    js.wait(js.client.submit_job("p", ["sleep", "0.5"], None)["id"])
    js.client.http.json("PUT", "/api/projects/p/quota", {"cpu_hours_per_month": 0.0001})
    with pytest.raises(Unprocessable, match=r"used 0\.000\d+ of its 0\.0001 CPU-hours"):
        js.client.submit_job("p", ["true"], None)
    assert js.client.http.json("GET", "/api/projects/p/quota")["cpu_hours_this_month"] > 0


@SQLITE_ONLY
def test_a_server_stopping_leaves_running_jobs_lost_and_requeued(
    make_server: Callable[..., JobServer],
) -> None:
    js = make_server()
    job = js.client.submit_job("p", ["sleep", "30"], None, retries=1)
    js.wait(job["id"], {"running"})
    js.stop()
    with js.app.state.runtime.db.read() as s:
        row = s.get(Job, job["id"])
        assert row is not None
        assert row.state == "queued" and "the server stopped" in row.message
