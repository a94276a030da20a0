"""The UI routes over HTTP (no browser): HTML errors, paging at scale, files served safely."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import insert

from shipyard.app import create_app
from shipyard.config import Settings
from shipyard.db import new_id
from shipyard.tracking.tables import ConfigValue, MetricSummary, Run
from tests.conftest import local_client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with local_client(create_app(Settings(home=tmp_path)), follow_redirects=False) as c:
        yield c


def start(client: TestClient, **body: object) -> str:
    r = client.post("/api/runs", json={"project": "p", **body})
    assert r.status_code == 201, r.text
    run_id: str = r.json()["id"]
    return run_id


def test_pages_are_html_with_safe_headers(client: TestClient) -> None:
    run_id = start(client, config={"lr": 0.1})
    for path in ("/", "/projects/p/runs", f"/runs/{run_id}", f"/compare?runs={run_id}"):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in r.text  # no inline script: the CSP forbids it
    assert client.get("/static/vendor/htmx/LICENSE").status_code == 200
    assert client.get("/static/vendor/uplot/LICENSE").status_code == 200


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/runs/" + "0" * 32, 404, "run &#39;00000000000000000000000000000000&#39; does not exist"),
        ("/runs/nope/live", 404, "does not exist"),
        ("/projects/ghost/runs", 404, "project &#39;ghost&#39; does not exist"),
        ("/compare?runs=a,b", 404, "does not exist"),
        ("/compare?runs=" + ",".join(str(i) for i in range(21)), 422, "at most 20 runs"),
        ("/projects/p/runs?offset=abc", 422, "offset"),
    ],
)
def test_bad_pages_are_html_errors_not_json(
    client: TestClient, path: str, status: int, text: str
) -> None:
    start(client)
    r = client.get(path)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("text/html")
    assert text in r.text


def test_a_bad_filter_or_sort_is_shown_above_an_empty_table(client: TestClient) -> None:
    start(client)
    r = client.get("/projects/p/runs", params={"filter": "config.lr >"})
    assert r.status_code == 200 and 'id="filter-error"' in r.text and "No runs match." in r.text
    r = client.get("/projects/p/runs", params={"sort": "bogus"}, headers={"hx-request": "true"})
    assert r.status_code == 200 and "order_by: unknown field" in r.text
    assert r.text.lstrip().startswith('<div id="runs-table"')  # the htmx fragment only


def test_the_runs_table_fragment_carries_the_sort_out_of_band(client: TestClient) -> None:
    start(client)
    r = client.get("/projects/p/runs", params={"sort": "-name"}, headers={"hx-request": "true"})
    assert (
        '<span id="sort-state" hx-swap-oob="true"><input type="hidden" name="sort" value="-name">'
        in r.text
    )
    assert r.headers["vary"] == "HX-Request"


def test_history_for_the_browser_is_the_apis(client: TestClient) -> None:
    run_id = start(client)
    metric = {"key": "loss", "steps": list(range(5000)), "values": [float(i) for i in range(5000)]}
    client.post(f"/api/runs/{run_id}/log", json={"batch_id": "b", "metrics": [metric]})
    ui = client.get(f"/runs/{run_id}/history", params={"key": "loss", "max_points": 500})
    api = client.get(f"/api/runs/{run_id}/history", params={"key": "loss", "max_points": 500})
    assert ui.status_code == 200 and ui.json() == api.json()
    assert ui.json()["downsampled"] and len(ui.json()["step"]) <= 500
    r = client.get(f"/runs/{run_id}/history", params={"key": "nope"})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


def test_artifacts_show_images_inline_and_download_everything_else(client: TestClient) -> None:
    run_id = start(client)
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(buf, format="PNG")
    client.put(f"/api/runs/{run_id}/artifacts/pic.png", content=buf.getvalue())
    client.put(f"/api/runs/{run_id}/artifacts/x/evil.html", content=b"<script>alert(1)</script>")

    img = client.get(f"/runs/{run_id}/artifacts/pic.png")
    assert img.headers["content-type"] == "image/png" and img.content == buf.getvalue()
    assert img.headers["content-disposition"].startswith("inline")
    again = client.get(
        f"/runs/{run_id}/artifacts/pic.png", headers={"if-none-match": img.headers["etag"]}
    )
    assert again.status_code == 304

    html = client.get(f"/runs/{run_id}/artifacts/x/evil.html")
    assert html.headers["content-type"] == "application/octet-stream"
    assert html.headers["content-disposition"] == "attachment; filename*=UTF-8''evil.html"
    assert html.headers["content-security-policy"].startswith("sandbox")
    assert client.get(f"/runs/{run_id}/artifacts/none").status_code == 404
    assert client.get(f"/runs/{run_id}/artifacts/%2E%2E/x").status_code == 400


def test_the_runs_table_pages_through_ten_thousand_runs(client: TestClient) -> None:
    first = start(client, config={"lr": 0.5})
    rt = client.app.state.runtime  # type: ignore[attr-defined]
    with rt.db.session() as s:
        template = s.get(Run, first)
        t0 = datetime(2024, 1, 1, tzinfo=UTC)
        runs, configs, sums = [], [], []
        for i in range(10_000):
            rid = new_id()
            when = t0 + timedelta(seconds=i)
            runs.append(
                {
                    "id": rid,
                    "project_id": template.project_id,
                    "name": f"r{i:05d}",
                    "status": "finished",
                    "config": {"lr": i / 10_000},
                    "tags": [],
                    "notes": "",
                    "environment": {},
                    "created_by": template.created_by,
                    "created_at": when,
                    "updated_at": when,
                    "finished_at": when,
                    "heartbeat_at": when,
                }
            )
            configs.append({"run_id": rid, "key": "lr", "num": i / 10_000, "text": None})
            sums.append(
                {
                    "run_id": rid,
                    "key": "acc",
                    "last": i / 10_000,
                    "min": 0.0,
                    "max": 1.0,
                    "last_step": 9,
                    "count": 10,
                }
            )
        s.execute(insert(Run), runs)
        s.execute(insert(ConfigValue), configs)
        s.execute(insert(MetricSummary), sums)
    r = client.get("/projects/p/runs", params={"sort": "-summary.acc", "offset": 9950, "limit": 50})
    assert r.status_code == 200
    assert "Runs 9951–10000 of 10001" in r.text
    assert "r00049" in r.text and "r00050" not in r.text
    r = client.get("/projects/p/runs", params={"filter": "summary.acc >= 0.999"})
    assert "Runs 1–10 of 10" in r.text
