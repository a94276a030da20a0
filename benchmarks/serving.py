"""Serving: a Shipyard endpoint against ``mlflow models serve``, same models, same load.

Run it with the project's virtual environment::

    .venv/bin/python benchmarks/serving.py [--json PATH] [--quick]

Two models, exported to ONNX, both taking one row of 64 float32 features:

- ``wide``: an MLP 64 -> 4096 -> 4096 -> 4096 -> 10 (34M weights, 135 MB). Batch 1 is slow (the
  weights are read from memory for every row) and batching pays: this is the case that shows
  what dynamic batching is worth.
- ``digits``: the small digits network 64 -> 64 -> 32 -> 10, where per-request overhead (HTTP,
  JSON, routing, the hop to a replica) is everything.

What is measured, one model after the other:

1. The limit: raw onnxruntime throughput at batch 1..128 in this process, with the intra-op
   threads a replica gets (samples per second; median time of repeated runs).
2. Shipyard: ``shipyard server`` on a free port with a fresh home; the model is registered as a
   version over HTTP (a run's artifacts, then ``POST .../versions``) and deployed as an endpoint
   with 1 replica, ``max_batch_size`` 64 and ``max_delay_ms`` 20 (wide) or 2 (digits), see
   ``MAX_DELAY_MS``; the replica gets the controller's default intra-op threads (the cores
   divided among the replicas: 2 here). Requests go to the TF-Serving route
   ``POST /v1/models/{endpoint}:predict`` with ``{"instances": [[...64 floats...]]}``.
3. MLflow: the same ONNX file saved with ``mlflow.onnx.save_model`` (same intra-op threads) and
   served by ``mlflow models serve -m DIR --env-manager local``; requests are
   ``POST /invocations`` with ``{"inputs": [[...64 floats...]]}``.

Load: a closed loop at concurrency 1, 8 and 64 from a load generator in its own process (this
file with ``--loadgen``): asyncio on uvloop, one keep-alive HTTP/1.1 connection per concurrent
client, TCP_NODELAY, request bytes encoded once (about 50 us of its own CPU a request). Each
request carries ONE sample (Shipyard's dynamic batching merges them). After a warm-up it counts
the replies (all must be 200) that complete in a fixed window: requests per second, p50 and p99
latency. Both servers are up together (the idle one costs nothing) and take turns at each
concurrency, so a change in the machine's other load hits both alike. Each server's first reply
is checked against onnxruntime's output for the same row.

MLflow (3.x) is installed by this script into ``.bench/mlflow-venv`` (shared with
``benchmarks/tracking.py``) with onnx and onnxruntime at this environment's versions.

Cases (ratio > 1: Shipyard better):

- ``{model}_c{N}_vs_mlflow``: requests/s against MLflow's at the same concurrency.
- ``{model}_c{N}_p50_ms_vs_mlflow``, ``..._p99_ms_vs_mlflow``: latency against MLflow's
  (ratio mlflow / shipyard).
- ``wide_c{N}_vs_limit``: requests/s against the raw onnxruntime limit at batch min(N, 64)
  (peer = the limit, ratio = shipyard / limit). That limit is measured again right before and
  right after the Shipyard load (their mean), so the machine's other work weighs on both alike;
  the table of the limit by batch size is measured once, first.
- ``wide_c64_p99_ms``: peer = the 100 ms target, ratio = 100 / p99.
- ``digits_c1_p50_overhead_ms``: Shipyard's p50 at concurrency 1 minus the raw single-sample
  inference time; peer = the 1 ms target, ratio = 1 / overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
from _common import (
    BenchError,
    Deadline,
    Server,
    deadline,
    ensure_mlflow,
    free_port,
    row,
)
from rich.console import Console
from rich.table import Table

import shipyard

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENV = ROOT / ".bench" / "mlflow-venv"
MODELS = {"wide": [64, 4096, 4096, 4096, 10], "digits": [64, 64, 32, 10]}
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)
FULL = {"concurrency": (1, 8, 64), "warmup_s": 1.5, "seconds": 5.0, "raw_s": 0.75}
QUICK = {"concurrency": (1, 64), "warmup_s": 0.5, "seconds": 1.5, "raw_s": 0.2}
MAX_BATCH_SIZE = 64
# How long a batch may wait for company: about the time of a batch of 64 for the wide model
# (so a closed loop of 64 clients runs in full batches, not two halves), and for the digits
# network, whose batches take microseconds, 2 ms.
MAX_DELAY_MS = {"wide": 20.0, "digits": 2.0}
P99_TARGET_MS = 100.0
OVERHEAD_TARGET_MS = 1.0
TARGETS = {  # what the issue asks of each ratio (shown, never used to alter a figure)
    "wide_c64_vs_limit": 0.6,
    "wide_c64_vs_mlflow": 5,
    "wide_c64_p99_ms": 1,
    "digits_c64_vs_mlflow": 5,
    "digits_c1_p50_overhead_ms": 1,
}
MLFLOW_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "PYTHONUNBUFFERED": "1",
}

SAVE_MLFLOW = r'''
"""MLflow side of benchmarks/serving.py: save an ONNX file as an MLflow model."""
import sys

import mlflow
import numpy as np
import onnx
import onnxruntime as ort
from mlflow.models import infer_signature

src, dst, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
session = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
x = np.ones((2, 64), np.float32)
y = session.run(None, {session.get_inputs()[0].name: x})[0]
mlflow.onnx.save_model(
    onnx.load(src),
    dst,
    signature=infer_signature(x, y),
    onnx_session_options={"intra_op_num_threads": threads, "inter_op_num_threads": 1},
)
print(mlflow.__version__)
'''


# -- the load generator (its own process) ---------------------------------------------------


class _Client(asyncio.Protocol):
    """One keep-alive connection: writes a pre-encoded request, parses one reply at a time."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            self._fail(ConnectionError("a reply without content-length"))
            return
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : stop if stop >= 0 else len(head)])
        total = end + 4 + length
        if len(self.buffer) < total:
            return
        status = int(head[9:12])
        del self.buffer[:total]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"the server closed the connection: {exc}"))


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    request = spec["request"].encode("latin-1")
    start = time.perf_counter() + spec["warmup_s"]
    stop = start + spec["seconds"]
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def client() -> None:
        _, proto = await loop.create_connection(_Client, "127.0.0.1", spec["port"])
        assert proto.transport is not None
        try:
            while True:
                proto.waiter = loop.create_future()
                t0 = time.perf_counter()
                proto.transport.write(request)
                status = await proto.waiter
                t1 = time.perf_counter()
                if t1 > stop:
                    return
                if t0 >= start:
                    latencies.append(t1 - t0)
                    statuses[status] = statuses.get(status, 0) + 1
        finally:
            proto.transport.close()

    cpu0 = time.process_time()
    await asyncio.gather(*(client() for _ in range(spec["concurrency"])))
    cpu = time.process_time() - cpu0
    lat = np.array(latencies) * 1000
    return {
        "count": len(latencies),
        "seconds": spec["seconds"],
        "rps": len(latencies) / spec["seconds"],
        "p50_ms": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
        "p99_ms": float(np.percentile(lat, 99)) if len(lat) else float("nan"),
        "mean_ms": float(lat.mean()) if len(lat) else float("nan"),
        "statuses": {str(k): v for k, v in statuses.items()},
        "client_cpu_s": cpu,  # the load generator's own CPU time, warm-up included
    }


def loadgen_main(spec_path: str) -> int:
    """``--loadgen SPEC``: run one closed-loop load and print its figures as JSON."""
    spec = json.loads(Path(spec_path).read_text())
    try:
        import uvloop

        result = uvloop.run(_load(spec))
    except ImportError:
        result = asyncio.run(_load(spec))
    print(json.dumps(result), flush=True)
    return 0


# -- processes ------------------------------------------------------------------------------


def load(
    port: int, request: bytes, concurrency: int, n: dict[str, Any], workdir: Path
) -> dict[str, Any]:
    """One closed-loop load from a load generator process; its figures."""
    spec = workdir / "load.json"
    spec.write_text(
        json.dumps(
            {
                "port": port,
                "request": request.decode("latin-1"),
                "concurrency": concurrency,
                "warmup_s": n["warmup_s"],
                "seconds": n["seconds"],
            }
        )
    )
    timeout = n["warmup_s"] + n["seconds"] + 60
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--loadgen", str(spec)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"the load generator ran past {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise BenchError(f"the load generator failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    bad = {k: v for k, v in result["statuses"].items() if k != "200"}
    if bad or result["count"] == 0:
        raise BenchError(f"replies other than 200 under load: {result['statuses']}")
    return result


def http_request(port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# -- models and the limit -------------------------------------------------------------------


def build_models(folder: Path) -> dict[str, Path]:
    """Each model as a Shipyard package (``model.onnx`` inside); deterministic weights."""
    import torch
    from torch import nn

    out = {}
    for name, widths in MODELS.items():
        torch.manual_seed(7)
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        module = nn.Sequential(*layers[:-1]).eval()
        path = folder / name
        shipyard.save_model(module, path, input_example=np.ones((2, 64), np.float32))
        if not (path / "model.onnx").exists():
            raise BenchError(f"{name}: the package has no ONNX twin")
        out[name] = path
    return out


def threads_per_replica() -> int:
    """What the controller gives the only replica of the only endpoint."""
    from shipyard.serving.replica import default_threads

    return default_threads(1)


class RawLimit:
    """onnxruntime in this process, with the intra-op threads a replica gets."""

    def __init__(self, onnx_path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self.name = self.session.get_inputs()[0].name
        self.rng = np.random.default_rng(0)

    def at(self, batch: int, seconds: float) -> tuple[float, float]:
        """(samples per second, median ms a run) at one batch size."""
        x = self.rng.random((batch, 64), dtype=np.float32)
        for _ in range(3):
            self.session.run(None, {self.name: x})
        times = []
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds or len(times) < 5:
            t1 = time.perf_counter()
            self.session.run(None, {self.name: x})
            times.append(time.perf_counter() - t1)
        median = statistics.median(times)
        return batch / median, 1000 * median

    def curve(self, seconds: float) -> dict[int, tuple[float, float]]:
        """batch -> (samples per second, median ms a run), batch 1..128."""
        return {batch: self.at(batch, seconds) for batch in BATCHES}


def reference(onnx_path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0])


def check_reply(who: str, key: str, body: bytes, expected: np.ndarray) -> None:
    try:
        value = json.loads(body)[key]
        if isinstance(value, dict) and len(value) == 1:  # MLflow: outputs by name
            value = next(iter(value.values()))
        got = np.asarray(value, dtype=np.float32)
    except (ValueError, KeyError, TypeError) as exc:
        raise BenchError(f"{who}: unreadable reply {body[:300]!r}") from exc
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-3, atol=1e-4):
        raise BenchError(f"{who}: wrong predictions {got} (expected {expected})")


# -- Shipyard -------------------------------------------------------------------------------


class ShipyardSide:
    """A ``shipyard server`` with the packages registered as versions of model ``bench``."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
        env["SHIPYARD_HOME"] = str(tmp / "shipyard-home")
        self.server = Server(
            "Shipyard",
            [
                str(Path(sys.executable).parent / "shipyard"),
                "server",
                "--port",
                str(self.port),
            ],
            env,
            f"{self.url}/readyz",
            tmp / "shipyard.log",
        )
        self.http: httpx.Client | None = None
        self.run_id = ""
        self.versions: dict[str, int] = {}

    def start(self) -> None:
        self.server.start(timeout=120)
        self.http = httpx.Client(base_url=self.url, timeout=120)
        self.run_id = self.http.post("/api/runs", json={"project": "bench"}).json()["id"]

    def register(self, model: str, package: Path) -> None:
        assert self.http is not None
        for file in sorted(package.rglob("*")):
            if file.is_file():
                rel = file.relative_to(package).as_posix()
                with open(file, "rb") as f:
                    self.http.put(
                        f"/api/runs/{self.run_id}/artifacts/{model}/{rel}", content=f
                    ).raise_for_status()
        r = self.http.post(
            f"/api/projects/bench/models/{model}/versions",
            json={"source": f"runs:/{self.run_id}/{model}"},
        )
        r.raise_for_status()
        self.versions[model] = int(r.json()["version"])

    def deploy(self, model: str, timeout: float = 180) -> None:
        assert self.http is not None
        r = self.http.post(
            "/api/endpoints",
            json={
                "name": model,
                "project": "bench",
                "model": model,
                "version": self.versions[model],
                "replicas": 1,
                "max_batch_size": MAX_BATCH_SIZE,
                "max_delay_ms": MAX_DELAY_MS[model],
            },
        )
        if r.status_code != 201:
            raise BenchError(f"deploying {model}: {r.status_code} {r.text}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            e = self.http.get(f"/api/endpoints/{model}").json()
            if any(rep["state"] == "ready" for rep in e["replicas"]):
                return
            time.sleep(0.1)
        raise BenchError(f"endpoint {model} never got a ready replica: {e}")

    def replica_threads(self) -> int:
        """The intra-op threads the controller gave the running replica (its --threads)."""
        assert self.server.proc is not None
        for child in psutil.Process(self.server.proc.pid).children(recursive=True):
            argv = child.cmdline()
            if "shipyard.serving.replica" in argv and "--threads" in argv:
                return int(argv[argv.index("--threads") + 1])
        raise BenchError("no replica process found")

    def batches(self, model: str) -> tuple[float, float]:
        """(sum, count) of the endpoint's batch-size histogram: rows each request ran with."""
        assert self.http is not None
        total = count = 0.0
        for line in self.http.get("/metrics").text.splitlines():
            if line.startswith("shipyard_endpoint_batch_size_") and f'endpoint="{model}"' in line:
                if line.startswith("shipyard_endpoint_batch_size_sum"):
                    total = float(line.rsplit(" ", 1)[1])
                elif line.startswith("shipyard_endpoint_batch_size_count"):
                    count = float(line.rsplit(" ", 1)[1])
        return total, count

    def undeploy(self, model: str) -> None:
        assert self.http is not None
        self.http.delete(f"/api/endpoints/{model}").raise_for_status()

    def path(self, model: str) -> str:
        return f"/v1/models/{model}:predict"

    def predict(self, model: str, body: bytes) -> bytes:
        assert self.http is not None
        r = self.http.post(self.path(model), content=body)
        if r.status_code != 200:
            raise BenchError(f"Shipyard {model}: {r.status_code} {r.text}")
        return r.content

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
        self.server.stop()


# -- MLflow ---------------------------------------------------------------------------------


class MlflowSide:
    """``mlflow models serve`` of one model at a time."""

    def __init__(self, venv: Path, python: Path, tmp: Path) -> None:
        self.venv, self.python, self.tmp = venv, python, tmp
        self.env = {**os.environ, **MLFLOW_ENV}
        self.env.pop("VIRTUAL_ENV", None)
        self.env["PATH"] = f"{venv / 'bin'}{os.pathsep}{self.env.get('PATH', '')}"
        self.version = "?"
        self.server: Server | None = None
        self.port = 0

    def save(self, name: str, onnx_path: Path, threads: int) -> Path:
        script = self.tmp / "mlflow_save.py"
        script.write_text(SAVE_MLFLOW)
        target = self.tmp / "mlflow-models" / name
        done = subprocess.run(
            [str(self.python), str(script), str(onnx_path), str(target), str(threads)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise BenchError(f"saving {name} with MLflow failed:\n{done.stderr[-2000:]}")
        self.version = done.stdout.strip().splitlines()[-1]
        return target

    def start(self, model_dir: Path) -> None:
        self.port = free_port()
        self.server = Server(
            "mlflow models serve",
            [
                str(self.venv / "bin" / "mlflow"),
                "models",
                "serve",
                "-m",
                str(model_dir),
                "--env-manager",
                "local",
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
            ],
            self.env,
            f"http://127.0.0.1:{self.port}/ping",
            self.tmp / f"mlflow-{model_dir.name}.log",
        )
        self.server.start(timeout=180)

    def predict(self, body: bytes) -> bytes:
        r = httpx.post(
            f"http://127.0.0.1:{self.port}/invocations",
            content=body,
            headers={"content-type": "application/json"},
            timeout=60,
        )
        if r.status_code != 200:
            raise BenchError(f"MLflow: {r.status_code} {r.text}")
        return r.content

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


# -- the run --------------------------------------------------------------------------------


def measure(
    args: argparse.Namespace, console: Console
) -> tuple[list[dict[str, Any]], dict[str, dict[int, tuple[float, float]]], str]:
    n = QUICK if args.quick else FULL
    # The same onnxruntime as Shipyard's in MLflow's venv, so both run the same kernels.
    same = [f"{p}=={importlib.metadata.version(p)}" for p in ("onnx", "onnxruntime")]
    python = ensure_mlflow(args.mlflow_venv, console, also=same)
    threads = threads_per_replica()
    rows: list[dict[str, Any]] = []
    limits: dict[str, dict[int, tuple[float, float]]] = {}
    x = np.random.default_rng(1).random((1, 64), dtype=np.float32).round(5)
    sample = x.tolist()
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp_name:
        tmp = Path(tmp_name)
        console.print("[dim]exporting the models...[/]")
        packages = build_models(tmp / "packages")
        sy = ShipyardSide(tmp)
        ml = MlflowSide(args.mlflow_venv, python, tmp)
        try:
            sy.start()
            for model, package in packages.items():
                onnx_path = package / "model.onnx"
                expected = reference(onnx_path, x)
                console.print(f"[dim]{model}: raw onnxruntime limit ({threads} threads)...[/]")
                raw = RawLimit(onnx_path, threads)
                limits[model] = raw.curve(n["raw_s"])
                near: dict[int, float] = {}  # the limit measured around each Shipyard load

                console.print(f"[dim]{model}: a Shipyard endpoint and mlflow models serve...[/]")
                sy.register(model, package)
                sy.deploy(model)
                if sy.replica_threads() != threads:
                    raise BenchError(
                        f"the replica runs {sy.replica_threads()} threads, the limit {threads}"
                    )
                ml.start(ml.save(model, onnx_path, threads))
                try:
                    body = json.dumps({"instances": sample}).encode()
                    check_reply("Shipyard", "predictions", sy.predict(model, body), expected)
                    sy_request = http_request(sy.port, sy.path(model), body)
                    body = json.dumps({"inputs": sample}).encode()
                    check_reply("MLflow", "predictions", ml.predict(body), expected)
                    ml_request = http_request(ml.port, "/invocations", body)
                    sy_load, ml_load = {}, {}
                    for c in n["concurrency"]:  # one after the other at each concurrency
                        batch = min(c, MAX_BATCH_SIZE)
                        lim_before = raw.at(batch, n["raw_s"])[0]
                        before = sy.batches(model)
                        sy_load[c] = load(sy.port, sy_request, c, n, tmp)
                        rows_, requests = (
                            a - b for a, b in zip(sy.batches(model), before, strict=True)
                        )
                        near[c] = (lim_before + raw.at(batch, n["raw_s"])[0]) / 2
                        ml_load[c] = load(ml.port, ml_request, c, n, tmp)
                        console.print(
                            f"[dim]  c={c}: Shipyard {fmt_load(sy_load[c])} (batches of "
                            f"{rows_ / max(requests, 1):.1f} rows on average; raw limit at "
                            f"batch {batch} around it {near[c]:,.0f}/s); "
                            f"MLflow {fmt_load(ml_load[c])}[/]"
                        )
                finally:
                    ml.stop()
                    sy.undeploy(model)

                del raw
                rows += model_rows(model, limits[model], near, sy_load, ml_load)
            return rows, limits, ml.version
        except BenchError:
            console.print(f"[red]Shipyard log tail:[/]\n{sy.server.log_tail(1500)}", markup=False)
            raise
        finally:
            ml.stop()
            sy.stop()


def fmt_load(r: dict[str, Any]) -> str:
    return f"{r['rps']:,.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms"


def model_rows(
    model: str,
    limit: dict[int, tuple[float, float]],
    near: dict[int, float],
    sy: dict[int, dict[str, Any]],
    ml: dict[int, dict[str, Any]],
) -> list[dict[str, Any]]:
    rows = []
    for c in sy:
        s, m = sy[c], ml[c]
        rows.append(
            row(f"{model}_c{c}_vs_mlflow", s["rps"], m["rps"], "req/s", s["rps"] / m["rps"])
        )
        if model == "wide":  # (the digits network's limit is far beyond any HTTP server)
            lim = near[c]
            rows.append(row(f"{model}_c{c}_vs_limit", s["rps"], lim, "req/s", s["rps"] / lim))
        for q in ("p50", "p99"):
            rows.append(
                row(
                    f"{model}_c{c}_{q}_ms_vs_mlflow",
                    s[f"{q}_ms"],
                    m[f"{q}_ms"],
                    "ms",
                    m[f"{q}_ms"] / s[f"{q}_ms"],
                )
            )
    if 64 in sy and model == "wide":
        p99 = sy[64]["p99_ms"]
        rows.append(row("wide_c64_p99_ms", p99, P99_TARGET_MS, "ms", P99_TARGET_MS / p99))
    if 1 in sy and model == "digits":
        overhead = max(sy[1]["p50_ms"] - limit[1][1], 1e-6)
        rows.append(
            row(
                "digits_c1_p50_overhead_ms",
                overhead,
                OVERHEAD_TARGET_MS,
                "ms",
                OVERHEAD_TARGET_MS / overhead,
            )
        )
    return rows


def report(
    rows: list[dict[str, Any]],
    limits: dict[str, dict[int, tuple[float, float]]],
    console: Console,
    mlflow_version: str,
    quick: bool,
) -> None:
    lt = Table(title="the limit: onnxruntime in one process, by batch size")
    lt.add_column("model")
    for b in BATCHES:
        lt.add_column(str(b), justify="right")
    for model, lim in limits.items():
        lt.add_row(f"{model} samples/s", *(f"{lim[b][0]:,.0f}" for b in BATCHES))
        lt.add_row(f"{model} ms a batch", *(f"{lim[b][1]:.3g}" for b in BATCHES))
    console.print(lt)
    table = Table(
        title=f"Shipyard {shipyard.__version__} vs mlflow models serve {mlflow_version} "
        f"(127.0.0.1, one sample a request){' [--quick]' if quick else ''}"
    )
    for col, justify in (
        ("case", "left"),
        ("Shipyard", "right"),
        ("peer", "right"),
        ("unit", "left"),
        ("ratio", "right"),
        ("target", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        target = TARGETS.get(r["case"])
        ok = "" if target is None else ("green" if r["ratio"] >= target else "red")
        ratio = f"{r['ratio']:,.1f}x" if r["ratio"] >= 10 else f"{r['ratio']:,.2f}x"
        table.add_row(
            r["case"],
            f"{r['shipyard']:,.4g}" if r["shipyard"] < 100 else f"{r['shipyard']:,.0f}",
            f"{r['peer']:,.4g}" if r["peer"] < 100 else f"{r['peer']:,.0f}",
            r["unit"],
            f"[{ok}]{ratio}[/]" if ok else ratio,
            "" if target is None else f">= {target}x",
        )
    console.print(table)
    console.print(
        f"endpoint: 1 replica, max_batch_size {MAX_BATCH_SIZE}, max_delay_ms "
        f"{', '.join(f'{v:g} ({k})' for k, v in MAX_DELAY_MS.items())}, "
        f"{threads_per_replica()} intra-op threads (MLflow's session the same). "
        "ratio > 1: Shipyard better.",
        style="dim",
    )


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--loadgen":
        return loadgen_main(sys.argv[2])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here (DESIGN.md format)")
    parser.add_argument("--quick", action="store_true", help="short loads, for a smoke test")
    parser.add_argument(
        "--mlflow-venv",
        type=Path,
        default=DEFAULT_VENV,
        help=f"virtual environment holding MLflow (default {DEFAULT_VENV})",
    )
    parser.add_argument(
        "--max-seconds", type=float, default=420, help="give up (and stop the servers) after this"
    )
    args = parser.parse_args()
    console = Console(width=max(110, shutil.get_terminal_size((110, 24)).columns))
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    try:
        with deadline(args.max_seconds):
            rows, limits, version = measure(args, console)
    except (BenchError, Deadline, subprocess.CalledProcessError) as exc:
        console.print(f"[red]benchmark failed:[/] {exc}", markup=True, highlight=False)
        return 1
    report(rows, limits, console, version, args.quick)
    console.print(
        f"took {time.perf_counter() - t0:.0f} s on {os.cpu_count()} CPUs; load average "
        f"at start {load0[0]:.1f}, at end {os.getloadavg()[0]:.1f} (other work on the "
        "machine skews every figure)",
        style="dim",
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
