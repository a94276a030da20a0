"""An endpoint's recent traffic: per-second buckets, percentiles as Prometheus computes them,
steps, the window, and the predictions sample."""

from __future__ import annotations

import time

import pytest

from shipyard.serving.traffic import BOUNDS_MS, EndpointTraffic, quantile


def histogram(**counts: int) -> list[int]:
    """Counts by bucket upper bound, written le_5=3 for the bucket (2.5, 5]."""
    h = [0] * len(BOUNDS_MS)
    for key, n in counts.items():
        bound = float(key.removeprefix("le_").replace("_", "."))
        h[BOUNDS_MS.index(bound)] = n
    return h


def test_quantiles_interpolate_within_the_bucket_like_histogram_quantile() -> None:
    h = histogram(le_5=10, le_10=10)  # 10 in (2.5, 5], 10 in (5, 10]
    assert quantile(h, 0.5) == pytest.approx(5.0)
    assert quantile(h, 0.25) == pytest.approx(2.5 + 2.5 * 5 / 10)
    assert quantile(h, 0.95) == pytest.approx(5 + 5 * 9 / 10)
    assert quantile([0] * len(BOUNDS_MS), 0.5) is None
    top = [0] * len(BOUNDS_MS)
    top[-1] = 3  # above the last finite bound: that bound, as Prometheus answers
    assert quantile(top, 0.99) == BOUNDS_MS[-2]


def test_seconds_steps_and_the_sample() -> None:
    t = EndpointTraffic(sample_size=3)
    for ms in (1, 2, 3, 40):
        t.record("1", 200, ms / 1000, b'{"x": 1}', b"[1]")
    t.record("none", 503, 0.5, b"{}", b"")
    s = t.series(window_s=60, step_s=1)
    assert len(s["time"]) == 60 and s["time"][-1] - s["time"][0] == 59
    now = int(time.time())
    last = [i for i, r in enumerate(s["rate"]) if r]
    assert len(last) in (1, 2)  # the five requests fell in one or two wall-clock seconds
    assert sum(s["rate"]) == 5
    assert abs(s["time"][last[-1]] - now) <= 1
    errors = sum((s["error_ratio"][i] or 0) * s["rate"][i] for i in last)
    assert errors == pytest.approx(1)
    coarse = t.series(window_s=60, step_s=30)
    assert len(coarse["time"]) == 2 and sum(coarse["rate"]) * 30 == pytest.approx(5)
    i = max(range(2), key=lambda k: coarse["rate"][k])
    assert coarse["p50_ms"][i] is not None and coarse["p50_ms"][i] <= coarse["p99_ms"][i]
    whole = t.summary(60)
    assert whole["requests"] == 5 and whole["error_ratio"] == pytest.approx(0.2)
    assert 2.5 <= whole["p50_ms"] <= 5 and whole["p99_ms"] > 250  # 1, 2, 3, 40 and 500 ms
    assert t.summary(1)["requests"] in (0, 5) and EndpointTraffic(1).summary(60)["p50_ms"] is None
    newest = t.predictions(10)
    assert [p["status"] for p in newest] == [503, 200, 200]  # three kept, newest first
    assert newest[0]["version"] == "none" and newest[1]["request"] == '{"x": 1}'


def test_bodies_are_cut_with_a_mark_and_a_sample_size_of_zero_keeps_none() -> None:
    t = EndpointTraffic(sample_size=2)
    t.record("1", 200, 0.001, b"a" * 5000, "é".encode() * 2000)
    (p,) = t.predictions(5)
    assert p["request_bytes"] == 5000 and p["request"] == "a" * 2048 + "…"
    assert p["reply"].endswith("…") and len(p["reply"].encode()) <= 2048 + 3
    off = EndpointTraffic(sample_size=0)
    off.record("1", 200, 0.001, b"secret", b"reply")
    assert off.predictions(5) == [] and sum(off.series(60, 1)["rate"]) == 1
