"""Web UI: time from opening a run page to its chart of a 1,000,000-point metric being drawn.

Run it with the project's virtual environment::

    .venv/bin/python benchmarks/ui.py [--json PATH] [--points N] [--reps N]

A Shipyard server runs as a subprocess on a free 127.0.0.1 port with a fresh temporary home; the
SDK logs one run whose metric has ``--points`` points (``run.log_series``). Headless Chromium
(Debian's ``/usr/bin/chromium``, driven by Playwright) then opens the run page ``--reps`` times,
each in a fresh browser context (no cache), and reads the page's own ``shipyard:chart-drawn``
performance mark: milliseconds from the start of navigation until uPlot has drawn the first
chart. The server downsamples the series to 2,000 points (min/max per bucket) before sending it.

There is no peer in this case: the peer column holds the 1 s target and ``ratio`` is
1000 / ms (> 1 when the chart is drawn within the target). The median of the repeats is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _common import free_port
from playwright.sync_api import sync_playwright
from rich.console import Console
from rich.table import Table

import shipyard
from shipyard.client._config import ClientSettings

TARGET_MS = 1000.0
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
KEY = "train/loss"


def start_server(home: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SHIPYARD_HOME": str(home)}
    argv = [sys.executable, "-m", "shipyard", "server", "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start in 60 s")


def log_run(url: str, home: Path, points: int) -> str:
    """A finished run whose ``KEY`` series holds ``points`` points; its id."""
    sdk = ClientSettings(url=url, home=home, token=None)
    steps = np.arange(points, dtype=np.int64)
    values = 1.0 / (1.0 + steps / 5000.0) + 0.02 * np.sin(steps / 50.0)
    run = shipyard.init(project="bench-ui", name="one-million", settings=sdk, system_metrics=False)
    run.log_series(KEY, steps, values)
    run.finish()
    got = httpx.get(f"{url}/api/runs/{run.id}/metrics", timeout=30).json()["metrics"][KEY]["count"]
    if got != points:
        raise SystemExit(f"the server holds {got} points, not {points}")
    return run.id


def measure(url: str, run_id: str, chromium: str, reps: int) -> list[dict[str, float]]:
    """Per repeat: ms to the chart being drawn, and ms of the history request within it."""
    out = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for _ in range(reps):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(f"{url}/runs/{run_id}")
                page.wait_for_function(
                    "() => performance.getEntriesByName('shipyard:chart-drawn').length > 0",
                    timeout=30_000,
                )
                timing: dict[str, float] = page.evaluate(
                    """() => {
                        const drawn = performance.getEntriesByName('shipyard:chart-drawn')[0];
                        const nav = performance.getEntriesByType('navigation')[0];
                        const data = performance.getEntriesByType('resource')
                            .filter(r => r.name.includes('/history?'))[0];
                        return {
                            drawn: drawn.startTime,
                            html: nav.responseEnd,
                            data: data ? data.duration : NaN,
                            points: document.querySelector('.chart')._chart.u.data[0].length,
                        };
                    }"""
                )
                context.close()
                if errors:
                    raise SystemExit(f"page errors: {errors}")
                out.append(timing)
        finally:
            browser.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here (DESIGN.md format)")
    parser.add_argument("--points", type=int, default=1_000_000, help="points in the metric")
    parser.add_argument("--reps", type=int, default=5, help="page loads, each in a new context")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable")
    args = parser.parse_args()
    console = Console()
    if not Path(args.chromium).exists():
        console.print(f"[red]no Chromium at {args.chromium}[/]: apt-get install -y chromium")
        return 1
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-ui-") as tmp:
        home = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(home / "server", port, home / "server.log")
        try:
            t0 = time.perf_counter()
            run_id = log_run(url, home / "client", args.points)
            console.print(f"logged {args.points:,} points in {time.perf_counter() - t0:.1f} s")
            runs = measure(url, run_id, args.chromium, args.reps)
        finally:
            server.terminate()
            server.wait(15)
    drawn = statistics.median(r["drawn"] for r in runs)
    each = ", ".join(f"{r['drawn']:.0f}" for r in runs)
    table = Table(title=f"run page with a {args.points:,}-point metric (median of {args.reps})")
    for col in ("case", "shipyard", "target", "unit", "ratio"):
        table.add_column(col, justify="left" if col == "case" else "right")
    table.add_row(
        "chart_1m_points", f"{drawn:.0f}", f"{TARGET_MS:.0f}", "ms", f"{TARGET_MS / drawn:.2f}"
    )
    console.print(table)
    console.print(
        f"page HTML at {statistics.median(r['html'] for r in runs):.0f} ms, history request "
        f"{statistics.median(r['data'] for r in runs):.0f} ms, {int(runs[0]['points'])} points "
        f"drawn; every repeat: {each} ms",
        style="dim",
    )
    rows: list[dict[str, Any]] = [
        {
            "case": "chart_1m_points",
            "shipyard": float(drawn),
            "peer": TARGET_MS,
            "unit": "ms",
            "ratio": TARGET_MS / drawn,
        }
    ]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
