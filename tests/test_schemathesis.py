"""schemathesis against the app's OpenAPI document: generated requests reach the handlers of real
objects (tests/_seeded.py) and none of them is answered with a server error.

Each operation gets a few examples, derandomized (the same ones every run), with its path
parameters set to the seeded names and ids so the generated query and body reach its handler;
DELETE operations run last, so the objects stay for the others. A successful answer must match
its documented schema, a 4xx must be problem+json, and the server must keep the connection.
The run stops starting operations after ``DEADLINE_S``, so a slow machine tests fewer of them
instead of running long; nothing asserts a time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests._seeded import auth_headers, package, path_values, seed, settings
from tests.conftest import ServerThread

__all__ = ["package", "settings"]  # fixtures, used by name

EXAMPLES = 4
DEADLINE_S = 80.0
# Fixed query values: a log followed live would stream until the job ends.
FIXED_QUERY = {"/api/jobs/{job_id}/logs": {"follow": False}}
# Inference bodies go to a replica, which a scaled-to-zero endpoint would have to start: they
# are sent to an endpoint that does not exist (the route answers 404 before reading the body).
INFERENCE = ("/v1/models/", "/v2/models/", "/endpoints/")


def _typed(op: Any, values: dict[str, str]) -> dict[str, Any]:
    """Path values as their parameters' types (schemathesis validates them)."""
    out: dict[str, Any] = {}
    for param in op.path_parameters:
        value = values[param.name]
        out[param.name] = (
            int(value) if param.definition["schema"].get("type") == "integer" else value
        )
    return out


def _header(response: Any, name: str) -> str | None:
    values = response.headers.get(name)  # schemathesis keeps each header's values as a list
    return values[0] if values else None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_generated_requests_get_no_server_error(server: ServerThread, package: Path) -> None:
    import httpx

    headers = auth_headers(server)
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
        w = seed(http, package)
        doc = http.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(doc)
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=lambda op: op.method.upper() == "DELETE")  # stable: the rest in order
    session = requests.Session()
    session.headers.update(headers)
    deadline = time.monotonic() + DEADLINE_S
    tested: list[str] = []
    failures: list[str] = []

    for op in operations:
        if time.monotonic() > deadline:
            break
        values = path_values(op.path, w)
        if op.path.startswith(INFERENCE):
            values = {**values, "name": "nope"}
        strategy = op.as_strategy(
            path_parameters=_typed(op, values), query=FIXED_QUERY.get(op.path) or None
        )

        @hypothesis_settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def call(case: Any) -> None:
            response = case.call(base_url=server.url, session=session, timeout=60)
            checks = [not_a_server_error]
            if 200 <= response.status_code < 300:
                checks.append(response_schema_conformance)
            case.validate_response(response, checks=checks)
            assert _header(response, "connection") != "close", case.as_curl_command()
            if response.status_code >= 400:
                assert _header(response, "content-type") == "application/problem+json"
                assert response.json()["status"] == response.status_code

        try:
            call()
        except Exception as exc:  # one report for every failing operation
            failures.append(f"{op.label}: {str(exc)[:1500]}")
        tested.append(op.label)
    session.close()
    took = time.monotonic() - deadline + DEADLINE_S
    print(f"schemathesis: {len(tested)} of {len(operations)} operations in {took:.0f} s")
    assert not failures, "\n\n".join(failures)
    assert tested
