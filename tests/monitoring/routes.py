"""The alerting routes in the cross-cutting route tables: the authorization matrix (least role
of each route) and a bad request for each route."""

from __future__ import annotations

import itertools
from typing import Any

from tests.registry.conftest import World

_n = itertools.count()
A = "/api/projects/{project}/alerts"
PA = "/api/projects/proj/alerts"
CLOSED = "http://127.0.0.1:9/hook"  # nothing listens: deliveries fail at once, refused


def _cache(w: World) -> dict[str, Any]:
    cache: dict[str, Any] | None = getattr(w, "_alerts", None)
    if cache is None:
        cache = {}
        w._alerts = cache  # type: ignore[attr-defined]
    return cache


def fresh_channel(w: World) -> str:
    name = f"c{next(_n)}"
    w.ok("root", "POST", f"{PA}/channels", json={"name": name, "url": CLOSED})
    return name


def any_channel(w: World) -> str:
    cache = _cache(w)
    if "channel" not in cache:
        cache["channel"] = fresh_channel(w)
    return str(cache["channel"])


def rule_body() -> dict[str, Any]:
    return {"name": f"r{next(_n)}", "endpoint": "ep", "metric": "p99_ms", "threshold": 100}


def fresh_rule(w: World) -> str:
    return str(w.ok("root", "POST", f"{PA}/rules", json=rule_body())["name"])


def any_rule(w: World) -> str:
    cache = _cache(w)
    if "rule" not in cache:
        cache["rule"] = fresh_rule(w)
    return str(cache["rule"])


Build = Any
MATRIX: dict[tuple[str, str], tuple[str, Build]] = {
    ("GET", A + "/channels"): ("viewer", lambda w, who: (f"{PA}/channels", None)),
    ("POST", A + "/channels"): (
        "maintainer",
        lambda w, who: (f"{PA}/channels", {"name": f"c{next(_n)}", "url": CLOSED}),
    ),
    ("DELETE", A + "/channels/{name}"): (
        "maintainer",
        lambda w, who: (f"{PA}/channels/{fresh_channel(w)}", None),
    ),
    ("POST", A + "/channels/{name}/test"): (
        "maintainer",
        lambda w, who: (f"{PA}/channels/{any_channel(w)}/test", None),
    ),
    ("GET", A + "/rules"): ("viewer", lambda w, who: (f"{PA}/rules", None)),
    ("POST", A + "/rules"): ("maintainer", lambda w, who: (f"{PA}/rules", rule_body())),
    ("GET", A + "/rules/{name}"): ("viewer", lambda w, who: (f"{PA}/rules/{any_rule(w)}", None)),
    ("PATCH", A + "/rules/{name}"): (
        "maintainer",
        lambda w, who: (f"{PA}/rules/{any_rule(w)}", {"threshold": 50}),
    ),
    ("DELETE", A + "/rules/{name}"): (
        "maintainer",
        lambda w, who: (f"{PA}/rules/{fresh_rule(w)}", None),
    ),
    ("GET", A + "/events"): ("viewer", lambda w, who: (f"{PA}/events", None)),
}

P = "/api/projects/p/alerts"
BAD: dict[tuple[str, str], tuple[str, dict[str, object], int]] = {
    ("GET", A + "/channels"): ("/api/projects/nope/alerts/channels", {}, 404),
    ("POST", A + "/channels"): (f"{P}/channels", {"json": {"name": "c", "url": "ftp://x/y"}}, 422),
    ("DELETE", A + "/channels/{name}"): (f"{P}/channels/nope", {}, 404),
    ("POST", A + "/channels/{name}/test"): (f"{P}/channels/nope/test", {}, 404),
    ("GET", A + "/rules"): ("/api/projects/nope/alerts/rules", {}, 404),
    ("POST", A + "/rules"): (
        f"{P}/rules",
        {"json": {"name": "r", "endpoint": "nope", "metric": "rate", "threshold": 1}},
        404,
    ),
    ("GET", A + "/rules/{name}"): (f"{P}/rules/nope", {}, 404),
    ("PATCH", A + "/rules/{name}"): (f"{P}/rules/nope", {"json": {"threshold": 1}}, 404),
    ("DELETE", A + "/rules/{name}"): (f"{P}/rules/nope", {}, 404),
    ("GET", A + "/events"): (f"{P}/events", {"params": {"limit": 0}}, 422),
}
