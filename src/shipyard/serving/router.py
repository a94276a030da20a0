"""The router: picks a replica for each request and forwards it, with back-pressure and retry.

State owned: per-replica in-flight counts (on the controller's replica objects) and a pool of
keep-alive connections to replicas. A version is drawn by the endpoint's traffic weights among
versions with a ready replica (a draining version still answers until the new one is ready);
within it, the replica with the fewest requests in flight wins. A request that finds no ready
replica wakes the controller (scale from zero) and waits up to the cold-start deadline, then
gets 503 with Retry-After. A connection lost to a dying replica is retried once on another:
inference is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from starlette.responses import Response

from shipyard.errors import NotFound, Unavailable
from shipyard.serving.controller import Controller, EndpointState, Replica, weighted_choice
from shipyard.serving.metrics import ServingMetrics
from shipyard.serving.wire import ReplicaClient, Reply, WireError

log = logging.getLogger("shipyard.serving")


class Router:
    """Forwards protocol requests to replicas of the named endpoint."""

    def __init__(
        self,
        controller: Controller,
        metrics: ServingMetrics,
        cold_start_timeout_s: float = 60.0,
        request_timeout_s: float = 60.0,
    ) -> None:
        self.controller = controller
        self.metrics = metrics
        self.cold_start_timeout_s = cold_start_timeout_s
        self.client = ReplicaClient(timeout_s=request_timeout_s)
        self._random = random.Random()

    def state(self, name: str) -> EndpointState:
        """The live state of an endpoint; 404 when there is no such endpoint."""
        state = self.controller.endpoints.get(name)
        if state is None:
            raise NotFound(f"endpoint {name!r} does not exist")
        return state

    def _pick(
        self, state: EndpointState, version: int | None, exclude: Replica | None
    ) -> Replica | None:
        ready = [r for r in state.ready(version) if r is not exclude]
        if not ready:
            return None
        if version is None:
            live = {r.version for r in ready}
            weights = {v: w for v, w in state.weights.items() if w > 0 and v in live}
            if weights:
                chosen = weighted_choice(weights, self._random.random() * sum(weights.values()))
                ready = [r for r in ready if r.version == chosen]
        return min(ready, key=lambda r: r.in_flight)

    async def _acquire(
        self, state: EndpointState, version: int | None, exclude: Replica | None = None
    ) -> Replica:
        replica = self._pick(state, version, exclude)
        if replica is not None:
            return replica
        deadline = time.monotonic() + self.cold_start_timeout_s
        state.waiting += 1  # keeps a scaled-to-zero endpoint from looking idle meanwhile
        try:
            while True:
                self.controller.wake()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Unavailable(
                        f"endpoint {state.name!r} has no ready replica; retry shortly",
                        headers={"retry-after": "5"},
                    )
                state.changed.clear()
                try:
                    await asyncio.wait_for(state.changed.wait(), min(remaining, 0.25))
                except TimeoutError:
                    pass
                replica = self._pick(state, version, exclude)
                if replica is not None:
                    return replica
        finally:
            state.waiting -= 1

    async def _send(
        self,
        state: EndpointState,
        version: int | None,
        path: str,
        body: bytes,
        exclude: Replica | None = None,
    ) -> tuple[Replica, Reply]:
        replica = await self._acquire(state, version, exclude)
        replica.in_flight += 1
        try:
            reply = await self.client.call(replica.port, path, body)
        except WireError as exc:
            log.warning(
                "endpoint %s: replica on port %d lost a request: %s", state.name, replica.port, exc
            )
            replica.state = "unhealthy"  # the controller restarts it or readmits it
            self.client.forget(replica.port)
            raise _Lost(replica) from exc
        finally:
            replica.in_flight -= 1
        return replica, reply

    async def forward(self, name: str, version: int | None, path: str, body: bytes) -> Response:
        """Send ``body`` to ``path`` on a replica of the endpoint; the replica's reply back."""
        state = self.state(name)
        if version is not None and version not in state.deployed:
            raise NotFound(f"endpoint {name!r} does not serve version {version}")
        state.last_request = time.monotonic()
        gauge = self.metrics.in_flight_of(name)
        gauge.inc()
        start = time.perf_counter()
        try:
            try:
                replica, reply = await self._send(state, version, path, body)
            except _Lost as lost:  # once, elsewhere: inference is idempotent
                replica, reply = await self._send(state, version, path, body, lost.replica)
        except _Lost:
            self.metrics.served(name, "none", 503, time.perf_counter() - start, None, body)
            raise Unavailable(
                f"endpoint {name!r}: replicas failed during the request; retry",
                headers={"retry-after": "1"},
            ) from None
        except Unavailable:  # no replica became ready in time
            self.metrics.served(name, "none", 503, time.perf_counter() - start, None, body)
            raise
        finally:
            gauge.dec()
            state.last_request = time.monotonic()
        v = str(replica.version)
        batch = reply.headers.get("x-batch-size")
        self.metrics.served(
            name,
            v,
            reply.status,
            time.perf_counter() - start,
            int(batch) if batch else None,
            body,
            reply.body,
            path,
        )
        return Response(
            reply.body,
            status_code=reply.status,
            media_type=reply.headers.get("content-type"),
            headers={"x-model-version": v},
        )

    async def close(self) -> None:
        await self.client.close()


class _Lost(Exception):
    """The connection to a replica broke mid-request."""

    def __init__(self, replica: Replica) -> None:
        super().__init__(replica.url)
        self.replica = replica
