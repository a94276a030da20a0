"""Typed errors, each carrying its HTTP status, rendered once as RFC 9457 problem+json.

ShipyardError (500)
├── BadRequest (400)
│   └── PathNotAllowed (400)
├── Unauthorized (401)
├── Forbidden (403)
├── NotFound (404)
├── Conflict (409)
├── PayloadTooLarge (413)
├── UnsupportedMediaType (415)
├── MisdirectedRequest (421)
├── Unprocessable (422)
└── Unavailable (503)
"""

from __future__ import annotations

from typing import Any, ClassVar


class ShipyardError(Exception):
    """Base of every error Shipyard raises on purpose."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 body for this error."""
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        return body


class BadRequest(ShipyardError):
    status, title = 400, "Bad request"


class PathNotAllowed(BadRequest):
    title = "Path not allowed"


class Unauthorized(ShipyardError):
    status, title = 401, "Unauthorized"


class Forbidden(ShipyardError):
    status, title = 403, "Forbidden"


class NotFound(ShipyardError):
    status, title = 404, "Not found"


class Conflict(ShipyardError):
    status, title = 409, "Conflict"


class PayloadTooLarge(ShipyardError):
    status, title = 413, "Payload too large"


class UnsupportedMediaType(ShipyardError):
    status, title = 415, "Unsupported media type"


class MisdirectedRequest(ShipyardError):
    status, title = 421, "Misdirected request"


class Unprocessable(ShipyardError):
    status, title = 422, "Unprocessable content"


class Unavailable(ShipyardError):
    status, title = 503, "Service unavailable"


ERRORS_BY_STATUS: dict[int, type[ShipyardError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        MisdirectedRequest,
        Unprocessable,
        Unavailable,
    )
}


def from_problem(status: int, body: dict[str, Any]) -> ShipyardError:
    """Rebuild the typed error from a problem+json reply (used by the SDK and CLI)."""
    cls = ERRORS_BY_STATUS.get(status, ShipyardError)
    title = body.get("title") or cls.title
    detail = body.get("detail") or title
    return cls(str(detail), errors=body.get("errors"))
