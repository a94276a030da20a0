"""Jobs on a real Ray cluster (a head and a worker node on 127.0.0.1, started by the tests):
each job is a Ray actor with its resource request; logs, states, runs and costs come back the
same way as from a local worker."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.jobs.conftest import JobServer
from tests.jobs.ray_cluster import RayCluster

if os.environ.get("CI") is None:
    pytest.importorskip("ray", reason="Ray is in the dev extra (make test installs it)")

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    c = RayCluster().start()
    yield c
    c.stop()


@pytest.fixture
def rs(cluster: RayCluster, make_server: Callable[..., JobServer]) -> JobServer:
    js = make_server(executor=cluster.address, worker_timeout_s=10.0)
    deadline = 60
    for _ in range(deadline * 10):
        workers = js.client.http.json("GET", "/api/workers")
        if workers and workers[0]["cpus"] >= 2:
            return js
        time.sleep(0.1)
    raise AssertionError(f"the Ray executor did not join the cluster:\n{cluster.logs()}")


MEET = (
    "import pathlib, sys, time, shipyard\n"
    "here = pathlib.Path(sys.argv[1])\n"
    "(here / sys.argv[2]).touch()\n"
    "with shipyard.init(system_metrics=False) as run:\n"
    "    run.log({'x': 1.5})\n"
    "deadline = time.time() + 90\n"
    "while len(list(here.iterdir())) < 2:  # both jobs are running at once, or neither ends\n"
    "    assert time.time() < deadline, 'alone'\n"
    "    time.sleep(0.1)\n"
    "print('met the other job')\n"
)


def test_jobs_run_as_ray_actors_with_their_resources(rs: JobServer, tmp_path: Path) -> None:
    (worker,) = rs.client.http.json("GET", "/api/workers")
    assert worker["kind"] == "ray" and worker["name"].startswith("ray@127.0.0.1")
    meet = tmp_path / "meet"
    meet.mkdir()
    jobs = [
        rs.client.submit_job("p", ["python", "-c", MEET, str(meet), str(i)], None, cpus=1)
        for i in range(2)
    ]
    for job in jobs:
        done = rs.wait(job["id"], timeout_s=150)
        log = rs.client.job_logs(job["id"])
        assert done["state"] == "succeeded", log
        assert "met the other job" in log  # two 1-CPU actors ran at once, one per node
        assert done["worker"] == worker["name"] and done["cost"] > 0
        run = rs.client.run(done["run_id"])
        assert run.summary["x"]["last"] == 1.5 and run.status == "finished"
    big = rs.client.submit_job("p", ["true"], None, cpus=2)
    done = rs.wait(big["id"], timeout_s=60)
    assert done["state"] == "failed" and "no Ray node has 2 CPU(s)" in done["message"]


def test_a_ray_job_is_cancelled_and_a_missing_command_fails(rs: JobServer) -> None:
    job = rs.client.submit_job("p", ["sleep", "60"], None)
    rs.wait(job["id"], {"running"}, timeout_s=120)
    rs.client.cancel_job(job["id"])
    done = rs.wait(job["id"], timeout_s=30)
    assert done["state"] == "cancelled"
    assert "cancelled: SIGTERM" in rs.client.job_logs(job["id"])
    bad = rs.client.submit_job("p", ["no-such-command-xyz"], None)
    done = rs.wait(bad["id"], timeout_s=60)
    assert done["state"] == "failed" and "cannot run 'no-such-command-xyz'" in rs.client.job_logs(
        bad["id"]
    )
