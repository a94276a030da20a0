"""The rules exported for a Prometheus of one's own: ``promtool check rules`` accepts them and
a real Prometheus (Debian's), scraping the server's ``/metrics``, fires the same alert as
Shipyard's evaluator on the same traffic."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests._postgres import free_port
from tests.monitoring.test_alerts import BAD, GOOD, rule, wait_state
from tests.serving.conftest import DriftServer
from tests.serving.test_cli import sy

PROMETHEUS, PROMTOOL = Path("/usr/bin/prometheus"), Path("/usr/bin/promtool")


@pytest.fixture
def exported(alerting: DriftServer, tmp_path: Path) -> Path:
    d = alerting
    d.deploy(version=1, replicas=1)
    d.ready(1)
    rule(d, name="errors", metric="error_ratio", threshold=0.3, window_s=10)
    rule(d, name="slow", metric="p99_ms", threshold=60_000, window_s=30, for_s=120)
    rule(d, name="idle", metric="rate", op="<", threshold=0.001, window_s=60)
    rule(d, name="drift", metric="drifted_features", threshold=0, enabled=False)
    path = tmp_path / "rules.yml"
    assert "wrote 3 rules" in sy(d, "alerts", "export", "-o", str(path))
    return path


def test_promtool_accepts_the_exported_rules(exported: Path) -> None:
    check = subprocess.run([str(PROMTOOL), "check", "rules", str(exported)], capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert b"SUCCESS: 3 rules found" in check.stdout
    (group,) = yaml.safe_load(exported.read_text())["groups"]
    slow = next(r for r in group["rules"] if r["alert"] == "shipyard_p_slow")
    assert slow["for"] == "120s" and slow["labels"]["shipyard_rule"] == "slow"
    assert "histogram_quantile(0.99" in slow["expr"] and slow["expr"].endswith("> 60000.0")


@pytest.fixture
def prometheus(alerting: DriftServer, exported: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(exported)],
        "scrape_configs": [
            {"job_name": "shipyard", "static_configs": [{"targets": [alerting.url[7:]]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [
            str(PROMETHEUS),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "prometheus did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_real_prometheus_fires_the_same_alert(alerting: DriftServer, prometheus: str) -> None:
    d = alerting
    stop = threading.Event()

    def traffic() -> None:  # three failures in four requests, spread over many scrapes
        n = 0
        while not stop.is_set():
            d.http.post("/v1/models/ep:predict", json=GOOD if n % 4 == 0 else BAD)
            n += 1
            time.sleep(0.05)

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            alerts = httpx.get(f"{prometheus}/api/v1/alerts").json()["data"]["alerts"]
            states = {a["labels"]["alertname"]: a["state"] for a in alerts}
            if states.get("shipyard_p_errors") == "firing":
                break
            assert time.monotonic() < deadline, alerts
            time.sleep(0.25)
        ours = wait_state(d, "errors", "firing")
        assert ours["value"] > 0.3
        (errors,) = [a for a in alerts if a["labels"]["alertname"] == "shipyard_p_errors"]
        assert errors["labels"]["endpoint"] == "ep" and 0.5 < float(errors["value"]) <= 0.8
        assert "shipyard_p_idle" not in states and "shipyard_p_slow" not in states
    finally:
        stop.set()
        sender.join()


DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "shipyard-endpoints.json"


def test_the_grafana_dashboards_queries_run_on_prometheus(
    alerting: DriftServer, prometheus: str
) -> None:
    d = alerting
    for _ in range(5):
        d.http.post("/v1/models/ep:predict", json=GOOD)
    d.http.get("/api/endpoints/ep/drift")  # sets the drift gauges (collecting: none yet)
    exposed = d.http.get("/metrics").text
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    assert len(exprs) >= 12
    for expr in exprs:
        for name in set(re.findall(r"shipyard_[a-z_]+", expr)):
            base = re.sub(r"_(bucket|total)$", "", name)
            assert f"# HELP {base}" in exposed or f"# HELP {name}" in exposed, name
        query = expr.replace('=~"$endpoint"', '=~".*"').replace("$__rate_interval", "30s")
        r = httpx.get(f"{prometheus}/api/v1/query", params={"query": query})
        assert r.status_code == 200 and r.json()["status"] == "success", (query, r.text)
