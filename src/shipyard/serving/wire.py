"""A lean HTTP/1.1 client for the router -> replica hop (keep-alive, one write per request).

Replicas are our own uvicorn servers answering with ``content-length``; a general client
(httpx) spends more time on bookkeeping than the whole hop takes, so the router speaks just
this: a pool of persistent connections per replica, the request head and body sent in one
write with TCP_NODELAY, the reply parsed as it arrives by the connection's protocol (no
stream reader, no task per request: the timeout is a timer on the reply's future).

Under load, requests for one replica that arrive in the same turn of the event loop travel
together: one frame (``FRAME_PATH``) carrying each request's path and body, answered by one
frame of replies, so the hop's fixed costs (a write and a wake-up on each side, the replica's
HTTP parsing) are paid once for the lot. The replica runs the requests of a frame concurrently,
so its batcher merges them as it would separate requests; each keeps its own status and body.
A lone request, or a large one, goes as itself.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass

FRAME_PATH = "/_shipyard/frame"
FRAME_MAX_BYTES = 1 << 20  # a frame's bodies together; a larger request goes alone
FRAME_MAX_REQUESTS = 256
_REQUEST = struct.Struct("<II")  # path length, body length; then the path and the body
_REPLY = struct.Struct("<HII")  # status, batch rows (0: none), body length; then the body


class WireError(ConnectionError):
    """The connection to a replica failed or answered something unreadable."""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class _Conn(asyncio.Protocol):
    """One connection to a replica; at most one request in flight on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buffer = bytearray()
        # status, headers, where the body starts and ends in the buffer
        self._head: tuple[int, dict[str, str], int, int] | None = None
        self._waiter: asyncio.Future[Reply] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data: bytes, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Reply]:
        """Write a request; the future of its reply."""
        if self.closed or self.transport is None:
            raise ConnectionResetError("the connection is closed")
        self._buffer.clear()
        self._head = None
        self._waiter = loop.create_future()
        self.transport.write(data)
        return self._waiter

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        try:
            if self._head is None:
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                self._head = _parse_head(bytes(self._buffer[:end]), end + 4)
            status, headers, start, end = self._head
        except WireError as exc:
            waiter.set_exception(exc)
            return
        if len(self._buffer) < end:
            return
        body = bytes(self._buffer[start:end])
        del self._buffer[:end]
        self._waiter = None
        waiter.set_result(Reply(status, headers, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(asyncio.IncompleteReadError(bytes(self._buffer), None))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _parse_head(raw: bytes, start: int) -> tuple[int, dict[str, str], int, int]:
    lines = raw.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError) as exc:
        raise WireError(f"bad status line {lines[0]!r}") from exc
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError as exc:
        raise WireError(f"bad content-length {headers['content-length']!r}") from exc
    return status, headers, start, start + length


def encode_requests(requests: list[tuple[str, bytes]]) -> bytes:
    """A frame of requests: (path, body) each."""
    parts = []
    for path, body in requests:
        raw = path.encode()
        parts += [_REQUEST.pack(len(raw), len(body)), raw, body]
    return b"".join(parts)


def decode_requests(frame: bytes) -> list[tuple[str, bytes]]:
    """The (path, body) of each request of a frame; ValueError when it is malformed."""
    out, at, view = [], 0, memoryview(frame)
    while at < len(frame):
        if at + _REQUEST.size > len(frame):
            raise ValueError("truncated frame")
        path_len, body_len = _REQUEST.unpack_from(frame, at)
        at += _REQUEST.size
        if at + path_len + body_len > len(frame):
            raise ValueError("truncated frame")
        path = bytes(view[at : at + path_len]).decode()
        at += path_len
        out.append((path, bytes(view[at : at + body_len])))
        at += body_len
    return out


def encode_replies(replies: list[tuple[int, int, bytes]]) -> bytes:
    """A frame of replies: (status, batch rows or 0, body) each."""
    parts = []
    for status, batch, body in replies:
        parts += [_REPLY.pack(status, batch, len(body)), body]
    return b"".join(parts)


def decode_replies(frame: bytes) -> list[Reply]:
    """The replies of a frame, as if each had come alone."""
    out, at = [], 0
    while at < len(frame):
        if at + _REPLY.size > len(frame):
            raise WireError("truncated reply frame")
        status, batch, length = _REPLY.unpack_from(frame, at)
        at += _REPLY.size
        if at + length > len(frame):
            raise WireError("truncated reply frame")
        headers = {
            "content-type": "application/json" if status == 200 else "application/problem+json"
        }
        if batch:
            headers["x-batch-size"] = str(batch)
        out.append(Reply(status, headers, frame[at : at + length]))
        at += length
    return out


_Pending = tuple[str, bytes, "asyncio.Future[Reply]"]


class ReplicaClient:
    """Persistent connections to replicas, reused one request (or frame) at a time."""

    def __init__(self, timeout_s: float = 60.0, idle_per_replica: int = 64) -> None:
        self.timeout_s = timeout_s
        self.idle_per_replica = idle_per_replica
        self._idle: dict[int, list[_Conn]] = {}
        self._pending: dict[int, list[_Pending]] = {}  # requests waiting for this turn's frame
        self._pending_bytes: dict[int, int] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self._busy: dict[int, int] = {}  # requests and frames on their way to each replica

    async def call(self, port: int, path: str, body: bytes) -> Reply:
        """POST ``body`` to ``path`` on the replica: alone when nothing else is on its way
        there (or the body is large), else in a frame with whatever else this turn of the
        event loop sends it."""
        if not self._busy.get(port) or len(body) > FRAME_MAX_BYTES // 4:
            self._busy[port] = self._busy.get(port, 0) + 1
            try:
                return await self.post(port, path, body)
            finally:
                self._busy[port] -= 1
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Reply] = loop.create_future()
        pending = self._pending.get(port)
        if pending is None:
            pending = self._pending[port] = []
            self._pending_bytes[port] = 0
            loop.call_soon(self._flush, port)
        pending.append((path, body, reply))
        self._pending_bytes[port] += len(body)
        if len(pending) >= FRAME_MAX_REQUESTS or self._pending_bytes[port] >= FRAME_MAX_BYTES:
            self._flush(port)
        return await reply

    def _flush(self, port: int) -> None:
        pending = self._pending.pop(port, None)
        self._pending_bytes.pop(port, None)
        if not pending:
            return
        task = asyncio.get_running_loop().create_task(self._send(port, pending))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, port: int, pending: list[_Pending]) -> None:
        self._busy[port] = self._busy.get(port, 0) + 1
        try:
            if len(pending) == 1:
                path, body, _ = pending[0]
                replies = [await self.post(port, path, body)]
            else:
                frame = encode_requests([(path, body) for path, body, _ in pending])
                reply = await self.post(port, FRAME_PATH, frame)
                if reply.status != 200:
                    raise WireError(f"the replica refused a frame: {reply.status} {reply.body!r}")
                replies = decode_replies(reply.body)
                if len(replies) != len(pending):
                    raise WireError(f"{len(replies)} replies to {len(pending)} requests")
        except BaseException as exc:
            for _, _, future in pending:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            self._busy[port] -= 1
        for (_, _, future), reply in zip(pending, replies, strict=True):
            if not future.done():
                future.set_result(reply)

    async def _connect(self, port: int) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(_Conn, "127.0.0.1", port)
        except OSError as exc:
            raise WireError(f"cannot connect to replica on port {port}: {exc}") from exc
        return conn

    async def _exchange(self, conn: _Conn, data: bytes) -> Reply:
        loop = asyncio.get_running_loop()
        reply = conn.send(data, loop)
        timer = loop.call_later(self.timeout_s, _expire, reply)
        try:
            return await reply
        finally:
            timer.cancel()

    async def post(self, port: int, path: str, body: bytes) -> Reply:
        """POST ``body`` (JSON) to ``path`` on the replica at ``port``."""
        pool = self._idle.setdefault(port, [])
        while pool and pool[-1].closed:  # closed by the replica while idle
            pool.pop()
        reused = bool(pool)
        conn = pool.pop() if pool else await self._connect(port)
        data = (
            f"POST {path} HTTP/1.1\r\nhost: replica\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode() + body
        try:
            reply = await self._exchange(conn, data)
        except (OSError, asyncio.IncompleteReadError, WireError) as exc:
            conn.close()
            if reused:  # a kept-alive connection the replica closed meanwhile: one fresh try
                return await self._fresh(port, data)
            raise WireError(f"replica on port {port} failed: {exc!r}") from exc
        except BaseException:
            conn.close()
            raise
        self._release(port, conn, reply)
        return reply

    async def _fresh(self, port: int, data: bytes) -> Reply:
        conn = await self._connect(port)
        try:
            reply = await self._exchange(conn, data)
        except (OSError, asyncio.IncompleteReadError, WireError) as exc:
            conn.close()
            raise WireError(f"replica on port {port} failed: {exc!r}") from exc
        except BaseException:
            conn.close()
            raise
        self._release(port, conn, reply)
        return reply

    def _release(self, port: int, conn: _Conn, reply: Reply) -> None:
        pool = self._idle.setdefault(port, [])
        if reply.headers.get("connection") == "close" or len(pool) >= self.idle_per_replica:
            conn.close()
        else:
            pool.append(conn)

    def forget(self, port: int) -> None:
        """Drop the pooled connections of a replica that went away."""
        for conn in self._idle.pop(port, []):
            conn.close()

    async def close(self) -> None:
        for port in list(self._idle):
            self.forget(port)


def _expire(reply: asyncio.Future[Reply]) -> None:
    if not reply.done():
        reply.set_exception(TimeoutError("the replica did not answer in time"))
