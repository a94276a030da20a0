"""Serving's use cases refuse an actor below their least role themselves, whoever calls them
(no HTTP here): each change is refused to a developer and made by a maintainer, each read is
refused to a user with no role and answered to a viewer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from shipyard import serving
from shipyard.audit.tables import AuditRecord
from shipyard.auth import Actor, Role, TokenScope, actor_of
from shipyard.errors import Forbidden
from shipyard.serving import EndpointDeploy, Serving
from shipyard.serving.tables import EndpointVersion
from tests.registry.conftest import World
from tests.serving.conftest import actor

EP = "ep"
QUIET = {"min_replicas": 0, "max_replicas": 1, "idle_timeout_s": 0.01}  # no replica kept up


def deploy(version: int, **more: Any) -> EndpointDeploy:
    return EndpointDeploy(name=EP, project="proj", model="m", version=version, **QUIET, **more)


def refused_then_done(
    w: World, below: str, least: str, change: Callable[[Any, Actor, Serving], object]
) -> object:
    """``change`` refused (Forbidden, nothing written) to ``below``, then made by ``least``."""
    app = w.client.app
    db, sv = app.state.runtime.db, app.state.serving  # type: ignore[attr-defined]
    with pytest.raises(Forbidden), db.session() as s:
        change(s, actor(w, below), sv)
    with db.session() as s:
        return change(s, actor(w, least), sv)


def test_each_change_needs_a_maintainer(world: World) -> None:
    db = world.client.app.state.runtime.db  # type: ignore[attr-defined]
    changes: list[tuple[str, Callable[[Any, Actor, Serving], object]]] = [
        ("endpoint.deploy", lambda s, a, sv: serving.deploy(s, a, sv, deploy(1))),
        ("endpoint.deploy", lambda s, a, sv: serving.deploy(s, a, sv, deploy(2, canary=10))),
        ("endpoint.traffic", lambda s, a, sv: serving.set_traffic(s, a, sv, EP, {1: 50, 2: 50})),
        ("endpoint.rollback", lambda s, a, sv: serving.rollback(s, a, sv, EP)),
        ("endpoint.deploy", lambda s, a, sv: serving.deploy(s, a, sv, deploy(2, canary=10))),
        ("endpoint.promote", lambda s, a, sv: serving.promote(s, a, sv, EP, 2)),
        ("endpoint.scale", lambda s, a, sv: serving.scale(s, a, sv, EP, 0, 2, 4.0)),
    ]
    for _, change in changes:
        refused_then_done(world, "dev", "mona", change)
    with db.read() as s:
        endpoint = serving.find_endpoint(s, EP)
        assert endpoint is not None
        endpoint_id = endpoint.id
    refused_then_done(
        world, "dev", "mona", lambda s, a, sv: serving.drop_drained(s, a, endpoint_id, [1])
    )
    refused_then_done(world, "dev", "mona", lambda s, a, sv: serving.delete_endpoint(s, a, EP))
    with db.read() as s:
        rows = s.scalars(select(AuditRecord).where(AuditRecord.object_type == "endpoint"))
        # (a replica the controller started for v1 meanwhile leaves v1 for drop_drained to forget)
        made = [
            (r.action, r.actor)
            for r in rows.all()
            if r.actor == "mona" and r.action != "endpoint.version.drop"
        ]
    assert made == [(action, "mona") for action, _ in changes] + [("endpoint.delete", "mona")]
    with db.read() as s:
        assert serving.find_endpoint(s, EP) is None


def test_owners_and_admins_change_too(world: World) -> None:
    for who in ("alice", "root"):
        refused_then_done(world, "vic", who, lambda s, a, sv: serving.deploy(s, a, sv, deploy(1)))


def test_the_controller_forgets_only_drained_versions(world: World) -> None:
    """``drop_drained`` forgets a version without traffic, never one with traffic."""
    app = world.client.app
    db, sv = app.state.runtime.db, app.state.serving  # type: ignore[attr-defined]
    with db.session() as s:
        serving.deploy(s, actor(world, "mona"), sv, deploy(1))
    with db.session() as s:
        endpoint = serving.find_endpoint(s, EP)
        assert endpoint is not None
        s.add(EndpointVersion(endpoint_id=endpoint.id, version=2, weight=0))  # draining
        endpoint_id = endpoint.id
    system = actor(world, "root").acting_as("serving controller")
    with db.session() as s:
        assert serving.drop_drained(s, system, endpoint_id, [1, 2]) == [2]
    with db.read() as s:
        assert [v.version for v in serving.versions(s, serving.find_endpoint(s, EP))] == [1]
        record = s.scalars(
            select(AuditRecord).where(AuditRecord.action == "endpoint.version.drop")
        ).one()
    assert (record.actor, record.object_id, record.before) == (
        "serving controller for root",
        EP,
        {"version": 2, "weight": 0},
    )


def test_each_read_and_invoking_need_a_viewer(world: World) -> None:
    app = world.client.app
    db, sv = app.state.runtime.db, app.state.serving  # type: ignore[attr-defined]
    with db.session() as s:
        serving.deploy(s, actor(world, "mona"), sv, deploy(1))
    sv.settle()  # the controller routes it: invoking it looks at its live state
    reads: list[Callable[[Any, Actor, Serving], object]] = [
        lambda s, a, sv: serving.list_endpoints(s, a, sv, "proj"),
        lambda s, a, sv: serving.get_endpoint(s, a, sv, EP),
        lambda s, a, sv: serving.endpoint_stats(s, a, sv, EP, 60, 1),
        lambda s, a, sv: serving.recent_predictions(s, a, sv, EP, 5),
        lambda s, a, sv: serving.endpoint_drift(s, a, sv, EP),
        lambda s, a, sv: serving.require_endpoint(s, a, EP, Role.viewer),
        lambda s, a, sv: serving.may_invoke(db, sv, a, EP),
    ]
    for read in reads:
        refused_then_done(world, "otto", "vic", read)
    with db.read() as s:  # a user with no role sees no endpoint in the list of all
        assert serving.list_endpoints(s, actor(world, "otto"), sv) == []
        assert [e.name for e in serving.list_endpoints(s, actor(world, "vic"), sv)] == [EP]


def test_a_job_token_does_not_ride_on_its_users_cached_access(world: World) -> None:
    """The access cache remembers a pass by user, job token and project: the token of a job of
    another project is refused, even right after its user invoked the endpoint."""
    app = world.client.app
    db, sv = app.state.runtime.db, app.state.serving  # type: ignore[attr-defined]
    with db.session() as s:
        serving.deploy(s, actor(world, "mona"), sv, deploy(1))
    sv.settle()
    vic = actor(world, "vic")
    serving.may_invoke(db, sv, vic, EP)  # remembered
    job = actor_of(vic.user_id, vic.name, False, TokenScope("job1", "another-project", "run1"))
    with pytest.raises(Forbidden, match="the token of job job1 may not"):
        serving.may_invoke(db, sv, job, EP)
