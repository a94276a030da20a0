"""Who a browser is: an API token pasted once on ``/login``, kept in an HttpOnly cookie.

The cookie holds the token itself and is checked on every request with the API's own
``auth.service.authenticate``, so a revoked token stops working in the UI at once. In local mode
(auth off) there is no login: pages act as the local user, as anonymous API calls do. The API
keeps its bearer tokens and never reads this cookie.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from shipyard.auth import service
from shipyard.auth.deps import Caller, RuntimeDep, current_caller
from shipyard.errors import Forbidden, Unauthorized
from shipyard.ui.render import COOKIE, PageRoute, render

COOKIE_MAX_AGE_S = 7 * 24 * 3600  # a week; the token itself may live longer
MAX_FORM_BYTES = 16 * 1024

router = APIRouter(include_in_schema=False, route_class=PageRoute)


def ui_caller(request: Request, rt: RuntimeDep) -> Caller:
    """The user a browser acts as: its cookie's token, or the local user when auth is off."""
    if not rt.settings.auth_required:
        caller = current_caller(request, rt)
    else:
        secret = request.cookies.get(COOKIE)
        if not secret:
            raise Unauthorized("sign in with an API token")
        with rt.db.read() as s:
            user = service.authenticate(s, secret)
            caller = Caller(user.id, user.name, user.is_admin)
    request.state.caller = caller
    return caller


UiCallerDep = Annotated[Caller, Depends(ui_caller)]


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this server only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def _same_origin(request: Request) -> None:
    """Refuse a form posted from another site (login CSRF)."""
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Forbidden("the form was posted from another site")


@router.get("/login")
def login_page(request: Request, rt: RuntimeDep, next: str = "/") -> Response:
    """The login form (local mode has none: straight on)."""
    if not rt.settings.auth_required:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"next": safe_next(next), "error": None})


@router.post("/login")
async def login(request: Request, rt: RuntimeDep) -> Response:
    """Check the pasted token like the API would; on success keep it in an HttpOnly cookie."""
    _same_origin(request)
    body = await request.body()
    form = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    target = safe_next((form.get("next") or ["/"])[0])
    if not rt.settings.auth_required:
        return RedirectResponse(target, status_code=303)
    try:
        if not token:
            raise Unauthorized("paste an API token")
        with rt.db.read() as s:
            service.authenticate(s, token)
    except Unauthorized as exc:  # the form again, with the reason (200: a form error, not a fault)
        return render(request, "login.html", {"next": target, "error": exc.detail})
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=COOKIE_MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """Forget the cookie."""
    _same_origin(request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
