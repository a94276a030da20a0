"""A lean HTTP/1.1 client for the router -> replica hop (keep-alive, one write per request).

Replicas are our own uvicorn servers answering with ``content-length``; a general client
(httpx) spends more time on bookkeeping than the whole hop takes, so the router speaks just
this: a pool of persistent connections per replica, the request head and body sent in one
write with TCP_NODELAY, the reply parsed as it arrives by the connection's protocol (no
stream reader, no task per request: the timeout is a timer on the reply's future).
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass


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


class ReplicaClient:
    """Persistent connections to replicas, reused one request at a time."""

    def __init__(self, timeout_s: float = 60.0, idle_per_replica: int = 64) -> None:
        self.timeout_s = timeout_s
        self.idle_per_replica = idle_per_replica
        self._idle: dict[int, list[_Conn]] = {}

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
