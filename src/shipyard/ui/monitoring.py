"""HTML page of a project's alerts, over the same handlers and checks as the API.

Route: ``/projects/{name}/alerts``: the rules with their state, last value and channels, the
history of firing and resolved events with what each channel answered, and the channels (URLs
as scheme and host). Viewers read it; the overview lists the rules firing now.
"""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.routing import APIRouter

from shipyard.auth import RuntimeDep
from shipyard.monitoring import METRICS
from shipyard.monitoring import api as monitoring_api
from shipyard.ui.auth import UiCallerDep
from shipyard.ui.render import PageRoute, render

router = APIRouter(include_in_schema=False, route_class=PageRoute)
EVENTS_SHOWN = 50
POLL_S = 10


@router.get("/projects/{name}/alerts")
def alerts_page(request: Request, name: str, caller: UiCallerDep, rt: RuntimeDep) -> Response:
    """A project's alert rules, their history and channels."""
    context = {
        "project": name,
        "rules": monitoring_api.list_rules(name, caller, rt),
        "events": monitoring_api.list_events(name, caller, rt, limit=EVENTS_SHOWN),
        "channels": monitoring_api.list_channels(name, caller, rt),
        "metrics": METRICS,
        "poll_s": POLL_S,
    }
    return render(request, "alerts.html", context)
