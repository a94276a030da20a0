"""Recent traffic of each endpoint, second by second, and a sample of its latest predictions.

Prometheus keeps the lifetime counters (``/metrics``); a dashboard wants the last minutes as a
rate, percentiles and an error ratio without a Prometheus server beside it. The router records
every answered request here: one bucket per wall-clock second (requests, errors and a latency
histogram), the last ``WINDOW_S`` seconds kept, the last few request/reply pairs, cut to
``SAMPLE_BYTES`` each, and per version the last successful request bodies (by reference, not
copied) for input drift (``shipyard.serving.drift``). Recording is a few dictionary and deque
operations on the event loop; readers in other threads take a snapshot first (``list()`` of a
deque is one C call, so it never sees one mid-change). This is memory of this server process:
it starts empty after a restart.
"""

from __future__ import annotations

import bisect
import math
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

WINDOW_S = 900  # seconds of per-second buckets kept per endpoint
SAMPLE_BYTES = 2048  # of each request and reply body kept in the sample
DRIFT_BODY_BYTES = 256 * 1024  # larger request bodies are not kept for drift
# Upper bounds (milliseconds) of the latency histogram's buckets; the last one is open.
BOUNDS_MS = (0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, math.inf)


@dataclass(slots=True)
class Second:
    """What one endpoint answered during one wall-clock second."""

    at: int
    requests: int
    errors: int
    histogram: list[int]


@dataclass(frozen=True, slots=True)
class Sample:
    """One answered request, bodies cut to ``SAMPLE_BYTES``."""

    at: float
    version: str
    status: int
    latency_ms: float
    request: bytes
    reply: bytes
    request_bytes: int
    reply_bytes: int


def quantile(histogram: list[int], q: float) -> float | None:
    """The ``q`` quantile (milliseconds) of a latency histogram, interpolated linearly within
    its bucket as Prometheus' ``histogram_quantile`` does; None when it counted nothing."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(histogram):
        if n and seen + n >= rank:
            upper = BOUNDS_MS[i]
            if upper == math.inf:
                return BOUNDS_MS[i - 1]  # above the last finite bound: that bound, as Prometheus
            lower = BOUNDS_MS[i - 1] if i else 0.0
            return lower + (upper - lower) * (rank - seen) / n
        seen += n
    return BOUNDS_MS[-2]


def _text(body: bytes, total: int) -> str:
    text = body.decode("utf-8", "replace")
    return text + "…" if total > len(body) else text


class EndpointTraffic:
    """One endpoint's recent seconds and predictions."""

    def __init__(self, sample_size: int, drift_window: int = 0) -> None:
        self.seconds: deque[Second] = deque(maxlen=WINDOW_S)
        self.samples: deque[Sample] = deque(maxlen=max(sample_size, 1))
        self.keep_samples = sample_size > 0
        self.drift_window = drift_window
        self.inputs: dict[str, deque[tuple[str, bytes]]] = {}  # version -> (path, body)

    def record(
        self,
        version: str,
        status: int,
        seconds: float,
        request: bytes,
        reply: bytes,
        path: str = "",
    ) -> None:
        now = time.time()
        second = int(now)
        latency_ms = seconds * 1000
        if not self.seconds or self.seconds[-1].at != second:
            self.seconds.append(Second(second, 0, 0, [0] * len(BOUNDS_MS)))
        bucket = self.seconds[-1]
        bucket.requests += 1
        if status >= 400:
            bucket.errors += 1
        bucket.histogram[bisect.bisect_left(BOUNDS_MS, latency_ms)] += 1
        if status < 300 and path and self.drift_window and len(request) <= DRIFT_BODY_BYTES:
            kept = self.inputs.get(version)
            if kept is None:
                kept = self.inputs[version] = deque(maxlen=self.drift_window)
            kept.append((path, request))
        if self.keep_samples:
            self.samples.append(
                Sample(
                    now,
                    version,
                    status,
                    latency_ms,
                    request[:SAMPLE_BYTES],
                    reply[:SAMPLE_BYTES],
                    len(request),
                    len(reply),
                )
            )

    def recent_inputs(self) -> dict[str, list[tuple[str, bytes]]]:
        """Each version's kept requests (path, body), oldest first: a snapshot."""
        return {version: list(kept) for version, kept in list(self.inputs.items())}

    def predictions(self, limit: int) -> list[dict[str, object]]:
        """The latest ``limit`` samples, newest first, bodies as text (cut ones end in "…")."""
        out: list[dict[str, object]] = []
        for p in reversed(list(self.samples)):
            if len(out) >= limit:
                break
            out.append(
                {
                    "at": datetime.fromtimestamp(p.at, UTC),
                    "version": p.version,
                    "status": p.status,
                    "latency_ms": p.latency_ms,
                    "request": _text(p.request, p.request_bytes),
                    "reply": _text(p.reply, p.reply_bytes),
                    "request_bytes": p.request_bytes,
                    "reply_bytes": p.reply_bytes,
                }
            )
        return out

    def series(self, window_s: int, step_s: int) -> dict[str, list[float | None]]:
        """The last ``window_s`` seconds in steps of ``step_s``: time (the step's start, Unix
        seconds), requests per second, error ratio and p50/p95/p99 latency (ms). Steps with no
        request have a rate of 0 and no latency or error ratio."""
        end = int(time.time()) // step_s * step_s + step_s
        start = end - (window_s // step_s) * step_s
        steps = (end - start) // step_s
        requests = [0] * steps
        errors = [0] * steps
        histograms = [[0] * len(BOUNDS_MS) for _ in range(steps)]
        for sec in list(self.seconds):
            if start <= sec.at < end:
                i = (sec.at - start) // step_s
                requests[i] += sec.requests
                errors[i] += sec.errors
                h = histograms[i]
                for j, n in enumerate(sec.histogram):
                    h[j] += n
        out: dict[str, list[float | None]] = {
            "time": [float(start + i * step_s) for i in range(steps)],
            "rate": [n / step_s for n in requests],
            "error_ratio": [e / n if n else None for e, n in zip(errors, requests, strict=True)],
        }
        for name, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
            out[name] = [quantile(h, q) for h in histograms]
        return out

    def summary(self, window_s: int) -> dict[str, float | int | None]:
        """The last ``window_s`` seconds as one: requests, requests per second, error ratio and
        p50/p95/p99 latency (ms) of all of them (from the merged histogram, not an average of
        per-second percentiles)."""
        start = int(time.time()) + 1 - window_s
        merged = [0] * len(BOUNDS_MS)
        requests = errors = 0
        for sec in list(self.seconds):
            if sec.at >= start:
                requests += sec.requests
                errors += sec.errors
                for j, n in enumerate(sec.histogram):
                    merged[j] += n
        return {
            "requests": requests,
            "rate": requests / window_s,
            "error_ratio": errors / requests if requests else None,
            "p50_ms": quantile(merged, 0.5),
            "p95_ms": quantile(merged, 0.95),
            "p99_ms": quantile(merged, 0.99),
        }


class RecentTraffic:
    """The recent traffic of every endpoint this server routes."""

    def __init__(self, sample_size: int = 20, drift_window: int = 0) -> None:
        self.sample_size = sample_size
        self.drift_window = drift_window
        self.endpoints: dict[str, EndpointTraffic] = {}

    def of(self, endpoint: str) -> EndpointTraffic:
        traffic = self.endpoints.get(endpoint)
        if traffic is None:
            traffic = self.endpoints[endpoint] = EndpointTraffic(
                self.sample_size, self.drift_window
            )
        return traffic

    def forget(self, endpoint: str) -> None:
        """Drop a deleted endpoint's traffic (a new endpoint of the name starts empty)."""
        self.endpoints.pop(endpoint, None)
