"""Reading back: ``shipyard.Client()`` lists projects, searches runs, reads histories and files."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.client._config import ClientSettings
from shipyard.client._http import Http

SERIES_MEDIA_TYPE = "application/vnd.shipyard.series"
NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def as_float(value: Any) -> Any:
    """Undo the wire form of non-finite floats."""
    return NONFINITE.get(value, value) if isinstance(value, str) else value


class RunView:
    """A run as the server knows it; attributes mirror the API's fields."""

    def __init__(self, http: Http, data: dict[str, Any]) -> None:
        self._http = http
        self.data = data
        self.id: str = data["id"]
        self.name: str = data["name"]
        self.project: str = data["project"]
        self.status: str = data["status"]
        self.config: dict[str, Any] = data["config"]
        self.tags: list[str] = data["tags"]
        self.environment: dict[str, Any] = data["environment"]
        self.summary: dict[str, dict[str, Any]] = {
            k: {f: as_float(v) for f, v in s.items()} for k, s in data["summary"].items()
        }

    def history(self, key: str, *, raw: bool = False, max_points: int = 2000) -> dict[str, Any]:
        """``{"step": [...], "timestamp": [...], "value": [...]}``; downsampled unless ``raw``."""
        # Packed arrays, not JSON: a 100k-point series is 2.4 MB with nothing to parse.
        r = self._http.request(
            "GET",
            f"/api/runs/{self.id}/history",
            params={"key": key, "raw": raw, "max_points": max_points},
            headers={"accept": SERIES_MEDIA_TYPE},
        )
        n = len(r.content) // 24
        buf = memoryview(r.content)
        return {
            "step": np.frombuffer(buf[: 8 * n], "<i8").tolist(),
            "timestamp": np.frombuffer(buf[8 * n : 16 * n], "<f8").tolist(),
            "value": np.frombuffer(buf[16 * n :], "<f8").tolist(),
            "total": int(r.headers["x-series-total"]),
            "downsampled": r.headers["x-series-downsampled"] == "True",
        }

    def artifacts(self, prefix: str = "") -> list[dict[str, Any]]:
        """Artifacts under ``prefix``: path, size, sha256."""
        result: list[dict[str, Any]] = self._http.json(
            "GET", f"/api/runs/{self.id}/artifacts", params={"prefix": prefix}
        )
        return result

    def checkpoints(self, best: str | None = None, goal: str = "max") -> list[dict[str, Any]]:
        """Checkpoints, or only the best one by metric ``best``."""
        params = {"best": best, "goal": goal} if best else {}
        result: list[dict[str, Any]] = self._http.json(
            "GET", f"/api/runs/{self.id}/checkpoints", params=params
        )
        return result

    def images(self, key: str | None = None) -> list[dict[str, Any]]:
        """Images logged by the run."""
        result: list[dict[str, Any]] = self._http.json(
            "GET", f"/api/runs/{self.id}/images", params={"key": key} if key else {}
        )
        return result

    def stream(self, path: str) -> Iterator[tuple[int, bytes]]:
        """Yield ``(total_size, chunk)`` pairs of an artifact's bytes."""
        with self._http.client.stream("GET", f"/api/runs/{self.id}/artifacts/{path}") as r:
            if r.status_code >= 400:
                r.read()
                from shipyard.client._http import error_of

                raise error_of(r)
            total = int(r.headers.get("content-length", 0))
            for chunk in r.iter_bytes(1 << 20):
                yield total, chunk

    def upload(
        self, src: str | Path, path: str, on_chunk: Callable[[int], object] | None = None
    ) -> dict[str, Any]:
        """Stream a local file into the run's artifact ``path``; the server checks the sha256."""
        src = Path(src)

        def chunks() -> Iterator[bytes]:
            with open(src, "rb") as f:
                while chunk := f.read(1 << 20):
                    if on_chunk is not None:
                        on_chunk(len(chunk))
                    yield chunk

        result: dict[str, Any] = self._http.json(
            "PUT",
            f"/api/runs/{self.id}/artifacts/{path}",
            content=chunks(),
            headers={"x-content-sha256": sha256_file(src)},
        )
        return result

    def download(self, path: str, dest: str | Path) -> Path:
        """Save an artifact to ``dest`` (a file, or a folder to put it in)."""
        target = Path(dest)
        if target.is_dir():
            target = target / Path(path).name
        with open(target, "wb") as f:
            for _, chunk in self.stream(path):
                f.write(chunk)
        return target

    def __repr__(self) -> str:
        return f"<RunView {self.id} {self.name!r} {self.status}>"


class Client:
    """Query the server: ``Client().runs("digits", filter="summary.acc > 0.9")``."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        settings: ClientSettings | None = None,
    ) -> None:
        settings = settings or ClientSettings()
        self.http = Http(url or settings.url, token if token is not None else settings.token)

    def projects(self) -> list[dict[str, Any]]:
        """Every project with its run count."""
        result: list[dict[str, Any]] = self.http.json("GET", "/api/projects")
        return result

    def runs(
        self,
        project: str | None = None,
        filter: str | None = None,
        order_by: str | list[str] | None = None,
        limit: int = 1000,
    ) -> list[RunView]:
        """Runs matching ``filter`` (see the filter language), sorted by ``order_by``."""
        order = [order_by] if isinstance(order_by, str) else list(order_by or [])
        out: list[RunView] = []
        while len(out) < limit:
            params: dict[str, Any] = {
                "order_by": order,
                "offset": len(out),
                "limit": min(1000, limit - len(out)),
            }
            if project:
                params["project"] = project
            if filter:
                params["filter"] = filter
            page = self.http.json("GET", "/api/runs", params=params)
            out.extend(RunView(self.http, r) for r in page["runs"])
            if len(out) >= page["total"] or not page["runs"]:
                break
        return out

    def run(self, run_id: str) -> RunView:
        """One run by id."""
        return RunView(self.http, self.http.json("GET", f"/api/runs/{run_id}"))

    def diff(self, a: str, b: str) -> dict[str, Any]:
        """Config, summary and environment of two runs side by side."""
        result: dict[str, Any] = self.http.json("GET", f"/api/runs/{a}/diff/{b}")
        return result

    # -- registry (MLflow's words) -------------------------------------------------------------

    def models(self, project: str | None = None, query: str | None = None) -> list[dict[str, Any]]:
        """Registered models with their latest version and aliases."""
        params = {k: v for k, v in {"project": project, "q": query}.items() if v}
        result: list[dict[str, Any]] = self.http.json("GET", "/api/models", params=params)
        return result

    def model(self, project: str, name: str) -> dict[str, Any]:
        """A registered model with its versions, aliases and card."""
        result: dict[str, Any] = self.http.json("GET", f"/api/projects/{project}/models/{name}")
        return result

    def model_version(self, uri: str) -> dict[str, Any]:
        """The version a ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` URI names."""
        result: dict[str, Any] = self.http.json("GET", "/api/models/resolve", params={"uri": uri})
        return result

    def set_alias(self, project: str, name: str, alias: str, version: int) -> dict[str, Any]:
        """Point ``alias`` at ``version`` (a protected alias needs a maintainer)."""
        result: dict[str, Any] = self.http.json(
            "PUT", f"/api/projects/{project}/models/{name}/aliases/{alias}", {"version": version}
        )
        return result

    def delete_alias(self, project: str, name: str, alias: str) -> None:
        """Remove an alias."""
        self.http.json("DELETE", f"/api/projects/{project}/models/{name}/aliases/{alias}")

    def request_alias(
        self, project: str, name: str, alias: str, version: int, reason: str = ""
    ) -> dict[str, Any]:
        """Ask a maintainer to move a protected alias."""
        result: dict[str, Any] = self.http.json(
            "POST",
            f"/api/projects/{project}/models/{name}/alias-requests",
            {"alias": alias, "version": version, "reason": reason},
        )
        return result

    def alias_requests(self, project: str, status: str | None = None) -> list[dict[str, Any]]:
        """A project's alias requests, newest first."""
        result: list[dict[str, Any]] = self.http.json(
            "GET",
            f"/api/projects/{project}/alias-requests",
            params={"status": status} if status else {},
        )
        return result

    def decide(self, request_id: str, approve: bool, note: str = "") -> dict[str, Any]:
        """Approve (the alias moves) or reject an alias request."""
        verb = "approve" if approve else "reject"
        result: dict[str, Any] = self.http.json(
            "POST", f"/api/alias-requests/{request_id}/{verb}", {"note": note}
        )
        return result

    def update_version(
        self, project: str, name: str, version: int, **fields: Any
    ) -> dict[str, Any]:
        """Describe, tag, archive (``status="archived"``) or restore a version."""
        result: dict[str, Any] = self.http.json(
            "PATCH", f"/api/projects/{project}/models/{name}/versions/{version}", fields
        )
        return result

    def delete_model(self, project: str, name: str, version: int | None = None) -> None:
        """Delete one version, or the whole model."""
        url = f"/api/projects/{project}/models/{name}"
        self.http.json("DELETE", url + (f"/versions/{version}" if version else ""))

    def protect_aliases(self, project: str, aliases: list[str]) -> list[str]:
        """Choose the project's protected aliases (owners)."""
        result = self.http.json(
            "PUT", f"/api/projects/{project}/protected-aliases", {"aliases": aliases}
        )
        return list(result["aliases"])

    # -- datasets and jobs ----------------------------------------------------------------------

    def push_dataset(
        self, project: str, name: str, folder: str | Path, description: str = ""
    ) -> dict[str, Any]:
        """Push a folder as the next version of a dataset (only missing chunks are sent)."""
        from shipyard.client._datasets import push_dataset

        version, _ = push_dataset(self.http, project, name, Path(folder), description)
        return version

    def pull_dataset(self, project: str, ref: str, dest: str | Path) -> dict[str, Any]:
        """Pull ``NAME@VERSION`` into ``dest``, every hash checked; returns the version."""
        from shipyard.client._datasets import pull_dataset

        version, _ = pull_dataset(self.http, project, ref, Path(dest))
        return version

    def submit_job(
        self, project: str, command: list[str], directory: str | Path | None = ".", **options: Any
    ) -> dict[str, Any]:
        """Queue ``command`` with a snapshot of ``directory``; options: cpus, gpus, memory_gb,
        datasets, timeout_s, retries, priority, env, name."""
        from shipyard.client._jobs import submit_job

        root = Path(directory) if directory is not None else None
        return submit_job(self.http, project, command, root, **options)

    def job(self, job_id: str) -> dict[str, Any]:
        """One job."""
        result: dict[str, Any] = self.http.json("GET", f"/api/jobs/{job_id}")
        return result

    def wait_job(self, job_id: str, timeout_s: float = 3600.0) -> dict[str, Any]:
        """Wait until a job ends; returns it."""
        from shipyard.client._jobs import wait_job

        return wait_job(self.http, job_id, timeout_s)

    def job_logs(self, job_id: str) -> str:
        """A job's output so far."""
        return self.http.request("GET", f"/api/jobs/{job_id}/logs").text

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Cancel a job (its submitter or a maintainer)."""
        result: dict[str, Any] = self.http.json("POST", f"/api/jobs/{job_id}/cancel")
        return result

    # -- serving --------------------------------------------------------------------------------

    def deploy(
        self,
        project: str,
        model: str,
        endpoint: str,
        *,
        version: int | None = None,
        alias: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Deploy ``model`` (``version`` or ``alias``) as ``endpoint``, or roll the endpoint to
        it; options: replicas, min_replicas, max_replicas, target_in_flight, idle_timeout_s,
        max_batch_size, max_delay_ms, canary (percent). Returns the endpoint."""
        body = {"name": endpoint, "project": project, "model": model, "version": version}
        body.update(alias=alias, **options)
        result: dict[str, Any] = self.http.json(
            "POST", "/api/endpoints", {k: v for k, v in body.items() if v is not None}
        )
        return result

    def endpoints(self, project: str | None = None) -> list[dict[str, Any]]:
        """Endpoints (of one project, or every project you can read) with their replicas."""
        params = {"project": project} if project else None
        result: list[dict[str, Any]] = self.http.json("GET", "/api/endpoints", params=params)
        return result

    def endpoint(self, name: str) -> dict[str, Any]:
        """One endpoint: traffic split, scaling bounds, live replicas."""
        result: dict[str, Any] = self.http.json("GET", f"/api/endpoints/{name}")
        return result

    def set_traffic(self, name: str, weights: dict[int, int]) -> dict[str, Any]:
        """Split an endpoint's traffic between deployed versions (percentages adding to 100)."""
        body = {"weights": weights}
        result: dict[str, Any] = self.http.json("PUT", f"/api/endpoints/{name}/traffic", body)
        return result

    def delete_endpoint(self, name: str) -> None:
        """Delete an endpoint; its replicas stop."""
        self.http.json("DELETE", f"/api/endpoints/{name}")

    def predict(self, endpoint: str, instances: Any, version: int | None = None) -> Any:
        """Rows in, predictions out, through the TensorFlow Serving row format (numpy arrays
        and lists alike); waits for a replica when the endpoint is scaled to zero."""
        rows = instances.tolist() if hasattr(instances, "tolist") else instances
        path = f"/v1/models/{endpoint}" + (f"/versions/{version}" if version else "") + ":predict"
        return self.http.json("POST", path, {"instances": rows})["predictions"]

    def endpoint_stats(self, name: str, window_s: int = 300, step_s: int = 1) -> dict[str, Any]:
        """The last ``window_s`` seconds as the server routed them, in steps of ``step_s``:
        ``time``, ``rate`` (requests/s), ``error_ratio``, ``p50_ms``, ``p95_ms``, ``p99_ms``."""
        params = {"window_s": window_s, "step_s": step_s}
        result: dict[str, Any] = self.http.json(
            "GET", f"/api/endpoints/{name}/stats", params=params
        )
        return result

    def endpoint_drift(self, name: str) -> dict[str, Any]:
        """Input drift per deployed version: ``status`` (no_reference, collecting, ok, drift)
        and ``features`` (name, psi, ks, reference_mean, current_mean, drifted), most drifted
        first, from the endpoint's latest requests against its package's reference data."""
        result: dict[str, Any] = self.http.json("GET", f"/api/endpoints/{name}/drift")
        return result

    def recent_predictions(self, name: str, limit: int = 20) -> list[dict[str, Any]]:
        """The endpoint's latest requests and replies, newest first (bodies cut to 2 KiB)."""
        result: list[dict[str, Any]] = self.http.json(
            "GET", f"/api/endpoints/{name}/predictions", params={"limit": limit}
        )
        return result

    # -- governance -----------------------------------------------------------------------------

    def create_alert(
        self,
        project: str,
        name: str,
        endpoint: str,
        metric: str,
        op: str,
        threshold: float,
        **options: Any,
    ) -> dict[str, Any]:
        """Alert when ``metric op threshold`` holds on an endpoint (options: ``window_s``,
        ``for_s``, ``channels``, ``description``, ``enabled``). Metrics: rate, error_ratio,
        p50_ms, p95_ms, p99_ms, drifted_features, max_psi."""
        body = {"name": name, "endpoint": endpoint, "metric": metric, "op": op}
        result: dict[str, Any] = self.http.json(
            "POST",
            f"/api/projects/{project}/alerts/rules",
            {**body, "threshold": threshold, **options},
        )
        return result

    def alerts(self, project: str) -> list[dict[str, Any]]:
        """The project's alert rules with their state (ok, pending, firing) and last value."""
        result: list[dict[str, Any]] = self.http.json(
            "GET", f"/api/projects/{project}/alerts/rules"
        )
        return result

    def update_alert(self, project: str, name: str, **changes: Any) -> dict[str, Any]:
        """Change a rule (threshold, op, window_s, for_s, channels, description, enabled)."""
        result: dict[str, Any] = self.http.json(
            "PATCH", f"/api/projects/{project}/alerts/rules/{name}", changes
        )
        return result

    def delete_alert(self, project: str, name: str) -> None:
        self.http.json("DELETE", f"/api/projects/{project}/alerts/rules/{name}")

    def alert_events(
        self, project: str, rule: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Firing and resolved events, newest first, with each channel's delivery."""
        params: dict[str, Any] = {"limit": limit} | ({"rule": rule} if rule else {})
        result: list[dict[str, Any]] = self.http.json(
            "GET", f"/api/projects/{project}/alerts/events", params=params
        )
        return result

    def add_alert_channel(
        self, project: str, name: str, url: str, kind: str = "webhook"
    ) -> dict[str, Any]:
        """A Slack incoming webhook (``kind="slack"``) or a JSON webhook for notifications."""
        body = {"name": name, "url": url, "kind": kind}
        result: dict[str, Any] = self.http.json(
            "POST", f"/api/projects/{project}/alerts/channels", body
        )
        return result

    def alert_channels(self, project: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.http.json(
            "GET", f"/api/projects/{project}/alerts/channels"
        )
        return result

    def test_alert_channel(self, project: str, name: str) -> dict[str, Any]:
        """Send a test notification; how the channel answered (ok, status, error, attempts)."""
        result: dict[str, Any] = self.http.json(
            "POST", f"/api/projects/{project}/alerts/channels/{name}/test"
        )
        return result

    def delete_alert_channel(self, project: str, name: str) -> None:
        self.http.json("DELETE", f"/api/projects/{project}/alerts/channels/{name}")

    def members(self, project: str) -> list[dict[str, Any]]:
        """Members of a project with their roles."""
        result: list[dict[str, Any]] = self.http.json("GET", f"/api/projects/{project}/members")
        return result

    def set_member(self, project: str, user: str, role: str) -> None:
        """Give a user a role in a project (owners)."""
        self.http.json("PUT", f"/api/projects/{project}/members/{user}", {"role": role})

    def remove_member(self, project: str, user: str) -> None:
        """Take a user out of a project (owners)."""
        self.http.json("DELETE", f"/api/projects/{project}/members/{user}")

    def whoami(self) -> dict[str, Any]:
        """The user this client acts as."""
        result: dict[str, Any] = self.http.json("GET", "/api/whoami")
        return result

    def users(self) -> list[dict[str, Any]]:
        """Every user (admins)."""
        result: list[dict[str, Any]] = self.http.json("GET", "/api/users")
        return result

    def create_user(self, name: str, admin: bool = False) -> dict[str, Any]:
        """Add a user (admins)."""
        result: dict[str, Any] = self.http.json(
            "POST", "/api/users", {"name": name, "is_admin": admin}
        )
        return result

    def tokens(self, user: str | None = None) -> list[dict[str, Any]]:
        """Your tokens, or (admins) another user's; never their secrets."""
        params = {"user": user} if user else {}
        result: list[dict[str, Any]] = self.http.json("GET", "/api/tokens", params=params)
        return result

    def create_token(self, name: str = "", user: str | None = None) -> dict[str, Any]:
        """Mint a token for yourself (or, as an admin, for ``user``); ``["token"]`` is the
        secret, shown this once."""
        result: dict[str, Any] = self.http.json("POST", "/api/tokens", {"name": name, "user": user})
        return result

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        """Revoke one of your tokens (admins: anyone's)."""
        result: dict[str, Any] = self.http.json("DELETE", f"/api/tokens/{token_id}")
        return result

    def login_link(self) -> dict[str, Any]:
        """A one-time link signing a browser in to the UI as you: ``{"url", "expires_at"}``."""
        result: dict[str, Any] = self.http.json("POST", "/api/login-links")
        return result

    def audit(self, project: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Audit records, newest first (``since="1d"``, ``actor=``, ``action=``, ``limit=``)."""
        params = {k: v for k, v in {"project": project, **filters}.items() if v}
        result: list[dict[str, Any]] = self.http.json("GET", "/api/audit", params=params)
        return result

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
