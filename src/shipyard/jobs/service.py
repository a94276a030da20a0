"""Job domain logic: submit (validated against quotas and workers), claim, run, finish, retry,
cancel, live logs, and the workers that report in.

Who owns what: a job's state moves only through these functions. The dispatcher picks a worker
(``queued -> starting``); the worker claims the job (its run is started or resumed and a token
minted for the job to log with), reports ``running``, then the end. An attempt that fails or is
lost goes back to the queue while retries remain, after a backoff that doubles each time.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from shipyard import auth
from shipyard.auth import Project
from shipyard.auth.scopes import TokenScope
from shipyard.auth.tables import User
from shipyard.config import Settings
from shipyard.data import service as data
from shipyard.data.schemas import FileEntry
from shipyard.db import utcnow
from shipyard.errors import Conflict, NotFound, PayloadTooLarge, Unprocessable
from shipyard.jobs import cost
from shipyard.jobs.schemas import (
    ACTIVE,
    FINAL,
    Assignment,
    DatasetMount,
    JobCreate,
    JobOut,
    JobState,
)
from shipyard.jobs.tables import Job, JobAttempt, JobLog, Quota, Worker
from shipyard.storage import Storage
from shipyard.tracking import files as run_files
from shipyard.tracking import service as tracking
from shipyard.tracking.schemas import RunCreate, RunStatus, RunUpdate

RETRIED = {JobState.failed, JobState.lost}


class QuotaExceeded(Unprocessable):
    title = "Quota exceeded"


def log_path(job_id: str) -> str:
    """Where a finished job's log is kept among its run's artifacts."""
    return f"logs/{job_id}.log"


# -- submit ---------------------------------------------------------------------------------


def resolve_datasets(
    session: Session, project: Project, refs: Sequence[str]
) -> list[tuple[Project, dict[str, Any]]]:
    """Pin each ``NAME@VERSION|latest`` to a version (404 for an unknown one)."""
    out = []
    for ref in refs:
        p, dataset, version = data.resolve_ref(session, ref, project)
        out.append((p, data.lineage_entry(p, dataset, version)))
    return out


def check_quota(session: Session, project: Project, gpus: int) -> None:
    """Refuse a job the project's quota can never allow, or any job once its CPU-hours for
    the month are spent."""
    quota = session.get(Quota, project.id)
    if quota is None:
        return
    if quota.max_gpus is not None and gpus > quota.max_gpus:
        raise QuotaExceeded(
            f"project {project.name!r} may use {quota.max_gpus} GPU(s) at once; "
            f"this job asks for {gpus}"
        )
    if quota.cpu_hours_per_month is not None:
        used = cost.cpu_hours_this_month(session, project.id)
        if used >= quota.cpu_hours_per_month:
            raise QuotaExceeded(
                f"project {project.name!r} used {used:.4g} of its "
                f"{quota.cpu_hours_per_month:g} CPU-hours this month"
            )


def fits(worker: Worker, cpus: float, gpus: int, memory_gb: float, rclass: str | None) -> bool:
    """Whether an idle ``worker`` could ever hold these resources."""
    return (
        worker.cpus >= cpus
        and len(worker.gpus) >= gpus
        and (memory_gb == 0 or worker.memory_gb == 0 or worker.memory_gb >= memory_gb)
        and (rclass is None or worker.resource_class == rclass)
    )


def check_feasible(session: Session, body: JobCreate) -> None:
    """Refuse resources no online worker can ever provide (with none online, the job waits)."""
    online = list(session.scalars(select(Worker).where(Worker.status == "online")))
    if not online or any(
        fits(w, body.cpus, body.gpus, body.memory_gb, body.resource_class) for w in online
    ):
        return
    largest = max(online, key=lambda w: (len(w.gpus), w.cpus, w.memory_gb))
    wanted = f"{body.cpus:g} CPU(s), {body.gpus} GPU(s)"
    if body.memory_gb:
        wanted += f", {body.memory_gb:g} GB"
    if body.resource_class:
        wanted += f" of class {body.resource_class!r}"
    raise Unprocessable(
        f"no worker can ever run this job: it asks for {wanted}; the largest online worker "
        f"{largest.name!r} has {largest.cpus:g} CPU(s), {len(largest.gpus)} GPU(s)"
        f"{f', {largest.memory_gb:g} GB' if largest.memory_gb else ''} "
        f"(class {largest.resource_class!r})"
    )


def check_snapshot(
    session: Session, settings: Settings, project: Project, files: Sequence[FileEntry]
) -> None:
    """Refuse a snapshot naming blobs not uploaded, or over the size limit."""
    size = data.check_files(session, project.id, files)
    if size > settings.max_snapshot_bytes:
        raise PayloadTooLarge(
            f"the code snapshot is {size} bytes, over SHIPYARD_MAX_SNAPSHOT_BYTES "
            f"({settings.max_snapshot_bytes})"
        )


def submit(
    session: Session,
    settings: Settings,
    project: Project,
    body: JobCreate,
    user_id: str,
    datasets: Sequence[dict[str, Any]] = (),
    sweep_id: str | None = None,
) -> Job:
    """Queue a job; refused with the reason when it could never run or is over quota."""
    check_snapshot(session, settings, project, body.snapshot)
    check_quota(session, project, body.gpus)
    check_feasible(session, body)
    job = Job(
        project_id=project.id,
        name=body.name or shlex.join(body.command)[:80],
        command=body.command,
        snapshot=[f.model_dump() for f in body.snapshot],
        env=body.env,
        config=body.config,
        datasets=list(datasets),
        cpus=body.cpus,
        gpus=body.gpus,
        memory_gb=body.memory_gb,
        resource_class=body.resource_class,
        priority=body.priority,
        timeout_s=body.timeout_s,
        retries=body.retries,
        retry_backoff_s=body.retry_backoff_s,
        state=JobState.queued,
        sweep_id=sweep_id,
        created_by=user_id,
        gpu_ids=[],
    )
    session.add(job)
    session.flush()
    return job


# -- reading --------------------------------------------------------------------------------


def get_job(session: Session, job_id: str) -> Job:
    """The job with ``job_id``."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id!r} does not exist")
    return job


def project_of_job(session: Session, job_id: str) -> tuple[Job, Project]:
    """A job and its project."""
    job = get_job(session, job_id)
    project = auth.project_by_id(session, job.project_id)
    assert project is not None
    return job, project


def list_jobs(
    session: Session,
    project_ids: Sequence[str] | None,
    state: str | None = None,
    sweep_id: str | None = None,
    limit: int = 100,
) -> list[Job]:
    """Jobs, newest first."""
    if not 1 <= limit <= 10_000:
        raise Unprocessable("limit must be between 1 and 10000")
    stmt = select(Job)
    if project_ids is not None:
        stmt = stmt.where(Job.project_id.in_(project_ids))
    if state:
        if state not in JobState.__members__:
            raise Unprocessable(f"state {state!r}: one of {', '.join(JobState)}")
        stmt = stmt.where(Job.state == state)
    if sweep_id:
        stmt = stmt.where(Job.sweep_id == sweep_id)
    return list(session.scalars(stmt.order_by(Job.submitted_at.desc(), Job.id).limit(limit)))


def jobs_out(session: Session, jobs: Sequence[Job]) -> list[JobOut]:
    """Wire form of jobs."""
    projects = {
        pid: name
        for pid, name in session.execute(
            select(Project.id, Project.name).where(Project.id.in_({j.project_id for j in jobs}))
        )
    }
    workers = {
        wid: name
        for wid, name in session.execute(
            select(Worker.id, Worker.name).where(
                Worker.id.in_({j.worker_id for j in jobs if j.worker_id})
            )
        )
    }
    names = auth.user_names(session, {j.created_by for j in jobs})
    return [
        JobOut(
            id=j.id,
            project=projects[j.project_id],
            name=j.name,
            state=JobState(j.state),
            command=j.command,
            env=sorted(j.env),
            cpus=j.cpus,
            gpus=j.gpus,
            memory_gb=j.memory_gb,
            resource_class=j.resource_class,
            priority=j.priority,
            timeout_s=j.timeout_s,
            retries=j.retries,
            attempts=j.attempts,
            datasets=j.datasets,
            snapshot_files=len(j.snapshot),
            snapshot_size=sum(f["size"] for f in j.snapshot),
            worker=workers.get(j.worker_id) if j.worker_id else None,
            gpu_ids=j.gpu_ids,
            run_id=j.run_id,
            sweep_id=j.sweep_id,
            exit_code=j.exit_code,
            message=j.message,
            cancel_requested=j.cancel_requested,
            cost=j.cost,
            cpu_hours=j.cpu_hours,
            gpu_hours=j.gpu_hours,
            user=names.get(j.created_by, ""),
            submitted_at=j.submitted_at,
            started_at=j.started_at,
            finished_at=j.finished_at,
        )
        for j in jobs
    ]


# -- the worker's side ----------------------------------------------------------------------


def _current_attempt(session: Session, job: Job) -> JobAttempt | None:
    return session.scalar(
        select(JobAttempt).where(JobAttempt.job_id == job.id, JobAttempt.attempt == job.attempts)
    )


def has_unclaimed(session: Session, worker_id: str) -> bool:
    """Whether the dispatcher gave this worker a job it has not claimed yet."""
    stmt = select(Job.id).where(
        Job.worker_id == worker_id, Job.state == JobState.starting, Job.claimed_at.is_(None)
    )
    return session.scalar(stmt.limit(1)) is not None


def claim(session: Session, settings: Settings, worker: Worker) -> list[Assignment]:
    """Take the jobs the dispatcher gave ``worker``: start (or resume) each job's run, mint
    the token the job logs with, and open an attempt."""
    now = utcnow()
    stmt = (
        select(Job)
        .where(Job.worker_id == worker.id, Job.state == JobState.starting, Job.claimed_at.is_(None))
        .order_by(Job.priority.desc(), Job.submitted_at)
        .with_for_update()
    )
    out = []
    for job in session.scalars(stmt):
        project = auth.project_by_id(session, job.project_id)
        user = session.get(User, job.created_by)
        assert project is not None and user is not None
        job.attempts += 1
        job.claimed_at = now
        if job.run_id is None:
            run = tracking.start_run(
                session,
                project,
                RunCreate(
                    project=project.name,
                    name=job.name[:256],
                    config=job.config,
                    environment={
                        "job": job.id,
                        "command": job.command,
                        "datasets": job.datasets,
                        "worker": worker.name,
                        "host": worker.host,
                    },
                ),
                job.created_by,
            )
            job.run_id = run.id
        else:
            tracking.start_run(session, project, RunCreate(id=job.run_id, project=project.name), "")
        session.add(
            JobAttempt(
                job_id=job.id,
                attempt=job.attempts,
                project_id=job.project_id,
                user_id=job.created_by,
                run_id=job.run_id,
                worker_id=worker.id,
                resource_class=worker.resource_class,
                cpus=job.cpus,
                gpus=job.gpus,
                memory_gb=job.memory_gb,
            )
        )
        append_log(
            session,
            job.id,
            f"[shipyard] attempt {job.attempts} of job {job.id} on worker {worker.name} "
            f"({job.cpus:g} CPU, GPUs [{','.join(job.gpu_ids)}])\n".encode(),
        )
        mounts = []
        mounted: set[str] = set()
        for entry in job.datasets:
            p, dataset, version = data.resolve_ref(
                session, f"{entry['project']}/{entry['name']}@{entry['version']}", project
            )
            files = data.versions_out(session, p, dataset, [version], with_files=True)[0].files
            mounts.append(
                DatasetMount(
                    project=p.name, name=dataset.name, version=version.version, files=files or []
                )
            )
            mounted.add(f"{p.id}/{dataset.name}")
        if job.token_id:
            auth.revoke_token(session, user, job.token_id)
        # The job's own token: its project, its run and its datasets, no more (auth.scopes);
        # revoked when the job ends, expiring a day past its timeout should that never happen.
        token, secret = auth.create_token(
            session,
            user,
            name=f"job {job.id}",
            scope=TokenScope(
                job_id=job.id,
                project_id=job.project_id,
                run_id=job.run_id,
                datasets=tuple(sorted(mounted)),
            ),
            expires_at=now + timedelta(seconds=job.timeout_s or 0, days=1),
        )
        job.token_id = token.id
        out.append(
            Assignment(
                job_id=job.id,
                attempt=job.attempts,
                project=project.name,
                run_id=job.run_id,
                command=job.command,
                env={
                    **job.env,
                    "SHIPYARD_RUN_ID": job.run_id,
                    "SHIPYARD_PROJECT": project.name,
                    "SHIPYARD_JOB_ID": job.id,
                },
                snapshot=[FileEntry.model_validate(f) for f in job.snapshot],
                datasets=mounts,
                timeout_s=job.timeout_s,
                gpu_ids=job.gpu_ids,
                token=secret,
                cancel_grace_s=settings.cancel_grace_s,
                memory_gb=job.memory_gb,
            )
        )
    return out


def check_owned(job: Job, worker_id: str, attempt: int) -> None:
    """409 unless this attempt of the job is running on this worker (it may have been lost
    and given to another): the worker must then stop it."""
    if job.worker_id != worker_id or job.attempts != attempt or job.state not in ACTIVE:
        raise Conflict(
            f"job {job.id} attempt {attempt} is not running on this worker "
            f"(it is {job.state}); stop it"
        )


def mark_running(session: Session, job: Job, worker_id: str, attempt: int) -> None:
    """The attempt's process started: its clock (and cost) starts now."""
    check_owned(job, worker_id, attempt)
    now = utcnow()
    job.state = JobState.running
    job.started_at = now
    current = _current_attempt(session, job)
    if current is not None:
        current.started_at, current.state = now, JobState.running


def report(
    session: Session,
    settings: Settings,
    storage: Storage,
    job: Job,
    worker_id: str,
    attempt: int,
    state: JobState,
    exit_code: int | None = None,
    message: str = "",
) -> None:
    """A worker's report on its attempt: running, or how it ended."""
    if state is JobState.running:
        mark_running(session, job, worker_id, attempt)
        return
    if state not in FINAL or state is JobState.lost:
        raise Unprocessable("a worker reports running, succeeded, failed, cancelled or timed_out")
    check_owned(job, worker_id, attempt)
    finish(session, settings, storage, job, state, exit_code, message)


def finish(
    session: Session,
    settings: Settings,
    storage: Storage,
    job: Job,
    state: JobState,
    exit_code: int | None = None,
    message: str = "",
) -> None:
    """End the current attempt: price it, then retry the job or close it for good (its log
    becomes a run artifact, its token is revoked, a still-running run is ended)."""
    now = utcnow()
    current = _current_attempt(session, job)
    if current is not None and current.ended_at is None:
        current.state = state
        cost.close_attempt(current, settings.prices, now)
        job.cost += current.cost
        job.cpu_hours += current.cpu_hours
        job.gpu_hours += current.gpu_hours
    if job.token_id:
        user = session.get(User, job.created_by)
        if user is not None:
            auth.revoke_token(session, user, job.token_id)
    job.exit_code = exit_code
    if job.cancel_requested and state in RETRIED:
        state = JobState.cancelled
    if job.cancel_requested and state is JobState.cancelled and job.message:
        message = job.message  # the reason it was cancelled for
    if state in RETRIED and job.attempts <= job.retries:
        delay = job.retry_backoff_s * 2 ** (job.attempts - 1)
        job.message = (
            f"attempt {job.attempts} {state.value}: {message or 'no detail'}; "
            f"retry {job.attempts} of {job.retries} in {delay:g}s"
        )
        append_log(session, job.id, f"[shipyard] {job.message}\n".encode())
        job.state = JobState.queued
        job.worker_id, job.gpu_ids = None, []
        job.assigned_at = job.claimed_at = None
        job.not_before = now + timedelta(seconds=delay)
        return
    job.state = state
    job.message = message
    job.finished_at = now
    append_log(
        session,
        job.id,
        f"[shipyard] job {state.value}{': ' + message if message else ''}\n".encode(),
    )
    if job.run_id is not None:
        archive_logs(session, storage, job)
        run = tracking.get_run(session, job.run_id)
        if run.status == RunStatus.running:
            status = RunStatus.finished if state is JobState.succeeded else RunStatus.failed
            tracking.update_run(session, run.id, RunUpdate(status=status))
    else:
        session.execute(delete(JobLog).where(JobLog.job_id == job.id))


def request_cancel(
    session: Session, settings: Settings, storage: Storage, job: Job, reason: str = "cancelled"
) -> str:
    """Cancel a job: at once if no worker holds it yet, else its worker stops it (SIGTERM to
    the process group, SIGKILL after the grace period); ``reason`` becomes its message.
    Returns the state it was in."""
    before = job.state
    if job.state in FINAL:
        raise Conflict(f"job {job.id} already ended ({job.state})")
    job.cancel_requested = True
    job.message = reason
    if job.state == JobState.queued or (job.state == JobState.starting and job.claimed_at is None):
        job.worker_id, job.gpu_ids = None, []
        job.message = f"{reason} before it ran"
        finish(session, settings, storage, job, JobState.cancelled, None, job.message)
    return before


# -- logs -----------------------------------------------------------------------------------


def append_log(session: Session, job_id: str, chunk: bytes) -> None:
    """Append output of a running job."""
    if chunk:
        session.add(JobLog(job_id=job_id, data=chunk))


def active_counts(session: Session, project_ids: Sequence[str] | None) -> dict[str, int]:
    """Queued, starting and running jobs by project id."""
    active = (JobState.queued, JobState.starting, JobState.running)
    stmt = select(Job.project_id, func.count()).where(Job.state.in_(active))
    if project_ids is not None:
        stmt = stmt.where(Job.project_id.in_(project_ids))
    return {pid: n for pid, n in session.execute(stmt.group_by(Job.project_id))}


def job_of_run(session: Session, run_id: str) -> Job | None:
    """The job whose run ``run_id`` is (the newest, should several share it), if any."""
    stmt = select(Job).where(Job.run_id == run_id).order_by(Job.submitted_at.desc()).limit(1)
    return session.scalars(stmt).first()


def read_log(session: Session, storage: Storage, job: Job, after: int = 0) -> tuple[bytes, int]:
    """Output after chunk ``after`` and the last chunk's id; a finished job's whole log."""
    rows = list(
        session.execute(
            select(JobLog.id, JobLog.data)
            .where(JobLog.job_id == job.id, JobLog.id > after)
            .order_by(JobLog.id)
        )
    )
    if rows:
        return b"".join(r[1] for r in rows), rows[-1][0]
    if job.state in FINAL and after == 0 and job.run_id is not None:
        try:
            return storage.read_bytes(run_files.blob_path(job.run_id, log_path(job.id))), 1
        except NotFound:
            return b"", after
    return b"", after


def archive_logs(session: Session, storage: Storage, job: Job) -> None:
    """Move a finished job's log chunks into one artifact of its run."""
    assert job.run_id is not None
    chunks = session.scalars(
        select(JobLog.data).where(JobLog.job_id == job.id).order_by(JobLog.id)
    ).all()
    blob = storage.write_bytes(run_files.blob_path(job.run_id, log_path(job.id)), b"".join(chunks))
    run_files.record_artifact(session, job.run_id, log_path(job.id), blob)


def prune_logs(session: Session, older_than_s: float = 600.0) -> int:
    """Drop the live chunks of jobs that ended a while ago (their log is an artifact now;
    followers still streaming get the tail from the chunks until then)."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    ended = select(Job.id).where(Job.finished_at < cutoff, Job.run_id.is_not(None))
    result = session.execute(delete(JobLog).where(JobLog.job_id.in_(ended)))
    return int(result.rowcount)  # type: ignore[attr-defined]
