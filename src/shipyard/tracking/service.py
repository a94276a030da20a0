"""Runs: start, resume, update, search, diff, and crash detection; projects with their runs."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.orm import Session, defer

from shipyard import auth
from shipyard.auth import Actor, Project, Role, User
from shipyard.db import new_id, utcnow
from shipyard.errors import NotFound, Unprocessable
from shipyard.tracking import filters
from shipyard.tracking.schemas import (
    DiffRow,
    ProjectOut,
    RunCreate,
    RunDiff,
    RunOut,
    RunStatus,
    RunUpdate,
    SummaryOut,
)
from shipyard.tracking.tables import ConfigValue, MetricSummary, Run

MAX_PAGE = 10_000


def list_projects(session: Session, visible: Sequence[str] | None = None) -> list[ProjectOut]:
    """Projects (those with ids in ``visible``, or all) with their run counts, by name."""
    counts: dict[str, int] = {
        pid: n
        for pid, n in session.execute(select(Run.project_id, func.count()).group_by(Run.project_id))
    }
    stmt = select(Project).order_by(Project.name)
    if visible is not None:
        stmt = stmt.where(Project.id.in_(visible))
    return [
        ProjectOut.model_validate(p).model_copy(update={"runs": counts.get(p.id, 0)})
        for p in session.scalars(stmt)
    ]


def require_run(session: Session, actor: Actor, run_id: str, needed: Role) -> tuple[Run, Project]:
    """A run and its project, when the actor has ``needed`` in the project (a job's token
    writes only to its own run)."""
    run, project = project_of_run(session, run_id)
    auth.require_role(session, actor, project, needed)
    if actor.scope is not None and needed > Role.viewer and run.id != actor.scope.run_id:
        raise actor.scope.refuse(f"write to run {run.id}, only to its own run")
    return run, project


def project_of_run(session: Session, run_id: str) -> tuple[Run, Project]:
    """A run and its project, in one query."""
    row = session.execute(
        select(Run, Project).join(Project, Project.id == Run.project_id).where(Run.id == run_id)
    ).first()
    if row is None:
        raise NotFound(f"run {run_id!r} does not exist")
    return row[0], row[1]


def flatten(config: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Leaves of a nested config as ``("a.b", value)`` pairs."""
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from flatten(value, path + ".")
        else:
            yield path, value


def _config_rows(run_id: str, config: dict[str, Any]) -> list[ConfigValue]:
    rows = []
    for key, value in flatten(config):
        num: float | None = None
        text: str | None = None
        if isinstance(value, bool):
            num, text = float(value), "true" if value else "false"
        elif isinstance(value, int | float):
            num = float(value) if math.isfinite(value) else None
            text = None if num is not None else str(value)
        elif isinstance(value, str):
            text = value
        elif value is not None:
            text = json.dumps(value, sort_keys=True)
        rows.append(ConfigValue(run_id=run_id, key=key[:512], num=num, text=text))
    return rows


def _set_config(session: Session, run: Run, config: dict[str, Any]) -> None:
    run.config = config
    session.execute(delete(ConfigValue).where(ConfigValue.run_id == run.id))
    session.add_all(_config_rows(run.id, config))


def start_run(session: Session, project: Project, body: RunCreate, user_id: str) -> Run:
    """Create a run, or resume the run with ``body.id`` (its status goes back to running)."""
    if body.id is not None:
        run = session.get(Run, body.id)
        if run is not None:
            if run.project_id != project.id:
                raise Unprocessable(f"run {body.id!r} belongs to another project")
            run.status = RunStatus.running
            run.finished_at = None
            run.heartbeat_at = run.updated_at = utcnow()
            if body.config:
                _set_config(session, run, {**run.config, **body.config})
            return run
    run_id = body.id or new_id()
    now = utcnow()
    run = Run(
        id=run_id,
        project_id=project.id,
        name=body.name or f"run-{run_id[:8]}",
        status=RunStatus.running,
        tags=sorted(set(body.tags)),
        notes=body.notes,
        environment=body.environment,
        created_by=user_id,
        created_at=body.created_at or now,
        updated_at=now,
        heartbeat_at=now,
        config={},
    )
    session.add(run)
    session.flush()
    _set_config(session, run, body.config)
    return run


def get_run(session: Session, run_id: str) -> Run:
    """The run with ``run_id``."""
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"run {run_id!r} does not exist")
    return run


def update_run(session: Session, run_id: str, body: RunUpdate) -> Run:
    """Rename, retag, annotate, merge config into, or end a run."""
    run = get_run(session, run_id)
    if body.name is not None:
        run.name = body.name
    if body.tags is not None:
        run.tags = sorted(set(body.tags))
    if body.notes is not None:
        run.notes = body.notes
    if body.config is not None:
        _set_config(session, run, {**run.config, **body.config})
    if body.status is not None:
        run.status = body.status
        if body.status is RunStatus.running:
            run.finished_at = None
        else:
            run.finished_at = body.finished_at or utcnow()
    run.updated_at = run.heartbeat_at = utcnow()
    return run


def add_datasets(session: Session, run_id: str, entries: Sequence[dict[str, Any]]) -> Run:
    """Record dataset versions a run used in ``environment["datasets"]`` (the lineage the
    registry copies into model versions); an entry already there is not repeated."""
    run = get_run(session, run_id)
    used = list(run.environment.get("datasets", []))
    for entry in entries:
        if entry not in used:
            used.append(dict(entry))
    run.environment = {**run.environment, "datasets": used}
    return run


def touch(session: Session, run_id: str) -> None:
    """Record a heartbeat: the run's process is alive."""
    result = session.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=utcnow()))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"run {run_id!r} does not exist")


def mark_crashed(session: Session, timeout_s: float) -> int:
    """Mark running runs whose heartbeat is older than ``timeout_s`` as crashed; how many."""
    cutoff = utcnow() - timedelta(seconds=timeout_s)
    result = session.execute(
        update(Run)
        .where(Run.status == RunStatus.running, Run.heartbeat_at < cutoff)
        .values(status=RunStatus.crashed, finished_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def search_runs(
    session: Session,
    project: str | None,
    filter_text: str | None = None,
    order_by: Sequence[str] = (),
    limit: int = 100,
    offset: int = 0,
    visible: Sequence[str] | None = None,
) -> tuple[list[Run], int]:
    """Runs matching a filter, sorted, one page of them, and how many match in all.

    Without a project, only runs of the projects in ``visible`` (None: all) are searched.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise Unprocessable(f"limit must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise Unprocessable("offset must not be negative")
    cond = filters.parse_filter(filter_text)
    if project is not None:
        cond = and_(cond, Run.project_id == auth.get_project(session, project).id)
    elif visible is not None:
        cond = and_(cond, Run.project_id.in_(visible))
    stmt = select(Run).where(cond).options(defer(Run.environment))
    count = select(func.count()).select_from(Run).where(cond)
    for field in order_by:
        desc = field.startswith("-")
        col, join = filters.order_column(field.lstrip("-+"))
        if join is not None:
            stmt = stmt.outerjoin(join[0], join[1])
        stmt = stmt.order_by(col.desc().nulls_last() if desc else col.asc().nulls_last())
    stmt = stmt.order_by(Run.created_at.desc(), Run.id).limit(limit).offset(offset)
    runs = list(session.scalars(stmt))
    return runs, int(session.scalar(count) or 0)


def finite_or_str(value: float | None) -> float | str | None:
    """A float as JSON can carry it: non-finite values become "NaN", "Infinity", "-Infinity"."""
    if value is None or math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def summary_rows(session: Session, run_ids: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Summaries of several runs' metrics as plain dicts, by run id then key."""
    out: dict[str, dict[str, dict[str, Any]]] = {rid: {} for rid in run_ids}
    if not run_ids:
        return out
    stmt = select(
        MetricSummary.run_id,
        MetricSummary.key,
        MetricSummary.last,
        MetricSummary.min,
        MetricSummary.max,
        MetricSummary.last_step,
        MetricSummary.count,
    ).where(MetricSummary.run_id.in_(run_ids))
    for run_id, key, last, lo, hi, step, count in session.execute(stmt):
        out[run_id][key] = {
            "last": "NaN" if last is None else finite_or_str(last),
            "min": finite_or_str(lo),
            "max": finite_or_str(hi),
            "step": step,
            "count": count,
        }
    return out


def summaries(session: Session, run_ids: Sequence[str]) -> dict[str, dict[str, SummaryOut]]:
    """Summaries of several runs' metrics, by run id then key."""
    return {
        rid: {k: SummaryOut.model_validate(v) for k, v in sums.items()}
        for rid, sums in summary_rows(session, run_ids).items()
    }


def run_rows(
    session: Session, runs: Sequence[Run], environment: bool = True
) -> list[dict[str, Any]]:
    """Wire form of runs as plain dicts (project, user and summaries in three queries).

    Search results skip the environment (its package list dwarfs the rest of a run).
    """
    ids = [r.id for r in runs]
    sums = summary_rows(session, ids)
    projects = {
        pid: name
        for pid, name in session.execute(
            select(Project.id, Project.name).where(Project.id.in_({r.project_id for r in runs}))
        )
    }
    users = {
        uid: name
        for uid, name in session.execute(
            select(User.id, User.name).where(User.id.in_({r.created_by for r in runs}))
        )
    }
    return [
        {
            "id": r.id,
            "project": projects[r.project_id],
            "name": r.name,
            "status": r.status,
            "config": r.config,
            "tags": r.tags,
            "notes": r.notes,
            "environment": r.environment if environment else {},
            "user": users.get(r.created_by, ""),
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            "finished_at": r.finished_at,
            "heartbeat_at": r.heartbeat_at,
            "summary": sums[r.id],
        }
        for r in runs
    ]


def runs_out(session: Session, runs: Sequence[Run]) -> list[RunOut]:
    """Wire form of runs, validated (for single-run replies)."""
    return [RunOut.model_validate(row) for row in run_rows(session, runs)]


def _diff(a: dict[str, Any], b: dict[str, Any]) -> list[DiffRow]:
    return [
        DiffRow(key=k, a=a.get(k), b=b.get(k), same=a.get(k) == b.get(k))
        for k in sorted(set(a) | set(b))
    ]


def diff_runs(session: Session, a_id: str, b_id: str) -> RunDiff:
    """Config, summary (last values) and environment of two runs, side by side."""
    a, b = runs_out(session, [get_run(session, a_id), get_run(session, b_id)])
    env_keys = ("git_commit", "git_dirty", "host", "python", "platform", "command")
    return RunDiff(
        a=a.id,
        b=b.id,
        config=_diff(dict(flatten(a.config)), dict(flatten(b.config))),
        summary=_diff(
            {k: v.last for k, v in a.summary.items()}, {k: v.last for k, v in b.summary.items()}
        ),
        environment=_diff(
            {k: a.environment.get(k) for k in env_keys if k in a.environment},
            {k: b.environment.get(k) for k in env_keys if k in b.environment},
        ),
    )


def project_keys(session: Session, project: str, recent: int = 1000) -> tuple[list[str], list[str]]:
    """Config keys and metric keys of a project's ``recent`` newest runs, sorted (for pickers).

    Bounded by ``recent`` so a project with many thousands of runs answers in milliseconds.
    """
    newest = (
        select(Run.id)
        .where(Run.project_id == auth.get_project(session, project).id)
        .order_by(Run.created_at.desc())
        .limit(recent)
        .scalar_subquery()
    )
    config = session.scalars(
        select(ConfigValue.key).where(ConfigValue.run_id.in_(newest)).distinct()
    )
    metric = session.scalars(
        select(MetricSummary.key).where(MetricSummary.run_id.in_(newest)).distinct()
    )
    return sorted(config), sorted(metric)
