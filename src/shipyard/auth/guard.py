"""Which requests may reach a route at all: the Host a server answers to, the origins that may
change things, and the content types the API takes.

A web page the user visits can reach a server on 127.0.0.1 two ways: through DNS rebinding (the
page's own name, re-pointed at 127.0.0.1, so the browser sends ``Host: evil.example``), and with
cross-site requests a browser sends without asking (a form post, a ``fetch`` with a text body,
carrying the page's ``Origin``). :class:`RequestGuard` refuses both before any route runs,
inference's fast path included:

- **Host**: the ``Host`` header must name the address the connection reached (``scope["server"]``,
  which is also how a server bound to ``0.0.0.0`` is reached by IP), ``localhost``,
  ``127.0.0.1`` or ``[::1]``, with the server's port; or match ``SHIPYARD_ALLOWED_HOSTS``
  (``name``, ``name:port``, ``*.example.com``, or ``*`` for any). Else 421.
- **Origin**: a state-changing request (any method but GET, HEAD, OPTIONS) whose ``Origin``, or
  failing that ``Referer``, names another origin than the one it was sent to is refused (403),
  unless that origin is in ``SHIPYARD_CORS_ORIGINS``. Programs (the SDK, curl) send neither
  header and pass.
- **Content type**: under ``/api/``, ``/v1/``, ``/v2/`` and ``/endpoints/`` a body typed as one of
  the three types a cross-site "simple" request may carry (``text/plain``,
  ``application/x-www-form-urlencoded``, ``multipart/form-data``) is refused (415): JSON goes as
  ``application/json``, files as ``application/octet-stream``. The UI's own forms live outside
  those prefixes and are covered by the Origin check.

Starlette's ``TrustedHostMiddleware`` answers a plain-text 400 and ignores the port; clients of
this API read problem+json, so the Host check is this module's. CORS answers for browser clients
that are meant to call the API are Starlette's ``CORSMiddleware`` (``app.py`` mounts it when
``SHIPYARD_CORS_ORIGINS`` is set).
"""

from __future__ import annotations

import html
import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard.errors import Forbidden, MisdirectedRequest, ShipyardError, UnsupportedMediaType

PROBLEM = b"application/problem+json"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
API_PREFIXES = ("/api/", "/v1/", "/v2/", "/endpoints/")
SIMPLE_TYPES = frozenset(
    {b"text/plain", b"application/x-www-form-urlencoded", b"multipart/form-data"}
)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def host_name(address: str) -> str:
    """An address as a Host header writes it (IPv6 in brackets)."""
    try:
        return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    except ValueError:
        return address.lower()


def split_host(value: str) -> tuple[str, int | None]:
    """``name`` and port of a Host header or an origin's netloc (port None when absent)."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return value, None
        name, rest = value[: end + 1], value[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, sep, port = value.rpartition(":")
        if not sep:
            return value, None
    return (name, int(port)) if port.isdigit() and len(port) <= 5 else (value, None)


class RequestGuard:
    """Pure ASGI middleware refusing foreign hosts, foreign origins and simple-request bodies."""

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: Sequence[str] = (),
        cors_origins: Sequence[str] = (),
        bind_host: str = "127.0.0.1",
    ) -> None:
        self.app = app
        self.any_host = "*" in allowed_hosts
        self.extra_hosts = [h.strip().lower() for h in allowed_hosts if h.strip() not in ("", "*")]
        self.any_origin = "*" in cors_origins
        self.origins = frozenset(o.strip().rstrip("/").lower() for o in cors_origins)
        self.names = {*LOOPBACK_NAMES, host_name(bind_host)}
        # (server address, port, scheme) -> the exact Host values a request may carry: the hot
        # path is one set lookup (the header as sent is lower-case from browsers and clients).
        self._allowed: dict[tuple[str, int, str], frozenset[bytes]] = {}

    def _exact(self, scope: Scope) -> frozenset[bytes]:
        server = scope.get("server") or ("127.0.0.1", DEFAULT_PORTS.get(scope["scheme"], 80))
        key = (server[0], server[1], scope["scheme"])
        allowed = self._allowed.get(key)
        if allowed is None:
            names = {*self.names, host_name(str(server[0]))}
            values = {f"{n}:{server[1]}" for n in names}
            if DEFAULT_PORTS.get(scope["scheme"]) == server[1]:
                values |= names
            allowed = frozenset(v.encode() for v in values)
            if len(self._allowed) < 64:
                self._allowed[key] = allowed
        return allowed

    def host_allowed(self, scope: Scope, host: bytes) -> bool:
        """Whether this server answers to ``host``."""
        exact = self._exact(scope)
        if self.any_host or host in exact or host.lower() in exact:
            return True
        name, port = split_host(host.decode("latin-1"))
        for pattern in self.extra_hosts:
            p_name, p_port = split_host(pattern)
            if p_port is not None and p_port != port:
                continue
            if name == p_name or (p_name.startswith("*.") and name.endswith(p_name[1:])):
                return True
        return False

    def origin_allowed(self, origin: str, host: bytes) -> bool:
        """Whether a page at ``origin`` (scheme://host[:port]) may change things on ``host``."""
        origin = origin.strip().rstrip("/").lower()
        if self.any_origin or origin in self.origins:
            return True
        if origin == "null":  # sandboxed frames, file: pages, privacy-stripped redirects
            return False
        netloc = urlsplit(origin).netloc
        return bool(netloc) and netloc == host.decode("latin-1").strip().lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = origin = referer = ctype = None
        for key, value in scope["headers"]:
            if key == b"host":
                host = value
            elif key == b"origin":
                origin = value
            elif key == b"referer":
                referer = value
            elif key == b"content-type":
                ctype = value
        refusal = self.refusal(scope, host, origin, referer, ctype)
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        elif scope["path"].startswith(API_PREFIXES):
            await _problem(send, refusal)
        else:  # a page (a form posted from another site, a rebinding page): the UI speaks HTML
            await _page(send, refusal)

    def refusal(
        self,
        scope: Scope,
        host: bytes | None,
        origin: bytes | None,
        referer: bytes | None,
        ctype: bytes | None,
    ) -> ShipyardError | None:
        """Why the request is refused, or None."""
        if host is None or not self.host_allowed(scope, host):
            shown = host.decode("latin-1")[:100] if host else "(none)"
            return MisdirectedRequest(
                f"this server does not answer to the host {shown!r}: use 127.0.0.1 or localhost, "
                "or add the name to SHIPYARD_ALLOWED_HOSTS if it is this server's",
            )
        method = scope.get("method", "WEBSOCKET")  # a WebSocket handshake changes things too
        if method not in SAFE_METHODS:
            source = origin.decode("latin-1") if origin is not None else None
            if source is None and referer is not None:
                parts = urlsplit(referer.decode("latin-1"))
                source = f"{parts.scheme}://{parts.netloc}" if parts.netloc else "null"
            if source is not None and not self.origin_allowed(source, host):
                return Forbidden(
                    f"a request from another site ({source[:100]!r}) may not change anything "
                    "here; add its origin to SHIPYARD_CORS_ORIGINS if it is meant to",
                )
            if ctype is not None and scope["path"].startswith(API_PREFIXES):
                media = ctype.split(b";", 1)[0].strip().lower()
                if media in SIMPLE_TYPES:
                    return UnsupportedMediaType(
                        f"this route does not take {media.decode('latin-1')!r} bodies: send JSON "
                        "as application/json (files as application/octet-stream)",
                    )
        return None


async def _problem(send: Send, error: ShipyardError) -> None:
    await _send(send, error.status, PROBLEM, orjson.dumps(error.problem()))


async def _page(send: Send, error: ShipyardError) -> None:
    title = html.escape(error.title)
    body = (
        f"<!doctype html><meta charset=utf-8><title>{title}</title>"
        f"<h1>{error.status} {title}</h1><p>{html.escape(error.detail)}</p>"
    ).encode()
    await _send(send, error.status, b"text/html; charset=utf-8", body)


async def _send(send: Send, status: int, ctype: bytes, body: bytes) -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
