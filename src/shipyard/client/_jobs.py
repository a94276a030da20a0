"""Jobs and sweeps from the SDK and CLI: snapshot the code, submit, follow logs, cancel."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from shipyard.client._datasets import Progress, ensure_project, manifest, upload_missing
from shipyard.client._http import Http, ServerUnreachable, error_of
from shipyard.client._snapshot import snapshot_files
from shipyard.errors import NotFound

FINAL = {"succeeded", "failed", "cancelled", "timed_out", "lost"}


def upload_snapshot(
    http: Http,
    project: str,
    root: Path,
    max_bytes: int,
    on_progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Snapshot ``root`` (``.gitignore`` honoured, refused over ``max_bytes`` before anything
    is sent) and upload the blobs the server lacks; returns the manifest."""
    files = snapshot_files(root, max_bytes)
    entries = manifest(files)
    upload_missing(http, project, files, entries, on_progress)
    return entries


def submit_job(
    http: Http,
    project: str,
    command: list[str],
    root: Path | None = None,
    max_snapshot_bytes: int = 100 * 1024 * 1024,
    on_progress: Progress | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Submit ``command`` with a snapshot of ``root`` (no snapshot without it); ``fields`` are
    the job's options: cpus, gpus, memory_gb, datasets, timeout_s, retries, priority, env."""
    body: dict[str, Any] = {
        "command": command,
        **{k: v for k, v in fields.items() if v is not None},
    }
    if root is not None:
        body["snapshot"] = upload_snapshot(http, project, root, max_snapshot_bytes, on_progress)
    try:
        result: dict[str, Any] = http.json("POST", f"/api/projects/{project}/jobs", body)
    except NotFound as exc:
        if f"project {project!r} does not exist" not in exc.detail:
            raise
        ensure_project(http, project)  # first use: create it, as starting a run does
        result = http.json("POST", f"/api/projects/{project}/jobs", body)
    return result


def follow_job(http: Http, job_id: str, on_text: Callable[[str], object], after: int = 0) -> str:
    """Stream a job's output to ``on_text`` until it ends (server-sent events); reconnects
    from the last event after a dropped connection. Returns the job's final state."""
    cursor = after
    while True:
        try:
            with http.client.stream(
                "GET",
                f"/api/jobs/{job_id}/logs",
                params={"follow": "true", "after": cursor},
                timeout=httpx.Timeout(30.0, read=None),
            ) as r:
                if r.status_code >= 400:
                    r.read()
                    raise error_of(r)
                data: list[str] = []
                event = "message"
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
                    elif line.startswith("id:"):
                        cursor = int(line[3:].strip() or cursor)
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line == "":
                        if event == "end":
                            return data[0] if data else "ended"
                        if data:
                            on_text("\n".join(data))
                        data, event = [], "message"
        except (httpx.TransportError, ServerUnreachable):
            time.sleep(1.0)  # the server restarted or the network blinked: resume


def job_logs(http: Http, job_id: str) -> str:
    """Everything the job printed so far (or its archived log once it ended)."""
    return http.request("GET", f"/api/jobs/{job_id}/logs").text


def wait_job(
    http: Http, job_id: str, timeout_s: float = 3600.0, poll_s: float = 0.5
) -> dict[str, Any]:
    """Poll until the job ends; returns it."""
    deadline = time.monotonic() + timeout_s
    while True:
        job: dict[str, Any] = http.json("GET", f"/api/jobs/{job_id}")
        if job["state"] in FINAL or time.monotonic() > deadline:
            return job
        time.sleep(poll_s)


def iter_jobs(http: Http, **params: Any) -> Iterator[dict[str, Any]]:
    """Jobs matching ``project``, ``state``, ``sweep``, newest first."""
    yield from http.json("GET", "/api/jobs", params={k: v for k, v in params.items() if v})
