"""The controller: reconciles replica processes with the endpoints' desired state.

All hard state lives in the store (endpoints, versions, weights, scaling bounds); the controller
holds only what it can rebuild: the replica processes it started, their health and restarts,
and each endpoint's autoscaled replica count. Its one change to the store is forgetting a
version once it drained (no traffic, its replicas stopped), through ``service.drop_drained`` as
the system actor ``serving controller``, with an audit record. Every
``interval_s`` (or at once when woken) it reads the desired state, materialises packages,
starts, restarts and stops replicas, health-checks them, autoscales on in-flight requests, and
scales idle endpoints to zero. After a server restart the first pass brings replicas back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shipyard import auth
from shipyard.db import Database
from shipyard.packages import Signature
from shipyard.serving import service, store
from shipyard.serving.metrics import ServingMetrics
from shipyard.serving.schemas import ReplicaOut
from shipyard.serving.tables import Endpoint
from shipyard.storage import Storage

log = logging.getLogger("shipyard.serving")
ACTOR = auth.system_actor("serving controller")  # who forgets drained versions in the store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Replica:
    """One replica process and what the controller knows of it."""

    endpoint: str
    version: int
    port: int
    proc: subprocess.Popen[bytes] | None = None
    state: str = "starting"  # starting | ready | unhealthy | stopping
    in_flight: int = 0
    restarts: int = 0
    failures: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def out(self) -> ReplicaOut:
        return ReplicaOut(
            version=self.version,
            port=self.port,
            pid=self.proc.pid if self.proc else None,
            state=self.state,
            in_flight=self.in_flight,
            restarts=self.restarts,
        )


@dataclass
class EndpointState:
    """The live view of one endpoint: spec from the store plus its replicas."""

    name: str
    endpoint_id: str
    project_id: str
    model_id: str
    weights: dict[int, int]
    deployed: list[int]
    min_replicas: int
    max_replicas: int
    target_in_flight: float
    idle_timeout_s: float
    max_batch_size: int
    max_delay_ms: float
    signatures: dict[int, Signature] = field(default_factory=dict)
    replicas: list[Replica] = field(default_factory=list)
    desired: dict[int, int] = field(default_factory=dict)
    last_request: float = field(default_factory=time.monotonic)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    load: float = 0.0  # smoothed in-flight requests per ready replica
    waiting: int = 0  # requests held at the router until a replica is ready

    def ready(self, version: int | None = None) -> list[Replica]:
        return [
            r
            for r in self.replicas
            if r.state == "ready" and (version is None or r.version == version)
        ]


class Controller:
    """Owns replica processes; see the module docstring for the contract."""

    def __init__(
        self,
        db: Database,
        storage: Storage,
        home: Path,
        metrics: ServingMetrics,
        interval_s: float = 0.5,
        health_timeout_s: float = 2.0,
        start_timeout_s: float = 120.0,
    ) -> None:
        self.db = db
        self.storage = storage
        self.home = home / "serving"
        self.metrics = metrics
        self.interval_s = interval_s
        self.health_timeout_s = health_timeout_s
        self.start_timeout_s = start_timeout_s
        self.endpoints: dict[str, EndpointState] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._loop_ref: asyncio.AbstractEventLoop | None = None
        # Passes started and finished, for ``settle`` (read and written under ``_passes``).
        self._passes = threading.Condition()
        self._started = 0
        self._finished = 0
        self._http = httpx.AsyncClient(timeout=health_timeout_s)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start reconciling on the running event loop."""
        self._loop_ref = asyncio.get_running_loop()
        self._task = self._loop_ref.create_task(self._loop())

    async def stop(self) -> None:
        """Stop reconciling (after the pass in progress, so no store access is cut short) and
        every replica."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        for state in self.endpoints.values():
            for replica in state.replicas:
                self._terminate(replica)
        await self._http.aclose()

    def wake(self) -> None:
        """Reconcile now (a request waits for a replica, or the desired state changed); safe
        from any thread (the API's routes run in a thread pool)."""
        loop = self._loop_ref
        if loop is None or loop.is_closed():
            self._wake.set()
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    def settle(self, timeout_s: float = 10.0) -> bool:
        """Wake the controller and wait (in a worker thread, never on the event loop) until a
        pass that started after this call has finished, so a change just committed is what
        the router routes by: a request right after a deploy finds the endpoint and its new
        version. False when no pass finished in time (the change still lands on a later one)."""
        with self._passes:
            target = self._started + 1
        self.wake()
        with self._passes:
            return self._passes.wait_for(lambda: self._finished >= target, timeout_s)

    async def _loop(self) -> None:
        while not self._stopping:
            with self._passes:
                self._started += 1
            try:
                await self.reconcile()
            except Exception:  # a failed pass is retried; the router keeps serving
                log.exception("reconcile pass failed")
            with self._passes:
                self._finished += 1
                self._passes.notify_all()
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            except TimeoutError:
                pass
            self._wake.clear()

    # -- one pass -------------------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Bring the replicas in line with the store."""
        specs = await asyncio.to_thread(self._read_specs)
        for name in list(self.endpoints):
            if name not in specs:
                for replica in self.endpoints.pop(name).replicas:
                    self._terminate(replica)
                self.metrics.forget(name)
        for name, spec in specs.items():
            state = self.endpoints.get(name)
            if state is None:
                state = self.endpoints[name] = spec
            else:
                for attr in (
                    "weights",
                    "deployed",
                    "min_replicas",
                    "max_replicas",
                    "target_in_flight",
                    "idle_timeout_s",
                    "max_batch_size",
                    "max_delay_ms",
                    "signatures",
                ):
                    setattr(state, attr, getattr(spec, attr))
            await self._check_health(state)
            self._plan(state)
            await self._converge(state)
            self.metrics.replicas(state)

    def _read_specs(self) -> dict[str, EndpointState]:
        specs: dict[str, EndpointState] = {}
        with self.db.read() as s:
            for e in store.list_endpoints(s, None):
                rows = store.versions(s, e)
                deployed = [r.version for r in rows]
                specs[e.name] = self._spec(
                    e,
                    {r.version: r.weight for r in rows},
                    deployed,
                    store.signatures(s, e, deployed),
                )
        return specs

    @staticmethod
    def _spec(
        e: Endpoint, weights: dict[int, int], deployed: list[int], signatures: dict[int, Signature]
    ) -> EndpointState:
        return EndpointState(
            name=e.name,
            endpoint_id=e.id,
            project_id=e.project_id,
            model_id=e.model_id,
            weights=weights,
            deployed=deployed,
            min_replicas=e.min_replicas,
            max_replicas=e.max_replicas,
            target_in_flight=e.target_in_flight,
            idle_timeout_s=e.idle_timeout_s,
            max_batch_size=e.max_batch_size,
            max_delay_ms=e.max_delay_ms,
            signatures=signatures,
        )

    def _plan(self, state: EndpointState) -> None:
        """Desired replicas per version: autoscaled for weighted ones, draining for the rest."""
        ready = state.ready()
        in_flight = sum(r.in_flight for r in ready)
        state.load = 0.7 * state.load + 0.3 * (in_flight / max(1, len(ready)))
        idle = time.monotonic() - state.last_request > state.idle_timeout_s and state.waiting == 0
        weighted = [v for v, w in state.weights.items() if w > 0]
        for version in weighted:
            current = state.desired.get(version, state.min_replicas)
            if state.load > state.target_in_flight:
                current += 1
            elif state.load < state.target_in_flight * 0.3 and current > state.min_replicas:
                current -= 1
            if state.min_replicas == 0 and idle and in_flight == 0:
                current = 0
            floor = state.min_replicas
            if state.min_replicas == 0 and not idle:
                floor = 1  # woken by a request: stay up until idle again
            state.desired[version] = min(state.max_replicas, max(floor, current))
        serving_ready = all(state.ready(v) for v in weighted if state.desired.get(v, 0) > 0)
        for version in set(state.deployed) - set(weighted):
            busy = any(r.in_flight for r in state.replicas if r.version == version)
            state.desired[version] = (
                1
                if (not serving_ready or busy) and any(r.version == version for r in state.replicas)
                else 0
            )
        for version in list(state.desired):
            if version not in state.deployed:
                del state.desired[version]

    async def _converge(self, state: EndpointState) -> None:
        for replica in [r for r in state.replicas if r.version not in state.deployed]:
            self._terminate(replica)  # its version was forgotten while it started
            state.replicas.remove(replica)
        for version in state.deployed:
            mine = [r for r in state.replicas if r.version == version]
            want = state.desired.get(version, 0)
            missing = want - len(mine)
            if missing > 0:
                folder = await asyncio.to_thread(self._materialise, state, version)
                for _ in range(missing):
                    state.replicas.append(self._spawn(state, version, folder))
            elif missing < 0:
                idle = sorted(
                    (r for r in mine if r.in_flight == 0), key=lambda r: r.state == "ready"
                )
                for replica in idle[:-missing]:
                    self._terminate(replica)
                    state.replicas.remove(replica)
        drained = [
            v
            for v in state.deployed
            if state.weights.get(v, 0) == 0 and not any(r.version == v for r in state.replicas)
        ]
        if drained:
            await asyncio.to_thread(self._drop, state.endpoint_id, drained)

    def _drop(self, endpoint_id: str, versions: list[int]) -> None:
        """Forget drained versions in the store: the controller's only change there (audited,
        as ``serving controller``); everything else it does is in this process's memory."""
        with self.db.session() as s:
            service.drop_drained(s, ACTOR, endpoint_id, versions)

    # -- replicas -------------------------------------------------------------------------------

    def _materialise(self, state: EndpointState, version: int) -> Path:
        """The version's package on local disk (copied once from the blob store)."""
        folder = self.home / "packages" / state.model_id / str(version)
        if (folder / "shipyard-model.yaml").exists():
            return folder
        with self.db.read() as s:
            prefix, files = store.package_files(s, state.model_id, version)
        tmp = folder.with_name(f".{version}.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        for rel in files:
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as f:
                for chunk in self.storage.iter_bytes(prefix + rel):
                    f.write(chunk)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
        return folder

    def _threads(self) -> int:
        total = sum(len(s.replicas) for s in self.endpoints.values()) + 1
        return max(1, (os.cpu_count() or 1) // total)

    def _spawn(
        self, state: EndpointState, version: int, folder: Path, replica: Replica | None = None
    ) -> Replica:
        port = free_port()
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "shipyard.serving.replica",
            "--package",
            str(folder),
            "--port",
            str(port),
            "--name",
            state.name,
            "--version",
            str(version),
            "--max-batch-size",
            str(state.max_batch_size),
            "--max-delay-ms",
            str(state.max_delay_ms),
            "--threads",
            str(self._threads()),
        ]
        with open(logs / f"{state.name}-v{version}-{port}.log", "ab") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        if replica is None:
            replica = Replica(state.name, version, port)
            if not state.ready():
                self.metrics.cold_start(state.name)
        replica.port, replica.proc, replica.state = port, proc, "starting"
        replica.started, replica.failures = time.monotonic(), 0
        log.info("endpoint %s v%d: replica starting on port %d", state.name, version, port)
        return replica

    def _terminate(self, replica: Replica) -> None:
        replica.state = "stopping"
        if replica.proc is not None and replica.proc.poll() is None:
            try:
                os.killpg(replica.proc.pid, signal.SIGTERM)
                replica.proc.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(replica.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    async def _check_health(self, state: EndpointState) -> None:
        async def check(replica: Replica) -> None:
            if replica.proc is None or replica.proc.poll() is not None:
                if time.monotonic() - replica.started < min(30.0, 0.5 * 2**replica.restarts):
                    return  # crash-looping: back off before the next restart
                replica.restarts += 1
                log.warning(
                    "endpoint %s v%d: replica on port %d died; restarting",
                    state.name,
                    replica.version,
                    replica.port,
                )
                folder = self.home / "packages" / state.model_id / str(replica.version)
                self._spawn(state, replica.version, folder, replica)
                return
            try:
                ok = (await self._http.get(replica.url + "/healthz")).status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                if replica.state != "ready":
                    log.info(
                        "endpoint %s v%d: replica on port %d ready",
                        state.name,
                        replica.version,
                        replica.port,
                    )
                replica.state, replica.failures = "ready", 0
                state.changed.set()
                return
            replica.failures += 1
            if replica.state == "ready" and replica.failures >= 2:
                replica.state = "unhealthy"  # out of rotation until it answers again
            elif (
                replica.state == "starting"
                and time.monotonic() - replica.started > self.start_timeout_s
            ):
                log.error(
                    "endpoint %s v%d: replica did not start; see its log",
                    state.name,
                    replica.version,
                )
                self._terminate(replica)

        await asyncio.gather(*(check(r) for r in state.replicas))
        if any(r.state == "ready" for r in state.replicas):
            state.changed.set()
        else:
            state.changed.clear()

    def replicas_of(self, name: str) -> list[ReplicaOut]:
        """What an endpoint's replicas look like now."""
        state = self.endpoints.get(name)
        return [r.out() for r in state.replicas] if state else []


def weighted_choice(weights: dict[int, int], roll: float) -> int:
    """The version whose cumulative weight first exceeds ``roll`` (0 <= roll < total)."""
    total = 0.0
    for version, weight in sorted(weights.items()):
        total += weight
        if roll < total:
            return version
    return max(weights)
