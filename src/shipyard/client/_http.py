"""One HTTP connection pool to the server, with problem+json mapped back to typed errors."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import orjson

from shipyard.errors import ShipyardError, from_problem


class ServerUnreachable(ShipyardError):
    """The server did not answer (down, wrong URL, network)."""

    title = "Server unreachable"


class Http:
    """A keep-alive connection pool with TCP_NODELAY, so small requests never wait on Nagle."""

    def __init__(self, url: str, token: str | None, timeout: float = 30.0) -> None:
        headers = {"user-agent": "shipyard-sdk"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        transport = httpx.HTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)], retries=0
        )
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
