"""The digits example trains for real and lands in Shipyard with metrics, images and checkpoints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import shipyard
from shipyard.client._config import ClientSettings

EXAMPLE = Path(__file__).parents[1] / "examples" / "digits" / "train.py"


def test_digits_example_end_to_end(sdk: ClientSettings) -> None:
    env = {**os.environ, "SHIPYARD_URL": sdk.url, "SHIPYARD_HOME": str(sdk.home)}
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
