"""Routes of sweeps: create from a sweep.yaml, list, show trials and the best, cancel.

Creating needs the developer role, reading the viewer role; a sweep is cancelled by its creator
or a maintainer. Creating and cancelling are audited; the trial jobs a sweep submits are its
consequence (their submitter is the sweep's creator), not separate records.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from shipyard import audit, auth
from shipyard.auth import ActorDep, Role, RuntimeDep
from shipyard.jobs import service, sweeps
from shipyard.jobs.api import poke, resolve_datasets
from shipyard.jobs.schemas import SweepCreate, SweepOut

router = APIRouter(prefix="/api", tags=["sweeps"])


@router.post("/projects/{project}/sweeps", response_model=SweepOut, status_code=201)
def create_sweep(
    project: str, body: SweepCreate, request: Request, caller: ActorDep, rt: RuntimeDep
) -> SweepOut:
    """Start a sweep: trials are submitted as jobs, ``parallelism`` at a time."""
    with rt.db.session() as s:
        p = auth.require_project(s, caller, project, Role.developer)
        spec = sweeps.parse_config(body.config)
        service.check_snapshot(s, rt.settings, p, body.snapshot)
        datasets = resolve_datasets(s, caller, p, spec.datasets)
        sweep = sweeps.create_sweep(
            s, p, body.config, [f.model_dump() for f in body.snapshot], datasets, caller.user_id
        )
        audit.record(
            s,
            caller,
            "sweep.create",
            "sweep",
            sweep.id,
            project_id=p.id,
            project=p.name,
            after={"name": sweep.name, "method": spec.method, "run_cap": spec.run_cap},
        )
        out = sweeps.sweeps_out(s, [sweep])[0]
    poke(request, "sweeper")
    return out


@router.get("/projects/{project}/sweeps", response_model=list[SweepOut])
def list_sweeps(project: str, caller: ActorDep, rt: RuntimeDep) -> list[SweepOut]:
    """A project's sweeps, newest first, with their trials."""
    with rt.db.read() as s:
        p = auth.require_project(s, caller, project, Role.viewer)
        return sweeps.sweeps_out(s, sweeps.list_sweeps(s, p))


@router.get("/sweeps/{sweep_id}", response_model=SweepOut)
def get_sweep(sweep_id: str, caller: ActorDep, rt: RuntimeDep) -> SweepOut:
    """A sweep: its trials (parameters, job, run, state, metric) and the best so far."""
    with rt.db.read() as s:
        sweep = sweeps.get_sweep(s, sweep_id)
        auth.check_role(s, caller, sweep.project_id, Role.viewer, "the sweep's project")
        return sweeps.sweeps_out(s, [sweep])[0]


@router.post("/sweeps/{sweep_id}/cancel", response_model=SweepOut)
def cancel_sweep(sweep_id: str, request: Request, caller: ActorDep, rt: RuntimeDep) -> SweepOut:
    """Stop a sweep and cancel its unfinished trials (its creator or a maintainer)."""
    with rt.db.session() as s:
        sweep = sweeps.get_sweep(s, sweep_id)
        needed = Role.developer if sweep.created_by == caller.user_id else Role.maintainer
        auth.check_role(s, caller, sweep.project_id, Role.viewer, "the sweep's project")
        auth.check_role(s, caller, sweep.project_id, needed, "the sweep's project")
        sweeps.cancel_sweep(s, rt.settings, rt.storage, sweep, "cancelled", "cancelled by a user")
        audit.record(
            s,
            caller,
            "sweep.cancel",
            "sweep",
            sweep.id,
            project_id=sweep.project_id,
            after={"state": sweep.state},
        )
        out = sweeps.sweeps_out(s, [sweep])[0]
    poke(request)
    return out
