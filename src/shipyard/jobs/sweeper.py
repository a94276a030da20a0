"""The sweep controller: starts trials, feeds their metrics to the pruner, ends sweeps.

It owns the live search state (an Optuna study per running sweep, in memory, rebuilt from the
``sweep_trials`` table after a restart); the tables hold everything a user sees.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState
from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard import auth
from shipyard.config import Settings
from shipyard.db import Database, utcnow
from shipyard.errors import ShipyardError
from shipyard.jobs import service
from shipyard.jobs.schemas import FINAL, JobCreate, JobState
from shipyard.jobs.sweeps import (
    SweepSpec,
    cancel_sweep,
    hashable,
    make_study,
    parse_config,
    trial_command,
    unhash,
)
from shipyard.jobs.tables import Job, Sweep, SweepTrial
from shipyard.storage import Storage
from shipyard.tracking import metrics
from shipyard.tracking import service as tracking

log = logging.getLogger(__name__)


@dataclass
class Live:
    """A running sweep's search state."""

    spec: SweepSpec
    study: optuna.Study
    trials: dict[int, optuna.Trial] = field(default_factory=dict)
    reported: dict[int, int] = field(default_factory=dict)


def _tell(study: optuna.Study, trial: optuna.Trial, **kwargs: Any) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study.tell(trial, **kwargs)
    except RuntimeError:  # GridSampler asks the study to stop once the grid is covered
        pass


def _searched(spec: SweepSpec, params: dict[str, Any]) -> dict[str, Any]:
    return {k: hashable(params[k]) for k in spec.searched if k in params}


class SweepController:
    """Every ``sweep_interval_s`` (or when poked): advance every running sweep."""

    def __init__(
        self, db: Database, storage: Storage, settings: Settings, poke: Callable[[], None]
    ) -> None:
        self.db, self.storage, self.settings = db, storage, settings
        self.poke_dispatcher = poke
        self.live: dict[str, Live] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        """Advance sweeps soon (one was created)."""
        self._wake.set()

    def _rebuild(self, s: Session, sweep: Sweep) -> Live:
        spec = parse_config(sweep.config)
        rows = s.scalars(
            select(SweepTrial).where(SweepTrial.sweep_id == sweep.id).order_by(SweepTrial.number)
        ).all()
        live = Live(spec, make_study(spec, seed=int(sweep.id[:8], 16) + len(rows)))
        for row in rows:
            params = _searched(spec, row.params)
            if row.state == "running":
                live.study.enqueue_trial(params)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    live.trials[row.id] = live.study.ask(spec.searched)
                continue
            done = row.state == "complete" and row.value is not None
            live.study.add_trial(
                optuna.trial.create_trial(
                    params=params,
                    distributions={k: spec.searched[k] for k in params},
                    value=row.value if done else None,
                    state=TrialState.COMPLETE if done else TrialState.FAIL,
                )
            )
        return live

    def _objective(self, s: Session, job: Job, metric: str) -> float | None:
        if job.run_id is None:
            return None
        summary = tracking.summaries(s, [job.run_id])[job.run_id].get(metric)
        value = summary.last if summary is not None else None
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None

    def advance(self, s: Session, sweep: Sweep) -> int:
        """One step of one sweep; returns how many trials it submitted."""
        live = self.live.get(sweep.id) or self._rebuild(s, sweep)
        self.live[sweep.id] = live
        spec = live.spec
        rows = list(
            s.scalars(
                select(SweepTrial)
                .where(SweepTrial.sweep_id == sweep.id)
                .order_by(SweepTrial.number)
            )
        )
        jobs = {j.id: j for j in s.scalars(select(Job).where(Job.sweep_id == sweep.id))}
        now = utcnow()
        for row in rows:
            if row.state != "running":
                continue
            job, trial = jobs[row.job_id], live.trials.get(row.id)
            if job.state in FINAL:
                if spec.early_terminate and trial is not None:
                    self._report(s, live, row, job, trial)  # its curve guides later pruning
                row.value = self._objective(s, job, spec.metric)
                row.finished_at = now
                if job.state == JobState.succeeded and row.value is not None:
                    row.state = "complete"
                    if trial is not None:
                        _tell(live.study, trial, values=row.value)
                else:
                    row.state = "failed"
                    if trial is not None:
                        _tell(live.study, trial, state=TrialState.FAIL)
                live.trials.pop(row.id, None)
            elif spec.early_terminate and job.state == JobState.running and trial is not None:
                self._maybe_prune(s, live, row, job, trial)
        active = sum(1 for r in rows if r.state == "running")
        total = len(rows)
        submitted = 0
        project = auth.project_by_id(s, sweep.project_id)
        assert project is not None
        while active < spec.parallelism and total < spec.run_cap:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trial = live.study.ask(spec.searched)
            params = {**spec.fixed}
            for k, v in trial.params.items():
                original = spec.searched[k]
                choices = getattr(original, "choices", None)
                raw = sweep.config["parameters"][k].get("values", []) if choices else []
                params[k] = unhash(v, raw) if choices else v
            job_fields = {**spec.job}
            job_fields["env"] = {
                **job_fields.get("env", {}),
                "SHIPYARD_SWEEP_ID": sweep.id,
                "SHIPYARD_SWEEP_TRIAL": str(total),
            }
            body = JobCreate(
                command=trial_command(spec, params),
                snapshot=sweep.template["snapshot"],
                config=params,
                name=f"{sweep.name} #{total}",
                **job_fields,
            )
            job = service.submit(
                s,
                self.settings,
                project,
                body,
                sweep.created_by,
                datasets=sweep.template["datasets"],
                sweep_id=sweep.id,
            )
            row = SweepTrial(sweep_id=sweep.id, number=total, params=params, job_id=job.id)
            s.add(row)
            s.flush()
            live.trials[row.id] = trial
            total += 1
            active += 1
            submitted += 1
        if total >= spec.run_cap and active == 0:
            sweep.state, sweep.finished_at = "finished", now
            self.live.pop(sweep.id, None)
        return submitted

    def _report(
        self, s: Session, live: Live, row: SweepTrial, job: Job, trial: optuna.Trial
    ) -> list[float]:
        """Feed the metric points the trial's run logged since last time to the pruner (the
        n-th point is step n); returns every point."""
        if job.run_id is None:
            return []
        series = metrics.read_series(s, job.run_id, live.spec.metric)
        values: list[float] = [] if series is None else series.value.tolist()
        for i in range(live.reported.get(row.id, 0), len(values)):
            if math.isfinite(values[i]):
                trial.report(float(values[i]), i + 1)
        live.reported[row.id] = row.steps_reported = len(values)
        return values

    def _maybe_prune(
        self, s: Session, live: Live, row: SweepTrial, job: Job, trial: optuna.Trial
    ) -> None:
        seen = live.reported.get(row.id, 0)
        values = self._report(s, live, row, job, trial)
        if len(values) <= seen:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prune = trial.should_prune()
        if not prune:
            return
        kind = (live.spec.early_terminate or {}).get("type")
        row.state, row.finished_at = "pruned", utcnow()
        row.value = next((v for v in reversed(values) if math.isfinite(v)), None)
        _tell(live.study, trial, state=TrialState.PRUNED)
        live.trials.pop(row.id, None)
        why = f"pruned by {kind} early termination after {len(values)} report(s)"
        service.request_cancel(s, self.settings, self.storage, job, why)

    def run_once(self) -> int:
        """Advance every running sweep; how many trials were submitted."""
        with self.db.read() as s:
            ids = list(s.scalars(select(Sweep.id).where(Sweep.state == "running")))
        for gone in set(self.live) - set(ids):  # ended elsewhere (cancelled by a user)
            del self.live[gone]
        submitted = 0
        for sweep_id in ids:
            try:
                with self.db.session() as s:
                    submitted += self.advance(s, s.get(Sweep, sweep_id))  # type: ignore[arg-type]
            except ShipyardError as exc:  # the sweep cannot go on (a quota, a refused job)
                log.warning("sweep %s stopped: %s", sweep_id, exc.detail)
                with self.db.session() as s:
                    sweep = s.get(Sweep, sweep_id)
                    if sweep is not None and sweep.state == "running":
                        cancel_sweep(s, self.settings, self.storage, sweep, "failed", exc.detail)
            except Exception:
                log.exception("sweep %s: pass failed; retrying", sweep_id)
                self.live.pop(sweep_id, None)
        if submitted:
            self.poke_dispatcher()
        return submitted

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("sweep pass failed")
            self._wake.wait(self.settings.sweep_interval_s)
            self._wake.clear()

    def start(self) -> None:
        """Run in a thread."""
        self._thread = threading.Thread(target=self._loop, name="shipyard-sweeps", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)
