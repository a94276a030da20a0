"""Notifications: one JSON POST per channel, retried, each delivery's outcome recorded.

A ``slack`` channel gets Slack's incoming-webhook body, ``{"text": ...}`` (Mattermost, Rocket.Chat
and Discord's ``/slack`` endpoint take the same); a ``webhook`` channel gets the event as fields
(``status`` firing|resolved, ``project``, ``rule``, ``endpoint``, ``metric``, ``condition``,
``value``, ``text``, ``at``; a test notification has ``status`` test and no rule) for anything
else to route (PagerDuty via a relay, a ticket system, a test receiver).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx

ATTEMPTS = 3
BACKOFF_S = 0.5  # doubled after each failed attempt
TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Delivery:
    channel: str
    ok: bool
    status: int | None
    error: str
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def body(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """What a channel of ``kind`` is sent for an event (``fields``: see the module doc)."""
    if kind == "slack":
        return {"text": fields["text"]}
    return fields


def deliver(name: str, kind: str, url: str, fields: dict[str, Any]) -> Delivery:
    """POST the event to one channel: up to ``ATTEMPTS`` tries on a network error or a 5xx/429
    (not on another 4xx: the channel refused it and will again)."""
    payload = body(kind, fields)
    status: int | None = None
    error = ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            r = httpx.post(url, json=payload, timeout=TIMEOUT_S)
            status = r.status_code
            if r.is_success:
                return Delivery(name, True, status, "", attempt)
            error = f"HTTP {status}: {r.text[:200]}"
            if status < 500 and status != 429:
                return Delivery(name, False, status, error, attempt)
        except httpx.HTTPError as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"[:300]
        if attempt < ATTEMPTS:
            time.sleep(BACKOFF_S * 2 ** (attempt - 1))
    return Delivery(name, False, status, error, ATTEMPTS)
