"""The dispatcher's one decision: which queued jobs go to which workers, and which GPUs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from shipyard import auth
from shipyard.auth import service as users
from shipyard.config import Settings
from shipyard.db import Database
from shipyard.jobs import cost, service, workers
from shipyard.jobs.dispatcher import dispatch_queued_jobs
from shipyard.jobs.schemas import JobCreate, JobState, QuotaIn, WorkerCreate
from shipyard.migrations import upgrade
from shipyard.storage import Storage


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    upgrade(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path)


def setup(s: Session, settings: Settings, cpus: float = 2, gpus: list[str] | None = None) -> str:
    user = users.create_user(s, "u")
    for name in ("a", "b"):
        auth.create_project(s, auth.Actor(user.id, user.name, False), name)
    spec = WorkerCreate(name="w", cpus=cpus, gpus=gpus or [])
    workers.register_worker(s, settings, Storage(str(settings.home / "a")), spec, "remote", None)
    return user.id


def submit(s: Session, settings: Settings, user: str, project: str, **fields: object) -> str:
    p = auth.get_project(s, project)
    job = service.submit(s, settings, p, JobCreate(command=["true"], **fields), user)  # type: ignore[arg-type]
    s.flush()
    time.sleep(0.002)  # distinct submission times
    return job.id


def names(jobs: list[object]) -> list[str]:
    return [j.id for j in jobs]  # type: ignore[attr-defined]


def test_priority_first_then_projects_take_turns(db: Database, settings: Settings) -> None:
    with db.session() as s:
        user = setup(s, settings, cpus=3)
        a = [submit(s, settings, user, "a") for _ in range(3)]
        b = submit(s, settings, user, "b")
        urgent = submit(s, settings, user, "a", priority=5)
        assigned = names(dispatch_queued_jobs(s))
    # the urgent job first; then b's job before a's backlog, a holding a slot already
    assert assigned == [urgent, b, a[0]]


def test_a_job_that_does_not_fit_lets_smaller_ones_pass(db: Database, settings: Settings) -> None:
    with db.session() as s:
        user = setup(s, settings, cpus=2)
        running = submit(s, settings, user, "a", cpus=1)
        assert names(dispatch_queued_jobs(s)) == [running]
        big = submit(s, settings, user, "a", cpus=2, priority=1)
        small = submit(s, settings, user, "b", cpus=1)
        assert names(dispatch_queued_jobs(s)) == [small]  # backfilled past the big job
        storage = Storage(str(settings.home / "a"))
        for done in (running, small):
            service.finish(s, settings, storage, service.get_job(s, done), JobState.succeeded)
        assert names(dispatch_queued_jobs(s)) == [big]


def test_gpus_are_handed_out_once_and_quotas_hold_jobs_back(
    db: Database, settings: Settings
) -> None:
    with db.session() as s:
        user = setup(s, settings, cpus=8, gpus=["0", "1", "2"])
        cost.set_quota(s, auth.get_project(s, "a"), QuotaIn(max_gpus=2), user)
        jobs = [submit(s, settings, user, "a", gpus=1) for _ in range(3)]
        other = submit(s, settings, user, "b", gpus=1)
        assigned = dispatch_queued_jobs(s)
        by_id = {j.id: j.gpu_ids for j in assigned}
        assert set(by_id) == {jobs[0], jobs[1], other}  # a's third waits for its quota
        assert sorted(g for ids in by_id.values() for g in ids) == ["0", "1", "2"]
        assert cost.quota_out(s, auth.get_project(s, "a")).gpus_in_use == 2
