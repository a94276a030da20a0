"""Alert rules against a live server with a real replica: they fire on the endpoint's errors,
latency and input drift, notify real HTTP receivers (Slack's body and a JSON webhook), record
their history, and resolve; a failing channel is retried and recorded, never loses the event."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from shipyard.monitoring.service import step
from shipyard.monitoring.tables import AlertRule
from tests.monitoring.conftest import Receiver, shifted
from tests.serving.conftest import DriftServer

A = "/api/projects/p/alerts"
GOOD = {"instances": np.zeros((1, 64)).tolist()}
BAD = {"instances": [[0.0, 1.0]]}  # the wrong shape: a 400


def test_a_rule_is_pending_for_its_duration_then_fires_then_resolves() -> None:
    rule = AlertRule(op=">", threshold=0.1, for_s=30, state="ok")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert step(rule, 0.5, t0) is None and rule.state == "pending"
    assert step(rule, 0.5, t0 + timedelta(seconds=29)) is None and rule.state == "pending"
    assert step(rule, 0.5, t0 + timedelta(seconds=30)) == "firing"
    assert rule.state_since == t0 + timedelta(seconds=30)
    assert step(rule, 0.9, t0 + timedelta(seconds=40)) is None and rule.state == "firing"
    assert step(rule, None, t0 + timedelta(seconds=50)) == "resolved"  # no data: not holding
    assert rule.state == "ok" and rule.value is None
    assert step(rule, 0.5, t0 + timedelta(seconds=60)) is None  # pending again, from now
    assert step(rule, 0.0, t0 + timedelta(seconds=61)) is None and rule.state == "ok"
    at_once = AlertRule(op="<=", threshold=1, for_s=0, state="ok")
    assert step(at_once, 1.0, t0) == "firing"


def rule(d: DriftServer, **body: Any) -> dict[str, Any]:
    r = d.http.post(f"{A}/rules", json={"endpoint": "ep", "window_s": 60, **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


def get_rule(d: DriftServer, name: str) -> dict[str, Any]:
    return dict(d.http.get(f"{A}/rules/{name}").json())


def wait_state(d: DriftServer, name: str, state: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (r := get_rule(d, name))["state"] != state:
        assert time.monotonic() < deadline, r
        time.sleep(0.05)
    return r


def channel(d: DriftServer, name: str, url: str, kind: str = "webhook") -> None:
    r = d.http.post(f"{A}/channels", json={"name": name, "url": url, "kind": kind})
    assert r.status_code == 201, r.text
    assert r.json()["url"].endswith("/…") and "/hooks" not in r.json()["url"]  # secret path


def test_errors_fire_notify_every_channel_and_resolve(
    alerting: DriftServer, receiver: Receiver
) -> None:
    d = alerting
    d.deploy(version=1, replicas=1)
    d.ready(1)
    channel(d, "slack", receiver.url + "/hooks/slack", kind="slack")
    channel(d, "hook", receiver.url + "/hooks/json")
    rule(
        d,
        name="errors",
        metric="error_ratio",
        threshold=0.3,
        channels=["slack", "hook"],
        description="more than 30% of requests fail",
        enabled=False,  # paused while the traffic goes out, so it sees all of it at once
    )
    assert get_rule(d, "errors")["condition"] == "error_ratio > 0.3"
    for body in [BAD] * 8 + [GOOD] * 2:
        d.http.post("/v1/models/ep:predict", json=body)
    d.http.patch(f"{A}/rules/errors", json={"enabled": True}).raise_for_status()
    fired = wait_state(d, "errors", "firing")
    assert fired["value"] == pytest.approx(0.8)
    (slack,) = receiver.wait("/hooks/slack", 1)
    assert slack == {
        "text": "[FIRING] p/errors: endpoint ep error_ratio is 0.8 (rule: error_ratio > 0.3, "
        "over 1 min)"
    }
    (hook,) = receiver.wait("/hooks/json", 1)
    assert hook["status"] == "firing" and hook["rule"] == "errors" and hook["value"] == 0.8
    assert hook["project"] == "p" and hook["endpoint"] == "ep" and hook["text"] == slack["text"]

    for _ in range(30):  # 8 errors in 40 requests: 20%, under the threshold
        d.http.post("/v1/models/ep:predict", json=GOOD)
    wait_state(d, "errors", "ok")
    resolved = receiver.wait("/hooks/slack", 2)[1]["text"]
    assert resolved.startswith("[RESOLVED] p/errors: endpoint ep error_ratio is ")
    assert float(resolved.split(" is ")[1].split()[0]) <= 0.3  # 8 errors in 28 requests or more
    assert receiver.wait("/hooks/json", 2)[1]["status"] == "resolved"
    events = d.http.get(f"{A}/events").json()
    assert [e["state"] for e in events] == ["resolved", "firing"]  # newest first
    deadline = time.monotonic() + 10  # the outcome is written after the delivery
    while not events[0]["deliveries"]:
        assert time.monotonic() < deadline
        events = d.http.get(f"{A}/events").json()
    assert {(x["channel"], x["ok"], x["status"]) for x in events[0]["deliveries"]} == {
        ("slack", True, 200),
        ("hook", True, 200),
    }
    metrics = d.http.get("/metrics").text
    assert 'shipyard_alert_state{project="p",rule="errors"} 0.0' in metrics


def test_latency_waits_for_its_duration_and_a_failing_channel_is_recorded(
    alerting: DriftServer, receiver: Receiver
) -> None:
    d = alerting
    d.deploy(version=1, replicas=1)
    d.ready(1)
    channel(d, "broken", receiver.url + "/fail")
    start = time.monotonic()
    created = rule(d, name="slow", metric="p50_ms", op=">=", threshold=0, for_s=1.0)
    assert created["state"] == "ok" and created["channels"] == []
    d.http.patch(f"{A}/rules/slow", json={"channels": ["broken"]}).raise_for_status()
    for _ in range(5):
        d.http.post("/v1/models/ep:predict", json=GOOD)
    wait_state(d, "slow", "firing")
    assert time.monotonic() - start >= 1.0  # pending for its 'for' first
    assert len(receiver.wait("/fail", 3)) == 3  # a 500 is retried, three tries in all
    deadline = time.monotonic() + 10
    while not (events := d.http.get(f"{A}/events", params={"rule": "slow"}).json())[0][
        "deliveries"
    ]:
        assert time.monotonic() < deadline
    (delivery,) = events[0]["deliveries"]
    assert delivery == {
        "channel": "broken",
        "ok": False,
        "status": 500,
        "error": "HTTP 500: ok",
        "attempts": 3,
    }
    # Pausing a firing rule silences it: back to ok, no resolved notification.
    d.http.patch(f"{A}/rules/slow", json={"enabled": False}).raise_for_status()
    assert get_rule(d, "slow")["state"] == "ok"
    time.sleep(0.6)
    assert len(d.http.get(f"{A}/events").json()) == 1 and len(receiver.at("/fail")) == 3
    r = d.http.post(f"{A}/channels/broken/test")
    assert r.status_code == 200 and r.json()["ok"] is False and r.json()["status"] == 500
    r = d.http.delete(f"{A}/channels/broken")
    assert r.status_code == 409 and "used by rules ['slow']" in r.json()["detail"]


def test_input_drift_fires_a_rule(alerting: DriftServer, receiver: Receiver) -> None:
    d = alerting
    d.deploy(version=1, replicas=1)
    d.ready(1)
    channel(d, "hook", receiver.url + "/drift")
    rule(d, name="drift", metric="drifted_features", threshold=0, channels=["hook"])
    rule(d, name="psi", metric="max_psi", threshold=20)
    time.sleep(0.5)
    assert get_rule(d, "drift")["state"] == "ok" and get_rule(d, "drift")["value"] is None
    d.send(shifted(1000))  # feature 12 three standard deviations off its reference
    fired = wait_state(d, "drift", "firing")
    assert fired["value"] == 1
    (hook,) = receiver.wait("/drift", 1)
    assert hook["text"].startswith("[FIRING] p/drift: endpoint ep drifted_features is 1 ")
    psi = get_rule(d, "psi")
    assert psi["state"] == "ok" and 1 < psi["value"] < 20, psi  # ~8 for a 3-sigma shift


def test_refusals(alerting: DriftServer, receiver: Receiver) -> None:
    d = alerting
    d.deploy(version=1, min_replicas=0, max_replicas=1)
    channel(d, "hook", receiver.url + "/x")
    for body, status, words in [
        ({"name": "r", "endpoint": "nope", "metric": "rate", "threshold": 1}, 404, "no endpoint"),
        ({"name": "r", "metric": "rate", "threshold": 1, "channels": ["x"]}, 422, "channel 'x'"),
        ({"name": "r", "metric": "accuracy", "threshold": 1}, 422, "invalid fields"),
        ({"name": "R!", "metric": "rate", "threshold": 1}, 422, "invalid fields"),
        ({"name": "r", "metric": "rate", "threshold": 1, "window_s": 5}, 422, "invalid fields"),
    ]:
        r = d.http.post(f"{A}/rules", json={"endpoint": "ep", **body})
        assert r.status_code == status and words in r.json()["detail"], r.text
        assert r.headers["content-type"] == "application/problem+json"
    rule(d, name="r", metric="rate", op="<", threshold=1)
    r = d.http.post(f"{A}/rules", json={"name": "r", "endpoint": "ep", "metric": "rate"})
    assert r.status_code == 422  # no threshold
    r = d.http.post(
        f"{A}/rules", json={"name": "r", "endpoint": "ep", "metric": "rate", "threshold": 2}
    )
    assert r.status_code == 409 and "already has a rule 'r'" in r.json()["detail"]
    r = d.http.post(f"{A}/channels", json={"name": "hook", "url": receiver.url})
    assert r.status_code == 409
    r = d.http.post(f"{A}/channels", json={"name": "z", "url": "file:///etc/passwd"})
    assert r.status_code == 422
    r = d.http.patch(f"{A}/rules/r", json={"channels": ["ghost"]})
    assert r.status_code == 422 and "channel 'ghost'" in r.json()["detail"]
    assert d.http.delete(f"{A}/rules/r").status_code == 204
    assert d.http.get(f"{A}/rules/r").status_code == 404
    assert d.http.delete(f"{A}/channels/hook").status_code == 204
