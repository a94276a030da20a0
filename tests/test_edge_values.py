"""Edge values never reach the store raw: every number and string a route takes, one at a time.

The walker reads the app's OpenAPI document and, for each route (real objects in its path, a
valid body), replaces one number or string at a time, in the path, the query or the JSON body
(dict keys and free-form values included), with a value at an edge: past 64 bits, past the
32-bit columns, negative, zero, NaN and infinity, a long string, a lone UTF-16 surrogate
(escaped and as raw bytes), a NUL. Every answer must be below 500, a 4xx must be problem+json,
and the server must keep the connection (the next request goes over it).
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from shipyard.tracking.schemas import LogBatchIn
from tests._seeded import (
    Seeded,
    auth_headers,
    bodies,
    package,
    path_values,
    query_values,
    raw_bodies,
    seed,
    settings,
)
from tests.conftest import ServerThread

__all__ = ["package", "settings"]  # fixtures, used by name

INTS = [2**63, 2**64, -(2**63) - 1, 2**31, -1, 0]
# JSON has no NaN or infinity, but Python's parser takes the tokens, and pydantic the strings.
FLOATS = [math.nan, math.inf, -math.inf, "-Infinity", 1e308]
LONG = "x" * 100_000
URL_LONG = "x" * 60_000  # httpx refuses URLs past 64 KiB
SURROGATE, RAW_SURROGATE, NUL = "\ud800", "raw-surrogate", "a\x00b"
STRINGS = [LONG, SURROGATE, RAW_SURROGATE, NUL]
# Routes that parse their JSON body themselves (not in the OpenAPI document).
OWN_BODIES = {
    ("POST", "/api/runs/{run_id}/log"): LogBatchIn.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
}
KEY = object()  # a dict key's place in a location


@dataclass
class Request:
    method: str
    url: str
    content: bytes | None
    headers: dict[str, str]
    what: str  # the changed field and value, for the failure message


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"].split("/")[-1]
        schema = doc["components"]["schemas"][ref]
    return schema


def fields(
    schema: dict[str, Any], doc: dict[str, Any], loc: tuple[Any, ...] = ()
) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(location, "integer" | "number" | "string" | "any") of every number and string in a body
    schema; a dict contributes a key (``KEY``) and a value under the key ``"k"``."""
    schema = _resolve(schema, doc)
    for variant in schema.get("anyOf", []):
        if variant.get("type") != "null":
            yield from fields(variant, doc, loc)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        for name, sub in schema.get("properties", {}).items():
            yield from fields(sub, doc, (*loc, name))
        extra = schema.get("additionalProperties")
        if extra:
            yield (*loc, KEY), "string"
            yield from fields(extra if isinstance(extra, dict) else {}, doc, (*loc, "k"))
    elif kind == "array":
        yield from fields(schema.get("items", {}), doc, (*loc, 0))
    elif kind in ("integer", "number", "string"):
        yield loc, kind
    elif not kind and "anyOf" not in schema and "enum" not in schema and "const" not in schema:
        yield loc, "any"


def put(body: Any, loc: tuple[Any, ...], value: Any) -> Any:
    """A copy of ``body`` with ``value`` at ``loc`` (containers made as needed)."""
    out = copy.deepcopy(body)
    target = out
    for i, part in enumerate(loc[:-1]):
        nxt = loc[i + 1]
        empty: Any = [] if isinstance(nxt, int) else {}
        if isinstance(part, int):
            if not target:
                target.append(empty if nxt is not KEY else {})
            target = target[0]
        else:
            if not isinstance(target.get(part), list | dict):
                target[part] = empty if nxt is not KEY else {}
            target = target[part]
    last = loc[-1]
    if last is KEY:
        target[value] = "v"
    elif isinstance(last, int):
        if target:
            target[0] = value
        else:
            target.append(value)
    else:
        target[last] = value
    return out


def encode(body: Any) -> bytes:
    """JSON as a client sends it: a surrogate escaped (``\\ud800``), or as its raw UTF-8 bytes."""
    text = json.dumps(body)
    if f'"{RAW_SURROGATE}"' in text:
        raw = text.replace(f'"{RAW_SURROGATE}"', '"\ud800"')
        return raw.encode("utf-8", "surrogatepass")
    return text.encode()


def in_url(value: Any) -> str:
    """A value as it travels in a URL (a surrogate as the invalid UTF-8 %ED%A0%80)."""
    if value in (SURROGATE, RAW_SURROGATE):
        return "%ED%A0%80"
    if value == LONG:
        value = URL_LONG
    return quote(str(value), safe="")


def url_of(template: str, path: dict[str, str], query: dict[str, str]) -> str:
    url = template
    for name, value in path.items():
        url = url.replace("{" + name + "}", value)
    if query:
        url += "?" + "&".join(f"{quote(k, safe='')}={v}" for k, v in query.items())
    return url


def requests_for(
    doc: dict[str, Any], w: Seeded, ints: list[int], strings: list[str], floats: list[Any]
) -> Iterator[Request]:
    """Each route with one number or string at a time set to each edge value."""
    good = bodies(w)
    raw = raw_bodies()
    for own in OWN_BODIES.values():
        doc["components"]["schemas"].update(own.get("$defs", {}))
    json_type = {"content-type": "application/json"}
    for template, ops in doc["paths"].items():
        for method, op in ops.items():
            method = method.upper()
            key = (method, template)
            path = {k: quote(v, safe="") for k, v in path_values(template, w).items()}
            query = {k: quote(v, safe="") for k, v in query_values(template, w).items()}
            schema = (op.get("requestBody", {}).get("content", {}).get("application/json", {})).get(
                "schema"
            ) or OWN_BODIES.get(key)
            if schema is not None:
                assert key in good, f"tests/_seeded.py: add a valid body for {key}"
                body: Any = good[key]
                content: bytes | None = encode(body)
                headers = json_type
            else:
                content, headers = raw.get(key, b"" if method in ("POST", "PUT") else None), {}
            for param in op.get("parameters", []):
                where, name = param["in"], param["name"]
                kinds = {
                    s.get("type") for s in [param["schema"], *param["schema"].get("anyOf", [])]
                }
                values: list[Any] = list(ints) if "integer" in kinds else []
                if "string" in kinds:
                    values = [*ints, *strings]  # a string parameter may be parsed as a number
                for value in values:
                    what = f"{method} {template} {where} {name}={value!r:.40}"
                    if where == "path":
                        url = url_of(template, {**path, name: in_url(value)}, query)
                    elif where == "query":
                        url = url_of(template, path, {**query, name: in_url(value)})
                    elif where == "header" and isinstance(value, int):
                        url = url_of(template, path, query)
                        yield Request(method, url, content, {**headers, name: str(value)}, what)
                        continue
                    else:
                        continue
                    yield Request(method, url, content, headers, what)
            if schema is None:
                continue
            url = url_of(template, path, query)
            for loc, kind in fields(schema, doc):
                choices = {
                    "integer": ints,
                    "number": floats,
                    "string": strings,
                    "any": [*ints, *strings, *floats],
                }[kind]
                for value in choices:
                    if loc[-1] is KEY and not isinstance(value, str):
                        continue
                    what = f"{method} {template} body {'.'.join(map(str, loc))}={value!r:.40}"
                    content = encode(put(body, loc, value))
                    yield Request(method, url, content, headers, what)


def check(r: httpx.Response) -> str | None:
    """What is wrong with an answer to an edge request, or ``None``."""
    if r.status_code >= 500:
        return f"{r.status_code} {r.text[:200]}"
    if r.headers.get("connection") == "close":
        return f"{r.status_code}, and the server closes the connection"
    if r.status_code >= 400:
        if r.headers.get("content-type") != "application/problem+json":
            return f"{r.status_code} as {r.headers.get('content-type')}: {r.text[:200]}"
        if r.json().get("status") != r.status_code:
            return f"{r.status_code} with a problem saying {r.json().get('status')}"
    return None


def walk(
    server: ServerThread,
    package: Path,
    ints: list[int],
    strings: list[str],
    floats: list[Any] = FLOATS,
) -> int:
    """Send every edge request over one connection; returns how many were sent."""
    failures: list[str] = []
    with httpx.Client(base_url=server.url, headers=auth_headers(server), timeout=60) as http:
        w = seed(http, package)
        doc = http.get("/openapi.json").json()
        previous, sent = "the seeding", 0
        for req in requests_for(doc, w, ints, strings, floats):
            sent += 1
            try:
                r = http.request(req.method, req.url, content=req.content, headers=req.headers)
            except httpx.TransportError as exc:
                failures.append(f"{req.what}: {exc!r}; the connection dropped after {previous}?")
                continue
            if (wrong := check(r)) is not None:
                failures.append(f"{req.what}: {wrong}")
            previous = req.what
        assert http.get("/healthz").status_code == 200, f"the server died after {previous}"
    assert not failures, f"{len(failures)} of {sent} edge requests:\n" + "\n".join(failures[:60])
    return sent


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_edge_values_are_refused_with_a_problem_on_every_route(
    server: ServerThread, package: Path
) -> None:
    start = time.monotonic()
    sent = walk(server, package, INTS, STRINGS)
    print(f"edge walker: {sent} requests in {time.monotonic() - start:.1f} s")
    assert sent > 1000


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_edge_values_on_postgresql(server: ServerThread, package: Path) -> None:
    """What PostgreSQL alone refuses: NUL in text, integers past a 32-bit column, strings past
    a VARCHAR column, NaN in a JSON column."""
    sent = walk(server, package, [2**31, 2**63], [LONG, NUL, SURROGATE], [math.nan, "Infinity"])
    assert sent > 500


def test_unstorable_values_are_a_422_naming_the_field(server: ServerThread) -> None:
    with httpx.Client(base_url=server.url, headers=auth_headers(server)) as http:
        for body in (b'{"user": "\\ud800"}', b'{"user": "\xed\xa0\x80"}', b'{"user": "a\\u0000"}'):
            r = http.post("/api/tokens", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 422, r.text
            assert r.json()["errors"][0]["loc"] == ["body", "user"]
        r = http.patch(
            "/api/runs/" + "0" * 32,
            content=b'{"config": {"a": {"\\ud800x": 1}}}',
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["body", "config", "a", "\\ud800x"]
        r = http.get("/api/runs", params={"offset": 2**63})
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "offset"]
        r = http.get("/api/runs/%00")
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["path", "run_id"]
