"""HTML pages of the registry and serving: the same services and role checks as their APIs.

Routes: ``/projects/{name}/models`` (a project's models), ``/projects/{name}/models/{model}``
(versions with their source runs' metrics, aliases, pending alias requests, the model card and
the lineage dataset -> run -> version -> endpoint), ``POST /alias-requests/{id}/approve|reject``
(a maintainer other than the requester decides, exactly as the API's route: same check, same
audit record), ``/endpoints`` and ``/endpoints/{name}`` (traffic split, live replicas, charts
of the last minutes' request rate, latency percentiles and errors, the latest predictions, input
drift per feature).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from shipyard import auth, monitoring, serving
from shipyard.auth import Actor, Role, RuntimeDep
from shipyard.errors import Unprocessable
from shipyard.registry import api as registry_api
from shipyard.registry import service as registry
from shipyard.registry.schemas import AliasSet, Decision
from shipyard.runtime import Runtime
from shipyard.serving import WINDOW_S, Serving, ServingDep, ServingMetrics, StatsOut
from shipyard.serving import api as serving_api
from shipyard.ui import views
from shipyard.ui.auth import UiCallerDep
from shipyard.ui.render import PageRoute, render

router = APIRouter(include_in_schema=False, route_class=PageRoute)
data_router = APIRouter(include_in_schema=False)  # the endpoint's stats: errors stay problem+json
LIVE_POLL_S = 3  # how often the endpoint page refreshes its charts and predictions
DRIFT_POLL_S = 15  # and its drift section (which decodes the latest requests)
TRAFFIC_WINDOW_S = 300  # what the endpoint page charts
MAX_FORM_BYTES = 16 * 1024

# CommonMark with raw HTML off: tags in a card are shown as text, and unsafe link schemes
# (javascript:, vbscript:, data: other than images) are refused by markdown-it's validateLink.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def card_html(text: str) -> Markup:
    """A model card (markdown) as HTML, with any HTML in it escaped."""
    return Markup(_markdown.render(text))  # html is off: the output is escaped


def dataset_label(entry: Any) -> str:
    """``name@version`` of a dataset a run used (whatever else the entry says, as is)."""
    if isinstance(entry, dict) and "name" in entry:
        version = entry.get("version")
        return f"{entry['name']}@{version}" if version is not None else str(entry["name"])
    return str(entry)


@dataclass
class VersionStats:
    """An endpoint version's requests since the server started, from its Prometheus series."""

    version: str
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    buckets: list[tuple[float, float]] = field(default_factory=list)  # (le, cumulative count)

    @property
    def mean_ms(self) -> float | None:
        timed = self.buckets[-1][1] if self.buckets else 0
        return 1000 * self.seconds / timed if timed else None

    def quantile_ms(self, q: float) -> float | None:
        """The bucket bound under which a fraction ``q`` of the timed requests fell."""
        if not self.buckets or not self.buckets[-1][1]:
            return None
        want = q * self.buckets[-1][1]
        for le, count in self.buckets:
            if count >= want:
                return 1000 * le if le != float("inf") else None
        return None


def endpoint_stats(metrics: ServingMetrics, name: str) -> list[VersionStats]:
    """Requests, errors and latency by version of endpoint ``name`` (counters collected from
    the same objects ``/metrics`` exposes)."""
    stats: dict[str, VersionStats] = {}
    for family in metrics.requests.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("endpoint") == name:
                v = stats.setdefault(
                    sample.labels["version"], VersionStats(sample.labels["version"])
                )
                v.requests += int(sample.value)
                if not sample.labels.get("status", "").startswith("2"):
                    v.errors += int(sample.value)
    for family in metrics.latency.collect():
        for sample in family.samples:
            if sample.labels.get("endpoint") != name:
                continue
            v = stats.setdefault(sample.labels["version"], VersionStats(sample.labels["version"]))
            if sample.name.endswith("_sum"):
                v.seconds = sample.value
            elif sample.name.endswith("_bucket"):
                v.buckets.append((float(sample.labels["le"]), sample.value))
    for v in stats.values():
        v.buckets.sort()
    return sorted(stats.values(), key=lambda v: int(v.version) if v.version.isdigit() else 0)


@router.get("/projects/{name}/models")
def models_page(request: Request, name: str, caller: UiCallerDep, rt: RuntimeDep) -> Response:
    """A project's registered models: latest version and aliases."""
    with rt.db.read() as s:
        p = auth.require_project(s, caller, name, Role.viewer)
        models = registry.models_out(s, registry.search_models(s, [p.id]))
        pending: dict[str, int] = {}
        for r in registry.list_requests(s, p, "pending"):
            out = registry.request_out(s, r)
            pending[out["model"]] = pending.get(out["model"], 0) + 1
    return render(request, "models.html", {"project": name, "models": models, "pending": pending})


@router.get("/projects/{name}/models/{model}")
def model_page(
    request: Request, name: str, model: str, caller: UiCallerDep, rt: RuntimeDep
) -> Response:
    """One model: versions, aliases, pending alias requests, card and lineage."""
    with rt.db.read() as s:
        p = auth.require_project(s, caller, name, Role.viewer)
        row = registry.get_model(s, p, model)
        out = registry.models_out(s, [row], with_versions=True)[0]
        requests = [
            registry.request_out(s, r)
            for r in registry.list_requests(s, p, "pending")
            if r.model_id == row.id
        ]
        role = auth.role_of(s, caller, p.id)
        protected = registry.protected_aliases(s, p)
        serving_by_version: dict[int, list[tuple[str, int]]] = {}
        for e in serving.endpoints_of(s, [p.id]):
            if e.model_id != row.id:
                continue
            for v in serving.versions(s, e):
                serving_by_version.setdefault(v.version, []).append((e.name, v.weight))
    metric_keys = list(
        dict.fromkeys(
            k for v in out.versions for k in (v.lineage.get("run") or {}).get("metrics", {})
        )
    )
    context = {
        "project": name,
        "model": out,
        "requests": requests,
        "can_decide": role is not None and role >= Role.maintainer,
        "can_alias": role is not None and role >= Role.developer,
        "protected": protected,
        "me": caller.name,
        "card": card_html(out.card) if out.card.strip() else None,
        "metric_keys": metric_keys,
        "serving": serving_by_version,
        "dataset_label": dataset_label,
        "lineage": views.lineage_graph(out.name, out.versions, serving_by_version, dataset_label),
    }
    return render(request, "model.html", context)


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form's fields (the first value of each)."""
    body = await request.body()
    form = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"))
    return {k: v[0] for k, v in form.items() if v}


async def _note(request: Request) -> str:
    return (await _form(request)).get("note", "").strip()[:10_000]


def _model_url(project: str, model: str) -> str:
    return f"/projects/{quote(project, safe='')}/models/{quote(model, safe='')}"


@router.post("/projects/{name}/models/{model}/aliases")
async def set_alias_form(
    request: Request, name: str, model: str, caller: UiCallerDep, rt: RuntimeDep
) -> Response:
    """Point an alias at a version from the model page: the API's own handler (developers, or
    maintainers for a protected alias; one audit record), then back to the page."""
    form = await _form(request)
    alias = form.get("alias", "").strip()
    version = form.get("version", "").strip()
    if not version.isdigit() or int(version) < 1:
        raise Unprocessable(f"version {version!r}: pick one of the model's versions")
    await run_in_threadpool(
        registry_api.set_alias, name, model, alias, AliasSet(version=int(version)), caller, rt
    )
    return RedirectResponse(_model_url(name, model), status_code=303)


@router.post("/projects/{name}/models/{model}/aliases/{alias}/delete")
async def delete_alias_form(
    request: Request, name: str, model: str, alias: str, caller: UiCallerDep, rt: RuntimeDep
) -> Response:
    """Remove an alias from the model page (the API's handler and role check)."""
    await run_in_threadpool(registry_api.delete_alias, name, model, alias, caller, rt)
    return RedirectResponse(_model_url(name, model), status_code=303)


async def _decide(
    request: Request, request_id: str, approve: bool, caller: Any, rt: Any
) -> Response:
    note = await _note(request)
    # The API's own handler: maintainer check, never the requester, one audit record.
    out = await run_in_threadpool(
        registry_api.decide_request, request_id, approve, Decision(note=note), caller, rt
    )
    return RedirectResponse(_model_url(out["project"], out["model"]), status_code=303)


@router.post("/alias-requests/{request_id}/approve")
async def approve(
    request: Request, request_id: str, caller: UiCallerDep, rt: RuntimeDep
) -> Response:
    """Approve a pending alias request (maintainers other than the requester)."""
    return await _decide(request, request_id, True, caller, rt)


@router.post("/alias-requests/{request_id}/reject")
async def reject(
    request: Request, request_id: str, caller: UiCallerDep, rt: RuntimeDep
) -> Response:
    """Reject a pending alias request (maintainers other than the requester)."""
    return await _decide(request, request_id, False, caller, rt)


@router.get("/endpoints")
def endpoints_page(
    request: Request, caller: UiCallerDep, rt: RuntimeDep, sv: ServingDep
) -> Response:
    """The endpoints of every project the user may read, with traffic and replica counts."""
    with rt.db.read() as s:
        endpoints = serving.list_endpoints(s, caller, sv)
    return render(request, "endpoints.html", {"endpoints": endpoints})


@router.get("/endpoints/{name}")
def endpoint_page(
    request: Request, name: str, caller: UiCallerDep, rt: RuntimeDep, sv: ServingDep
) -> Response:
    """One endpoint: versions and traffic split, scaling, live replicas with their states."""
    with rt.db.read() as s:
        endpoint, project = serving.require_endpoint(s, caller, name, Role.viewer)
        out = sv.live(s, endpoint)
        deployed = [(v.version, v.weight, v.deployed_at) for v in serving.versions(s, endpoint)]
        alerts = monitoring.rules_on(s, project, name)
    stats = endpoint_stats(sv.metrics, name)
    context = {
        "endpoint": out,
        "deployed": deployed,
        "alerts": alerts,
        "stats": stats,
        "window_min": TRAFFIC_WINDOW_S // 60,
        **_predictions(rt, sv, caller, name),
        **_drift(rt, sv, caller, name),
    }
    return render(request, "endpoint.html", context)


def _predictions(rt: Runtime, sv: Serving, caller: Actor, name: str) -> dict[str, Any]:
    """The predictions table's context (the API's handler: the caller's role, 404)."""
    return {
        "predictions": serving_api.recent_predictions(name, caller, rt, sv, limit=20),
        "sample_size": rt.settings.serving_sample_size,
        "poll_s": LIVE_POLL_S,
    }


@router.get("/endpoints/{name}/predictions")
def endpoint_predictions(
    request: Request, name: str, caller: UiCallerDep, rt: RuntimeDep, sv: ServingDep
) -> Response:
    """The recent predictions table alone (the endpoint page's htmx polls it)."""
    context = {"endpoint": {"name": name}, **_predictions(rt, sv, caller, name)}
    return render(request, "_endpoint_predictions.html", context)


def _drift(rt: Runtime, sv: Serving, caller: Actor, name: str) -> dict[str, Any]:
    """The drift section's context (the API's handler: the caller's role, 404)."""
    return {
        "drift": serving_api.endpoint_drift(name, caller, rt, sv),
        "drift_poll_s": DRIFT_POLL_S,
    }


@router.get("/endpoints/{name}/drift")
def endpoint_drift(
    request: Request, name: str, caller: UiCallerDep, rt: RuntimeDep, sv: ServingDep
) -> Response:
    """The drift section alone (the endpoint page's htmx polls it)."""
    context = {"endpoint": {"name": name}, **_drift(rt, sv, caller, name)}
    return render(request, "_endpoint_drift.html", context)


@data_router.get("/endpoints/{name}/stats")
def endpoint_traffic(
    name: str,
    caller: UiCallerDep,
    rt: RuntimeDep,
    sv: ServingDep,
    window_s: Annotated[int, Query(ge=10, le=WINDOW_S)] = TRAFFIC_WINDOW_S,
    step_s: Annotated[int, Query(ge=1, le=60)] = 1,
) -> StatsOut:
    """``GET /api/endpoints/{name}/stats`` for the signed-in browser (the live charts)."""
    return serving_api.endpoint_stats(name, caller, rt, sv, window_s, step_s)
