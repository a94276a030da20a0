"""The digits example trains for real and lands in Shipyard with metrics, images and checkpoints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import shipyard
from shipyard.client._config import ClientSettings
from tests._postgres import free_port

EXAMPLE = Path(__file__).parents[1] / "examples" / "digits" / "train.py"
DEMO = Path(__file__).parents[1] / "scripts" / "demo.sh"


def test_digits_example_end_to_end(sdk: ClientSettings) -> None:
    env = {
        **os.environ,
        "SHIPYARD_URL": sdk.url,
        "SHIPYARD_HOME": str(sdk.home),
        "SHIPYARD_TOKEN": str(sdk.token),
    }
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--epochs", "3", "--lr", "0.01"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    with shipyard.Client(settings=sdk) as client:
        (run,) = client.runs("digits")
        assert run.status == "finished" and run.config["lr"] == 0.01
        assert run.summary["val/acc"]["count"] == 3 and run.summary["val/acc"]["last"] > 0.5
        assert run.summary["train/loss"]["count"] > 50
        assert len(run.images("samples")) == 16  # epochs 0 and 2, eight each
        assert run.checkpoints(best="val/acc")[0]["path"].startswith("checkpoints/epoch")
        assert "confusion.png" in [a["path"] for a in run.artifacts()]


def test_make_demo_end_to_end(tmp_path: Path) -> None:
    """``make demo``'s script, shortened: three trainings register digits-mlp versions, the best
    is aliased champion and deployed, every protocol agrees, the endpoint answers under load."""
    env = {
        **os.environ,
        "PY": sys.executable,
        "SHIPYARD_HOME": str(tmp_path / "home"),
        "SHIPYARD_PORT": str(free_port()),
        "SHIPYARD_DEMO_EPOCHS": "3",
        "SHIPYARD_DEMO_LOAD_S": "2",
        "SHIPYARD_DEMO_WAIT": "0",
    }
    env.pop("SHIPYARD_TOKEN", None)
    proc = subprocess.run(["bash", str(DEMO)], capture_output=True, text=True, env=env, timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert out.count("registered digits-mlp version") == 3
    for protocol in ("TF Serving columnar", "Open Inference V2", "Hugging Face-style"):
        assert f"{protocol:<20} agrees" in out
    accuracy = float(re.search(r"accuracy ([0-9.]+) on (\d+) answers", out).group(1))  # type: ignore[union-attr]
    assert accuracy > 0.5
    assert "champion" in out and "ready" in out  # models show, endpoints show
    served = re.search(r"last 60 s: (\d+) requests, [0-9.]+/s, errors 0\.0%  p50 ", out)
    assert served and int(served.group(1)) > 100, out[-2000:]  # predict.py's load, just before
    # The validation digits against the training digits in the package: no drift.
    drift = re.search(r"v\d (ok|collecting): (\d+) rows", out)
    assert drift, out[-2000:]
    assert drift.group(1) == "ok" or int(drift.group(2)) < 100, drift.group(0)
    assert "alert errors: error_ratio > 0.05 on endpoint digits" in out
    assert "drifted_features > 0" in out and "firing" not in out  # alerts ls: nothing wrong
    # The browser's way in: a one-time login link, and the token the CLI used, in the home.
    port = env["SHIPYARD_PORT"]
    assert re.search(rf"Web UI: http://127\.0\.0\.1:{port}/login\?code=\S+", out), out[-1500:]
    assert (tmp_path / "home" / "token").exists()
