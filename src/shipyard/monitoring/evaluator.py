"""The alert evaluator: a background service that evaluates every enabled rule each
``SHIPYARD_ALERT_INTERVAL_S``, writes the events, then notifies.

The values come from what this server routed (the endpoints' recent traffic and the drift of
their latest requests), as ``GET /api/endpoints/{name}/stats`` and ``/drift`` report them. An
event is committed before its notifications go out, and their outcome is written to it after:
a channel that is down never loses the event, and delivery happens outside the transaction.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy.orm import Session

from shipyard import auth
from shipyard.background import Periodic
from shipyard.db import utcnow
from shipyard.errors import NotFound
from shipyard.monitoring import notify, service, targets
from shipyard.monitoring.tables import AlertEvent, AlertRule
from shipyard.runtime import Runtime
from shipyard.serving import drift
from shipyard.serving import service as serving_service
from shipyard.serving.api import Serving
from shipyard.serving.schemas import DriftOut

log = logging.getLogger(__name__)
TRAFFIC = ("rate", "error_ratio", "p50_ms", "p95_ms", "p99_ms")
STATE_VALUE = {"ok": 0, "pending": 1, "firing": 2}


class AlertEvaluator(Periodic):
    """Evaluates the rules; ``run_once`` is one pass (the loop runs it in a worker thread)."""

    what = "alert evaluation"

    def __init__(self, rt: Runtime, serving: Serving, registry: CollectorRegistry) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._reports: dict[str, DriftOut] = {}  # this pass's drift reports by endpoint
        self.rt = rt
        self.serving = serving
        self.interval_s = rt.settings.alert_interval_s
        self.policy = targets.Policy.of(rt.settings)
        self.gauge = Gauge(
            "shipyard_alert_state",
            "Alert rule state: 0 ok, 1 pending, 2 firing.",
            ["project", "rule"],
            registry=registry,
        )

    def value(self, s: Session, rule: AlertRule) -> float | None:
        """The rule's metric now (None: no data)."""
        if rule.metric in TRAFFIC:
            traffic = self.serving.router.metrics.traffic.endpoints.get(rule.endpoint)
            if traffic is None:
                return 0.0 if rule.metric == "rate" else None
            value = traffic.summary(rule.window_s)[rule.metric]
            return None if value is None else float(value)
        try:
            endpoint = serving_service.get_endpoint(s, rule.endpoint)
        except NotFound:
            return None
        report = self._reports.get(rule.endpoint)
        if report is None:  # once a pass per endpoint, however many rules watch its drift
            inputs = self.serving.version_inputs(s, self.rt, endpoint)
            report = self._reports[rule.endpoint] = self.serving.drift(
                rule.endpoint, inputs, self.rt.settings
            )
        measured = [drift.totals(v.features) for v in report.versions if v.status in drift.MEASURED]
        if not measured:
            return None
        if rule.metric == "drifted_features":
            return float(max(drifted for drifted, _ in measured))
        return max(psi for _, psi in measured)

    def run_once(self) -> list[int]:
        """One pass: evaluate, write the events, notify; the ids of the events written. Passes
        never overlap (a pass asked for while one runs waits for it), so a transition is
        written once."""
        with self._lock:
            return self._pass()

    def _pass(self) -> list[int]:
        now = utcnow()
        self._reports.clear()
        todo: list[tuple[int, dict[str, Any], list[tuple[str, str, str]]]] = []
        with self.rt.db.session() as s:
            projects = auth.project_names(s)
            for rule in service.list_rules(s, None):
                if not rule.enabled:
                    self.gauge.labels(projects[rule.project_id], rule.name).set(0)
                    continue
                try:
                    value = self.value(s, rule)
                except Exception:  # one rule's broken input (a package gone) spares the rest
                    log.exception("alert %s: its metric could not be computed", rule.name)
                    value = None
                happened = service.step(rule, value, now)
                project = projects[rule.project_id]
                self.gauge.labels(project, rule.name).set(STATE_VALUE[rule.state])
                if happened is None:
                    continue
                event = service.add_event(s, rule, project, happened)
                s.flush()
                channels = [
                    (c.name, c.kind, c.url)
                    for c in service.list_channels(s, rule.project_id)
                    if c.name in rule.channels
                ]
                fields = {
                    "status": happened,
                    "project": project,
                    "rule": rule.name,
                    "endpoint": rule.endpoint,
                    "metric": rule.metric,
                    "condition": service.condition(rule),
                    "value": rule.value,
                    "text": event.message,
                    "at": event.at.isoformat(),
                }
                todo.append((event.id, fields, channels))
        for event_id, fields, channels in todo:
            deliveries = [notify.deliver(*c, fields, self.policy).to_dict() for c in channels]
            if deliveries:
                with self.rt.db.session() as s:
                    row = s.get(AlertEvent, event_id)
                    if row is not None:
                        row.deliveries = deliveries
            failed = [d["channel"] for d in deliveries if not d["ok"]]
            if failed:
                log.warning("alert %s: could not notify %s", fields["rule"], failed)
        return [event_id for event_id, _, _ in todo]
