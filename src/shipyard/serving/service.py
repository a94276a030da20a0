"""The use cases of serving: each takes the actor, checks its role in the endpoint's project,
makes the change and writes the audit record, in the caller's transaction.

Maintainers deploy and roll endpoints, split their traffic, promote, roll back, scale and delete
them; viewers read them (their live replicas, recent traffic, predictions and drift) and invoke
them. The API, the UI and the server's own services call these alike: the serving controller
forgets drained versions as ``auth.system_actor("serving controller")``. A change of the desired
state is taken in by the controller's next pass; a caller that replies right after it waits for
that pass with ``Serving.settle()`` once its transaction committed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from shipyard import audit, auth
from shipyard.auth import Actor, Project, Role
from shipyard.db import Database
from shipyard.serving import store
from shipyard.serving.schemas import (
    DriftOut,
    EndpointDeploy,
    EndpointOut,
    PredictionOut,
    StatsOut,
)
from shipyard.serving.tables import Endpoint

if TYPE_CHECKING:
    from shipyard.serving.controller import EndpointState
    from shipyard.serving.runtime import Serving

ACCESS_CACHE_S = 10.0  # a role taken away stops an invocation within this


def require_endpoint(
    session: Session, actor: Actor, name: str, needed: Role
) -> tuple[Endpoint, Project]:
    """The endpoint and its project, when the actor has ``needed`` in it (404/403 otherwise).
    For a change (maintainer and above) the endpoint's row is locked until commit, against the
    controller's clean-up."""
    endpoint = store.get_endpoint(session, name, lock=needed >= Role.maintainer)
    project = auth.project_by_id(session, endpoint.project_id)
    auth.require_role(session, actor, project, needed)
    return endpoint, project


def endpoints_of(session: Session, project_ids: Sequence[str] | None) -> list[Endpoint]:
    """Endpoints of the given projects (None: all), by name; no role check: for a caller that
    checked (a project's model page) and for the controller."""
    return store.list_endpoints(session, project_ids)


def _record(
    session: Session,
    actor: Actor,
    action: str,
    project: Project,
    name: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    audit.record(
        session,
        actor,
        action,
        "endpoint",
        name,
        project_id=project.id,
        project=project.name,
        before=before,
        after=after,
    )


def _forget_idle(session: Session, sv: Serving, endpoint: Endpoint) -> None:
    """Drop the versions a change left without traffic that no replica of this server runs:
    there is nothing to drain, so they go with the change (and its audit record) rather than
    in a clean-up of the controller's later."""
    idle = [
        v.version
        for v in store.versions(session, endpoint)
        if v.weight == 0 and not sv.has_replicas(endpoint.name, v.version)
    ]
    if idle:
        store.drop_versions(session, endpoint, idle)
        session.flush()


# -- changes (maintainers) ----------------------------------------------------------------------


def deploy(session: Session, actor: Actor, sv: Serving, body: EndpointDeploy) -> EndpointOut:
    """Create an endpoint, or roll it to another version (``canary`` to split the traffic)."""
    project = auth.require_project(session, actor, body.project, Role.maintainer)
    endpoint, version, before = store.roll_out(session, project, body, actor.user_id)
    _record(
        session,
        actor,
        "endpoint.deploy",
        project,
        endpoint.name,
        before={"traffic": before} if before else None,
        after={"version": version, "traffic": store.traffic(session, endpoint)},
    )
    _forget_idle(session, sv, endpoint)
    return sv.live(session, endpoint)


def set_traffic(
    session: Session, actor: Actor, sv: Serving, name: str, weights: dict[int, int]
) -> EndpointOut:
    """Split traffic between deployed versions (percentages adding up to 100)."""
    endpoint, project = require_endpoint(session, actor, name, Role.maintainer)
    before = store.set_weights(session, endpoint, weights)
    _record(
        session,
        actor,
        "endpoint.traffic",
        project,
        name,
        before={"traffic": before},
        after={"traffic": weights},
    )
    session.flush()
    _forget_idle(session, sv, endpoint)
    return sv.live(session, endpoint)


def promote(session: Session, actor: Actor, sv: Serving, name: str, version: int) -> EndpointOut:
    """Give one deployed version all the traffic; the others drain and stop."""
    endpoint, project = require_endpoint(session, actor, name, Role.maintainer)
    before = store.set_weights(session, endpoint, {version: 100})
    _record(
        session,
        actor,
        "endpoint.promote",
        project,
        name,
        before={"traffic": before},
        after={"version": version},
    )
    session.flush()
    _forget_idle(session, sv, endpoint)
    return sv.live(session, endpoint)


def rollback(session: Session, actor: Actor, sv: Serving, name: str) -> EndpointOut:
    """Send all traffic back to the version deployed before the newest."""
    endpoint, project = require_endpoint(session, actor, name, Role.maintainer)
    before = store.set_weights(session, endpoint, {store.previous_version(session, endpoint): 100})
    session.flush()
    _record(
        session,
        actor,
        "endpoint.rollback",
        project,
        name,
        before={"traffic": before},
        after={"traffic": store.traffic(session, endpoint)},
    )
    _forget_idle(session, sv, endpoint)
    return sv.live(session, endpoint)


def scale(
    session: Session,
    actor: Actor,
    sv: Serving,
    name: str,
    min_replicas: int,
    max_replicas: int,
    target_in_flight: float | None = None,
    idle_timeout_s: float | None = None,
) -> EndpointOut:
    """Autoscaling bounds: between ``min_replicas`` and ``max_replicas`` (0 scales to zero)."""
    endpoint, project = require_endpoint(session, actor, name, Role.maintainer)
    before = store.set_scaling(
        endpoint, min_replicas, max_replicas, target_in_flight, idle_timeout_s
    )
    after: dict[str, Any] = {"min_replicas": min_replicas, "max_replicas": max_replicas}
    if target_in_flight is not None:
        after["target_in_flight"] = target_in_flight
    if idle_timeout_s is not None:
        after["idle_timeout_s"] = idle_timeout_s
    _record(session, actor, "endpoint.scale", project, name, before=before, after=after)
    return sv.live(session, endpoint)


def delete_endpoint(session: Session, actor: Actor, name: str) -> None:
    """Delete an endpoint; its replicas stop (at the controller's next pass)."""
    endpoint, project = require_endpoint(session, actor, name, Role.maintainer)
    before = store.traffic(session, endpoint)
    session.delete(endpoint)
    _record(session, actor, "endpoint.delete", project, name, before={"traffic": before})


def drop_drained(
    session: Session, actor: Actor, endpoint_id: str, numbers: Sequence[int]
) -> list[int]:
    """Forget versions of an endpoint that drained (no traffic, and their replicas stopped):
    the controller's clean-up, one audit record a version; the ones forgotten. An endpoint
    deleted meanwhile has nothing left to forget."""
    endpoint = store.endpoint_by_id(session, endpoint_id, lock=True)
    if endpoint is None:
        return []
    project = auth.project_by_id(session, endpoint.project_id)
    auth.require_role(session, actor, project, Role.maintainer)
    dropped = store.drop_versions(session, endpoint, numbers)
    for number in dropped:
        _record(
            session,
            actor,
            "endpoint.version.drop",
            project,
            endpoint.name,
            before={"version": number, "weight": 0},
        )
    return dropped


# -- reads (viewers) ----------------------------------------------------------------------------


def list_endpoints(
    session: Session, actor: Actor, sv: Serving, project: str | None = None
) -> list[EndpointOut]:
    """Endpoints of one project, or of every project the actor can read, with live replicas."""
    if project is not None:
        ids: list[str] | None = [auth.require_project(session, actor, project, Role.viewer).id]
    else:
        ids = auth.visible_projects(session, actor)
    return [sv.live(session, e) for e in store.list_endpoints(session, ids)]


def get_endpoint(session: Session, actor: Actor, sv: Serving, name: str) -> EndpointOut:
    """An endpoint: traffic split, scaling bounds and live replicas."""
    endpoint, _ = require_endpoint(session, actor, name, Role.viewer)
    return sv.live(session, endpoint)


def endpoint_stats(
    session: Session, actor: Actor, sv: Serving, name: str, window_s: int, step_s: int
) -> StatsOut:
    """The endpoint's recent requests, step by step and as one (this server's memory)."""
    require_endpoint(session, actor, name, Role.viewer)
    return sv.series(name, window_s, step_s)


def recent_predictions(
    session: Session, actor: Actor, sv: Serving, name: str, limit: int
) -> list[PredictionOut]:
    """The endpoint's latest requests and replies, newest first."""
    require_endpoint(session, actor, name, Role.viewer)
    return sv.predictions(name, limit)


def endpoint_drift(session: Session, actor: Actor, sv: Serving, name: str) -> DriftOut:
    """Input drift of each deployed version of the endpoint."""
    endpoint, _ = require_endpoint(session, actor, name, Role.viewer)
    return sv.drift(session, endpoint)


# -- invoking (viewers) -------------------------------------------------------------------------


def may_invoke(db: Database, sv: Serving, actor: Actor, name: str) -> EndpointState:
    """The live state of endpoint ``name`` when the actor may invoke it: viewers of its
    project (404 for no such endpoint, 403 otherwise).

    On the path of every inference request, so it takes no store session when it need not: an
    admin passes at once, and a pass is remembered for ``ACCESS_CACHE_S`` by user, job token
    and project (a job's token reaches less than its user)."""
    state = sv.state(name)
    if actor.is_admin:
        return state
    key = (actor.user_id, actor.scope.job_id if actor.scope else "", state.project_id)
    if sv.access.get(key, 0.0) > time.monotonic():
        return state
    with db.read() as s:
        auth.check_role(s, actor, state.project_id, Role.viewer, f"endpoint {name!r}'s project")
    sv.access[key] = time.monotonic() + ACCESS_CACHE_S
    return state
