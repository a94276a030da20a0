"""Training jobs and datasets: queue latency, job throughput, dataset transfer and dedupe.

Run it with the project's virtual environment::

    .venv/bin/python benchmarks/jobs.py [--json PATH] [--size-mb 1024] [--jobs 500] [--quick]

A Shipyard server runs as a subprocess on a free 127.0.0.1 port with a fresh home folder and
its local worker (2 slots by default); the SDK runs in this process. Cases (ratio > 1 means
Shipyard is better; cases without a peer compare with a limit or a target):

- ``queued_to_running``: ms from a job's submission to its process running (the server's own
  timestamps, median of 10 one-job runs). Target: 1,000 ms, the order of a polling agent
  (ClearML's agent polls its queue every few seconds).
- ``throughput``: trivial jobs (``true``) per second, 500 submitted at once, from the first
  submission to the last one ending, against the limit: the same commands started directly
  by a pool of as many threads as the worker has slots (no queue, no store, no runs, no logs).
- ``push`` / ``pull``: MB/s moving a folder of random data (``--size-mb``, files of 64 MB) into
  a dataset version and back out (every chunk hashed both ways), against the limit: a plain
  ``shutil.copytree`` of the same folder on the same disk.
- ``second_push``: bytes sent pushing the same folder again (dedupe); the peer column holds
  the folder's size, what a plain copy sends, and the ratio is size / max(sent, 1).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from _common import free_port, row
from rich.console import Console
from rich.table import Table

import shipyard
from shipyard.client import _datasets as transfer

FINAL = {"succeeded", "failed", "cancelled", "timed_out", "lost"}
SLOTS = 2
FILE_MB = 64


@contextmanager
def server(home: Path, slots: int) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(home),
        "SHIPYARD_WORKER_CPUS": str(slots),
        "SHIPYARD_WORKER_GPUS": "",
    }
    log = open(home.parent / "server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipyard", "server", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError((home.parent / "server.log").read_text()[-2000:])
            time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def latency(client: shipyard.Client, reps: int) -> float:
    """Median ms from submission to the job's process running (server timestamps)."""
    samples = []
    for _ in range(reps):
        job = client.submit_job("bench", ["true"], None)
        done = client.wait_job(job["id"], timeout_s=60)
        assert done["state"] == "succeeded", done
        samples.append((ts(done["started_at"]) - ts(done["submitted_at"])) * 1000)
    return statistics.median(samples)


def throughput(client: shipyard.Client, n: int) -> float:
    """Jobs per second for ``n`` trivial jobs submitted at once."""
    start = time.perf_counter()
    ids = {client.submit_job("bench-many", ["true"], None)["id"] for _ in range(n)}
    while True:
        jobs = client.http.json("GET", "/api/jobs", params={"project": "bench-many", "limit": n})
        done = [j for j in jobs if j["id"] in ids and j["state"] in FINAL]
        if len(done) == n:
            break
        time.sleep(0.2)
    assert all(j["state"] == "succeeded" for j in done), [j["message"] for j in done][:3]
    last = max(ts(j["finished_at"]) for j in done)
    first = min(ts(j["submitted_at"]) for j in done)
    elapsed = max(last - first, time.perf_counter() - start - 0.2)
    return n / elapsed


def direct_rate(n: int, slots: int) -> float:
    """The limit: the same commands started straight from a pool of ``slots`` threads."""
    start = time.perf_counter()
    with ThreadPoolExecutor(slots) as pool:
        list(pool.map(lambda _: subprocess.run(["true"], check=True), range(n)))
    return n / (time.perf_counter() - start)


def make_folder(root: Path, size_mb: int) -> int:
    root.mkdir(parents=True)
    left = size_mb * 1024 * 1024
    i = 0
    while left > 0:
        size = min(left, FILE_MB * 1024 * 1024)
        with open(root / f"part-{i:03d}.bin", "wb") as f:
            f.write(os.urandom(size))
        left -= size
        i += 1
    (root / "README.md").write_text("random bytes for the benchmark\n")
    return sum(p.stat().st_size for p in root.iterdir())


def measure(args: argparse.Namespace, work: Path, console: Console) -> list[dict[str, Any]]:
    rows = []
    with server(work / "home", SLOTS) as url, shipyard.Client(url=url) as client:
        console.print(f"server {url}, local worker with {SLOTS} slots")
        client.submit_job("bench", ["true"], None)  # warm-up: project, worker, first run
        ms = latency(client, 10)
        rows.append(row("queued_to_running", ms, 1000.0, "ms", 1000.0 / ms))
        console.print(f"queued -> running: {ms:.1f} ms")
        rate = throughput(client, args.jobs)
        limit = direct_rate(args.jobs, SLOTS)
        rows.append(row(f"throughput_{args.jobs}_jobs", rate, limit, "jobs/s", rate / limit))
        console.print(f"throughput: {rate:.1f} jobs/s (direct: {limit:.1f})")

        src = work / "data"
        size = make_folder(src, args.size_mb)
        mb = size / 1e6
        t = time.perf_counter()
        shutil.copytree(src, work / "copy")
        copy_rate = mb / (time.perf_counter() - t)
        shutil.rmtree(work / "copy")
        t = time.perf_counter()
        version, first = transfer.push_dataset(client.http, "bench", "blob", src)
        push_rate = mb / (time.perf_counter() - t)
        assert first.sent == size, first
        rows.append(
            row(f"push_{args.size_mb}MB", push_rate, copy_rate, "MB/s", push_rate / copy_rate)
        )
        t = time.perf_counter()
        again_version, again = transfer.push_dataset(client.http, "bench", "blob", src)
        second_s = time.perf_counter() - t
        assert again_version["version"] == version["version"]
        rows.append(
            row("second_push_bytes_sent", again.sent, size, "bytes", size / max(again.sent, 1))
        )
        t = time.perf_counter()
        _, pulled = transfer.pull_dataset(client.http, "bench", "blob@latest", work / "pulled")
        pull_rate = mb / (time.perf_counter() - t)
        assert pulled.sent == size
        rows.append(
            row(f"pull_{args.size_mb}MB", pull_rate, copy_rate, "MB/s", pull_rate / copy_rate)
        )
        console.print(
            f"push {push_rate:.0f} MB/s, pull {pull_rate:.0f} MB/s, copy {copy_rate:.0f} MB/s; "
            f"second push sent {again.sent} bytes in {second_s:.2f} s"
        )
    return rows


def report(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table("case", "Shipyard", "peer / limit", "unit", "ratio")
    for r in rows:
        table.add_row(
            r["case"], f"{r['shipyard']:,.2f}", f"{r['peer']:,.2f}", r["unit"], f"{r['ratio']:.3g}"
        )
    console.print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here (DESIGN.md format)")
    parser.add_argument("--size-mb", type=int, default=1024, help="dataset size (1 GB)")
    parser.add_argument("--jobs", type=int, default=500, help="jobs for the throughput case")
    parser.add_argument("--quick", action="store_true", help="64 MB and 50 jobs")
    parser.add_argument("--limit-s", type=float, default=900, help="give up after this long")
    args = parser.parse_args()
    if args.quick:
        args.size_mb, args.jobs = 64, 50
    console = Console()
    console.print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    signal.signal(signal.SIGALRM, lambda *_: sys.exit("benchmark ran past --limit-s"))
    signal.alarm(int(args.limit_s))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
        rows = measure(args, Path(tmp), console)
    report(rows, console)
    console.print(f"{time.perf_counter() - start:.0f} s in all")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
