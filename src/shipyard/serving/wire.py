"""A lean HTTP/1.1 client for the router -> replica hop (keep-alive, one write per request).

Replicas are our own uvicorn servers answering with ``content-length``; a general client
(httpx) spends more time on bookkeeping than the whole hop takes, so the router speaks just
this: a pool of persistent connections per replica, the request head and body sent in one
write with TCP_NODELAY, the reply read by its length.
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


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def close(self) -> None:
        self.writer.close()


class ReplicaClient:
    """Persistent connections to replicas, reused one request at a time."""

    def __init__(self, timeout_s: float = 60.0, idle_per_replica: int = 64) -> None:
        self.timeout_s = timeout_s
        self.idle_per_replica = idle_per_replica
        self._idle: dict[int, list[_Conn]] = {}

    async def _connect(self, port: int) -> _Conn:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError as exc:
            raise WireError(f"cannot connect to replica on port {port}: {exc}") from exc
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Conn(reader, writer)

    async def post(self, port: int, path: str, body: bytes) -> Reply:
        """POST ``body`` (JSON) to ``path`` on the replica at ``port``."""
        pool = self._idle.setdefault(port, [])
        reused = bool(pool)
        conn = pool.pop() if pool else await self._connect(port)
        head = (
            f"POST {path} HTTP/1.1\r\nhost: replica\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode()
        try:
            conn.writer.write(head + body)
            reply = await asyncio.wait_for(self._read(conn), self.timeout_s)
        except (OSError, asyncio.IncompleteReadError, WireError) as exc:
            conn.close()
            if reused:  # a kept-alive connection the replica closed meanwhile: one fresh try
                return await self._fresh(port, head + body)
            raise WireError(f"replica on port {port} failed: {exc!r}") from exc
        except BaseException:
            conn.close()
            raise
        if reply.headers.get("connection") == "close" or len(pool) >= self.idle_per_replica:
            conn.close()
        else:
            pool.append(conn)
        return reply

    async def _fresh(self, port: int, data: bytes) -> Reply:
        conn = await self._connect(port)
        try:
            conn.writer.write(data)
            reply = await asyncio.wait_for(self._read(conn), self.timeout_s)
        except (OSError, asyncio.IncompleteReadError, WireError) as exc:
            conn.close()
            raise WireError(f"replica on port {port} failed: {exc!r}") from exc
        self._idle.setdefault(port, []).append(conn)
        return reply

    @staticmethod
    async def _read(conn: _Conn) -> Reply:
        raw = await conn.reader.readuntil(b"\r\n\r\n")
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
        length = int(headers.get("content-length", "0"))
        body = await conn.reader.readexactly(length) if length else b""
        return Reply(status, headers, body)

    def forget(self, port: int) -> None:
        """Drop the pooled connections of a replica that went away."""
        for conn in self._idle.pop(port, []):
            conn.close()

    async def close(self) -> None:
        for port in list(self._idle):
            self.forget(port)
