"""Notifications: one JSON POST per channel, retried, each delivery's outcome recorded.

A ``slack`` channel gets Slack's incoming-webhook body, ``{"text": ...}`` (Mattermost, Rocket.Chat
and Discord's ``/slack`` endpoint take the same); a ``webhook`` channel gets the event as fields
(``status`` firing|resolved, ``project``, ``rule``, ``endpoint``, ``metric``, ``condition``,
``value``, ``text``, ``at``; a test notification has ``status`` test and no rule) for anything
else to route (PagerDuty via a relay, a ticket system, a test receiver).

Before each try the channel URL is resolved and judged (:mod:`shipyard.monitoring.targets`) and
the request goes to the checked address itself, with the URL's ``Host`` header and, for https,
its name for TLS (SNI and the certificate check): the name is not looked up twice. Redirects are
not followed (a 3xx is a failed delivery with its status): a redirect could point anywhere.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from shipyard.monitoring import targets

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


def deliver(
    name: str, kind: str, url: str, fields: dict[str, Any], policy: targets.Policy
) -> Delivery:
    """POST the event to one channel: up to ``ATTEMPTS`` tries on a network error or a 5xx/429
    (not on another 4xx: the channel refused it and will again; not to a target ``policy``
    refuses: nothing is sent, the reason is the error)."""
    payload = body(kind, fields)
    status: int | None = None
    error = ""
    with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False) as client:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                target = targets.check(url, policy)  # again each try: DNS answers change
                r = _post(client, target, payload)
                status = r.status_code
                if r.is_success:
                    return Delivery(name, True, status, "", attempt)
                error = f"HTTP {status}: {r.text[:200]}"
                if status < 500 and status != 429:
                    return Delivery(name, False, status, error, attempt)
            except targets.Refused as exc:
                return Delivery(name, False, None, str(exc), attempt)
            except (targets.Unresolved, httpx.HTTPError) as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"[:300]
            if attempt < ATTEMPTS:
                time.sleep(BACKOFF_S * 2 ** (attempt - 1))
    return Delivery(name, False, status, error, ATTEMPTS)


def _post(client: httpx.Client, target: targets.Target, payload: dict[str, Any]) -> httpx.Response:
    """POST to the target's checked addresses in turn, until one takes the connection."""
    *others, last = target.addresses
    for address in others:
        try:
            return _post_to(client, target, address, payload)
        except httpx.ConnectError:
            continue
    return _post_to(client, target, last, payload)


def _post_to(
    client: httpx.Client, target: targets.Target, address: targets.IPAddress, payload: Any
) -> httpx.Response:
    return client.post(
        target.pinned(address),
        json=payload,
        headers={"Host": target.host_header},
        extensions={"sni_hostname": target.server_name},
    )
