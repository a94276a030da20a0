"""How UI routes answer: Jinja2 templates, HTML error pages, the login redirect, safe headers.

``PageRoute`` is the route class of every HTML route: a ``ShipyardError`` raised by a service
(an unknown run is ``NotFound``) becomes an HTML page with the same status instead of the API's
problem+json, and a missing or refused login becomes a redirect to ``/login``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from shipyard import __version__
from shipyard.errors import ShipyardError, Unauthorized
from shipyard.runtime import Runtime
from shipyard.ui import views

log = logging.getLogger("shipyard.ui")
HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
COOKIE = "shipyard_token"

# Scripts only from this server (no inline script, no eval); uPlot and htmx set inline styles.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",  # pages hold the signed-in user's data
}


def _globals(request: Request) -> dict[str, Any]:
    rt: Runtime = request.app.state.runtime
    return {
        "caller": getattr(request.state, "caller", None),
        "auth_on": rt.settings.auth_required,
        "version": __version__,
    }


templates = Jinja2Templates(directory=HERE / "templates", context_processors=[_globals])
templates.env.filters.update(
    fmt=views.fmt, when=views.when, duration=views.duration, size=views.size
)
templates.env.globals.update(base_name=views.base_name)


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A page from ``templates/NAME``."""
    return templates.TemplateResponse(request, name, context, status_code=status)


def is_partial(request: Request) -> bool:
    """True for an htmx request that wants a fragment (not a history restore, which wants all)."""
    return (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-history-restore-request") != "true"
    )


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    """An HTML page saying what went wrong, with the error's status."""
    return render(
        request, "error.html", {"status": status, "title": title, "detail": detail}, status
    )


def to_login(request: Request) -> Response:
    """Send the browser to the login page, coming back here afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = f"/login?next={quote(target, safe='')}"
    response: Response
    if request.headers.get("hx-request") == "true":
        response = Response(status_code=204, headers={"hx-redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


class PageRoute(APIRoute):
    """An HTML route: errors as HTML pages, login as a redirect, and security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handler(request)
            except Unauthorized:
                response = to_login(request)
            except ShipyardError as exc:
                if exc.status >= 500:
                    raise
                response = error_page(request, exc.status, exc.title, exc.detail)
            except RequestValidationError as exc:
                fields = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg')}"
                    for e in exc.errors()
                )
                response = error_page(request, 422, "Unprocessable content", fields)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return page
