"""Registry over HTTP: versions from runs, lineage, aliases, approvals, resolution, bad input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.registry.conftest import World

M = "/api/projects/proj/models/m"


def test_versions_are_numbered_with_lineage_and_files(world: World, package_dir: Path) -> None:
    model = world.ok("vic", "GET", M)
    assert [v["version"] for v in model["versions"]] == [2, 1]
    assert model["latest_version"] == 2 and model["created_by"] == "alice"
    v2 = model["versions"][0]
    assert v2["flavor"] == "torch" and v2["status"] == "ready"
    assert v2["signature"]["inputs"] == [{"name": "x", "dtype": "float32", "shape": [-1, 64]}]
    assert v2["lineage"]["run"]["config"] == {"lr": 0.01}
    assert v2["lineage"]["run"]["metrics"] == {"val/acc": 0.97}
    assert v2["lineage"]["parent_version"] == 1 and v2["source"] == f"runs:/{world.run_id}/model"
    data = (package_dir / "model.onnx").read_bytes()
    r = world.call("vic", "GET", f"{M}/versions/2/files/model.onnx")
    assert r.content == data and r.headers["x-content-sha256"] == hashlib.sha256(data).hexdigest()


def test_version_stays_immutable_when_run_artifacts_change(world: World) -> None:
    world.ok(
        "alice",
        "PUT",
        f"/api/runs/{world.run_id}/artifacts/model/model.onnx",
        content=b"overwritten",
    )
    r = world.call("vic", "GET", f"{M}/versions/1/files/model.onnx")
    assert r.content != b"overwritten"
    r = world.call("alice", "POST", f"{M}/versions", json={"source": f"runs:/{world.run_id}/model"})
    assert r.status_code == 422
    assert r.json()["detail"] == (
        "package file 'model.onnx' is corrupted or was modified (sha256 differs from the manifest)"
    )


def test_unprotected_alias_by_developer_protected_needs_maintainer(world: World) -> None:
    world.ok("dev", "PUT", f"{M}/aliases/challenger", json={"version": 2})
    r = world.call("dev", "PUT", f"{M}/aliases/champion", json={"version": 2})
    assert r.status_code == 403
    assert r.json()["detail"] == (
        "user 'dev' is developer in project 'proj'; this needs maintainer or above"
    )
    world.ok("mona", "PUT", f"{M}/aliases/champion", json={"version": 1})
    model = world.ok("vic", "GET", M)
    assert model["aliases"] == {"challenger": 2, "champion": 1}
    assert (
        world.ok("vic", "GET", "/api/models/resolve", params={"uri": "models:/m@champion"})[
            "version"
        ]
        == 1
    )
    assert world.ok("vic", "GET", "/api/models/resolve", params={"uri": "models:/proj/m/2"})[
        "aliases"
    ] == ["challenger"]
    assert (
        world.ok("vic", "GET", "/api/models/resolve", params={"uri": "models:/m@latest"})["version"]
        == 2
    )


def test_approval_moves_a_protected_alias(world: World) -> None:
    req = world.ok(
        "dev",
        "POST",
        f"{M}/alias-requests",
        json={"alias": "production", "version": 2, "reason": "beats v1 by 1.4 pts"},
    )
    assert req["status"] == "pending" and req["requested_by"] == "dev"
    assert (
        world.call("dev", "POST", f"/api/alias-requests/{req['id']}/approve", json={}).status_code
        == 403
    )
    pending = world.ok(
        "vic", "GET", "/api/projects/proj/alias-requests", params={"status": "pending"}
    )
    assert [p["id"] for p in pending] == [req["id"]]
    done = world.ok("mona", "POST", f"/api/alias-requests/{req['id']}/approve", json={"note": "ok"})
    assert done["status"] == "approved" and done["decided_by"] == "mona"
    assert world.ok("vic", "GET", M)["aliases"] == {"production": 2}
    r = world.call("mike", "POST", f"/api/alias-requests/{req['id']}/reject", json={})
    assert r.status_code == 409 and "already approved" in r.json()["detail"]


def test_requester_cannot_approve_own_request_even_as_maintainer(world: World) -> None:
    req = world.ok("mona", "POST", f"{M}/alias-requests", json={"alias": "champion", "version": 1})
    r = world.call("mona", "POST", f"/api/alias-requests/{req['id']}/approve", json={})
    assert r.status_code == 403
    assert "other than its requester" in r.json()["detail"]
    rejected = world.ok(
        "mike", "POST", f"/api/alias-requests/{req['id']}/reject", json={"note": "not yet"}
    )
    assert rejected["status"] == "rejected"
    assert world.ok("vic", "GET", M)["aliases"] == {}


def test_protected_aliases_are_the_owners_choice(world: World) -> None:
    assert world.ok("vic", "GET", "/api/projects/proj/protected-aliases") == {
        "aliases": ["champion", "production"]
    }
    assert (
        world.call(
            "mona", "PUT", "/api/projects/proj/protected-aliases", json={"aliases": []}
        ).status_code
        == 403
    )
    world.ok("alice", "PUT", "/api/projects/proj/protected-aliases", json={"aliases": ["gold"]})
    world.ok("dev", "PUT", f"{M}/aliases/champion", json={"version": 1})
    assert world.call("dev", "PUT", f"{M}/aliases/gold", json={"version": 1}).status_code == 403


def test_archive_and_delete(world: World) -> None:
    world.ok("mona", "PUT", f"{M}/aliases/champion", json={"version": 1})
    r = world.call("mona", "PATCH", f"{M}/versions/1", json={"status": "archived"})
    assert r.status_code == 409 and "alias(es) champion" in r.json()["detail"]
    assert (
        world.call("dev", "PATCH", f"{M}/versions/2", json={"status": "archived"}).status_code
        == 403
    )
    world.ok("dev", "PATCH", f"{M}/versions/2", json={"description": "fine"})
    world.ok("mona", "PATCH", f"{M}/versions/2", json={"status": "archived"})
    r = world.call("mona", "PUT", f"{M}/aliases/champion", json={"version": 2})
    assert r.status_code == 422 and "is archived" in r.json()["detail"]
    assert world.ok("vic", "GET", f"{M}/versions", params={"status": "ready"})[0]["version"] == 1
    world.ok("mona", "DELETE", f"{M}/versions/2")
    assert world.call("vic", "GET", f"{M}/versions/2").status_code == 404
    assert world.register()["version"] == 3  # numbers are never reused
    world.ok("mona", "DELETE", f"{M}/aliases/champion")
    world.ok("mona", "DELETE", M)
    assert world.call("vic", "GET", M).status_code == 404
    actions = [
        a["action"]
        for a in world.ok(
            "alice", "GET", "/api/audit", params={"project": "proj", "action": "model."}
        )
    ]
    assert actions[0] == "model.delete"


def test_model_card_search_and_ambiguous_names(world: World) -> None:
    world.ok("dev", "PATCH", M, json={"card": "# Digits\nAn MLP.", "tags": {"task": "digits"}})
    assert world.ok("vic", "GET", M)["card"].startswith("# Digits")
    world.ok("dev", "POST", "/api/projects/proj/models", json={"name": "other-model"})
    found = world.ok("vic", "GET", "/api/models", params={"q": "other"})
    assert [m["name"] for m in found] == ["other-model"]
    assert world.ok("otto", "GET", "/api/models") == []  # sees no project
    world.ok("root", "POST", "/api/projects", json={"name": "proj2"})
    world.ok("root", "POST", "/api/projects/proj2/models", json={"name": "m"})
    r = world.call("root", "GET", "/api/models/resolve", params={"uri": "models:/m@champion"})
    assert r.status_code == 409 and "use models:/PROJECT/m" in r.json()["detail"]


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "detail"),
    [
        (
            "GET",
            "/api/projects/proj/models/nope",
            None,
            404,
            "model 'nope' does not exist in project 'proj'",
        ),
        ("GET", f"{M}/versions/9", None, 404, "model 'm' has no version 9"),
        ("GET", f"{M}/versions/abc", None, 422, "invalid fields"),
        ("POST", "/api/projects/proj/models", {"name": "bad name"}, 422, "invalid fields"),
        ("PUT", f"{M}/aliases/Champion", {"version": 1}, 422, "alias 'Champion' is invalid"),
        ("PUT", f"{M}/aliases/latest", {"version": 1}, 422, "'latest' is reserved"),
        ("PUT", f"{M}/aliases/x", {"version": 0}, 422, "invalid fields"),
        ("PUT", f"{M}/aliases/x", {"version": 7}, 404, "model 'm' has no version 7"),
        ("POST", f"{M}/versions", {"source": "s3://bucket/x"}, 422, "use runs:/RUN_ID/PATH"),
        (
            "POST",
            f"{M}/versions",
            {"source": "runs:/" + "0" * 32 + "/model"},
            404,
            "does not exist",
        ),
        ("GET", "/api/models/resolve?uri=models:/m", None, 422, "use models:/NAME@ALIAS"),
        ("GET", "/api/models/resolve?uri=models:/m@none", None, 404, "has no alias 'none'"),
        ("GET", f"{M}/versions/1/files/%2E%2E/x", None, 400, "must be relative"),
        ("GET", f"{M}/versions/1/files/nothing", None, 404, "has no file 'nothing'"),
        ("POST", "/api/alias-requests/nope/approve", {}, 404, "does not exist"),
        ("DELETE", f"{M}/aliases/ghost", None, 404, "has no alias 'ghost'"),
    ],
)
def test_bad_input(
    world: World, method: str, url: str, body: object, status: int, detail: str
) -> None:
    r = world.call("alice", method, url, json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert detail in r.json()["detail"]


def test_source_that_is_not_a_package(world: World) -> None:
    world.ok("alice", "PUT", f"/api/runs/{world.run_id}/artifacts/notes/readme.txt", content=b"hi")
    r = world.call("alice", "POST", f"{M}/versions", json={"source": f"runs:/{world.run_id}/notes"})
    assert r.status_code == 422 and "shipyard-model.yaml is missing" in r.json()["detail"]
    other = world.ok("root", "POST", "/api/runs", json={"project": "elsewhere"})["id"]
    r = world.call("root", "POST", f"{M}/versions", json={"source": f"runs:/{other}/model"})
    assert r.status_code == 422 and "belongs to project 'elsewhere'" in r.json()["detail"]
