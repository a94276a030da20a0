"""Runs over HTTP: start, resume, update, search with the filter language, sort, page, diff."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

PROBLEM = "application/problem+json"


def start(client: TestClient, **body: object) -> dict[str, object]:
    r = client.post("/api/runs", json={"project": "digits", **body})
    assert r.status_code == 201, r.text
    data: dict[str, object] = r.json()
    return data


def log(client: TestClient, run_id: object, **series: list[float]) -> None:
    metrics = [{"key": k, "steps": list(range(len(v))), "values": v} for k, v in series.items()]
    r = client.post(
        f"/api/runs/{run_id}/log", json={"batch_id": uuid.uuid4().hex, "metrics": metrics}
    )
    assert r.status_code == 200, r.text


def names(client: TestClient, **params: object) -> list[str]:
    r = client.get("/api/runs", params={"project": "digits", **params})
    assert r.status_code == 200, r.text
    return [run["name"] for run in r.json()["runs"]]


def test_start_run_creates_project_and_records_caller(client: TestClient) -> None:
    run = start(client, name="mlp", config={"lr": 0.001, "layers": [64, 32]}, tags=["b", "a"])
    assert run["name"] == "mlp"
    assert run["status"] == "running"
    assert run["tags"] == ["a", "b"]
    assert run["user"] == "local"
    projects = client.get("/api/projects").json()
    assert [(p["name"], p["runs"]) for p in projects] == [("digits", 1)]


def test_resume_by_id_sets_running_and_keeps_metrics(client: TestClient) -> None:
    run_id = uuid.uuid4().hex
    start(client, id=run_id, name="first")
    log(client, run_id, loss=[1.0, 0.5])
    client.patch(f"/api/runs/{run_id}", json={"status": "crashed"})
    again = start(client, id=run_id, config={"epochs": 3})
    assert again["status"] == "running"
    assert again["name"] == "first"
    assert again["config"] == {"epochs": 3}
    assert again["summary"]["loss"]["count"] == 2


def test_update_run_finishes_and_merges_config(client: TestClient) -> None:
    run = start(client, config={"lr": 0.1})
    r = client.patch(
        f"/api/runs/{run['id']}", json={"status": "finished", "config": {"bs": 32}, "notes": "ok"}
    )
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "finished" and body["finished_at"] is not None
    assert body["config"] == {"lr": 0.1, "bs": 32}
    assert body["notes"] == "ok"


@pytest.fixture
def runs(client: TestClient) -> dict[str, str]:
    specs = [
        ("a", {"lr": 0.001, "opt": {"name": "adam"}}, ["baseline"], [0.5, 0.95]),
        ("b", {"lr": 0.01, "opt": {"name": "sgd"}}, [], [0.2, 0.91]),
        ("c", {"lr": 0.1, "opt": {"name": "sgd"}}, ["baseline"], [0.3, 0.4]),
        ("d", {"lr": "auto", "opt": {"name": "adam"}}, [], [0.1, float("nan")]),
    ]
    ids = {}
    for name, config, tags, acc in specs:
        run = start(client, name=name, config=config, tags=tags)
        ids[name] = str(run["id"])
        values = ["NaN" if v != v else v for v in acc]
        r = client.post(
            f"/api/runs/{run['id']}/log",
            json={
                "batch_id": "1",
                "metrics": [{"key": "val/acc", "steps": [0, 1], "values": values}],
            },
        )
        assert r.status_code == 200
    client.patch(f"/api/runs/{ids['c']}", json={"status": "failed"})
    return ids


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        ("config.lr < 0.01 and summary.val/acc > 0.9", ["a"]),
        ("config.lr <= 0.01", ["a", "b"]),
        ('config.opt.name = "sgd"', ["b", "c"]),
        ("config.opt.name = adam and not config.lr = auto", ["a"]),
        ("config.lr = 'auto'", ["d"]),
        ("max.val/acc >= 0.9", ["a", "b"]),
        ("min.val/acc < 0.25", ["b", "d"]),
        ("metrics.val/acc < 0.5", ["c"]),
        ('tags = "baseline"', ["a", "c"]),
        ('tags != "baseline"', ["b", "d"]),
        ("status = failed", ["c"]),
        ("status in (failed, finished) or name = a", ["a", "c"]),
        ("(name = a or name = b) and summary.val/acc > 0.92", ["a"]),
        ("name ~ b", ["b"]),
        ("created_at > now-1d", ["a", "b", "c", "d"]),
        ('created_at < "2000-01-01"', []),
        ("user = local and config.missing = null", ["a", "b", "c", "d"]),
        ("", ["a", "b", "c", "d"]),
    ],
)
def test_filter_language(
    client: TestClient, runs: dict[str, str], filter_text: str, expected: list[str]
) -> None:
    assert sorted(names(client, filter=filter_text)) == expected


@pytest.mark.parametrize(
    ("filter_text", "message"),
    [
        ("config.lr <", "ends too early"),
        ("config.lr < 0.1 and", "ends too early"),
        ("bogus.x > 1", "unknown field 'bogus.x'"),
        ("summary.acc > 'high'", "compares with a number"),
        ("config.lr < 0.1)", "unexpected ')'"),
        ("name = a; DROP TABLE runs", "unexpected"),
        ("created_at > yesterday", "is not a date"),
        ("tags > 3", "tags support"),
    ],
)
def test_bad_filters_are_422_with_the_reason(
    client: TestClient, runs: dict[str, str], filter_text: str, message: str
) -> None:
    r = client.get("/api/runs", params={"filter": filter_text})
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    assert message in r.json()["detail"]


def test_sort_by_summary_and_config_with_nulls_last(
    client: TestClient, runs: dict[str, str]
) -> None:
    assert names(client, order_by="summary.val/acc") == ["c", "b", "a", "d"]
    assert names(client, order_by="-min.val/acc") == ["a", "c", "b", "d"]
    assert names(client, order_by="config.lr") == ["a", "b", "c", "d"]
    assert names(client, order_by="name") == ["a", "b", "c", "d"]
    r = client.get("/api/runs", params={"order_by": "-bogus"})
    assert r.status_code == 422


def test_pagination_reports_total(client: TestClient, runs: dict[str, str]) -> None:
    r = client.get(
        "/api/runs", params={"project": "digits", "order_by": "name", "limit": 2, "offset": 1}
    ).json()
    assert r["total"] == 4
    assert [x["name"] for x in r["runs"]] == ["b", "c"]
    assert client.get("/api/runs", params={"limit": 0}).status_code == 422
    assert client.get("/api/runs", params={"offset": -1}).status_code == 422


def test_unknown_project_and_run_are_404(client: TestClient) -> None:
    r = client.get("/api/runs", params={"project": "nope"})
    assert r.status_code == 404
    assert r.json()["detail"] == "project 'nope' does not exist"
    for method, path in [
        ("GET", "/api/runs/f00"),
        ("PATCH", "/api/runs/f00"),
        ("POST", "/api/runs/f00/heartbeat"),
        ("GET", "/api/runs/f00/metrics"),
    ]:
        r = client.request(method, path, json={} if method == "PATCH" else None)
        assert r.status_code == 404, (method, path)
        assert r.headers["content-type"] == PROBLEM


def test_bad_run_bodies_are_4xx(client: TestClient) -> None:
    assert client.post("/api/runs", json={"project": "bad name!"}).status_code == 422
    assert client.post("/api/runs", json={"project": "p", "id": "not-hex"}).status_code == 422
    assert client.post("/api/runs", json={"project": "p", "tags": "x"}).status_code == 422
    r = client.post("/api/runs", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["title"] == "Bad request"
    run = start(client)
    r = client.patch(f"/api/runs/{run['id']}", json={"status": "exploded"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "status"]


def test_resume_in_another_project_is_refused(client: TestClient) -> None:
    run = start(client)
    r = client.post("/api/runs", json={"project": "other", "id": run["id"]})
    assert r.status_code == 422
    assert "another project" in r.json()["detail"]


def test_diff_shows_config_summary_and_environment(client: TestClient) -> None:
    a = start(client, config={"lr": 0.1, "bs": 32}, environment={"git_commit": "abc"})
    b = start(client, config={"lr": 0.2, "bs": 32}, environment={"git_commit": "def"})
    log(client, a["id"], acc=[0.5])
    d = client.get(f"/api/runs/{a['id']}/diff/{b['id']}").json()
    assert {r["key"]: r["same"] for r in d["config"]} == {"bs": True, "lr": False}
    assert d["summary"] == [{"key": "acc", "a": 0.5, "b": None, "same": False}]
    assert d["environment"][0]["a"] == "abc"
    assert client.get(f"/api/runs/{a['id']}/diff/nope").status_code == 404


def test_project_create_and_list(client: TestClient) -> None:
    r = client.post("/api/projects", json={"name": "vision", "description": "cnn"})
    assert r.status_code == 201
    assert r.json()["description"] == "cnn"
    assert client.post("/api/projects", json={"name": "../x"}).status_code == 422
