"""Alert rules as a Prometheus rule file, for a team that scrapes ``/metrics`` with its own
Prometheus and routes alerts through Alertmanager.

Each rule becomes one alerting rule over the series Shipyard exposes: ``rate`` and
``error_ratio`` over ``shipyard_endpoint_requests_total``, the latency percentiles through
``histogram_quantile`` over ``shipyard_endpoint_request_duration_seconds`` (in ms, as the rule
says), and drift over the ``shipyard_endpoint_drifted_features`` / ``shipyard_endpoint_max_psi``
gauges (set when the server computes an endpoint's drift). The ``for`` carries over; labels
name the project, rule and endpoint. ``promtool check rules`` accepts the file (tested, and the
file is loaded by a real Prometheus in the tests).
"""

from __future__ import annotations

import re
from typing import Any

QUANTILES = {"p50_ms": "0.5", "p95_ms": "0.95", "p99_ms": "0.99"}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def expression(metric: str, endpoint: str, window_s: int) -> str:
    """The PromQL of a rule's metric (the condition is appended by the caller)."""
    sel = f'endpoint="{_label(endpoint)}"'
    window = f"[{window_s}s]"
    requests = f"shipyard_endpoint_requests_total{{{sel}}}"
    if metric == "rate":
        return f"(sum(rate({requests}{window})) or vector(0))"
    if metric == "error_ratio":
        errors = f'shipyard_endpoint_requests_total{{{sel},status=~"[45].."}}'
        return f"(sum(rate({errors}{window})) / sum(rate({requests}{window})))"
    if metric in QUANTILES:
        buckets = f"shipyard_endpoint_request_duration_seconds_bucket{{{sel}}}"
        return (
            f"(1000 * histogram_quantile({QUANTILES[metric]}, "
            f"sum by (le) (rate({buckets}{window}))))"
        )
    if metric == "drifted_features":
        return f"max(shipyard_endpoint_drifted_features{{{sel}}})"
    if metric == "max_psi":
        return f"max(shipyard_endpoint_max_psi{{{sel}}})"
    raise ValueError(f"unknown metric {metric!r}")


def alert_name(project: str, rule: str) -> str:
    """A valid Prometheus alert name (letters, digits, underscores) for a project's rule."""
    return re.sub(r"[^A-Za-z0-9_]", "_", f"shipyard_{project}_{rule}")


def rule_file(rules: list[dict[str, Any]]) -> dict[str, Any]:
    """A Prometheus rule file (as a dict for YAML) with one group per project."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rules:
        if not r["enabled"]:
            continue  # paused: not evaluated here either
        alert: dict[str, Any] = {
            "alert": alert_name(r["project"], r["name"]),
            "expr": f"{expression(r['metric'], r['endpoint'], r['window_s'])} "
            f"{r['op']} {r['threshold']!r}",
        }
        if r["for_s"]:
            alert["for"] = f"{round(r['for_s'])}s"
        alert["labels"] = {
            "severity": "warning",
            "shipyard_project": r["project"],
            "shipyard_rule": r["name"],
            "endpoint": r["endpoint"],
        }
        summary = f"endpoint {r['endpoint']}: {r['condition']} (value {{{{ $value }}}})"
        alert["annotations"] = {"summary": summary, "description": r.get("description") or ""}
        groups.setdefault(r["project"], []).append(alert)
    return {
        "groups": [{"name": f"shipyard-{project}", "rules": rs} for project, rs in groups.items()]
    }
