"""Prometheus series of endpoints: requests, latency, batches, in-flight, replicas, cold starts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shipyard.serving.traffic import RecentTraffic

if TYPE_CHECKING:
    from shipyard.serving.controller import EndpointState


class ServingMetrics:
    """The endpoint series, on the server's registry (labels: endpoint, version)."""

    def __init__(
        self, registry: CollectorRegistry, sample_size: int = 20, drift_window: int = 0
    ) -> None:
        # The last minutes by second, predictions and request bodies for drift, for the UI.
        self.traffic = RecentTraffic(sample_size, drift_window)
        self.requests = Counter(
            "shipyard_endpoint_requests_total",
            "Inference requests by endpoint, version and status.",
            ["endpoint", "version", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "shipyard_endpoint_request_duration_seconds",
            "Inference latency at the router.",
            ["endpoint", "version"],
            registry=registry,
            buckets=(
                0.0005,
                0.001,
                0.0025,
                0.005,
                0.01,
                0.025,
                0.05,
                0.1,
                0.25,
                0.5,
                1,
                2.5,
                5,
                10,
                30,
            ),
        )
        self.batch = Histogram(
            "shipyard_endpoint_batch_size",
            "Rows in the batch each request ran in.",
            ["endpoint", "version"],
            registry=registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )
        self.in_flight = Gauge(
            "shipyard_endpoint_in_flight",
            "Requests in flight or queued at the router.",
            ["endpoint"],
            registry=registry,
        )
        self.replica_count = Gauge(
            "shipyard_endpoint_replicas",
            "Replicas by state.",
            ["endpoint", "version", "state"],
            registry=registry,
        )
        self.cold_starts = Counter(
            "shipyard_endpoint_cold_starts_total",
            "Replicas started while the endpoint had none ready.",
            ["endpoint"],
            registry=registry,
        )
        self.drifted_features = Gauge(
            "shipyard_endpoint_drifted_features",
            "Input features drifted at the last drift report (PSI over the threshold).",
            ["endpoint", "version"],
            registry=registry,
        )
        self.max_psi = Gauge(
            "shipyard_endpoint_max_psi",
            "The largest PSI of any input feature at the last drift report.",
            ["endpoint", "version"],
            registry=registry,
        )

        # Children by label values, for the per-request calls (``labels()`` costs a few
        # microseconds each); an endpoint's entries go with ``forget``.
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *values: str) -> Any:
        key = (id(metric), *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def in_flight_of(self, endpoint: str) -> Gauge:
        """The in-flight gauge of an endpoint."""
        gauge: Gauge = self._child(self.in_flight, endpoint)
        return gauge

    def served(
        self,
        endpoint: str,
        version: str,
        status: int,
        seconds: float,
        batch: int | None,
        request: bytes = b"",
        reply: bytes = b"",
        path: str = "",
    ) -> None:
        """Count one answered request: its status, latency and the size of its batch (and keep
        it in the endpoint's recent traffic, with its bodies for the predictions sample and, sent
        to ``path`` on a replica, for input drift)."""
        self.traffic.of(endpoint).record(version, status, seconds, request, reply, path)
        self._child(self.requests, endpoint, version, str(status)).inc()
        self._child(self.latency, endpoint, version).observe(seconds)
        if batch is not None:
            self._child(self.batch, endpoint, version).observe(batch)

    def drift(self, endpoint: str, version: str, drifted: int, max_psi: float) -> None:
        """Expose a version's last drift report (for Prometheus rules over it)."""
        self._child(self.drifted_features, endpoint, version).set(drifted)
        self._child(self.max_psi, endpoint, version).set(max_psi)

    def cold_start(self, endpoint: str) -> None:
        self.cold_starts.labels(endpoint).inc()

    def replicas(self, state: EndpointState) -> None:
        """Refresh the replica gauges of one endpoint."""
        for version in state.deployed:
            for name in ("starting", "ready", "unhealthy"):
                n = sum(1 for r in state.replicas if r.version == version and r.state == name)
                self.replica_count.labels(state.name, str(version), name).set(n)

    def forget(self, endpoint: str) -> None:
        """Drop the gauges and recent traffic of a deleted endpoint."""
        self.traffic.forget(endpoint)
        self._children = {k: v for k, v in self._children.items() if k[1] != endpoint}
        try:
            self.in_flight.remove(endpoint)
        except KeyError:
            pass
