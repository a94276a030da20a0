"""Routes of endpoint management: deploy, traffic, promote, rollback, scale, delete (maintainers)
and the endpoints' live state: replicas, recent traffic, predictions, drift (viewers).

Each parses the request, calls the use case in ``serving.service`` and renders its answer; a
change waits (``Serving.settle``) until the controller has taken it in, so a request right
after the reply is routed by the new state. The inference protocols are ``serving.inference``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from shipyard.auth import ActorDep, RuntimeDep
from shipyard.serving import service
from shipyard.serving.runtime import ServingDep
from shipyard.serving.schemas import (
    DriftOut,
    EndpointDeploy,
    EndpointOut,
    PredictionOut,
    Promote,
    Scale,
    StatsOut,
    Traffic,
)
from shipyard.serving.traffic import WINDOW_S

router = APIRouter(tags=["serving"])


@router.post("/api/endpoints", response_model=EndpointOut, status_code=201)
def deploy(body: EndpointDeploy, caller: ActorDep, rt: RuntimeDep, sv: ServingDep) -> EndpointOut:
    """Create an endpoint, or roll it to another version (``canary`` to split the traffic)."""
    with rt.db.session() as s:
        out = service.deploy(s, caller, sv, body)
    sv.settle()  # a request right after the reply finds the endpoint and version
    return out.model_copy(update={"replicas": sv.replicas(out.name)})


@router.get("/api/endpoints", response_model=list[EndpointOut])
def list_endpoints(
    caller: ActorDep, rt: RuntimeDep, sv: ServingDep, project: str | None = None
) -> list[EndpointOut]:
    """Endpoints of one project, or of every project the caller can read."""
    with rt.db.read() as s:
        return service.list_endpoints(s, caller, sv, project)


@router.get("/api/endpoints/{name}", response_model=EndpointOut)
def get_endpoint(name: str, caller: ActorDep, rt: RuntimeDep, sv: ServingDep) -> EndpointOut:
    """An endpoint: traffic split, scaling bounds and live replicas."""
    with rt.db.read() as s:
        return service.get_endpoint(s, caller, sv, name)


@router.get("/api/endpoints/{name}/stats", response_model=StatsOut)
def endpoint_stats(
    name: str,
    caller: ActorDep,
    rt: RuntimeDep,
    sv: ServingDep,
    window_s: Annotated[int, Query(ge=10, le=WINDOW_S)] = 300,
    step_s: Annotated[int, Query(ge=1, le=60)] = 1,
) -> StatsOut:
    """Requests per second, error ratio and p50/p95/p99 latency over the last ``window_s``
    seconds, as this server routed them (its memory: it starts empty after a restart)."""
    with rt.db.read() as s:
        return service.endpoint_stats(s, caller, sv, name, window_s, step_s)


@router.get("/api/endpoints/{name}/predictions", response_model=list[PredictionOut])
def recent_predictions(
    name: str,
    caller: ActorDep,
    rt: RuntimeDep,
    sv: ServingDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> list[PredictionOut]:
    """The endpoint's latest requests and replies, newest first (``SHIPYARD_SERVING_SAMPLE_SIZE``
    of them are kept, each body cut to its first 2 KiB)."""
    with rt.db.read() as s:
        return service.recent_predictions(s, caller, sv, name, limit)


@router.get("/api/endpoints/{name}/drift", response_model=DriftOut)
def endpoint_drift(name: str, caller: ActorDep, rt: RuntimeDep, sv: ServingDep) -> DriftOut:
    """Input drift of each deployed version: its latest answered requests (this server's
    memory, ``SHIPYARD_SERVING_DRIFT_WINDOW`` of them) against the reference data in its
    package, feature by feature (PSI and KS), most drifted first."""
    with rt.db.read() as s:
        return service.endpoint_drift(s, caller, sv, name)


@router.delete("/api/endpoints/{name}", status_code=204)
def delete_endpoint(name: str, caller: ActorDep, rt: RuntimeDep, sv: ServingDep) -> None:
    """Delete an endpoint; its replicas stop."""
    with rt.db.session() as s:
        service.delete_endpoint(s, caller, name)
    sv.settle()


@router.put("/api/endpoints/{name}/traffic", response_model=EndpointOut)
def set_traffic(
    name: str, body: Traffic, caller: ActorDep, rt: RuntimeDep, sv: ServingDep
) -> EndpointOut:
    """Split traffic between deployed versions (percentages adding up to 100)."""
    with rt.db.session() as s:
        out = service.set_traffic(s, caller, sv, name, body.weights)
    sv.settle()
    return out


@router.post("/api/endpoints/{name}/promote", response_model=EndpointOut)
def promote(
    name: str, body: Promote, caller: ActorDep, rt: RuntimeDep, sv: ServingDep
) -> EndpointOut:
    """Give one version all the traffic; the others drain and stop."""
    with rt.db.session() as s:
        out = service.promote(s, caller, sv, name, body.version)
    sv.settle()
    return out


@router.post("/api/endpoints/{name}/rollback", response_model=EndpointOut)
def rollback(name: str, caller: ActorDep, rt: RuntimeDep, sv: ServingDep) -> EndpointOut:
    """Send all traffic back to the version deployed before the newest."""
    with rt.db.session() as s:
        out = service.rollback(s, caller, sv, name)
    sv.settle()
    return out


@router.put("/api/endpoints/{name}/scale", response_model=EndpointOut)
def scale(name: str, body: Scale, caller: ActorDep, rt: RuntimeDep, sv: ServingDep) -> EndpointOut:
    """Autoscaling bounds: between ``min_replicas`` and ``max_replicas`` (0 scales to zero)."""
    with rt.db.session() as s:
        out = service.scale(
            s,
            caller,
            sv,
            name,
            body.min_replicas,
            body.max_replicas,
            body.target_in_flight,
            body.idle_timeout_s,
        )
    sv.settle()
    return out
