"""``shipyard alerts`` against a live server: channels, a rule written as one condition, its
state and history, pause and resume, and one-line refusals."""

from __future__ import annotations

import os

from tests.conftest import refused
from tests.monitoring.conftest import Receiver
from tests.monitoring.test_alerts import BAD, wait_state
from tests.serving.conftest import DriftServer
from tests.serving.test_cli import sy


def test_alerts_from_the_cli(alerting: DriftServer, receiver: Receiver) -> None:
    d = alerting
    d.deploy(version=1, replicas=1)
    d.ready(1)
    url = receiver.url + "/hooks/services/T0/B0/secret"
    out = sy(d, "alerts", "channels", "add", "ops", "--url", url, "--kind", "slack")
    assert f"channel ops (slack) -> {receiver.url}/…" in out
    assert "channel ops: delivered (HTTP 200)" in sy(d, "alerts", "channels", "test", "ops")
    (test,) = receiver.at("/hooks/services/T0/B0/secret")
    assert test["text"].startswith("[TEST] p/ops: a test notification from Shipyard")
    assert "secret" not in sy(d, "alerts", "channels", "ls")
    out = sy(
        d,
        *("alerts", "create", "errors", "--endpoint", "ep", "--when", "error_ratio > 0.3"),
        *("--window", "1m", "--channel", "ops"),
    )
    assert "alert errors: error_ratio > 0.3 on endpoint ep" in out
    sy(d, "alerts", "pause", "errors")
    assert "paused" in sy(d, "alerts", "ls")
    for _ in range(5):
        d.http.post("/v1/models/ep:predict", json=BAD)
    assert "resumed" in sy(d, "alerts", "resume", "errors")
    wait_state(d, "errors", "firing")
    out = sy(d, "alerts", "ls")
    assert "error_ratio > 0.3" in out and "firing" in out and " 1 " in out
    receiver.wait("/hooks/services/T0/B0/secret", 2)
    history = sy(d, "alerts", "history")
    assert "errors" in history and "firing" in history and "[FIRING] p/errors" in history

    env = {**os.environ, "SHIPYARD_URL": d.url, "SHIPYARD_PROJECT": "p", "SHIPYARD_TOKEN": d.token}
    sy(d, "alerts", "channels", "add", "down", "--url", receiver.url + "/fail")
    for args, message in [
        (["alerts", "create", "x", "--endpoint", "ep", "--when", "accuracy > 1"], "METRIC OP"),
        (
            [
                "alerts",
                "create",
                "x",
                "--endpoint",
                "ep",
                "--when",
                "p99_ms > 9",
                "--window",
                "5 min",
            ],
            "use 90s, 30m",
        ),
        (["alerts", "create", "x", "--endpoint", "nope", "--when", "rate < 1"], "no endpoint"),
        (["alerts", "channels", "rm", "ops"], "used by rules ['errors']"),
        (["alerts", "channels", "test", "down"], "not delivered after 3 tries: HTTP 500"),
        (
            ["alerts", "channels", "add", "imds", "--url", "http://169.254.169.254/"],
            "points at a link-local or cloud metadata address (169.254.169.254): refused",
        ),
    ]:
        refused(args, env, message)
    sy(d, "alerts", "rm", "errors")
    assert "deleted channel ops" in sy(d, "alerts", "channels", "rm", "ops")
