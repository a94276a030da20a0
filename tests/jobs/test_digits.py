"""The digits example trains for real as a job: dataset pushed, code snapshot, run, cost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.jobs.conftest import JobServer

EXAMPLE = Path(__file__).parents[2] / "examples" / "digits"
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_the_digits_example_trains_as_a_job_on_a_pushed_dataset(
    js: JobServer, tmp_path: Path
) -> None:
    data = tmp_path / "digits-data"
    subprocess.run(
        [sys.executable, str(EXAMPLE / "make_dataset.py"), str(data)], check=True, timeout=120
    )
    js.client.push_dataset("digits", "digits", data, "scikit-learn's digits")
    job = js.client.submit_job(
        "digits",
        ["python", "train.py", "--epochs", "2", "--lr", "0.01"],
        EXAMPLE,
        cpus=1,
        datasets=["digits@latest"],
        timeout_s=600,
    )
    done = js.wait(job["id"], timeout_s=300)
    log = js.client.job_logs(job["id"])
    assert done["state"] == "succeeded", log
    assert "data from" in log and "datasets/digits" in log and "best val/acc" in log
    run = js.client.run(done["run_id"])
    assert run.status == "finished" and run.config["lr"] == 0.01
    assert run.summary["val/acc"]["count"] == 2 and run.summary["val/acc"]["last"] > 0.5
    assert run.environment["datasets"][0]["name"] == "digits"
    assert f"logs/{job['id']}.log" in [a["path"] for a in run.artifacts()]
    assert done["cost"] > 0 and done["cpu_hours"] > 0
