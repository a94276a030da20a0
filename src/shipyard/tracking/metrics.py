"""Metric series: append batches as packed chunks, keep summaries, read back and downsample.

A series is the concatenation of its chunks in ``seq`` order. Appends fill the last chunk while
it holds fewer than ``MERGE_BELOW`` points (so a run that flushes every few milliseconds does not
leave thousands of tiny rows) and start new chunks of at most ``CHUNK_MAX`` points.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from shipyard.tracking.schemas import LogBatchIn, LogBatchOut
from shipyard.tracking.tables import LoggedBatch, MetricChunk, MetricSummary

MERGE_BELOW = 1024
CHUNK_MAX = 65_536

I8 = np.dtype("<i8")
F8 = np.dtype("<f8")


@dataclass
class Series:
    """One metric series in memory: parallel arrays."""

    step: np.ndarray
    timestamp: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return int(self.step.shape[0])


def log_batch(session: Session, run_id: str, batch: LogBatchIn) -> LogBatchOut:
    """Apply a batch of points to a run's series, exactly once per ``batch_id``."""
    now = time.time()
    incoming: dict[str, Series] = {}
    for m in batch.metrics:
        ts = np.full(len(m.steps), now) if m.timestamps is None else np.asarray(m.timestamps, F8)
        s = Series(np.asarray(m.steps, I8), ts, np.asarray(m.values, F8))
        prev = incoming.get(m.key)
        incoming[m.key] = s if prev is None else _concat([prev, s])
    points = sum(len(s) for s in incoming.values())
    if not _claim_batch(session, run_id, batch.batch_id, points):
        return LogBatchOut(points=0, duplicate=True)
    if incoming:
        _append(session, run_id, incoming)
        _update_summaries(session, run_id, incoming)
    return LogBatchOut(points=points, duplicate=False)


def _claim_batch(session: Session, run_id: str, batch_id: str, points: int) -> bool:
    """Record the batch id; False when it was already there (one round trip, race-free)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(LoggedBatch).values(run_id=run_id, batch_id=batch_id, points=points)
    claimed = session.execute(stmt.on_conflict_do_nothing().returning(LoggedBatch.points))
    return claimed.first() is not None


def _concat(parts: list[Series]) -> Series:
    return Series(
        np.concatenate([p.step for p in parts]),
        np.concatenate([p.timestamp for p in parts]),
        np.concatenate([p.value for p in parts]),
    )


def _decode(chunk: MetricChunk) -> Series:
    return Series(
        np.frombuffer(chunk.steps, I8),
        np.frombuffer(chunk.timestamps, F8),
        np.frombuffer(chunk.values, F8),
    )


def _pack(chunk: MetricChunk, s: Series) -> None:
    chunk.count = len(s)
    chunk.steps = s.step.astype(I8, copy=False).tobytes()
    chunk.timestamps = s.timestamp.astype(F8, copy=False).tobytes()
    chunk.values = s.value.astype(F8, copy=False).tobytes()


def _append(session: Session, run_id: str, incoming: dict[str, Series]) -> None:
    last_seq = (
        select(MetricChunk.key, func.max(MetricChunk.seq).label("seq"))
        .where(MetricChunk.run_id == run_id, MetricChunk.key.in_(incoming))
        .group_by(MetricChunk.key)
        .subquery()
    )
    tails = {
        c.key: c
        for c in session.scalars(
            select(MetricChunk)
            .join(
                last_seq,
                (MetricChunk.key == last_seq.c.key) & (MetricChunk.seq == last_seq.c.seq),
            )
            .where(MetricChunk.run_id == run_id)
        )
    }
    for key, series in incoming.items():
        tail = tails.get(key)
        seq = 0
        if tail is not None:
            seq = tail.seq + 1
            if tail.count < MERGE_BELOW:
                room = MERGE_BELOW - tail.count
                head, series = _split(series, room)
                _pack(tail, _concat([_decode(tail), head]))
        for start in range(0, len(series), CHUNK_MAX):
            part = _slice(series, start, start + CHUNK_MAX)
            chunk = MetricChunk(run_id=run_id, key=key, seq=seq)
            _pack(chunk, part)
            session.add(chunk)
            seq += 1


def _slice(s: Series, a: int, b: int) -> Series:
    return Series(s.step[a:b], s.timestamp[a:b], s.value[a:b])


def _split(s: Series, n: int) -> tuple[Series, Series]:
    return _slice(s, 0, n), _slice(s, n, len(s))


def _update_summaries(session: Session, run_id: str, incoming: dict[str, Series]) -> None:
    existing = {
        m.key: m
        for m in session.scalars(
            select(MetricSummary).where(
                MetricSummary.run_id == run_id, MetricSummary.key.in_(incoming)
            )
        )
    }
    for key, s in incoming.items():
        finite = s.value[~np.isnan(s.value)]
        lo = float(finite.min()) if finite.size else None
        hi = float(finite.max()) if finite.size else None
        last = float(s.value[-1])
        row = existing.get(key)
        if row is None:
            row = MetricSummary(run_id=run_id, key=key, count=0, last_step=int(s.step[-1]))
            session.add(row)
        row.last = None if math.isnan(last) else last
        row.last_step = int(s.step[-1])
        row.count = (row.count or 0) + len(s)
        row.min = lo if row.min is None else (row.min if lo is None else min(row.min, lo))
        row.max = hi if row.max is None else (row.max if hi is None else max(row.max, hi))


def series_keys(session: Session, run_id: str) -> list[MetricSummary]:
    """The summaries of every metric of a run, by key."""
    stmt = select(MetricSummary).where(MetricSummary.run_id == run_id).order_by(MetricSummary.key)
    return list(session.scalars(stmt))


def read_series(session: Session, run_id: str, key: str) -> Series | None:
    """The whole series, or None when the run never logged ``key``."""
    rows = session.execute(
        select(MetricChunk.steps, MetricChunk.timestamps, MetricChunk.values)
        .where(MetricChunk.run_id == run_id, MetricChunk.key == key)
        .order_by(MetricChunk.seq)
    ).all()
    if not rows:
        return None
    return Series(
        np.frombuffer(b"".join(r[0] for r in rows), I8),
        np.frombuffer(b"".join(r[1] for r in rows), F8),
        np.frombuffer(b"".join(r[2] for r in rows), F8),
    )


def downsample(s: Series, max_points: int) -> Series:
    """At most ``max_points`` points that keep each bucket's min and max (and both ends).

    The series is cut into ``max_points // 2`` equal buckets; from each, the points holding the
    smallest and the largest value survive, in their original order. Peaks and dips stay visible
    on a chart, which plain striding would lose. A NaN wins neither contest unless its bucket is
    all NaN.
    """
    n = len(s)
    if n <= max_points:
        return s
    buckets = max(1, (max_points - 2) // 2)
    size = math.ceil(n / buckets)
    pad = buckets * size - n
    v = s.value
    lo = np.where(np.isnan(v), np.inf, v)
    hi = np.where(np.isnan(v), -np.inf, v)
    if pad:
        lo = np.concatenate([lo, np.full(pad, np.inf)])
        hi = np.concatenate([hi, np.full(pad, -np.inf)])
    base = np.arange(buckets) * size
    idx = np.concatenate(
        [
            base + lo.reshape(buckets, size).argmin(axis=1),
            base + hi.reshape(buckets, size).argmax(axis=1),
            [0, n - 1],
        ]
    )
    idx = np.unique(np.minimum(idx, n - 1))
    return Series(s.step[idx], s.timestamp[idx], s.value[idx])
