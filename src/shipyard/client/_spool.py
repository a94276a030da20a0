"""The SDK's write-ahead spool: every batch is on disk before it is sent and removed once acked.

Layout of ``<home>/spool/<run id>/``::

    run.json                 how to create the run (sent only if the server does not know it)
    batches/<seq>.json       a metric batch, the request body; its batch_id makes resends safe
    files/<seq>.json|.bin    an image, artifact or checkpoint waiting for upload
    finish.json              the run's final status

Delivering a spool (``shipyard sync``, or the live run once the server is back) replays these in
order; the server acknowledges a batch id it already applied without applying it again, so every
point arrives exactly once however often a spool is replayed.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.client._http import Http
from shipyard.errors import NotFound


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class Spool:
    """The spool folder of one run."""

    def __init__(self, root: Path, run_id: str) -> None:
        self.dir = root / run_id
        self.run_id = run_id

    def write_run(self, payload: dict[str, Any]) -> None:
        """Remember how to create the run."""
        _atomic_write(self.dir / "run.json", json.dumps(payload, default=str).encode())

    def add_batch(self, seq: int, body: bytes) -> Path:
        """Persist a batch before it is sent."""
        path = self.dir / "batches" / f"{seq:020d}.json"
        _atomic_write(path, body)
        return path

    def add_file(self, seq: int, meta: dict[str, Any], data: bytes | Path) -> Path:
        """Persist an upload (bytes, or a copy of a file) before it is sent."""
        blob = self.dir / "files" / f"{seq:020d}.bin"
        blob.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, Path):
            shutil.copyfile(data, blob)
        else:
            _atomic_write(blob, data)
        path = blob.with_suffix(".json")
        _atomic_write(path, json.dumps(meta).encode())
        return path

    def write_finish(self, payload: dict[str, Any]) -> None:
        """Remember the run's final status."""
        _atomic_write(self.dir / "finish.json", json.dumps(payload).encode())

    def batches(self) -> list[Path]:
        """Unsent batches, oldest first."""
        return sorted((self.dir / "batches").glob("*.json"))

    def files(self) -> list[Path]:
        """Unsent uploads, oldest first."""
        return sorted((self.dir / "files").glob("*.json"))

    def cleanup(self) -> bool:
        """Remove the folder if nothing is left to send; True when it is gone."""
        if self.batches() or self.files() or (self.dir / "finish.json").exists():
            return False
        shutil.rmtree(self.dir, ignore_errors=True)
        return True


def spooled_runs(root: Path) -> list[Spool]:
    """Every run with something in the spool."""
    if not root.exists():
        return []
    return [Spool(root, p.name) for p in sorted(root.iterdir()) if p.is_dir()]


@dataclass
class Delivered:
    """What a replay sent."""

    batches: int = 0
    points: int = 0
    duplicates: int = 0
    files: int = 0
    finished: bool = False


def ensure_run(http: Http, spool: Spool) -> None:
    """Create the run on the server from ``run.json`` unless the server already has it."""
    try:
        http.json("GET", f"/api/runs/{spool.run_id}")
        return
    except NotFound:
        pass
    payload = json.loads((spool.dir / "run.json").read_text())
    http.json("POST", "/api/runs", payload)


def send_batch(http: Http, run_id: str, body: bytes) -> dict[str, Any]:
    """Send one batch body; the reply says how many points were new."""
    reply: dict[str, Any] = http.json(
        "POST",
        f"/api/runs/{run_id}/log",
        content=body,
        headers={"content-type": "application/json"},
    )
    return reply


def send_file(http: Http, run_id: str, meta: dict[str, Any], blob: Path) -> None:
    """Upload one spooled image, artifact or checkpoint."""
    kind = meta["kind"]
    with open(blob, "rb") as f:
        if kind == "image":
            http.request(
                "POST",
                f"/api/runs/{run_id}/images",
                content=f.read(),
                params={
                    "key": meta["key"],
                    "step": meta["step"],
                    "caption": meta.get("caption", ""),
                },
            )
            return
        http.request(
            "PUT",
            f"/api/runs/{run_id}/artifacts/{meta['path']}",
            content=f,
            headers={"x-content-sha256": meta["sha256"]},
        )
    if kind == "checkpoint":
        http.json(
            "POST",
            f"/api/runs/{run_id}/checkpoints",
            {"path": meta["path"], "step": meta.get("step"), "metrics": meta["metrics"]},
        )


def deliver(http: Http, spool: Spool) -> Delivered:
    """Replay a run's spool to the server, removing each piece once acknowledged."""
    done = Delivered()
    if (spool.dir / "run.json").exists():
        ensure_run(http, spool)
    for path in spool.batches():
        reply = send_batch(http, spool.run_id, path.read_bytes())
        done.batches += 1
        done.points += int(reply.get("points", 0))
        done.duplicates += bool(reply.get("duplicate"))
        path.unlink(missing_ok=True)
    for path in spool.files():
        meta = json.loads(path.read_text())
        blob = path.with_suffix(".bin")
        send_file(http, spool.run_id, meta, blob)
        done.files += 1
        path.unlink(missing_ok=True)
        blob.unlink(missing_ok=True)
    finish = spool.dir / "finish.json"
    if finish.exists():
        http.json("PATCH", f"/api/runs/{spool.run_id}", json.loads(finish.read_text()))
        finish.unlink(missing_ok=True)
        done.finished = True
    if not spool.batches() and not spool.files():
        (spool.dir / "run.json").unlink(missing_ok=True)
        spool.cleanup()
    return done
