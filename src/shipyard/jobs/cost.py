"""What compute costs and how much a project may use: prices per resource-hour and class,
each attempt's cost from the time it really ran, usage reports by project, user, run or job,
and quotas (concurrent GPUs, CPU-hours a month).

The cost model: an attempt holding ``c`` CPUs, ``g`` GPUs and ``m`` GB for ``h`` hours on a
worker of class ``k`` costs ``h * (c * cpu[k] + g * gpu[k] + m * memory_gb[k])``, prices
read from ``SHIPYARD_PRICES`` (class ``default`` for classes it does not list).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from shipyard import auth
from shipyard.auth import Project
from shipyard.db import utcnow
from shipyard.errors import Unprocessable
from shipyard.jobs.schemas import ACTIVE, QuotaIn, QuotaOut, UsageOut, UsageRow
from shipyard.jobs.tables import Job, JobAttempt, Quota

GROUPS = ("project", "user", "run", "job")


def hourly_rate(
    prices: dict[str, dict[str, float]], resource_class: str, cpus: float, gpus: int, mem: float
) -> float:
    """What one hour of these resources costs on a worker of ``resource_class``."""
    price = prices.get(resource_class) or prices.get("default") or {}
    return (
        cpus * price.get("cpu", 0.0)
        + gpus * price.get("gpu", 0.0)
        + mem * price.get("memory_gb", 0.0)
    )


def close_attempt(attempt: JobAttempt, prices: dict[str, dict[str, float]], now: datetime) -> None:
    """Stop an attempt's clock and price it (an attempt that never started costs nothing)."""
    attempt.ended_at = now
    if attempt.started_at is None:
        return
    hours = max(0.0, (now - attempt.started_at).total_seconds() / 3600)
    attempt.cpu_hours = hours * attempt.cpus
    attempt.gpu_hours = hours * attempt.gpus
    attempt.cost = hours * hourly_rate(
        prices, attempt.resource_class, attempt.cpus, attempt.gpus, attempt.memory_gb
    )


def _overlapping(since: datetime | None, until: datetime):  # type: ignore[no-untyped-def]
    cond = [JobAttempt.started_at.is_not(None), JobAttempt.started_at < until]
    if since is not None:
        cond.append(or_(JobAttempt.ended_at.is_(None), JobAttempt.ended_at > since))
    return cond


def _clipped(
    a: JobAttempt,
    prices: dict[str, dict[str, float]],
    since: datetime | None,
    until: datetime,
    now: datetime,
) -> tuple[float, float, float, float]:
    """(hours, cpu-hours, gpu-hours, cost) of the part of an attempt inside the window."""
    assert a.started_at is not None
    start = max(a.started_at, since) if since is not None else a.started_at
    end = min(a.ended_at or now, until)
    hours = max(0.0, (end - start).total_seconds() / 3600)
    if a.ended_at is not None:
        total = max(1e-12, (a.ended_at - a.started_at).total_seconds() / 3600)
        cost = a.cost * min(1.0, hours / total)
    else:
        cost = hours * hourly_rate(prices, a.resource_class, a.cpus, a.gpus, a.memory_gb)
    return hours, hours * a.cpus, hours * a.gpus, cost


def usage(
    session: Session,
    project_ids: Sequence[str] | None,
    prices: dict[str, dict[str, float]],
    currency: str,
    since: datetime | None = None,
    until: datetime | None = None,
    by: str = "project",
) -> UsageOut:
    """Compute hours and cost in a window, grouped by project, user, run or job."""
    if by not in GROUPS:
        raise Unprocessable(f"by={by!r}: group by one of {', '.join(GROUPS)}")
    now = utcnow()
    until = until or now
    stmt = select(JobAttempt).where(*_overlapping(since, until))
    if project_ids is not None:
        stmt = stmt.where(JobAttempt.project_id.in_(project_ids))
    attempts = list(session.scalars(stmt))
    projects = {
        pid: name
        for pid, name in session.execute(
            select(Project.id, Project.name).where(Project.id.in_({a.project_id for a in attempts}))
        )
    }
    names = auth.user_names(session, {a.user_id for a in attempts})
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    jobs: dict[str, set[str]] = defaultdict(set)
    for a in attempts:
        key = {
            "project": projects.get(a.project_id, a.project_id),
            "user": names.get(a.user_id, a.user_id),
            "run": a.run_id or "-",
            "job": a.job_id,
        }[by]
        for i, v in enumerate(_clipped(a, prices, since, until, now)):
            sums[key][i] += v
        jobs[key].add(a.job_id)
    rows = [
        UsageRow(key=k, jobs=len(jobs[k]), hours=v[0], cpu_hours=v[1], gpu_hours=v[2], cost=v[3])
        for k, v in sorted(sums.items(), key=lambda kv: -kv[1][3])
    ]
    total = UsageRow(
        key="total",
        jobs=len(set().union(*jobs.values())) if jobs else 0,
        hours=sum(r.hours for r in rows),
        cpu_hours=sum(r.cpu_hours for r in rows),
        gpu_hours=sum(r.gpu_hours for r in rows),
        cost=sum(r.cost for r in rows),
    )
    return UsageOut(by=by, since=since, until=until, currency=currency, rows=rows, total=total)


def month_start(now: datetime) -> datetime:
    """Midnight UTC on the first of ``now``'s month."""
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def cpu_hours_this_month(session: Session, project_id: str) -> float:
    """CPU-hours a project used since the first of this month (running attempts included)."""
    now = utcnow()
    since = month_start(now)
    stmt = select(JobAttempt).where(JobAttempt.project_id == project_id, *_overlapping(since, now))
    return sum(_clipped(a, {}, since, now, now)[1] for a in session.scalars(stmt))


def gpus_in_use(session: Session, project_id: str) -> int:
    """GPUs held right now by a project's assigned and running jobs."""
    stmt = select(func.coalesce(func.sum(Job.gpus), 0)).where(
        Job.project_id == project_id, Job.state.in_([s.value for s in ACTIVE])
    )
    return int(session.scalar(stmt) or 0)


# -- quotas -----------------------------------------------------------------------------


def quota_out(session: Session, project: Project) -> QuotaOut:
    """A project's quota and what it uses of it."""
    quota = session.get(Quota, project.id)
    return QuotaOut(
        project=project.name,
        max_gpus=quota.max_gpus if quota else None,
        cpu_hours_per_month=quota.cpu_hours_per_month if quota else None,
        gpus_in_use=gpus_in_use(session, project.id),
        cpu_hours_this_month=cpu_hours_this_month(session, project.id),
    )


def set_quota(session: Session, project: Project, body: QuotaIn, user_id: str) -> dict[str, Any]:
    """Replace a project's quota; returns the previous limits."""
    quota = session.get(Quota, project.id)
    before = {
        "max_gpus": quota.max_gpus if quota else None,
        "cpu_hours_per_month": quota.cpu_hours_per_month if quota else None,
    }
    if quota is None:
        quota = Quota(project_id=project.id, updated_by=user_id)
        session.add(quota)
    quota.max_gpus = body.max_gpus
    quota.cpu_hours_per_month = body.cpu_hours_per_month
    quota.updated_by, quota.updated_at = user_id, utcnow()
    return before


def quota_limits(session: Session) -> dict[str, int]:
    """Concurrent-GPU limits by project id (projects without one are absent)."""
    return {
        pid: int(n or 0)
        for pid, n in session.execute(
            select(Quota.project_id, Quota.max_gpus).where(Quota.max_gpus.is_not(None))
        )
    }
