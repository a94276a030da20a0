"""A governed world: auth on, users in every role, a project with a run, a model with versions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from torch import nn

from shipyard.app import create_app
from shipyard.auth import service
from shipyard.config import AuthMode, Settings
from shipyard.packages import save_model

ROLES = {"mona": "maintainer", "mike": "maintainer", "dev": "developer", "vic": "viewer"}


@pytest.fixture(scope="session")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small torch package (an MLP on 64 features), made once."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    path = tmp_path_factory.mktemp("package") / "pkg"
    save_model(model, path, input_example=np.ones((2, 64), np.float32))
    return path


@dataclass
class World:
    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)
    run_id: str = ""

    def call(self, who: str | None, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.client.request(method, url, headers=headers, **kwargs)

    def ok(self, who: str, method: str, url: str, **kwargs: Any) -> Any:
        r = self.call(who, method, url, **kwargs)
        assert r.status_code < 300, (method, url, r.status_code, r.text)
        return r.json() if r.content else None

    def upload_package(self, who: str, run_id: str, package: Path, prefix: str = "model") -> None:
        for file in sorted(package.rglob("*")):
            if file.is_file():
                rel = file.relative_to(package).as_posix()
                self.ok(
                    who,
                    "PUT",
                    f"/api/runs/{run_id}/artifacts/{prefix}/{rel}",
                    content=file.read_bytes(),
                )

    def new_run(self, who: str = "alice", **body: Any) -> str:
        run: dict[str, Any] = self.ok(who, "POST", "/api/runs", json={"project": "proj", **body})
        return str(run["id"])

    def register(self, who: str = "alice", name: str = "m", source: str | None = None) -> Any:
        return self.ok(
            who,
            "POST",
            f"/api/projects/proj/models/{name}/versions",
            json={"source": source or f"runs:/{self.run_id}/model"},
        )


@pytest.fixture
def world(tmp_path: Path, database_url: str, package_dir: Path) -> Iterator[World]:
    settings = Settings(
        home=tmp_path / "home",
        database_url=database_url,
        auth=AuthMode.required,
        allow_private_webhooks=True,  # the route tables' alert channels point at 127.0.0.1:9
    )
    app = create_app(settings)
    with TestClient(app) as client:
        w = World(client)
        with app.state.runtime.db.session() as s:
            for name in ["root", "alice", "otto", *ROLES]:
                user = service.create_user(s, name, is_admin=name == "root")
                w.tokens[name] = service.create_token(s, user)[1]
        w.ok("alice", "POST", "/api/projects", json={"name": "proj"})
        for name, role in ROLES.items():
            w.ok("alice", "PUT", f"/api/projects/proj/members/{name}", json={"role": role})
        w.run_id = w.new_run(name="train", config={"lr": 0.01})
        w.ok(
            "alice",
            "POST",
            f"/api/runs/{w.run_id}/log",
            json={
                "batch_id": "1",
                "metrics": [{"key": "val/acc", "steps": [0, 1], "values": [0.5, 0.97]}],
            },
        )
        w.upload_package("alice", w.run_id, package_dir)
        w.register()
        w.register()
        yield w
