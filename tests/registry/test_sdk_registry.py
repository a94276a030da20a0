"""The registry's approval flow through ``shipyard.Client``, against a real server with auth."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

import shipyard
from shipyard.app import create_app
from shipyard.errors import Forbidden
from tests.conftest import ServerThread
from tests.registry.conftest import World


def test_request_approve_and_resolve_from_the_sdk(world: World) -> None:
    with ServerThread(_second_app(world)) as server:

        def client(who: str) -> shipyard.Client:
            return shipyard.Client(url=server.url, token=world.tokens[who])

        with client("dev") as dev, client("mona") as mona, client("alice") as alice:
            with pytest.raises(Forbidden, match="needs maintainer"):
                dev.set_alias("proj", "m", "champion", 2)
            dev.set_alias("proj", "m", "challenger", 2)
            request = dev.request_alias("proj", "m", "champion", 2, reason="better")
            assert [r["id"] for r in mona.alias_requests("proj", "pending")] == [request["id"]]
            assert mona.decide(request["id"], approve=True, note="ok")["status"] == "approved"
            assert dev.model_version("models:/m@champion")["version"] == 2
            assert dev.model("proj", "m")["aliases"] == {"challenger": 2, "champion": 2}
            assert dev.models("proj")[0]["latest_version"] == 2
            alice.set_member("proj", "otto", "viewer")
            assert {"user": "otto", "role": "viewer"} in alice.members("proj")
            actions = [r["action"] for r in alice.audit("proj", since="1h")]
            assert actions[:3] == ["member.set", "alias_request.approve", "alias_request.create"]
            mona.update_version("proj", "m", 1, status="archived")
            mona.delete_model("proj", "m", version=1)
            assert [v["version"] for v in dev.model("proj", "m")["versions"]] == [2]


def _second_app(world: World) -> FastAPI:
    """Another app on the same store: one app's background services run in one event loop."""
    return create_app(world.client.app.state.runtime.settings)  # type: ignore[attr-defined]
