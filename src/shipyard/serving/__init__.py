"""Serving: model versions as inference endpoints (replicas, batching, canary, protocols).

The use cases (``deploy``, ``set_traffic``, ``promote``, ``rollback``, ``scale``,
``delete_endpoint`` for maintainers; the reads and ``may_invoke`` for viewers) take the actor,
check its role, make the change and write the audit record; ``Serving`` is an endpoint's live
state on this server (replicas, recent traffic, predictions, drift) for the server's own
services, which have no role to check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.surface import exports, names

if TYPE_CHECKING:
    from shipyard.serving.drift import measured_totals as measured_totals
    from shipyard.serving.metrics import ServingMetrics as ServingMetrics
    from shipyard.serving.runtime import Serving as Serving
    from shipyard.serving.runtime import ServingDep as ServingDep
    from shipyard.serving.schemas import DriftOut as DriftOut
    from shipyard.serving.schemas import EndpointDeploy as EndpointDeploy
    from shipyard.serving.schemas import EndpointOut as EndpointOut
    from shipyard.serving.schemas import PredictionOut as PredictionOut
    from shipyard.serving.schemas import ReplicaOut as ReplicaOut
    from shipyard.serving.schemas import StatsOut as StatsOut
    from shipyard.serving.schemas import StatsSummary as StatsSummary
    from shipyard.serving.service import delete_endpoint as delete_endpoint
    from shipyard.serving.service import deploy as deploy
    from shipyard.serving.service import drop_drained as drop_drained
    from shipyard.serving.service import endpoint_drift as endpoint_drift
    from shipyard.serving.service import endpoint_stats as endpoint_stats
    from shipyard.serving.service import endpoints_of as endpoints_of
    from shipyard.serving.service import get_endpoint as get_endpoint
    from shipyard.serving.service import list_endpoints as list_endpoints
    from shipyard.serving.service import may_invoke as may_invoke
    from shipyard.serving.service import promote as promote
    from shipyard.serving.service import recent_predictions as recent_predictions
    from shipyard.serving.service import require_endpoint as require_endpoint
    from shipyard.serving.service import rollback as rollback
    from shipyard.serving.service import scale as scale
    from shipyard.serving.service import set_traffic as set_traffic
    from shipyard.serving.store import find_endpoint as find_endpoint
    from shipyard.serving.store import versions as versions
    from shipyard.serving.tables import Endpoint as Endpoint
    from shipyard.serving.traffic import WINDOW_S as WINDOW_S

_SURFACE = {
    "drift": ["measured_totals"],
    "metrics": ["ServingMetrics"],
    "runtime": ["Serving", "ServingDep"],
    "schemas": [
        "DriftOut",
        "EndpointDeploy",
        "EndpointOut",
        "PredictionOut",
        "ReplicaOut",
        "StatsOut",
        "StatsSummary",
    ],
    "service": [
        "delete_endpoint",
        "deploy",
        "drop_drained",
        "endpoint_drift",
        "endpoint_stats",
        "endpoints_of",
        "get_endpoint",
        "list_endpoints",
        "may_invoke",
        "promote",
        "recent_predictions",
        "require_endpoint",
        "rollback",
        "scale",
        "set_traffic",
    ],
    "store": ["find_endpoint", "versions"],  # reads without a role check, for a caller that did
    "tables": ["Endpoint"],
    "traffic": ["WINDOW_S"],
}
__all__ = names(_SURFACE)
__getattr__ = exports(__name__, _SURFACE)
