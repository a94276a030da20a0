"""Endpoint desired state in the store: the rows, their versions and weights, and the changes to
them, without roles or audit (the use cases in ``serving.service`` check those and call these).

All hard state of serving is here: endpoints, the versions behind each with their share of the
traffic, and the scaling bounds. The controller reads it and reconciles replicas with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard import auth, registry
from shipyard.auth import Project
from shipyard.db import utcnow
from shipyard.errors import Conflict, NotFound, Unprocessable
from shipyard.packages import REFERENCE_FILE, Signature, load_reference
from shipyard.serving.schemas import EndpointDeploy, EndpointOut, ReplicaOut
from shipyard.serving.tables import Endpoint, EndpointVersion
from shipyard.storage import Storage


def find_endpoint(session: Session, name: str, lock: bool = False) -> Endpoint | None:
    """The endpoint called ``name``, if there is one; ``lock`` holds its row (and so its
    versions) until commit.

    Every change of an endpoint's versions takes this lock, the controller's clean-up of
    drained versions included, so the two never update and delete the same row at once.
    """
    stmt = select(Endpoint).where(Endpoint.name == name)
    return session.scalar(stmt.with_for_update() if lock else stmt)


def get_endpoint(session: Session, name: str, lock: bool = False) -> Endpoint:
    """The endpoint called ``name`` (404 otherwise); ``lock``: see ``find_endpoint``."""
    endpoint = find_endpoint(session, name, lock)
    if endpoint is None:
        raise NotFound(f"endpoint {name!r} does not exist")
    return endpoint


def endpoint_by_id(session: Session, endpoint_id: str, lock: bool = False) -> Endpoint | None:
    """The endpoint with ``endpoint_id``, if it still exists (``lock``: see ``find_endpoint``)."""
    return session.get(Endpoint, endpoint_id, with_for_update=lock)


def list_endpoints(session: Session, project_ids: Sequence[str] | None) -> list[Endpoint]:
    """Endpoints of the given projects (None: all), by name."""
    stmt = select(Endpoint).order_by(Endpoint.name)
    if project_ids is not None:
        stmt = stmt.where(Endpoint.project_id.in_(project_ids))
    return list(session.scalars(stmt))


def versions(session: Session, endpoint: Endpoint) -> list[EndpointVersion]:
    """The versions behind an endpoint, oldest deployment first."""
    return list(
        session.scalars(
            select(EndpointVersion)
            .where(EndpointVersion.endpoint_id == endpoint.id)
            .order_by(EndpointVersion.deployed_at, EndpointVersion.version)
        )
    )


def signatures(
    session: Session, endpoint: Endpoint, numbers: Sequence[int]
) -> dict[int, Signature]:
    """The signature of each of the endpoint's model versions ``numbers``."""
    model = registry.model_by_id(session, endpoint.model_id)
    return {
        n: Signature.from_dict(registry.get_version(session, model, n).signature) for n in numbers
    }


def version_inputs(
    session: Session, storage: Storage, endpoint: Endpoint, version: int
) -> tuple[Signature, dict[str, Any] | None]:
    """A deployed version's signature and the reference data of its package (None: none)."""
    model = registry.model_by_id(session, endpoint.model_id)
    row = registry.get_version(session, model, version)
    signature = Signature.from_dict(row.signature)
    if REFERENCE_FILE not in (row.files or {}):
        return signature, None
    data = storage.read_bytes(registry.version_path(model, version) + REFERENCE_FILE)
    return signature, load_reference(data)


def package_files(session: Session, model_id: str, version: int) -> tuple[str, list[str]]:
    """Where a model version's package lies in the blob store, and its files."""
    model = registry.model_by_id(session, model_id)
    files = list(registry.get_version(session, model, version).files)
    return registry.version_path(model, version), files


def traffic(session: Session, endpoint: Endpoint) -> dict[int, int]:
    """``{version: percent}`` of the versions with traffic."""
    return {v.version: v.weight for v in versions(session, endpoint) if v.weight > 0}


def _apply_scaling(endpoint: Endpoint, body: EndpointDeploy) -> None:
    if body.replicas is not None:
        endpoint.min_replicas = endpoint.max_replicas = body.replicas
    if body.min_replicas is not None:
        endpoint.min_replicas = body.min_replicas
    if body.max_replicas is not None:
        endpoint.max_replicas = body.max_replicas
    if endpoint.max_replicas < max(endpoint.min_replicas, 1):
        raise Unprocessable(
            f"max_replicas ({endpoint.max_replicas}) must be at least "
            f"min_replicas ({endpoint.min_replicas}) and 1"
        )
    for field in ("target_in_flight", "idle_timeout_s", "max_batch_size", "max_delay_ms"):
        value = getattr(body, field)
        if value is not None:
            setattr(endpoint, field, value)


def roll_out(
    session: Session, project: Project, body: EndpointDeploy, user_id: str
) -> tuple[Endpoint, int, dict[int, int]]:
    """Create the endpoint or roll it to a version; returns it, the version, the old traffic.

    Without ``canary`` the new version takes all the traffic and the others drain (they keep
    serving until the new version has a ready replica, then stop). With ``canary=N`` the new
    version takes N percent and the others share the rest in their current proportions.
    """
    model = registry.get_model(session, project, body.model)
    if body.alias is not None:
        number = registry.resolve(
            session, f"models:/{project.name}/{model.name}@{body.alias}", None
        ).version.version
    else:
        assert body.version is not None
        number = body.version
    if registry.get_version(session, model, number).status != "ready":
        raise Unprocessable(f"version {number} of {model.name!r} is archived")
    endpoint = find_endpoint(session, body.name, lock=True)
    if endpoint is None:
        endpoint = Endpoint(
            name=body.name,
            project_id=project.id,
            model_id=model.id,
            model_name=model.name,
            created_by=user_id,
            min_replicas=1,
            max_replicas=1,
            target_in_flight=8.0,
            idle_timeout_s=300.0,
            max_batch_size=32,
            max_delay_ms=5.0,
        )
        session.add(endpoint)
        before: dict[int, int] = {}
    else:
        if endpoint.project_id != project.id or endpoint.model_id != model.id:
            raise Conflict(
                f"endpoint {body.name!r} already serves model "
                f"{endpoint.model_name!r}; pick another endpoint name"
            )
        before = traffic(session, endpoint)
    _apply_scaling(endpoint, body)
    endpoint.updated_at = utcnow()
    session.flush()
    rows = {v.version: v for v in versions(session, endpoint)}
    if body.canary is not None and before:
        rest = 100 - body.canary
        total = sum(w for v, w in before.items() if v != number) or 1
        for v, row in rows.items():
            row.weight = round(rest * before.get(v, 0) / total) if v != number else 0
        share = body.canary
    else:
        for row in rows.values():
            row.weight = 0
        share = 100
    existing = rows.get(number)
    if existing is None:
        session.add(EndpointVersion(endpoint_id=endpoint.id, version=number, weight=share))
    else:
        existing.weight, existing.deployed_at = share, utcnow()
    _normalise(session, endpoint)
    return endpoint, number, before


def _normalise(session: Session, endpoint: Endpoint) -> None:
    """Make weights add up to 100 exactly (rounding goes to the largest share)."""
    session.flush()
    rows = [v for v in versions(session, endpoint) if v.weight > 0]
    if rows:
        biggest = max(rows, key=lambda v: v.weight)
        biggest.weight += 100 - sum(v.weight for v in rows)


def set_weights(session: Session, endpoint: Endpoint, weights: dict[int, int]) -> dict[int, int]:
    """Split traffic by explicit percentages over deployed versions; returns the old split."""
    rows = {v.version: v for v in versions(session, endpoint)}
    unknown = set(weights) - set(rows)
    if unknown:
        raise NotFound(
            f"endpoint {endpoint.name!r} has no version(s) {sorted(unknown)}; deploy them first"
        )
    if any(w < 0 for w in weights.values()) or sum(weights.values()) != 100:
        raise Unprocessable(f"weights must be non-negative and add up to 100, got {weights}")
    before = traffic(session, endpoint)
    for v, row in rows.items():
        row.weight = weights.get(v, 0)
    endpoint.updated_at = utcnow()
    return before


def previous_version(session: Session, endpoint: Endpoint) -> int:
    """The version deployed before the newest (what a rollback goes back to)."""
    rows = versions(session, endpoint)
    if len(rows) < 2:
        raise Conflict(f"endpoint {endpoint.name!r} has no earlier version to roll back to")
    return rows[-2].version


def set_scaling(
    endpoint: Endpoint,
    min_replicas: int,
    max_replicas: int,
    target_in_flight: float | None,
    idle_timeout_s: float | None,
) -> dict[str, Any]:
    """Set the autoscaling bounds (``min_replicas=0`` allows scale to zero); the old bounds."""
    if max_replicas < max(min_replicas, 1):
        raise Unprocessable("max_replicas must be at least min_replicas and 1")
    before = {"min_replicas": endpoint.min_replicas, "max_replicas": endpoint.max_replicas}
    endpoint.min_replicas, endpoint.max_replicas = min_replicas, max_replicas
    if target_in_flight is not None:
        endpoint.target_in_flight = target_in_flight
    if idle_timeout_s is not None:
        endpoint.idle_timeout_s = idle_timeout_s
    endpoint.updated_at = utcnow()
    return before


def drop_versions(session: Session, endpoint: Endpoint, numbers: Sequence[int]) -> list[int]:
    """Forget drained versions (weight 0) among ``numbers``; the ones forgotten."""
    dropped = []
    for number in numbers:
        row = session.get(EndpointVersion, (endpoint.id, number), populate_existing=True)
        if row is not None and row.weight == 0:
            session.delete(row)
            dropped.append(number)
    return dropped


def endpoint_out(
    session: Session, endpoint: Endpoint, replicas: Sequence[ReplicaOut] = ()
) -> EndpointOut:
    """Wire form of an endpoint with its live replicas."""
    project = auth.project_by_id(session, endpoint.project_id)
    return EndpointOut(
        name=endpoint.name,
        project=project.name if project else "",
        model=endpoint.model_name,
        traffic=traffic(session, endpoint),
        min_replicas=endpoint.min_replicas,
        max_replicas=endpoint.max_replicas,
        target_in_flight=endpoint.target_in_flight,
        idle_timeout_s=endpoint.idle_timeout_s,
        max_batch_size=endpoint.max_batch_size,
        max_delay_ms=endpoint.max_delay_ms,
        replicas=list(replicas),
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )
