"""Serving at run time: this server's controller and router, and what they know of each endpoint.

``Serving`` is the one entry point to an endpoint's live state for the rest of the server (the
API, the UI, the alert evaluator): its replicas, its recent traffic (``stats``, ``series``), its
latest predictions and the input drift of its versions. State owned: a short cache of who may
invoke what (``serving.service.may_invoke``) and the versions' reference data for drift
(versions never change). No role is checked here: the use cases in ``serving.service`` check
the actor's before they read through this; the server's own services read it directly.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from shipyard.config import Settings
from shipyard.packages import Signature
from shipyard.serving import drift, store
from shipyard.serving.controller import Controller, EndpointState
from shipyard.serving.metrics import ServingMetrics
from shipyard.serving.router import Router
from shipyard.serving.schemas import (
    DriftOut,
    EndpointOut,
    PredictionOut,
    ReplicaOut,
    StatsOut,
    StatsSummary,
)
from shipyard.serving.tables import Endpoint
from shipyard.serving.traffic import EndpointTraffic

VersionInputs = tuple[Signature, dict[str, np.ndarray] | None]
EMPTY = EndpointTraffic(0)  # what an endpoint that answered nothing yet looks like


class Serving:
    """The controller and router of this server, and the reads of an endpoint's live state."""

    def __init__(self, controller: Controller, router: Router, settings: Settings) -> None:
        self.controller = controller
        self.router = router
        self.settings = settings
        self.access: dict[tuple[str, str, str], float] = {}  # (user, job, project) -> until
        # (model id, version) -> signature and reference data; versions never change.
        self.references: dict[tuple[str, int], VersionInputs] = {}

    @property
    def metrics(self) -> ServingMetrics:
        """The endpoint series on the server's Prometheus registry."""
        return self.router.metrics

    def state(self, name: str) -> EndpointState:
        """The live state of an endpoint (404 when this server routes no such endpoint)."""
        return self.router.state(name)

    def settle(self) -> bool:
        """Wait until the controller has taken in a change just committed (see
        ``Controller.settle``): a request right after it is routed by the new state."""
        return self.controller.settle()

    def replicas(self, name: str) -> list[ReplicaOut]:
        """What the endpoint's replicas look like now."""
        return self.controller.replicas_of(name)

    def has_replicas(self, name: str, version: int) -> bool:
        """Whether a replica of the endpoint's version runs (or starts, or stops) now."""
        state = self.controller.endpoints.get(name)
        return state is not None and any(r.version == version for r in state.replicas)

    def live(self, session: Session, endpoint: Endpoint) -> EndpointOut:
        """The endpoint as stored, with the replicas this server runs for it now."""
        return store.endpoint_out(session, endpoint, self.replicas(endpoint.name))

    def _traffic(self, name: str) -> EndpointTraffic:
        # ``endpoints.get``, not ``of``: reading an endpoint that served nothing keeps no entry.
        return self.metrics.traffic.endpoints.get(name, EMPTY)

    def stats(self, name: str, window_s: int) -> StatsSummary:
        """The endpoint's last ``window_s`` seconds as one (as this server routed them: its
        memory, empty after a restart): requests, rate, error ratio, latency percentiles."""
        return StatsSummary.model_validate(self._traffic(name).summary(window_s))

    def series(self, name: str, window_s: int, step_s: int) -> StatsOut:
        """The endpoint's last ``window_s`` seconds in steps of ``step_s``, and as one."""
        traffic = self._traffic(name)
        window = StatsSummary.model_validate(traffic.summary(window_s))
        return StatsOut(step_s=step_s, window=window, **traffic.series(window_s, step_s))

    def predictions(self, name: str, limit: int) -> list[PredictionOut]:
        """The endpoint's latest requests and replies, newest first."""
        return [PredictionOut.model_validate(p) for p in self._traffic(name).predictions(limit)]

    def version_inputs(self, session: Session, endpoint: Endpoint) -> dict[int, VersionInputs]:
        """Signature and reference data (None: none) of each deployed version, cached."""
        out = {}
        for row in store.versions(session, endpoint):
            key = (endpoint.model_id, row.version)
            if key not in self.references:
                if len(self.references) >= 64:
                    self.references.clear()
                self.references[key] = store.version_inputs(
                    session, self.controller.storage, endpoint, row.version
                )
            out[row.version] = self.references[key]
        return out

    def drift(self, session: Session, endpoint: Endpoint) -> DriftOut:
        """The input drift of the endpoint's versions: their latest answered requests against
        their packages' reference data. Each measured version's totals are exposed on
        ``/metrics`` too."""
        name, settings = endpoint.name, self.settings
        inputs = self.version_inputs(session, endpoint)
        recent = self._traffic(name).recent_inputs()
        versions = [
            drift.version_drift(
                version,
                signature,
                reference,
                recent.get(str(version), []),
                settings.serving_drift_threshold,
                settings.serving_drift_min_rows,
            )
            for version, (signature, reference) in sorted(inputs.items())
        ]
        for v in versions:
            if v["status"] in drift.MEASURED:
                self.metrics.drift(name, str(v["version"]), *drift.totals(v["features"]))
        return DriftOut.model_validate(
            {
                "threshold": settings.serving_drift_threshold,
                "min_rows": settings.serving_drift_min_rows,
                "window": settings.serving_drift_window,
                "versions": versions,
            }
        )


async def serving_of(request: Request) -> Serving:
    """The request's app's ``Serving`` (a dependency)."""
    sv: Serving = request.app.state.serving
    return sv


ServingDep = Annotated[Serving, Depends(serving_of)]
