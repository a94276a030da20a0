"""Registry and serving pages in a real browser, with auth on and users in every role."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import torch
from fastapi import FastAPI
from playwright.sync_api import Browser, expect
from torch import nn

from shipyard.app import create_app
from shipyard.auth import service as auth_service
from shipyard.config import AuthMode, Settings
from shipyard.packages import save_model
from shipyard.tracking import service as tracking_service
from shipyard.ui.render import COOKIE
from tests._postgres import free_port
from tests.conftest import ServerThread, local_client
from tests.ui.conftest import Tab, open_tab

ROLES = {"mona": "maintainer", "dev": "developer", "vic": "viewer"}
CARD = (
    "# Digits MLP\n\nTrained on **digits**.\n\n"
    "<script>alert(1)</script>\n\n[bad](javascript:alert(1))"
)


@dataclass
class Governed:
    server: ServerThread
    app: FastAPI
    tokens: dict[str, str] = field(default_factory=dict)
    run_id: str = ""

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.tokens[who]}"}
        return httpx.request(method, self.server.url + path, headers=headers, **kwargs)

    def ok(self, who: str, method: str, path: str, **kwargs: Any) -> Any:
        r = self.call(who, method, path, **kwargs)
        assert r.status_code < 300, (method, path, r.status_code, r.text)
        return r.json() if r.content else None

    def request_alias(self, alias: str, version: int) -> str:
        body = {"alias": alias, "version": version, "reason": f"{alias} please"}
        out = self.ok("dev", "POST", "/api/projects/proj/models/m/alias-requests", json=body)
        return str(out["id"])


@pytest.fixture(scope="module")
def governed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Governed]:
    home = tmp_path_factory.mktemp("ui-platform")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    package = home / "pkg"
    reference = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
    save_model(model, package, input_example=np.ones((2, 8), np.float32), reference_data=reference)
    port = free_port()  # jobs (sweep trials) log back to the server at settings.port
    settings = Settings(
        home=home / "server",
        port=port,
        auth=AuthMode.required,
        worker_cpus=2.0,
        worker_gpus="",
        dispatch_interval_s=0.2,
        sweep_interval_s=0.2,
        allow_private_webhooks=True,  # the alerts page's channel points at 127.0.0.1:9
    )
    app = create_app(settings)
    g_tokens: dict[str, str] = {}
    with app.state.runtime.db.session() as s:
        for name in ["alice", *ROLES]:
            user = auth_service.create_user(s, name, is_admin=name == "alice")
            g_tokens[name] = auth_service.create_token(s, user, "ui test")[1]
    with ServerThread(app, port) as server:
        g = Governed(server, app, g_tokens)
        g.ok("alice", "POST", "/api/projects", json={"name": "proj"})
        for name, role in ROLES.items():
            g.ok("alice", "PUT", f"/api/projects/proj/members/{name}", json={"role": role})
        run = g.ok("alice", "POST", "/api/runs", json={"project": "proj", "name": "train"})
        g.run_id = run["id"]
        metrics = [{"key": "val/acc", "steps": [0, 1], "values": [0.5, 0.97]}]
        g.ok(
            "alice", "POST", f"/api/runs/{g.run_id}/log", json={"batch_id": "1", "metrics": metrics}
        )
        for file in sorted(package.rglob("*")):
            if file.is_file():
                rel = file.relative_to(package).as_posix()
                g.ok(
                    "alice",
                    "PUT",
                    f"/api/runs/{g.run_id}/artifacts/model/{rel}",
                    content=file.read_bytes(),
                )
        with app.state.runtime.db.session() as s:  # as `run.use_dataset` records it
            entry = {"project": "proj", "name": "digits", "version": 3, "manifest_sha256": "0"}
            tracking_service.add_datasets(s, g.run_id, [entry])
        for _ in range(2):
            g.ok(
                "alice",
                "POST",
                "/api/projects/proj/models/m/versions",
                json={"source": f"runs:/{g.run_id}/model"},
            )
        g.ok("alice", "PATCH", "/api/projects/proj/models/m", json={"card": CARD})
        g.ok("alice", "PUT", "/api/projects/proj/models/m/aliases/staging", json={"version": 1})
        yield g


@pytest.fixture
def as_user(browser: Browser, governed: Governed) -> Iterator[Any]:
    tabs: list[Tab] = []
    closers = []

    def sign_in(who: str) -> Tab:
        tab, close = open_tab(browser, governed.server.url)
        tab.page.context.add_cookies(
            [{"name": COOKIE, "value": governed.tokens[who], "url": governed.server.url}]
        )
        tabs.append(tab)
        closers.append(close)
        return tab

    yield sign_in
    for close in closers:
        close()
    for tab in tabs:
        assert tab.unexpected_errors() == [], tab.errors


def test_models_list_shows_latest_version_and_aliases(as_user: Any) -> None:
    tab = as_user("vic")
    tab.goto("/projects/proj/models")
    row = tab.page.locator("table.models tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td.num")).to_have_text("v2")
    expect(row).to_contain_text("@staging → v1")
    row.get_by_role("link", name="m").click()
    expect(tab.page.get_by_role("heading", name="m model")).to_be_visible()


def test_model_page_shows_versions_with_run_metrics_card_and_lineage(
    as_user: Any, governed: Governed
) -> None:
    tab = as_user("vic")
    tab.goto("/projects/proj/models/m")
    page = tab.page
    rows = page.locator("table.versions tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("table.versions thead")).to_contain_text("val/acc")
    expect(rows.first).to_contain_text("0.97")
    expect(rows.first.get_by_role("link", name="train")).to_have_attribute(
        "href", f"/runs/{governed.run_id}"
    )
    card = page.locator("#model-card")
    expect(card.get_by_role("heading", name="Digits MLP")).to_be_visible()
    expect(card.locator("strong")).to_have_text("digits")
    expect(card).to_contain_text("<script>alert(1)</script>")  # shown as text, never run
    assert card.locator("script").count() == 0
    assert card.locator('a[href^="javascript"]').count() == 0
    lineage = page.locator("ul.lineage")
    expect(lineage).to_contain_text("Datasets: digits@3")
    expect(lineage).to_contain_text("Run: train")
    expect(lineage).to_contain_text("Model version: m v2")
    graph = page.locator("svg.lineage-graph")
    expect(graph.locator("g.node.col0 > text")).to_have_text("digits@3")  # one node, shared
    expect(graph.locator("g.node.col2")).to_have_count(2)
    assert graph.locator(".edge").count() >= 3  # dataset -> run, run -> each version
    graph.locator("g.node.col1").first.click()
    expect(page).to_have_url(re.compile(r"/runs/"))


def test_a_maintainer_approves_an_alias_request_by_clicking(
    as_user: Any, governed: Governed
) -> None:
    request_id = governed.request_alias("champion", 2)
    tab = as_user("mona")
    tab.goto("/projects/proj/models/m")
    row = tab.page.locator(f'tr[data-request="{request_id}"]')
    expect(row).to_contain_text("champion please")
    row.get_by_label("Note for @champion").fill("looks good")
    row.get_by_role("button", name="Approve").click()
    expect(tab.page.locator('#aliases [data-alias="champion"]')).to_have_text("@champion → v2")
    expect(tab.page.locator(f'tr[data-request="{request_id}"]')).to_have_count(0)
    assert governed.ok("mona", "GET", "/api/projects/proj/models/m")["aliases"]["champion"] == 2
    (record,) = governed.ok(
        "mona", "GET", "/api/audit", params={"project": "proj", "action": "alias_request.approve"}
    )
    assert record["actor"] == "mona" and record["object_id"] == request_id
    assert record["after"] == {"status": "approved", "note": "looks good"}


def test_aliases_are_set_and_removed_by_clicking_within_roles(
    as_user: Any, governed: Governed
) -> None:
    tab = as_user("dev")
    tab.goto("/projects/proj/models/m")
    page = tab.page
    page.get_by_label("Alias", exact=True).fill("candidate")
    page.get_by_label("Version", exact=True).select_option("2")
    page.get_by_role("button", name="Set alias").click()
    expect(page.locator('#aliases [data-alias="candidate"]')).to_have_text("@candidate → v2")
    assert governed.ok("vic", "GET", "/api/projects/proj/models/m")["aliases"]["candidate"] == 2
    records = governed.ok(
        "mona", "GET", "/api/audit", params={"project": "proj", "action": "alias.set"}
    )
    assert [r["actor"] for r in records if r["object_id"] == "m@candidate"] == ["dev"]

    tab.allowed.append("403")  # a protected alias needs a maintainer: the API's own refusal
    page.get_by_label("Alias", exact=True).fill("champion")
    page.get_by_label("Version", exact=True).select_option("1")
    page.get_by_role("button", name="Set alias").click()
    expect(page.locator("main")).to_contain_text("this needs maintainer")
    assert governed.ok("vic", "GET", "/api/projects/proj/models/m")["aliases"].get("champion") != 1

    tab.goto("/projects/proj/models/m")
    page.get_by_role("button", name="Remove @candidate").click()
    expect(page.locator('#aliases [data-alias="candidate"]')).to_have_count(0)
    expect(page.locator('#aliases [data-alias="staging"]')).to_be_visible()

    viewer = as_user("vic")
    viewer.goto("/projects/proj/models/m")
    expect(viewer.page.locator("form.alias-form")).to_have_count(0)
    r = httpx.post(  # a forged form post is refused with the API's rule
        f"{governed.server.url}/projects/proj/models/m/aliases",
        cookies={COOKIE: governed.tokens["vic"]},
        data={"alias": "candidate", "version": "1"},
    )
    assert r.status_code == 403 and "this needs developer" in r.text
    r = httpx.post(
        f"{governed.server.url}/projects/proj/models/m/aliases",
        cookies={COOKIE: governed.tokens["dev"]},
        data={"alias": "Bad Name", "version": "1"},
    )
    assert r.status_code == 422 and "is invalid" in r.text
    r = httpx.post(
        f"{governed.server.url}/projects/proj/models/m/aliases",
        cookies={COOKIE: governed.tokens["dev"]},
        data={"alias": "ok", "version": "x"},
    )
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")


def test_a_maintainer_rejects_and_a_viewer_cannot_decide(as_user: Any, governed: Governed) -> None:
    request_id = governed.request_alias("prod", 1)
    viewer = as_user("vic")
    viewer.goto("/projects/proj/models/m")
    row = viewer.page.locator(f'tr[data-request="{request_id}"]')
    expect(row).to_contain_text("a maintainer decides")
    expect(row.get_by_role("button")).to_have_count(0)
    # a forged form post is refused with the API's rule
    r = httpx.post(
        f"{governed.server.url}/alias-requests/{request_id}/approve",
        cookies={COOKIE: governed.tokens["vic"]},
        data={"note": "sneaky"},
    )
    assert r.status_code == 403 and "this needs maintainer" in r.text
    # the requester (a developer) cannot either, and nothing moved
    r = httpx.post(
        f"{governed.server.url}/alias-requests/{request_id}/approve",
        cookies={COOKIE: governed.tokens["dev"]},
    )
    assert r.status_code == 403
    assert "prod" not in governed.ok("vic", "GET", "/api/projects/proj/models/m")["aliases"]
    # a maintainer's cookie on a form posted from another site is refused too (CSRF)
    r = httpx.post(
        f"{governed.server.url}/alias-requests/{request_id}/approve",
        cookies={COOKIE: governed.tokens["mona"]},
        headers={"origin": "http://evil.example"},
    )
    assert r.status_code == 403 and "another site" in r.text

    tab = as_user("mona")
    tab.goto("/projects/proj/models/m")
    row = tab.page.locator(f'tr[data-request="{request_id}"]')
    row.get_by_role("button", name="Reject").click()
    expect(tab.page.locator(f'tr[data-request="{request_id}"]')).to_have_count(0)
    (out,) = [
        r
        for r in governed.ok("mona", "GET", "/api/projects/proj/alias-requests")
        if r["id"] == request_id
    ]
    assert out["status"] == "rejected" and out["decided_by"] == "mona"


def test_endpoint_pages_load(as_user: Any) -> None:
    tab = as_user("vic")
    tab.goto("/endpoints")
    expect(tab.page.get_by_role("heading", name="Endpoints")).to_be_visible()
    tab.page.get_by_role("link", name="Endpoints").first.click()
    tab.goto("/endpoints/nope", status=404)
    tab.allowed.append("404")


def wait_job(governed: Governed, job_id: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job: dict[str, Any] = governed.ok("vic", "GET", f"/api/jobs/{job_id}")
        if job["state"] in {"succeeded", "failed", "cancelled", "timed_out", "lost"}:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


def test_jobs_queue_and_a_job_page_with_its_log_and_cost(as_user: Any, governed: Governed) -> None:
    code = "import time; print('hello from the job', flush=True); time.sleep(3); print('bye')"
    job = governed.ok(
        "dev",
        "POST",
        "/api/projects/proj/jobs",
        json={"name": "hello", "command": ["python", "-c", code]},
    )
    tab = as_user("vic")
    tab.goto(f"/jobs/{job['id']}")
    page = tab.page
    expect(page.get_by_role("heading", name="hello job")).to_be_visible()
    log = page.locator("#job-log")
    expect(log).to_have_attribute("data-log-stream", re.compile(r"follow=true"))  # not ended
    expect(page.locator("#job-log")).to_contain_text("hello from the job", timeout=20_000)
    expect(page.locator("#job-state")).to_have_text("succeeded", timeout=20_000)
    expect(log).to_contain_text("bye")
    expect(log).to_have_attribute("data-log-ended", "1")  # the stream's end event came
    assert log.inner_text().count("hello from the job") == 1  # appended once, not repeated
    assert page.locator("#job-live[hx-get]").count() == 0
    expect(page.locator("#job-cost")).to_contain_text("CPU·h")
    done = wait_job(governed, job["id"])

    tab.goto(f"/runs/{done['run_id']}")  # the job's run shows its log and links back
    expect(page.locator("#job-log")).to_contain_text("hello from the job")
    expect(page.locator("#job-log")).to_contain_text("bye")
    page.locator(".run-head").get_by_role("link", name="hello").click()
    expect(page).to_have_url(f"{governed.server.url}/jobs/{job['id']}")

    tab.goto("/projects/proj/jobs")
    row = page.locator(f'tr[data-job="{job["id"]}"]')
    expect(row).to_contain_text("succeeded")
    expect(row).to_contain_text("dev")
    page.get_by_label("State").select_option("failed")
    page.get_by_role("button", name="Show").click()
    expect(page.locator(f'tr[data-job="{job["id"]}"]')).to_have_count(0)


TRIAL = (
    "import sys, shipyard\n"
    "x = float(sys.argv[1].split('=')[1])\n"
    "with shipyard.init(system_metrics=False) as run:\n"
    "    run.log({'acc': x / 10})\n"
)


def test_a_sweep_page_lists_its_trials(as_user: Any, governed: Governed) -> None:
    config = {
        "name": "tiny",
        "method": "grid",
        "metric": {"name": "acc", "goal": "maximize"},
        "parameters": {"x": {"values": [1, 2]}},
        "command": ["python", "-c", TRIAL, "${args}"],
        "parallelism": 2,
    }
    sweep = governed.ok("dev", "POST", "/api/projects/proj/sweeps", json={"config": config})
    deadline = time.monotonic() + 60
    while True:
        trials = governed.ok("vic", "GET", f"/api/sweeps/{sweep['id']}")["trials"]
        if len(trials) == 2 and all(t["value"] is not None for t in trials):
            break
        assert time.monotonic() < deadline, trials
        time.sleep(0.2)
    tab = as_user("vic")
    tab.goto(f"/sweeps/{sweep['id']}")
    page = tab.page
    expect(page.get_by_role("heading", name="tiny sweep")).to_be_visible()
    expect(page.locator("table.trials tbody tr")).to_have_count(2)
    expect(page.locator("table.trials thead")).to_contain_text("Best so far")
    expect(page.locator("#sweep-best")).to_contain_text("0.2")
    expect(page.locator('#sweep-progress[data-drawn="1"] canvas')).to_have_count(1)
    best_run = next(t["run_id"] for t in trials if t["params"]["x"] == 2)
    link = page.locator("#sweep-compare")
    expect(link).to_have_text("Compare the 2 best trials")
    assert (link.get_attribute("href") or "").startswith(f"/compare?runs={best_run},")
    link.click()
    expect(page.locator("svg.parcoords[data-drawn='1']")).to_have_count(1)
    tab.goto("/projects/proj/jobs")
    tab.page.get_by_role("link", name="tiny", exact=True).click()
    expect(tab.page).to_have_url(f"{governed.server.url}/sweeps/{sweep['id']}")


def test_the_audit_log_filters_for_maintainers_and_is_refused_to_viewers(
    as_user: Any, governed: Governed
) -> None:
    tab = as_user("mona")
    tab.goto("/projects/proj/audit")
    page = tab.page
    expect(page.locator("table.audit tbody tr").first).to_be_visible()
    page.get_by_label("Actor").fill("alice")
    page.get_by_label("Action").fill("version.create")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.audit tbody tr")).to_have_count(2)
    assert set(page.locator("td.actor").all_inner_texts()) == {"alice"}
    assert set(page.locator("td.action").all_inner_texts()) == {"version.create"}
    page.get_by_label("Since").fill("whenever")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit-error")).to_contain_text("use 1d, 12h, 30m")

    viewer = as_user("vic")
    viewer.allowed.append("403")
    viewer.goto("/projects/proj/audit", status=403)
    expect(viewer.page.locator("main")).to_contain_text("this needs maintainer")


def test_an_endpoint_page_shows_traffic_replicas_and_request_counts(
    as_user: Any, governed: Governed
) -> None:
    body = {
        "name": "digits-ep",
        "project": "proj",
        "model": "m",
        "version": 1,
        "min_replicas": 0,
        "max_replicas": 1,
    }
    governed.ok("alice", "POST", "/api/endpoints", json=body)
    metrics = governed.app.state.serving.router.metrics
    for seconds in (0.001, 0.002, 0.004):
        metrics.served("digits-ep", "1", 200, seconds, 1, b'{"instances": [[0.5]]}', b"[[0.1]]")
    long = b'{"instances": [[' + b"0.25, " * 500 + b"0.25]]}"
    metrics.served("digits-ep", "1", 503, 0.003, None, long, b'{"detail": "busy"}')

    tab = as_user("vic")
    tab.goto("/endpoints")
    row = tab.page.locator("table.endpoints tbody tr", has_text="digits-ep")
    expect(row).to_contain_text("v1 100%")
    row.get_by_role("link", name="digits-ep").click()
    page = tab.page
    expect(page.get_by_role("heading", name="digits-ep endpoint")).to_be_visible()
    expect(page.locator("table.traffic tbody tr")).to_contain_text("100%")
    stats = page.locator('table.requests tr[data-version="1"]')
    expect(stats.locator("td").nth(1)).to_have_text("4")
    expect(stats.locator("td").nth(2)).to_have_text("1")
    expect(stats.locator("td").nth(3)).to_have_text("2.50 ms")
    drawn = page.locator('.traffic-chart[data-drawn="1"]')
    expect(drawn).to_have_count(3, timeout=15_000)  # rate, latency, errors: the live stats
    for metric in ("rate", "latency", "errors"):
        assert page.locator(f'.traffic-chart[data-metric="{metric}"] canvas').count() == 1
    rows = page.locator("table.predictions tbody tr")
    expect(rows).to_have_count(4)
    newest = rows.first  # newest first: the 503, its 3 KB request cut to 2 KiB
    expect(newest.locator(".badge")).to_have_text("503")
    expect(newest).to_contain_text('{"detail": "busy"}')
    newest.locator("summary").click()
    expect(newest.locator("pre")).to_be_visible()
    assert (newest.locator("pre").text_content() or "").endswith("…")
    expect(rows.nth(1)).to_contain_text('{"instances": [[0.5]]}')
    page.wait_for_timeout(4_000)  # a poll comes and goes: an open body is not swapped away
    expect(newest.locator("pre")).to_be_visible()
    newest.locator("summary").click()
    metrics.served("digits-ep", "1", 200, 0.001, 1, b'{"instances": [[0.75]]}', b"[[0.2]]")
    expect(rows.first).to_contain_text("[[0.75]]", timeout=10_000)  # htmx polls the table

    drift = page.locator('#drift .drift-version[data-version="1"]')
    expect(drift).to_have_attribute("data-status", "collecting")
    expect(drift).to_contain_text("0 of the 100 rows a report needs")
    path = "/v1/models/digits-ep:predict"
    for row in np.random.default_rng(1).normal(size=(400, 8)).astype(np.float32):
        row[2] += 4  # one feature far from the reference data in the package
        body = orjson.dumps({"instances": [row.tolist()]})
        metrics.served("digits-ep", "1", 200, 0.001, 1, body, b"[[0.1, 0.9]]", path)
    tab.goto("/endpoints/digits-ep")
    expect(drift).to_have_attribute("data-status", "drift")
    expect(drift.locator(".badge").first).to_have_text("drift")
    expect(drift.locator("tbody tr")).to_have_count(8)
    expect(drift.locator('tr[data-drifted="true"]')).to_have_count(1)
    expect(drift.locator("tbody tr").first).to_have_attribute("data-feature", "x[2]")
    assert drift.locator("meter").first.get_attribute("aria-label") == "PSI of x[2]"

    replica = page.locator("table.replicas tbody tr").first  # deploying starts one replica
    expect(replica.locator("td").first).to_have_text("v1")
    expect(replica.locator(".badge")).to_have_text(re.compile("starting|ready|unhealthy"))

    tab.goto("/projects/proj/models/m")
    expect(page.locator("#v1")).to_contain_text("digits-ep 100%")
    expect(page.locator("ul.lineage")).to_contain_text("Endpoints: digits-ep (100%)")


def test_the_overview_counts_models_endpoints_and_active_jobs(
    as_user: Any, governed: Governed
) -> None:
    body = {"name": "overview-ep", "project": "proj", "model": "m", "version": 1}
    governed.ok("alice", "POST", "/api/endpoints", json={**body, "min_replicas": 0})
    code = "import time; print('waiting', flush=True); time.sleep(120)"
    job = governed.ok(
        "dev",
        "POST",
        "/api/projects/proj/jobs",
        json={"name": "long-one", "command": ["python", "-c", code]},
    )
    try:
        tab = as_user("vic")
        tab.goto("/")
        page = tab.page
        row = page.locator("table.projects tbody tr", has_text="proj")
        cells = row.locator("td")
        models = len(governed.ok("vic", "GET", "/api/models", params={"project": "proj"}))
        endpoints = len(governed.ok("vic", "GET", "/api/endpoints", params={"project": "proj"}))
        expect(cells.nth(2)).to_have_text(str(models))
        expect(cells.nth(3)).to_have_text(str(endpoints))
        assert int(cells.nth(4).inner_text()) >= 1  # long-one at least
        ep = page.locator("table.overview-endpoints tbody tr", has_text="overview-ep")
        expect(ep).to_contain_text("v1 100%")
        active = page.locator("table.overview-jobs tbody tr", has_text="long-one")
        expect(active.locator(".badge")).to_have_text(re.compile("queued|running"))
        active.get_by_role("link", name="long-one").click()
        expect(page).to_have_url(f"{governed.server.url}/jobs/{job['id']}")
    finally:
        governed.ok("dev", "POST", f"/api/jobs/{job['id']}/cancel")
        governed.ok("alice", "DELETE", "/api/endpoints/overview-ep")


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/projects/p/models/ghost", "model &#39;ghost&#39;"),
        ("/projects/ghost/models", "project &#39;ghost&#39; does not exist"),
        ("/endpoints/ghost", "endpoint &#39;ghost&#39; does not exist"),
        ("/jobs/" + "0" * 32, "does not exist"),
        ("/jobs/" + "0" * 32 + "/live", "does not exist"),
        ("/sweeps/" + "0" * 32, "does not exist"),
        ("/projects/ghost/jobs", "project &#39;ghost&#39; does not exist"),
        ("/projects/ghost/audit", "project &#39;ghost&#39; does not exist"),
    ],
)
def test_unknown_things_are_html_404s(tmp_path: Path, path: str, text: str) -> None:
    with local_client(create_app(Settings(home=tmp_path)), follow_redirects=False) as client:
        assert client.post("/api/runs", json={"project": "p"}).status_code == 201
        r = client.get(path)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), path
        assert text in r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]


def test_alerts_page_and_the_overviews_firing_alerts(as_user: Any, governed: Governed) -> None:
    ep = {"name": "alert-ep", "project": "proj", "model": "m", "version": 1, "min_replicas": 0}
    governed.ok("alice", "POST", "/api/endpoints", json=ep)
    alerts = "/api/projects/proj/alerts"
    hook = {"name": "ops", "url": "http://127.0.0.1:9/hooks/secret", "kind": "slack"}
    governed.ok("alice", "POST", f"{alerts}/channels", json=hook)
    rule = {"name": "errors", "endpoint": "alert-ep", "metric": "error_ratio", "threshold": 0.5}
    governed.ok("alice", "POST", f"{alerts}/rules", json={**rule, "channels": ["ops"]})
    quiet = {"name": "slow", "endpoint": "alert-ep", "metric": "p99_ms", "threshold": 1000}
    governed.ok("alice", "POST", f"{alerts}/rules", json=quiet)
    metrics = governed.app.state.serving.router.metrics
    for status in (500, 500, 200):
        metrics.served("alert-ep", "1", status, 0.002, 1, b"{}", b"{}")
    governed.app.state.alerts.run_once()  # the evaluator's pass, now rather than in 15 s

    tab = as_user("vic")
    tab.goto("/")
    firing = tab.page.locator("table.overview-alerts tbody tr")
    expect(firing).to_have_count(1)
    expect(firing).to_contain_text("error_ratio > 0.5")
    firing.get_by_role("link", name="errors").click()
    page = tab.page
    expect(page.get_by_role("heading", name="proj alerts")).to_be_visible()
    expect(page.locator('tr[data-rule="errors"]')).to_have_attribute("data-state", "firing")
    expect(page.locator('tr[data-rule="errors"] td').nth(6)).to_have_text("0.6667")
    expect(page.locator('tr[data-rule="slow"]')).to_have_attribute("data-state", "ok")
    event = page.locator("table.alert-events tbody tr").first
    expect(event).to_contain_text("[FIRING] proj/errors: endpoint alert-ep error_ratio is 0.6667")
    expect(event.locator(".tag.error")).to_have_text("ops ✗")  # nothing listens there
    channel = page.locator("table.alert-channels tbody tr").first
    expect(channel).to_contain_text("http://127.0.0.1:9/…")
    assert "secret" not in page.content()
    page.locator('tr[data-rule="errors"]').get_by_role("link", name="alert-ep").click()
    watching = page.locator("table.endpoint-alerts tbody tr")
    expect(watching).to_have_count(2)  # the endpoint page lists the rules watching it
    expect(page.locator('table.endpoint-alerts tr[data-rule="errors"]')).to_have_attribute(
        "data-state", "firing"
    )
