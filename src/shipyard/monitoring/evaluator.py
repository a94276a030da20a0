"""The alert evaluator: a background service that evaluates every enabled rule each
``SHIPYARD_ALERT_INTERVAL_S``, writes the events, then notifies.

The values come from what this server routed (the endpoints' recent traffic and the drift of
their latest requests), as ``GET /api/endpoints/{name}/stats`` and ``/drift`` report them. An
event is committed before its notifications go out, and their outcome is written to it after:
a channel that is down never loses the event, and delivery happens outside the transaction.
The evaluator acts as the system actor ``alert evaluator`` through the same use cases as
anyone (``service.evaluate``, ``service.record_deliveries``): each change of a rule's state is
audited in the transaction that makes it, and a pass that changes none writes no record. It
reads the endpoints through serving's ``Serving`` (their traffic and drift), never its modules.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy.orm import Session

from shipyard import auth, serving
from shipyard.background import Periodic
from shipyard.db import utcnow
from shipyard.monitoring import channels, notify, service, targets
from shipyard.monitoring.tables import AlertRule
from shipyard.runtime import Runtime

log = logging.getLogger(__name__)
ACTOR = auth.system_actor("alert evaluator")  # who changes the rules' states in the store
TRAFFIC = ("rate", "error_ratio", "p50_ms", "p95_ms", "p99_ms")
STATE_VALUE = {"ok": 0, "pending": 1, "firing": 2}


class AlertEvaluator(Periodic):
    """Evaluates the rules; ``run_once`` is one pass (the loop runs it in a worker thread)."""

    what = "alert evaluation"

    def __init__(self, rt: Runtime, sv: serving.Serving, registry: CollectorRegistry) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._reports: dict[str, serving.DriftOut] = {}  # this pass's drift reports by endpoint
        self.rt = rt
        self.serving = sv
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
            value = getattr(self.serving.stats(rule.endpoint, rule.window_s), rule.metric)
            return None if value is None else float(value)
        report = self._reports.get(rule.endpoint)
        if report is None:  # once a pass per endpoint, however many rules watch its drift
            endpoint = serving.find_endpoint(s, rule.endpoint)
            if endpoint is None:
                return None
            report = self._reports[rule.endpoint] = self.serving.drift(s, endpoint)
        measured = serving.measured_totals(report)
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
        todo: list[tuple[int, str, dict[str, Any], list[tuple[str, str, str]]]] = []
        with self.rt.db.session() as s:
            projects = auth.project_names(s)
            for rule in service.rules_of(s, None):
                if not rule.enabled:
                    self.gauge.labels(projects[rule.project_id], rule.name).set(0)
                    continue
                try:
                    value = self.value(s, rule)
                except Exception:  # one rule's broken input (a package gone) spares the rest
                    log.exception("alert %s: its metric could not be computed", rule.name)
                    value = None
                project = projects[rule.project_id]
                event = service.evaluate(s, ACTOR, rule, project, value, now)
                self.gauge.labels(project, rule.name).set(STATE_VALUE[rule.state])
                if event is None:
                    continue
                targets_of = [
                    (c.name, c.kind, c.url)
                    for c in channels.channels_of(s, rule.project_id)
                    if c.name in rule.channels
                ]
                fields = {
                    "status": event.state,
                    "project": project,
                    "rule": rule.name,
                    "endpoint": rule.endpoint,
                    "metric": rule.metric,
                    "condition": service.condition(rule),
                    "value": rule.value,
                    "text": event.message,
                    "at": event.at.isoformat(),
                }
                todo.append((event.id, project, fields, targets_of))
        for event_id, project, fields, to in todo:
            deliveries = [notify.deliver(*c, fields, self.policy).to_dict() for c in to]
            if deliveries:
                with self.rt.db.session() as s:
                    service.record_deliveries(s, ACTOR, event_id, project, deliveries)
            failed = [d["channel"] for d in deliveries if not d["ok"]]
            if failed:
                log.warning("alert %s: could not notify %s", fields["rule"], failed)
        return [event_id for event_id, *_ in todo]
