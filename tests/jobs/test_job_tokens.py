"""A job's token acts only inside its job: its project (as a developer at most, even for an
admin's job), its own run, the datasets it mounts; it cannot mint tokens, change members, read
other projects or act as an admin, and it dies with the job."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from tests.jobs.conftest import JobServer, script

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# What the job tries with its own token, and the status each must get. The job is submitted by
# the local admin, who may do every one of these things with its own token.
ATTEMPTS = """
import json, os, sys
import httpx

other_run, mounted, hidden, blob, other_job, token_file = sys.argv[1:7]
run = os.environ["SHIPYARD_RUN_ID"]
open(token_file, "w").write(os.environ["SHIPYARD_TOKEN"])
http = httpx.Client(
    base_url=os.environ["SHIPYARD_URL"],
    headers={"authorization": "Bearer " + os.environ["SHIPYARD_TOKEN"]},
)
batch = {"batch_id": "b1", "metrics": [{"key": "acc", "steps": [1], "values": [0.5]}]}
tries = {
    # allowed: its own run, its project's reads, the dataset it mounts
    "log to its run": ("POST", f"/api/runs/{run}/log", batch),
    "resume its run": ("POST", "/api/runs", {"id": run, "project": "p"}),
    "read its project's runs": ("GET", "/api/runs?project=p", None),
    "read the mounted dataset": ("GET", f"/api/projects/{mounted}/datasets/d/versions/1", None),
    "read the mounted dataset's blob": ("GET", f"/api/projects/{mounted}/blobs/{blob}", None),
    "register a model": ("POST", "/api/projects/p/models", {"name": "from-job"}),
    # refused: everything else
    "log to another run": ("POST", f"/api/runs/{other_run}/log", batch),
    "start another run": ("POST", "/api/runs", {"project": "p"}),
    "create a project": ("POST", "/api/projects", {"name": "job-made"}),
    "mint a token": ("POST", "/api/tokens", {"name": "escape"}),
    "list tokens": ("GET", "/api/tokens", None),
    "sign a browser in": ("POST", "/api/login-links", None),
    "change members": ("PUT", "/api/projects/p/members/local", {"role": "viewer"}),
    "read another project": ("GET", f"/api/runs?project={hidden}", None),
    "read an unmounted dataset": ("GET", f"/api/projects/{mounted}/datasets/secret", None),
    "list the mounted project's runs": ("GET", f"/api/runs?project={mounted}", None),
    "write to the mounted project": ("POST", f"/api/projects/{mounted}/models", {"name": "x"}),
    "list users": ("GET", "/api/users", None),
    "create a user": ("POST", "/api/users", {"name": "mallory", "is_admin": True}),
    "act as a worker": ("POST", "/api/workers", {"name": "evil", "cpus": 1}),
    "set a quota": ("PUT", "/api/projects/p/quota", {"max_gpus": 8}),
    "read the audit log": ("GET", "/api/audit?project=p", None),
    "protect aliases": ("PUT", "/api/projects/p/protected-aliases", {"aliases": []}),
    "cancel another job": ("POST", f"/api/jobs/{other_job}/cancel", None),
}
out = {}
for name, (method, path, body) in tries.items():
    r = http.request(method, path, json=body) if body is not None else http.request(method, path)
    out[name] = r.status_code
out["projects it sees"] = sorted(p["name"] for p in http.get("/api/projects").json())
print("RESULT " + json.dumps(out))
"""


def test_a_jobs_token_reaches_only_its_job(js: JobServer, tmp_path: Path) -> None:
    c = js.client
    other_run = c.http.json("POST", "/api/runs", {"project": "p"})["id"]
    for project in ("shared", "hidden"):
        c.http.json("POST", "/api/projects", {"name": project})
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("a")
    c.push_dataset("shared", "d", data)
    c.push_dataset("shared", "secret", data)
    blob = hashlib.sha256(b"a").hexdigest()
    sleeper = c.submit_job("p", ["python", "-c", "import time; time.sleep(60)"], None)
    token_file = tmp_path / "job-token"
    code = script(tmp_path / "code", ATTEMPTS)
    job = c.submit_job(
        "p",
        ["python", "main.py", other_run, "shared", "hidden", blob, sleeper["id"], str(token_file)],
        code,
        datasets=["shared/d@1"],
    )
    done = js.wait(job["id"])
    log = c.job_logs(job["id"])
    c.cancel_job(sleeper["id"])
    assert done["state"] == "succeeded", log
    got = json.loads(log.split("RESULT ", 1)[1].splitlines()[0])
    assert got.pop("projects it sees") == ["p"]
    allowed = {"log to its run", "resume its run", "read its project's runs"}
    allowed |= {"read the mounted dataset", "read the mounted dataset's blob", "register a model"}
    for name, status in got.items():
        if name in allowed:
            assert status < 300, (name, status)
        else:
            assert status in (403, 404), (name, status)
    assert got["mint a token"] == 403 and got["change members"] == 403
    assert c.run(done["run_id"]).summary["acc"]["last"] == 0.5
    assert c.run(other_run).summary == {}  # nothing reached the other run
    # it died with the job
    token = token_file.read_text().strip()
    r = httpx.get(f"{js.url}/api/whoami", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_refusals_name_the_job(js: JobServer, tmp_path: Path) -> None:
    code = script(
        tmp_path / "code",
        "import os, httpx\n"
        "r = httpx.post(os.environ['SHIPYARD_URL'] + '/api/tokens', json={'name': 'x'},\n"
        "               headers={'authorization': 'Bearer ' + os.environ['SHIPYARD_TOKEN']})\n"
        "print(r.status_code, r.json()['detail'])\n",
    )
    job = js.client.submit_job("p", ["python", "main.py"], code)
    assert js.wait(job["id"])["state"] == "succeeded"
    assert f"403 the token of job {job['id']} may not mint tokens" in js.client.job_logs(job["id"])
