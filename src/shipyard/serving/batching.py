"""Dynamic batching inside a replica: requests queue, merge, run once, and split back.

State owned: the queue of pending requests of one replica. One consumer takes the oldest
request, then keeps taking until the batch holds ``max_batch_size`` rows or ``max_delay_ms``
passed since that oldest request arrived; requests whose inputs cannot be stacked with the
batch (other non-batch dimensions) wait for the next one. The wait happens only under load
(the previous batch merged several requests, or requests queued behind it), and only while
the batch is short of the rows queued plus those of the batch just answered (whose senders
are likely to send again): a lone request runs at once, and eight clients of a model batched
by 64 wait for each other, not for rows that will not come. Inference runs in a worker thread,
off the event loop; while it runs, new requests queue, so batches grow with load and stay at
one request when idle. A compute-bound model (``inline_small``) whose batches all take well
under a millisecond (a small network) runs on the event loop instead: the hop to the thread
and back (and the wait for the GIL on the way) costs more than the inference, and the loop is
held for less than the hop would take. Batches are timed by their thread's CPU time: wall time
would count the wait for the GIL in the worker thread, and the time the process was
descheduled on a busy machine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

Inputs = dict[str, np.ndarray]
Outputs = dict[str, np.ndarray]
Result = tuple[Outputs, int]  # a request's outputs and the rows of the batch it ran in
INLINE_BELOW_S = 0.0005  # batches run on the event loop while the slowest recent one was faster
SLOWEST_DECAY = 0.97  # per batch: a slow (or cold first) batch is forgotten after ~75 fast ones


@dataclass
class _Pending:
    inputs: Inputs
    rows: int
    key: tuple[tuple[int, ...], ...]
    arrived: float
    future: asyncio.Future[Result] = field(repr=False)


class Batcher:
    """Merges concurrent requests for ``run`` into batches of at most ``max_batch_size`` rows."""

    def __init__(
        self,
        run: Callable[[Inputs], Outputs],
        max_batch_size: int = 32,
        max_delay_ms: float = 5.0,
        inline_small: bool = False,
    ) -> None:
        self._run = run
        self.inline_small = inline_small
        self.max_batch_size = max(1, max_batch_size)
        self.max_delay_s = max(0.0, max_delay_ms) / 1000
        self._queue: list[_Pending] = []
        self._concurrent = False  # did the last batch merge requests (is there load)?
        # Rows that may be queued by the time the next batch starts: those queued when the
        # last one ended plus its own (whose senders are likely to send again).
        self._expected = 0
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="shipyard-infer")
        self._task: asyncio.Task[None] | None = None
        # The slowest recent batch (CPU seconds, decaying a batch); unknown until one ran.
        self._slowest = float("inf")
        self.on_batch: Callable[[int, int], None] | None = None  # (rows, requests) observer

    @property
    def depth(self) -> int:
        """Requests waiting for a batch."""
        return len(self._queue)

    async def submit(self, inputs: Inputs, rows: int) -> Result:
        """Queue one request's inputs (``rows`` of them); its outputs and its batch's size."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())
        key = tuple(a.shape[1:] for a in inputs.values())
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(inputs, rows, key, time.monotonic(), future))
        self._wake.set()
        return await future

    def _take(self) -> list[_Pending]:
        first = self._queue[0]
        batch: list[_Pending] = []
        rest: list[_Pending] = []
        total = 0
        for item in self._queue:
            if item.key == first.key and (not batch or total + item.rows <= self.max_batch_size):
                batch.append(item)
                total += item.rows
            else:
                rest.append(item)
        self._queue = rest
        return batch

    def _ready_rows(self) -> int:
        first = self._queue[0]
        return sum(i.rows for i in self._queue if i.key == first.key)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            deadline = self._queue[0].arrived + self.max_delay_s
            # Wait for company only under load (the last batch merged several requests): alone,
            # a request runs at once, so batching costs nothing at concurrency 1. And only for
            # as many rows as may come: those queued and those of the last batch.
            target = min(self.max_batch_size, self._expected)
            while self._concurrent and self._ready_rows() < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), remaining)
                except TimeoutError:
                    break
            batch = self._take()
            names = list(batch[0].inputs)
            merged = {
                n: (
                    batch[0].inputs[n]
                    if len(batch) == 1
                    else np.concatenate([b.inputs[n] for b in batch])
                )
                for n in names
            }
            try:
                if self.inline_small and self._slowest < INLINE_BELOW_S:
                    outputs, seconds = self._timed_run(merged)
                else:
                    outputs, seconds = await loop.run_in_executor(
                        self._executor, self._timed_run, merged
                    )
            except Exception as exc:  # the model failed on this batch: each request learns why
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            known = self._slowest != float("inf")
            self._slowest = max(seconds, SLOWEST_DECAY * self._slowest if known else 0.0)
            total = sum(b.rows for b in batch)
            self._concurrent = len(batch) > 1 or bool(self._queue)
            self._expected = total + sum(i.rows for i in self._queue)
            if self.on_batch is not None:
                self.on_batch(total, len(batch))
            start = 0
            for item in batch:
                end = start + item.rows
                if not item.future.done():
                    item.future.set_result(({k: v[start:end] for k, v in outputs.items()}, total))
                start = end

    def _timed_run(self, inputs: Inputs) -> tuple[Outputs, float]:
        start = time.thread_time()
        outputs = self._run(inputs)
        return outputs, time.thread_time() - start

    async def close(self) -> None:
        """Stop batching; pending requests fail."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for item in self._queue:
            if not item.future.done():
                item.future.set_exception(RuntimeError("the replica is shutting down"))
        self._executor.shutdown(wait=False)
