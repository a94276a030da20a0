"""Sweeps: a W&B-style ``sweep.yaml`` searched by Optuna, with early termination.

``parse_config`` turns the YAML into Optuna distributions (refusing what it cannot honour with
the reason). The ``SweepController`` owns the search state: one in-memory Optuna study per
running sweep (rebuilt from the trials table after a restart). Each pass it ends trials whose
jobs ended (the objective is the last value of the metric the run logged), reports running
trials' new metric points to the pruner and cancels the trials it prunes, then submits new
trials while fewer than ``parallelism`` are active and fewer than ``run_cap`` exist.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard import auth
from shipyard.auth import Project
from shipyard.config import Settings
from shipyard.db import utcnow
from shipyard.errors import Conflict, NotFound, Unprocessable
from shipyard.jobs import service
from shipyard.jobs.schemas import FINAL, JobCreate, SweepOut, TrialOut
from shipyard.jobs.tables import Job, Sweep, SweepTrial
from shipyard.storage import Storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
METHODS = ("grid", "random", "bayes")
GOALS = ("maximize", "minimize")
TERMINATORS = ("hyperband", "asha", "median")
DEFAULT_RUN_CAP = 20
JOB_FIELDS = {"cpus", "gpus", "memory_gb", "resource_class", "priority", "timeout_s", "retries"}


@dataclass
class SweepSpec:
    """A validated sweep.yaml."""

    name: str
    method: str
    metric: str
    goal: str
    searched: dict[str, BaseDistribution]
    fixed: dict[str, Any]
    grid: dict[str, list[Any]] | None
    run_cap: int
    parallelism: int
    early_terminate: dict[str, Any] | None
    command: list[str]
    job: dict[str, Any]
    datasets: list[str]


def _whole(value: Any, field: str) -> int:
    """An integer field of a sweep.yaml (a float like 2.0 too), or a 422 naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise Unprocessable(f"{field} must be a whole number, got {value!r}")
    return int(value)


def _mapping(value: Any, field: str) -> dict[str, Any]:
    """A mapping field of a sweep.yaml (absent is empty), or a 422 naming it."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Unprocessable(f"{field} must be a mapping, got {type(value).__name__}")
    return value


def _distribution(name: str, p: dict[str, Any]) -> BaseDistribution | None:
    """The Optuna distribution of one parameter (None for a fixed ``value``)."""
    if "value" in p:
        return None
    if "values" in p:
        values = p["values"]
        if not isinstance(values, list) or not values:
            raise Unprocessable(f"parameter {name!r}: values must be a non-empty list")
        return CategoricalDistribution([hashable(v) for v in values])
    kind = p.get("distribution")
    lo, hi = p.get("min"), p.get("max")
    if lo is None or hi is None:
        raise Unprocessable(f"parameter {name!r}: give value, values, or min and max")
    if not isinstance(lo, int | float) or not isinstance(hi, int | float) or lo >= hi:
        raise Unprocessable(f"parameter {name!r}: min and max must be numbers, min < max")
    if kind is None:
        kind = "int_uniform" if isinstance(lo, int) and isinstance(hi, int) else "uniform"
    if kind == "uniform":
        return FloatDistribution(float(lo), float(hi))
    if kind == "q_uniform":
        q = p.get("q", 1.0)
        if isinstance(q, bool) or not isinstance(q, int | float) or not q > 0:
            raise Unprocessable(f"parameter {name!r}: q must be a number > 0")
        return FloatDistribution(float(lo), float(hi), step=float(q))
    if kind in ("log_uniform_values", "log_uniform"):
        if lo <= 0:
            raise Unprocessable(f"parameter {name!r}: a log-uniform min must be > 0")
        return FloatDistribution(float(lo), float(hi), log=True)
    if kind == "int_uniform":
        return IntDistribution(int(lo), int(hi))
    raise Unprocessable(
        f"parameter {name!r}: distribution {kind!r} is not supported; use uniform, "
        "log_uniform_values, q_uniform, int_uniform, or values"
    )


def hashable(v: Any) -> Any:
    """A parameter value as Optuna's categorical choices take it (lists become JSON)."""
    return json.dumps(v) if isinstance(v, list | dict) else v


def unhash(v: Any, original: list[Any]) -> Any:
    """The value of ``values`` that ``hashable`` turned into ``v``."""
    for o in original:
        if hashable(o) == v:
            return o
    return v


def parse_config(config: dict[str, Any]) -> SweepSpec:
    """Validate a sweep.yaml (as a dict); every refusal names the field and the way out."""
    method = config.get("method", "random")
    if method not in METHODS:
        raise Unprocessable(f"method {method!r}: use grid, random or bayes")
    metric = config.get("metric") or {}
    if not isinstance(metric, dict) or not metric.get("name"):
        raise Unprocessable("metric: give {name: KEY, goal: maximize|minimize}")
    goal = metric.get("goal", "maximize")
    if goal not in GOALS:
        raise Unprocessable(f"metric.goal {goal!r}: use maximize or minimize")
    params = config.get("parameters") or {}
    if not isinstance(params, dict) or not params:
        raise Unprocessable("parameters: give at least one parameter")
    searched: dict[str, BaseDistribution] = {}
    fixed: dict[str, Any] = {}
    for name, p in params.items():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", str(name)):
            raise Unprocessable(f"parameter name {name!r} is not usable as a --flag")
        if not isinstance(p, dict):
            raise Unprocessable(f"parameter {name!r}: give value, values, or min and max")
        dist = _distribution(name, p)
        if dist is None:
            fixed[name] = p["value"]
        else:
            searched[name] = dist
    grid = None
    if method == "grid":
        bad = [n for n, d in searched.items() if not isinstance(d, CategoricalDistribution)]
        if bad:
            raise Unprocessable(f"method grid needs values lists; {', '.join(bad)} are ranges")
        grid = {n: list(d.choices) for n, d in searched.items()}  # type: ignore[attr-defined]
    size = math.prod(len(v) for v in grid.values()) if grid else None
    run_cap = _whole(config.get("run_cap", size or DEFAULT_RUN_CAP), "run_cap")
    if size is not None:
        run_cap = min(run_cap, size)
    parallelism = _whole(config.get("parallelism", 1), "parallelism")
    if not 1 <= run_cap <= 10_000 or not 1 <= parallelism <= 1000:
        raise Unprocessable("run_cap must be 1..10000 and parallelism 1..1000")
    early = config.get("early_terminate")
    if early is not None:
        if not isinstance(early, dict) or early.get("type") not in TERMINATORS:
            raise Unprocessable("early_terminate.type: use hyperband, asha or median")
        # make_study reads them as integers (a reduction factor below 2 makes Optuna raise)
        for key, least in (("min_iter", 1), ("eta", 2), ("min_trials", 0)):
            if key in early and not least <= _whole(early[key], f"early_terminate.{key}") <= 10**6:
                raise Unprocessable(f"early_terminate.{key} must be {least}..1000000")
    command = config.get("command") or ["${interpreter}", "${program}", "${args}"]
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        raise Unprocessable("command must be a list of strings")
    if any("${program}" in c for c in command) and not config.get("program"):
        raise Unprocessable("program: name the script to run (or give a command)")
    resources = _mapping(config.get("resources"), "resources")
    job = {k: v for k, v in resources.items() if k in JOB_FIELDS}
    unknown = set(resources) - JOB_FIELDS
    if unknown:
        raise Unprocessable(f"resources: unknown field(s) {', '.join(sorted(unknown))}")
    job["env"] = {str(k): str(v) for k, v in _mapping(config.get("env"), "env").items()}
    try:
        JobCreate(command=["x"], **job)
    except ValidationError as exc:
        raise Unprocessable(f"resources: {exc.errors()[0]['msg']}") from None
    datasets = config.get("datasets") or []
    if not isinstance(datasets, list):
        raise Unprocessable("datasets must be a list of NAME@VERSION")
    return SweepSpec(
        name=str(config.get("name") or f"{method}-{metric['name']}")[:256],
        method=method,
        metric=str(metric["name"]),
        goal=goal,
        searched=searched,
        fixed=fixed,
        grid=grid,
        run_cap=run_cap,
        parallelism=parallelism,
        early_terminate=early,
        command=[c.replace("${program}", str(config.get("program", ""))) for c in command],
        job=job,
        datasets=[str(d) for d in datasets],
    )


def trial_command(spec: SweepSpec, params: dict[str, Any]) -> list[str]:
    """The trial's command line: ``${args}`` becomes ``--name=value`` for each parameter."""

    def text(v: Any) -> str:
        return json.dumps(v) if isinstance(v, list | dict | bool) else str(v)

    out: list[str] = []
    for part in spec.command:
        if part == "${args}":
            out += [f"--{k}={text(v)}" for k, v in params.items()]
        elif part == "${args_no_hyphens}":
            out += [f"{k}={text(v)}" for k, v in params.items()]
        elif part == "${args_json}":
            out.append(json.dumps(params))
        elif part == "${interpreter}":
            out.append("python")
        elif part == "${env}":
            continue
        else:
            out.append(part)
    return out


def make_study(spec: SweepSpec, seed: int) -> optuna.Study:
    """An in-memory study for the sweep's method, goal and early termination."""
    sampler: optuna.samplers.BaseSampler
    if spec.method == "grid":
        assert spec.grid is not None
        sampler = optuna.samplers.GridSampler(spec.grid, seed=seed)
    elif spec.method == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(
            seed=seed, constant_liar=True, n_startup_trials=min(5, max(1, spec.run_cap // 4))
        )
    pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    et = spec.early_terminate or {}
    min_iter = int(et.get("min_iter", 1))
    eta = int(et.get("eta", 3))
    if et.get("type") == "hyperband":
        pruner = optuna.pruners.HyperbandPruner(
            min_resource=min_iter, max_resource=et.get("max_iter", "auto"), reduction_factor=eta
        )
    elif et.get("type") == "asha":
        pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=min_iter, reduction_factor=eta)
    elif et.get("type") == "median":
        pruner = optuna.pruners.MedianPruner(
            n_startup_trials=int(et.get("min_trials", 3)), n_warmup_steps=min_iter
        )
    with warnings.catch_warnings():  # Optuna marks some options experimental
        warnings.simplefilter("ignore")
        return optuna.create_study(
            direction="maximize" if spec.goal == "maximize" else "minimize",
            sampler=sampler,
            pruner=pruner,
        )


def trials_out(session: Session, sweep: Sweep) -> list[TrialOut]:
    """A sweep's trials, in order."""
    rows = session.scalars(
        select(SweepTrial).where(SweepTrial.sweep_id == sweep.id).order_by(SweepTrial.number)
    ).all()
    runs = {
        jid: rid
        for jid, rid in session.execute(
            select(Job.id, Job.run_id).where(Job.id.in_([t.job_id for t in rows]))
        )
    }
    return [
        TrialOut(
            number=t.number,
            params=t.params,
            job_id=t.job_id,
            run_id=runs.get(t.job_id),
            state=t.state,
            value=t.value,
            created_at=t.created_at,
            finished_at=t.finished_at,
        )
        for t in rows
    ]


def sweeps_out(session: Session, sweeps: list[Sweep]) -> list[SweepOut]:
    """Wire form of sweeps with their trials and the best so far."""
    names = auth.user_names(session, {s.created_by for s in sweeps})
    out = []
    for sw in sweeps:
        project = auth.project_by_id(session, sw.project_id)
        trials = trials_out(session, sw)
        scored = [t for t in trials if t.value is not None and t.state == "complete"]
        pick = max if sw.config["metric"].get("goal", "maximize") == "maximize" else min
        out.append(
            SweepOut(
                id=sw.id,
                project=project.name if project else "",
                name=sw.name,
                method=sw.config.get("method", "random"),
                metric=sw.config["metric"]["name"],
                goal=sw.config["metric"].get("goal", "maximize"),
                state=sw.state,
                message=sw.message,
                config=sw.config,
                trials=trials,
                best=pick(scored, key=lambda t: t.value) if scored else None,  # type: ignore[arg-type,return-value]
                user=names.get(sw.created_by, ""),
                created_at=sw.created_at,
                finished_at=sw.finished_at,
            )
        )
    return out


def get_sweep(session: Session, sweep_id: str) -> Sweep:
    """The sweep with ``sweep_id``."""
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise NotFound(f"sweep {sweep_id!r} does not exist")
    return sweep


def list_sweeps(session: Session, project: Project) -> list[Sweep]:
    """A project's sweeps, newest first."""
    stmt = select(Sweep).where(Sweep.project_id == project.id).order_by(Sweep.created_at.desc())
    return list(session.scalars(stmt))


def create_sweep(
    session: Session,
    project: Project,
    config: dict[str, Any],
    snapshot: list[dict[str, Any]],
    datasets: list[dict[str, Any]],
    user_id: str,
) -> Sweep:
    """Record a sweep; the controller starts its trials."""
    spec = parse_config(config)
    sweep = Sweep(
        project_id=project.id,
        name=spec.name,
        config=config,
        template={"snapshot": snapshot, "datasets": datasets},
        created_by=user_id,
    )
    session.add(sweep)
    session.flush()
    return sweep


def stop_sweep(session: Session, sweep: Sweep, state: str, message: str = "") -> list[Job]:
    """End a sweep; returns its trials' jobs still queued or running (for the caller to cancel)."""
    if sweep.state != "running":
        raise Conflict(f"sweep {sweep.id} already ended ({sweep.state})")
    sweep.state, sweep.message, sweep.finished_at = state, message, utcnow()
    return list(
        session.scalars(
            select(Job).where(Job.sweep_id == sweep.id, Job.state.not_in([s.value for s in FINAL]))
        )
    )


def cancel_sweep(
    session: Session, settings: Settings, storage: Storage, sweep: Sweep, state: str, why: str = ""
) -> None:
    """End a sweep and cancel its unfinished trials."""
    for job in stop_sweep(session, sweep, state, why):
        service.request_cancel(session, settings, storage, job, f"sweep {state}: {why}")
    for row in session.scalars(
        select(SweepTrial).where(SweepTrial.sweep_id == sweep.id, SweepTrial.state == "running")
    ):
        row.state, row.finished_at = "cancelled", utcnow()
