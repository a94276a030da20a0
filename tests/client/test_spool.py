"""Offline runs and a server killed mid-training: the SDK spools, ``sync`` delivers once."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

import shipyard
from shipyard.cli import app as cli
from shipyard.client._config import ClientSettings
from tests.conftest import ServerProcess

runner = CliRunner()


def sync(settings: ClientSettings) -> str:
    result = runner.invoke(
        cli,
        ["sync"],
        env={
            "SHIPYARD_URL": settings.url,
            "SHIPYARD_HOME": str(settings.home),
            **({"SHIPYARD_TOKEN": settings.token} if settings.token else {}),
        },
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_offline_run_is_delivered_by_sync(sdk: ClientSettings, tmp_path: Path) -> None:
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"w" * 5000)
    with shipyard.init(
        project="digits",
        name="plane",
        config={"lr": 0.1},
        mode="offline",
        settings=sdk,
        system_metrics=False,
    ) as run:
        for step in range(1000):
            run.log({"loss": 1.0 / (step + 1), "acc": step / 1000})
        run.log({"img": shipyard.Image(np.eye(8))}, step=10)
        run.log_checkpoint(ckpt, metrics={"acc": 0.99})
        run.log_artifact(ckpt, name="copy.pt")
    spool = sdk.spool / run.id
    assert (spool / "finish.json").exists()
    backup = tmp_path / "spool-copy"
    shutil.copytree(spool, backup)

    out = sync(sdk)
    assert f"{run.id}: 2000 points" in out and "finished" in out
    assert not spool.exists()
    with shipyard.Client(settings=sdk) as client:
        view = client.run(run.id)
        assert view.status == "finished" and view.name == "plane"
        assert view.summary["loss"]["count"] == 1000
        assert view.history("acc", raw=True)["step"] == list(range(1000))
        assert [a["path"] for a in view.artifacts()] == [
            "checkpoints/best.pt",
            "copy.pt",
            "media/images/img/10_0.png",
        ]
        assert view.checkpoints(best="acc")[0]["metrics"] == {"acc": 0.99}

        shutil.copytree(backup, spool)  # replaying the same spool adds nothing
        out = sync(sdk)
        assert "0 points" in out and "already there" in out
        assert client.run(run.id).summary["loss"]["count"] == 1000
    assert "nothing to sync" in sync(sdk)


def test_server_killed_mid_training_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server").start()
    # The SDK shares the server's home, as on one machine: it finds the local token there.
    settings = ClientSettings(url=server.url, home=tmp_path / "server")
    assert settings.token == server.token
    steps = 3000
    try:
        run = shipyard.init(project="p", settings=settings, system_metrics=False)
        for step in range(steps):
            run.log({"loss": float(step), "acc": step / steps})
            if step == 1000:
                time.sleep(0.5)  # let the sender deliver a good part first
                server.kill()
            if step % 100 == 0:
                time.sleep(0.01)
        run.finish()  # cannot reach the server: everything left is in the spool
        assert (settings.spool / run.id / "finish.json").exists()

        server = ServerProcess(tmp_path / "server", port=server.port).start()
        out = sync(settings)
        assert run.id in out
        with shipyard.Client(settings=settings) as client:
            view = client.run(run.id)
            history = view.history("loss", raw=True)
        assert history["step"] == list(range(steps))  # each step exactly once, in order
        assert history["value"] == [float(s) for s in range(steps)]
        assert view.status == "finished"
    finally:
        server.kill()


def test_sync_of_run_created_offline_while_server_down(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server")  # not started yet
    settings = ClientSettings(url=server.url, home=tmp_path / "server")  # no token yet
    with shipyard.init(project="p", settings=settings, system_metrics=False) as run:
        run.log({"x": 1.0})
    server.start()
    try:
        assert f"{run.id}: 1 points" in sync(settings)
    finally:
        server.kill()
