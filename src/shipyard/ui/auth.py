"""Who a browser is: a token kept in an HttpOnly cookie, from a one-time login link or pasted.

``/login?code=...`` (the link ``shipyard server`` prints in local mode, or ``shipyard ui`` asks the
API for) exchanges its one-time code for a browser token of the link's user; ``/login`` also takes
an API token pasted in its form. The cookie holds the token and is checked on every request as a
bearer token is, so a revoked token stops working in the UI at once. With SHIPYARD_AUTH=none
there is no login: pages act as the local user, as anonymous API calls do. The API keeps its
bearer tokens and never reads this cookie. Forms posted from another site never get here (the
request guard refuses a foreign Origin).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from shipyard.auth import Actor, RuntimeDep, actor_of, current_actor, service
from shipyard.errors import Unauthorized
from shipyard.ui.render import COOKIE, PageRoute, render

COOKIE_MAX_AGE_S = 7 * 24 * 3600  # a week; the token itself may live longer
MAX_FORM_BYTES = 16 * 1024

router = APIRouter(include_in_schema=False, route_class=PageRoute)


def ui_caller(request: Request, rt: RuntimeDep) -> Actor:
    """The user a browser acts as: its cookie's token, or the local user when auth is none."""
    if not rt.settings.auth_required:
        caller = current_actor(request, rt)
    else:
        secret = request.cookies.get(COOKIE)
        if not secret:
            raise Unauthorized("sign in with a login link or an API token")
        with rt.db.read() as s:  # no cache: a revoked token stops working at once
            user, scope = service.authenticate_token(s, secret)
        caller = actor_of(user.id, user.name, user.is_admin, scope)
    request.state.caller = caller
    return caller


UiCallerDep = Annotated[Actor, Depends(ui_caller)]


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this server only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def _signed_in(request: Request, token: str, target: str) -> Response:
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


def _form_page(request: Request, rt: RuntimeDep, target: str, error: str | None) -> Response:
    local = rt.settings.auth.value == "local"
    return render(request, "login.html", {"next": target, "error": error, "local": local})


@router.get("/login")
def login_page(
    request: Request, rt: RuntimeDep, next: str = "/", code: str | None = None
) -> Response:
    """The login form; with ``code``, a one-time login link (used up, then the cookie is set).
    With SHIPYARD_AUTH=none there is no login: straight on."""
    target = safe_next(next)
    if not rt.settings.auth_required:
        return RedirectResponse(target, status_code=303)
    if code:
        try:
            with rt.db.session() as s:
                _, token = service.redeem_login_link(s, code[:200])
        except Unauthorized as exc:
            return _form_page(request, rt, target, exc.detail)
        return _signed_in(request, token, target)
    return _form_page(request, rt, target, None)


@router.post("/login")
async def login(request: Request, rt: RuntimeDep) -> Response:
    """Check the pasted token like the API would; on success keep it in an HttpOnly cookie."""
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
        return _form_page(request, rt, target, exc.detail)
    return _signed_in(request, token, target)


@router.post("/logout")
def logout(request: Request) -> Response:
    """Forget the cookie."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
