"""Each mutating route writes one audit record with the right actor, in its transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from shipyard.audit.tables import AuditRecord
from tests.jobs import routes as jobs_routes
from tests.registry.conftest import World
from tests.registry.test_authz import LADDER, LEVEL, MATRIX, PNG

# High-volume telemetry is data, not governance: metric batches, heartbeats and images; and
# inference requests change nothing.
TELEMETRY = {
    ("POST", "/api/runs/{run_id}/log"),
    ("POST", "/api/runs/{run_id}/heartbeat"),
    ("POST", "/api/runs/{run_id}/images"),
    ("POST", "/v1/models/{name}:predict"),
    ("POST", "/v1/models/{name}/versions/{version}:predict"),
    ("POST", "/v2/models/{name}/infer"),
    ("POST", "/v2/models/{name}/versions/{version}/infer"),
    ("POST", "/endpoints/{name}/predict"),
    *jobs_routes.TELEMETRY,
}


def records(w: World) -> list[AuditRecord]:
    with w.client.app.state.runtime.db.read() as s:  # type: ignore[attr-defined]
        return list(s.scalars(select(AuditRecord).order_by(AuditRecord.id)))


def count(w: World) -> int:
    with w.client.app.state.runtime.db.read() as s:  # type: ignore[attr-defined]
        return int(s.scalar(select(func.count()).select_from(AuditRecord)) or 0)


def test_each_mutating_route_writes_one_record_with_its_actor(world: World) -> None:
    world.ok(
        "root",
        "POST",
        "/api/endpoints",
        json={
            "name": "ep",
            "project": "proj",
            "model": "m",
            "version": 1,
            "min_replicas": 0,
            "max_replicas": 1,
            "idle_timeout_s": 0.01,
        },
    )
    mutating = {k: v for k, v in MATRIX.items() if k[0] != "GET" and k not in TELEMETRY}
    assert len(mutating) >= 20
    for (method, route), (least, build) in sorted(mutating.items()):
        who = LADDER[max(LEVEL[least], 2)]  # the least role that may, at least a developer
        url, body = build(world, who)
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        if method == "PUT" and "/artifacts/" in route:
            kwargs = {"content": b"data"}
        before = count(world)
        r = world.call(who, method, url, **kwargs)
        assert r.status_code < 300, (method, route, r.status_code, r.text)
        rows = records(world)[before:]
        assert len(rows) == 1, (method, route, [x.action for x in rows])
        assert rows[0].actor == who and rows[0].client == "testclient", (method, route)


def test_telemetry_is_not_audited(world: World) -> None:
    before = count(world)
    world.ok("dev", "POST", f"/api/runs/{world.run_id}/heartbeat")
    world.ok(
        "dev",
        "POST",
        f"/api/runs/{world.run_id}/log",
        json={"batch_id": "z", "metrics": [{"key": "a", "steps": [1], "values": [1]}]},
    )
    world.ok("dev", "POST", f"/api/runs/{world.run_id}/images?key=k", content=PNG)
    assert count(world) == before


def test_refused_mutation_leaves_no_record(world: World) -> None:
    before = count(world)
    r = world.call(
        "dev", "PUT", "/api/projects/proj/models/m/aliases/champion", json={"version": 1}
    )
    assert r.status_code == 403
    r = world.call(
        "mona", "PUT", "/api/projects/proj/models/m/aliases/champion", json={"version": 99}
    )
    assert r.status_code == 404
    assert count(world) == before


def test_records_carry_before_and_after_and_are_queryable(world: World) -> None:
    world.ok("mona", "PUT", "/api/projects/proj/models/m/aliases/champion", json={"version": 1})
    world.ok("mike", "PUT", "/api/projects/proj/models/m/aliases/champion", json={"version": 2})
    rows = world.ok(
        "alice",
        "GET",
        "/api/audit",
        params={"project": "proj", "action": "alias.set", "since": "1h"},
    )
    assert [(r["actor"], r["before"], r["after"]) for r in rows] == [
        ("mike", {"version": 1}, {"version": 2}),
        ("mona", None, {"version": 1}),
    ]
    assert (
        world.ok("alice", "GET", "/api/audit", params={"project": "proj", "actor": "mike"})[0][
            "object_id"
        ]
        == "m@champion"
    )
    assert (
        world.call(
            "alice", "GET", "/api/audit", params={"project": "proj", "since": "soon"}
        ).status_code
        == 422
    )
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        assert world.call("root", method, "/api/audit").status_code == 405
