"""One HTTP connection pool to the server, with problem+json mapped back to typed errors.

Small calls (a metric batch, a heartbeat) must never wait on Nagle's algorithm and delayed
ACKs, the ~40 ms stall of a request written in two pieces (headers, then body) on a kept-alive
connection. Two mechanisms, each enough alone: ``TCP_NODELAY`` on the socket, and each request
sent in one write (``_OneWrite`` holds what httpcore writes until it reads the answer).
"""

from __future__ import annotations

import socket
import typing
from typing import Any

import httpcore
import httpx
import orjson

from shipyard.errors import ShipyardError, from_problem


class ServerUnreachable(ShipyardError):
    """The server did not answer (down, wrong URL, network)."""

    title = "Server unreachable"


FLUSH_BYTES = 64 * 1024  # a large upload is streamed in pieces this size, not held whole


class _OneWrite(httpcore.NetworkStream):
    """A socket stream that sends what it was given in one write, when the answer is read
    (or past ``FLUSH_BYTES``): httpcore writes a request's headers and body separately."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self.stream = stream
        self.pending = bytearray()
        self.writes = 0  # sends made, one per small request (the tests count them)

    def flush(self, timeout: float | None = None) -> None:
        if self.pending:
            self.stream.write(bytes(self.pending), timeout)
            self.pending.clear()
            self.writes += 1

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.pending += buffer
        if len(self.pending) >= FLUSH_BYTES:
            self.flush(timeout)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.flush(timeout)
        return self.stream.read(max_bytes, timeout)

    def close(self) -> None:
        self.stream.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        self.flush(timeout)
        return _OneWrite(self.stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


class _OneWriteBackend(httpcore.SyncBackend):
    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return _OneWrite(super().connect_tcp(host, port, timeout, local_address, socket_options))


class Http:
    """A keep-alive connection pool with TCP_NODELAY and one write per request, so small
    requests never wait on Nagle."""

    def __init__(self, url: str, token: str | None, timeout: float = 30.0) -> None:
        headers = {"user-agent": "shipyard-sdk"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        transport = httpx.HTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)], retries=0
        )
        # httpx builds its httpcore pool with the default backend and takes none of its own.
        transport._pool._network_backend = _OneWriteBackend()
        self.url = url.rstrip("/")
        self.client = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; raise the typed error for a problem reply or ``ServerUnreachable``."""
        try:
            response = self.client.request(method, path, **kwargs)
        except (
            httpx.ConnectError,
            httpx.ConnectTimeout,
            httpx.RemoteProtocolError,
            httpx.ReadError,
            httpx.WriteError,
            httpx.ReadTimeout,
        ) as exc:
            raise ServerUnreachable(
                f"{self.url} did not answer ({type(exc).__name__}): "
                "is `shipyard server` running and SHIPYARD_URL right?"
            ) from exc
        if response.status_code >= 400:
            raise error_of(response)
        return response

    def json(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """Send ``body`` as JSON (NaN-safe; numpy arrays and int dict keys, such as traffic
        weights by version, as JSON has them), return the decoded reply (None for 204)."""
        if body is not None:
            options = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
            kwargs["content"] = orjson.dumps(body, option=options)
            kwargs.setdefault("headers", {})["content-type"] = "application/json"
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return orjson.loads(response.content)  # several times faster than json on long series

    def close(self) -> None:
        """Close the pool."""
        self.client.close()


def error_of(response: httpx.Response) -> ShipyardError:
    """The typed error a non-2xx reply stands for."""
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text[:200] or response.reason_phrase}
    if not isinstance(body, dict):
        body = {"detail": str(body)[:200]}
    return from_problem(response.status_code, body)
