"""A tracked run: ``log`` returns at once; a background thread batches, spools and sends.

Threads and what they own:

- the caller's thread appends ``(step, time, values)`` to ``_queue`` (a deque, so no lock);
- the sender thread owns the spool and the sequence numbers: it drains the queue into a batch,
  writes the batch to the spool, then sends spooled batches oldest first, deleting each on ack.
  While the server is unreachable it keeps spooling and retries with backoff;
- the system sampler appends ``system/*`` readings to the same queue.
"""

from __future__ import annotations

import atexit
import itertools
import json
import math
import sys
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson

from shipyard.client._client import sha256_file
from shipyard.client._config import ClientSettings
from shipyard.client._environment import capture
from shipyard.client._http import Http, ServerUnreachable
from shipyard.client._media import Image
from shipyard.client._spool import Spool, ensure_run, send_batch, send_file
from shipyard.client._system import SystemSampler
from shipyard.errors import ShipyardError

FLUSH_INTERVAL_S = 0.2  # how stale the server's view may get while training runs
FLUSH_AT = 20_000  # queued log calls that wake the sender early
MAX_BATCH_POINTS = 250_000  # keeps one request well under the server's body limit
HEARTBEAT_S = 15.0
MAX_BACKOFF_S = 30.0

_SERIES = object()


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return float(value)
    item = getattr(value, "item", None)  # 0-d tensors and arrays
    if item is not None and getattr(value, "ndim", 1) == 0:
        try:
            return float(item())
        except (TypeError, ValueError):
            return None
    return None


def _json_float(v: float) -> float | str:
    """A float as the server's JSON takes it: non-finite values as "NaN"/"Infinity"/"-Infinity"."""
    if math.isfinite(v):
        return v
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


def _column(values: list[float] | np.ndarray) -> Any:
    array = np.asarray(values, dtype=np.float64)
    if np.isfinite(array).all():
        return array  # orjson writes a finite array straight from its buffer
    return [_json_float(v) for v in array.tolist()]


class Run:
    """A run being tracked. Use ``shipyard.init(...)`` to make one; it is a context manager."""

    def __init__(
        self,
        *,
        project: str | None = None,
        name: str | None = None,
        config: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        notes: str = "",
        id: str | None = None,
        mode: Literal["online", "offline"] = "online",
        system_metrics: bool = True,
        system_interval_s: float = 10.0,
        settings: ClientSettings | None = None,
    ) -> None:
        self.settings = settings or ClientSettings()
        self.id = id or self.settings.run_id or uuid.uuid4().hex
        self.project = project or self.settings.project or "default"
        self.name = name
        self.config: dict[str, Any] = dict(config or {})
        self.mode = mode
        self._http = Http(self.settings.url, self.settings.token)
        self._spool = Spool(self.settings.spool, self.id)
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._step = 0
        # Spool file names sort in logging order, across processes resuming the same run.
        self._seqs = itertools.count(time.time_ns() // 1000)
        self._session = uuid.uuid4().hex[:12]  # batch ids stay unique across resumes
        self._pending: deque[Path] = deque()
        self._busy = False  # the sender is between taking items off the queue and sending them
        self._offline_until = math.inf if mode == "offline" else 0.0
        self._backoff = 0.5
        self._last_contact = time.monotonic()
        self._created = False
        self._finished = False
        self._warned: set[str] = set()
        payload = {
            "id": self.id,
            "project": self.project,
            "name": name,
            "config": self.config,
            "tags": list(tags or []),
            "notes": notes,
            "environment": capture(),
            "created_at": _now_iso(),
        }
        self._spool.write_run(payload)
        if mode == "online":
            try:
                info = self._http.json("POST", "/api/runs", payload)
                self._created = True
                self.name = info["name"]
                self.config = info["config"]
                self._step = max((s["step"] + 1 for s in info["summary"].values()), default=0)
            except ServerUnreachable as exc:
                self._go_offline(exc)
            except ShipyardError:  # refused (bad project name...): nothing to keep
                self._http.close()
                (self._spool.dir / "run.json").unlink(missing_ok=True)
                self._spool.cleanup()
                raise
        self._sender = threading.Thread(target=self._send_loop, name="shipyard-sender", daemon=True)
        self._sender.start()
        self._system = (
            SystemSampler(self._log_system, system_interval_s) if system_metrics else None
        )
        if self._system is not None:
            self._system.start()
        atexit.register(self._atexit)

    # -- the caller's side ------------------------------------------------------------------

    @property
    def step(self) -> int:
        """The step the next ``log`` without ``step=`` will use."""
        return self._step

    def log(self, data: dict[str, Any], step: int | None = None, commit: bool = True) -> None:
        """Record metrics (numbers) and media (``shipyard.Image``) at a step; returns at once."""
        if step is None:
            step = self._step
        self._step = step + 1 if commit else step
        self._queue.append((step, time.time(), data))
        if len(self._queue) >= FLUSH_AT:
            self._wake.set()

    def log_series(self, key: str, steps: Any, values: Any, timestamps: Any | None = None) -> None:
        """Record many points of one metric at once (the bulk path); arrays or lists."""
        # Contiguous copies: the caller may pass strided views, and may reuse its buffers.
        s = np.array(steps, dtype=np.int64, order="C")
        v = np.array(values, dtype=np.float64, order="C")
        t = (
            np.full(len(s), time.time())
            if timestamps is None
            else np.array(timestamps, dtype=np.float64, order="C")
        )
        if not len(s) == len(v) == len(t):
            raise ValueError(f"log_series({key!r}): steps, values and timestamps differ in length")
        self._queue.append((_SERIES, key, s, v, t))
        self._wake.set()

    def _log_system(self, step: int, values: dict[str, Any]) -> None:
        self._queue.append((step, time.time(), values))

    def log_artifact(self, path: str | Path, name: str | None = None) -> list[str]:
        """Upload a file, or every file of a folder, under ``name`` (default: its base name)."""
        src = Path(path)
        if not src.exists():
            raise FileNotFoundError(f"log_artifact: {src} does not exist")
        base = name or src.name
        if src.is_file():
            return [self._upload(src, base)]
        return [
            self._upload(f, f"{base}/{f.relative_to(src).as_posix()}")
            for f in sorted(src.rglob("*"))
            if f.is_file()
        ]

    def log_checkpoint(
        self,
        path: str | Path,
        metrics: dict[str, float] | None = None,
        step: int | None = None,
        name: str | None = None,
    ) -> str:
        """Upload a checkpoint file with the metrics it scored; find the best one later."""
        src = Path(path)
        if not src.is_file():
            raise FileNotFoundError(f"log_checkpoint: {src} is not a file")
        target = f"checkpoints/{name or src.name}"
        clean = {k: _json_float(float(v)) for k, v in (metrics or {}).items()}
        step = self._step if step is None else step
        meta = {"kind": "checkpoint", "path": target, "step": step, "metrics": clean}
        if self._online():
            try:
                self._upload(src, target, spool_on_failure=False)
                self._http.json(
                    "POST",
                    f"/api/runs/{self.id}/checkpoints",
                    {"path": target, "step": step, "metrics": clean},
                )
                return target
            except ServerUnreachable as exc:
                self._go_offline(exc)
        meta["sha256"] = sha256_file(src)
        self._spool.add_file(self._next_seq(), meta, src)
        return target

    @property
    def http(self) -> Http:
        """The run's connection to the server."""
        return self._http

    def upload_file(self, src: Path, target: str) -> str:
        """Upload one file now (no spooling): used where the server must have it at once."""
        if not self._created:
            raise ServerUnreachable(f"run {self.id} is not on the server yet; cannot upload")
        return self._upload(src, target, spool_on_failure=False)

    def log_model(self, model: Any, name: str | None = None, **kwargs: Any) -> Any:
        """Package a model (torch module, ONNX model, PythonModel), upload it as ``model/``,
        and register it as a new version of ``name``; returns the version (a dict).

        Metrics logged before the call are delivered first, so the version's lineage has them.
        """
        from shipyard.client._models import log_model

        self.flush()
        return log_model(self, model, name, **kwargs)

    def use_dataset(self, ref: str, download: str | Path | None = None) -> dict[str, Any]:
        """Record that this run uses a dataset version (``"digits@2"``, ``"digits@latest"``,
        ``"PROJECT/NAME@2"``), so lineage runs dataset version -> run -> model version.
        With ``download``, pull it into that folder (every hash checked). Returns the version
        with its manifest."""
        if not self._created:
            raise ServerUnreachable(f"run {self.id} is not on the server yet; cannot use {ref}")
        version: dict[str, Any] = self._http.json(
            "POST", f"/api/runs/{self.id}/datasets", {"ref": ref}
        )
        if download is not None:
            from shipyard.client._datasets import http_blobs, materialize

            blobs = http_blobs(self._http, version["project"])
            materialize(version["files"], Path(download), blobs)
        return version

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything logged so far reached the server; False if it could not."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self._queue and not self._pending and not self._busy:
                return True
            if time.monotonic() < self._offline_until:
                return False
            self._wake.set()
            time.sleep(0.002)
        return False

    def _online(self) -> bool:
        return self._created and time.monotonic() >= self._offline_until

    def _upload(self, src: Path, target: str, spool_on_failure: bool = True) -> str:
        digest = sha256_file(src)
        if self._online():
            try:
                with open(src, "rb") as f:
                    self._http.request(
                        "PUT",
                        f"/api/runs/{self.id}/artifacts/{target}",
                        content=f,
                        headers={"x-content-sha256": digest},
                    )
                return target
            except ServerUnreachable as exc:
                if not spool_on_failure:
                    raise
                self._go_offline(exc)
        self._spool.add_file(
            self._next_seq(), {"kind": "artifact", "path": target, "sha256": digest}, src
        )
        return target

    def _next_seq(self) -> int:
        # Sequence numbers name spool files; the sender thread and the caller's artifact calls
        # both take them, and next() on itertools.count is atomic under the GIL.
        return next(self._seqs)

    # -- the sender thread ------------------------------------------------------------------

    def _go_offline(self, exc: Exception) -> None:
        if self.mode == "offline":
            return
        if "offline" not in self._warned:
            self._warned.add("offline")
            print(
                f"shipyard: {exc.args[0] if exc.args else exc}; spooling to {self._spool.dir} "
                "and retrying",
                file=sys.stderr,
            )
        self._offline_until = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, MAX_BACKOFF_S)

    def _send_loop(self) -> None:
        while True:
            self._wake.wait(FLUSH_INTERVAL_S)
            self._wake.clear()
            stopping = self._stopping.is_set()
            self._busy = True
            try:
                self._flush_queue()
                self._drain(final=stopping)
            except Exception as exc:  # the sender must outlive any single failure
                print(f"shipyard: sender error: {exc!r}", file=sys.stderr)
            finally:
                self._busy = False
            if stopping and not self._queue:
                return

    def _flush_queue(self) -> None:
        items = []
        while self._queue:
            items.append(self._queue.popleft())
        if not items:
            return
        cols: dict[str, tuple[list[int], list[float], list[float]]] = {}
        series: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
        for item in items:
            if item[0] is _SERIES:
                series.append(item[1:])
                continue
            step, ts, data = item
            for key, value in data.items():
                num = _number(value)
                if num is not None:
                    col = cols.get(key)
                    if col is None:
                        col = cols[key] = ([], [], [])
                    col[0].append(step)
                    col[1].append(num)
                    col[2].append(ts)
                elif isinstance(value, Image) or (
                    isinstance(value, list | tuple) and value and isinstance(value[0], Image)
                ):
                    for img in value if isinstance(value, list | tuple) else [value]:
                        meta = {"kind": "image", "key": key, "step": step, "caption": img.caption}
                        self._spool.add_file(self._next_seq(), meta, img.png())
                elif key not in self._warned:
                    self._warned.add(key)
                    print(
                        f"shipyard: cannot log {key!r} of type {type(value).__name__}; "
                        "log numbers or shipyard.Image",
                        file=sys.stderr,
                    )
        metrics = [
            {
                "key": k,
                "steps": np.asarray(c[0], np.int64),
                "values": _column(c[1]),
                "timestamps": np.asarray(c[2], np.float64),
            }
            for k, c in cols.items()
        ]
        for key, s, v, t in series:
            for a in range(0, len(s), MAX_BATCH_POINTS):
                b = a + MAX_BATCH_POINTS
                self._write_batch(
                    [{"key": key, "steps": s[a:b], "values": _column(v[a:b]), "timestamps": t[a:b]}]
                )
        if metrics:
            self._write_batch(metrics)

    def _write_batch(self, metrics: list[dict[str, Any]]) -> None:
        seq = self._next_seq()
        body = orjson.dumps(
            {"batch_id": f"{self._session}-{seq}", "metrics": metrics},
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        self._pending.append(self._spool.add_batch(seq, body))

    def _drain(self, final: bool = False) -> None:
        if self.mode == "offline":
            return
        if time.monotonic() < self._offline_until and not final:
            return
        try:
            if not self._created:
                ensure_run(self._http, self._spool)
                self._created = True
            while self._pending:
                path = self._pending[0]
                if path.exists():
                    send_batch(self._http, self.id, path.read_bytes())
                    path.unlink(missing_ok=True)
                self._pending.popleft()
            for path in self._spool.files():
                meta = json.loads(path.read_text())
                blob = path.with_suffix(".bin")
                send_file(self._http, self.id, meta, blob)
                path.unlink(missing_ok=True)
                blob.unlink(missing_ok=True)
            if time.monotonic() - self._last_contact > HEARTBEAT_S:
                self._http.request("POST", f"/api/runs/{self.id}/heartbeat")
            self._last_contact = time.monotonic()
            self._backoff = 0.5
            self._offline_until = 0.0
        except ServerUnreachable as exc:
            self._go_offline(exc)
        except ShipyardError as exc:  # the server refused a batch: keep it for inspection
            if self._pending:
                bad = self._pending.popleft()
                bad.rename(bad.with_suffix(".rejected"))
            print(f"shipyard: the server refused a batch: {exc.detail}", file=sys.stderr)

    # -- ending -----------------------------------------------------------------------------

    def finish(self, status: Literal["finished", "failed"] = "finished") -> None:
        """Send everything still queued, then mark the run ``status`` (idempotent)."""
        if self._finished:
            return
        self._finished = True
        if self._system is not None:
            self._system.stop()
        self._stopping.set()
        self._wake.set()
        self._sender.join()
        payload = {"status": status, "finished_at": _now_iso()}
        if self._online() and not self._pending:
            try:
                self._http.json("PATCH", f"/api/runs/{self.id}", payload)
                (self._spool.dir / "run.json").unlink(missing_ok=True)
                self._spool.cleanup()
                self._http.close()
                return
            except ServerUnreachable as exc:
                self._go_offline(exc)
        self._spool.write_finish(payload)
        self._http.close()
        print(
            f"shipyard: run {self.id} kept in {self._spool.dir}; upload it with `shipyard sync`",
            file=sys.stderr,
        )

    def _atexit(self) -> None:
        if not self._finished:
            failed = getattr(sys, "last_type", None) is not None
            self.finish("failed" if failed else "finished")

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.finish("failed" if exc_type is not None else "finished")

    def __repr__(self) -> str:
        return f"<shipyard.Run {self.id} project={self.project!r} name={self.name!r}>"
