"""``shipyard deploy``, ``shipyard endpoints`` and ``shipyard serve``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shipyard.client import Client, ProjectOpt, require_project
from shipyard.errors import Unprocessable

STATS_WINDOW_S = 60  # what `endpoints show` sums up
endpoints_app = typer.Typer(help="Inference endpoints.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)
TARGET = re.compile(r"^(?P<model>[^@/]+)(?:@(?P<alias>[^@/]+)|/(?P<version>\d+))$")


def deploy(
    target: Annotated[str, typer.Argument(help="MODEL@ALIAS or MODEL/VERSION")],
    endpoint: Annotated[str, typer.Option("--endpoint", "-e", help="Endpoint name.")],
    project: ProjectOpt = None,
    replicas: Annotated[int | None, typer.Option(help="Fixed replica count.")] = None,
    max_batch_size: Annotated[int | None, typer.Option()] = None,
    max_delay_ms: Annotated[float | None, typer.Option()] = None,
    canary: Annotated[int | None, typer.Option(help="Percent of traffic for it.")] = None,
    target_platform: Annotated[str, typer.Option("--target", help="local or kubernetes")] = "local",
    output: Annotated[Path, typer.Option(help="Folder for Kubernetes manifests.")] = Path("k8s"),
    image: Annotated[str, typer.Option(help="Container image (kubernetes).")] = "shipyard:latest",
) -> None:
    """Deploy a model version as an endpoint (or roll the endpoint to it)."""
    m = TARGET.match(target)
    if m is None:
        raise Unprocessable(f"target {target!r}: use MODEL@ALIAS or MODEL/VERSION")
    if target_platform == "kubernetes":
        from shipyard.serving.kubernetes import manifests, write

        uri = f"models:/{project + '/' if project else ''}{target}"
        n = replicas or 1
        paths = write(
            manifests(
                endpoint,
                uri,
                image=image,
                min_replicas=n,
                max_replicas=max(n, 4),
                max_batch_size=max_batch_size or 32,
                max_delay_ms=max_delay_ms or 5.0,
            ),
            output,
        )
        for path in paths:
            out.print(f"wrote {path}")
        return
    if target_platform != "local":
        raise Unprocessable("--target is local or kubernetes")
    body = {
        "name": endpoint,
        "project": require_project(project),
        "model": m.group("model"),
        "replicas": replicas,
        "max_batch_size": max_batch_size,
        "max_delay_ms": max_delay_ms,
        "canary": canary,
    }
    if m.group("alias"):
        body["alias"] = m.group("alias")
    else:
        body["version"] = int(m.group("version"))
    with Client() as c:
        e = c.http.json("POST", "/api/endpoints", {k: v for k, v in body.items() if v is not None})
    split = ", ".join(f"v{v}: {w}%" for v, w in e["traffic"].items())
    out.print(f"endpoint [bold]{e['name']}[/] → {e['model']} ({split}); replicas start now")
    out.print(
        f"  POST /v1/models/{endpoint}:predict · /v2/models/{endpoint}/infer · "
        f"/endpoints/{endpoint}/predict"
    )


def serve(
    package: Annotated[Path, typer.Argument(help="A model package folder.")],
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8501,
    name: Annotated[str, typer.Option(help="Model name in protocol URLs.")] = "model",
    max_batch_size: Annotated[int, typer.Option()] = 32,
    max_delay_ms: Annotated[float, typer.Option()] = 5.0,
    threads: Annotated[int, typer.Option(help="Inference threads (0: all cores).")] = 0,
    runtime: Annotated[str | None, typer.Option(help="onnxruntime or torch")] = None,
) -> None:
    """Serve one package standalone with every protocol (the container entrypoint)."""
    from shipyard.packages import load_package
    from shipyard.serving.replica import serve as run

    load_package(package)  # fail here, with the reason, if the package is bad
    err.print(f"serving {package} as {name!r} on http://{host}:{port}")
    run(str(package), host, port, name, None, max_batch_size, max_delay_ms, threads, runtime)


@endpoints_app.command("ls")
def list_endpoints(project: Annotated[str | None, typer.Option("--project", "-p")] = None) -> None:
    """Endpoints with their traffic split and replicas."""
    with Client() as c:
        rows = c.http.json("GET", "/api/endpoints", params={"project": project} if project else {})
    table = Table("name", "project", "model", "traffic", "replicas", "scale")
    for e in rows:
        ready = sum(1 for r in e["replicas"] if r["state"] == "ready")
        table.add_row(
            e["name"],
            e["project"],
            e["model"],
            ", ".join(f"v{v}: {w}%" for v, w in e["traffic"].items()),
            f"{ready}/{len(e['replicas'])} ready",
            f"{e['min_replicas']}..{e['max_replicas']}",
        )
    out.print(table)


@endpoints_app.command("show")
def show_endpoint(name: str) -> None:
    """One endpoint's replicas, and its requests, errors and latency over the last minute."""
    with Client() as c:
        e = c.http.json("GET", f"/api/endpoints/{name}")
        w = c.endpoint_stats(name, window_s=STATS_WINDOW_S)["window"]
    out.print(
        f"[bold]{e['name']}[/] {e['model']}  traffic {e['traffic']}  "
        f"replicas {e['min_replicas']}..{e['max_replicas']}  batch {e['max_batch_size']} "
        f"/ {e['max_delay_ms']} ms"
    )
    table = Table("version", "port", "pid", "state", "in flight", "restarts")
    for r in e["replicas"]:
        table.add_row(
            str(r["version"]),
            str(r["port"]),
            str(r["pid"]),
            r["state"],
            str(r["in_flight"]),
            str(r["restarts"]),
        )
    out.print(table)
    if not w["requests"]:
        out.print(f"no requests in the last {STATS_WINDOW_S} s")
        return
    ms = "  ".join(f"{q} {w[q + '_ms']:.1f} ms" for q in ("p50", "p95", "p99"))
    out.print(
        f"last {STATS_WINDOW_S} s: {w['requests']} requests, {w['rate']:.1f}/s, "
        f"errors {100 * w['error_ratio']:.1f}%  {ms}"
    )


@endpoints_app.command("drift")
def drift(
    name: str,
    top: Annotated[int, typer.Option(help="Features shown per version, most drifted first.")] = 10,
) -> None:
    """Input drift: the latest requests of each version against its reference data."""
    with Client() as c:
        report = c.endpoint_drift(name)
    for v in report["versions"]:
        head = (
            f"[bold]v{v['version']}[/] {v['status']}: {v['rows']} rows in {v['requests']} requests"
        )
        if v["status"] == "no_reference":
            out.print(f"{head}; its package has no reference data (log_model(reference_data=...))")
            continue
        if v["status"] == "collecting":
            out.print(f"{head}, {report['min_rows']} needed")
            continue
        drifted = sum(1 for f in v["features"] if f["drifted"])
        out.print(f"{head}; {drifted} of {len(v['features'])} features drifted")
        table = Table("feature", "PSI", "KS", "reference mean", "current mean", "")
        for f in v["features"][:top]:
            table.add_row(
                f["name"],
                f"{f['psi']:.3f}",
                f"{f['ks']:.3f}",
                f"{f['reference_mean']:.4g}",
                f"{f['current_mean']:.4g}",
                "[red]drift[/]" if f["drifted"] else "",
            )
        out.print(table)


@endpoints_app.command("traffic")
def traffic(
    name: str,
    set_: Annotated[str | None, typer.Option("--set", help="e.g. 3=90,4=10")] = None,
    promote: Annotated[int | None, typer.Option(help="Give this version all traffic.")] = None,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Back to the earlier version.")
    ] = False,
) -> None:
    """Split traffic between versions (canary), promote one, or roll back."""
    with Client() as c:
        if set_:
            try:
                weights = {int(k): int(v) for k, v in (p.split("=") for p in set_.split(","))}
            except ValueError:
                raise Unprocessable(
                    f"--set {set_!r}: use VERSION=PERCENT,... e.g. 3=90,4=10"
                ) from None
            e = c.http.json("PUT", f"/api/endpoints/{name}/traffic", {"weights": weights})
        elif promote is not None:
            e = c.http.json("POST", f"/api/endpoints/{name}/promote", {"version": promote})
        elif rollback:
            e = c.http.json("POST", f"/api/endpoints/{name}/rollback")
        else:
            e = c.http.json("GET", f"/api/endpoints/{name}")
    out.print(f"{name}: " + ", ".join(f"v{v}: {w}%" for v, w in e["traffic"].items()))


@endpoints_app.command("scale")
def scale(
    name: str,
    min_replicas: Annotated[int, typer.Option("--min")] = 1,
    max_replicas: Annotated[int, typer.Option("--max")] = 1,
    idle_timeout_s: Annotated[float | None, typer.Option("--idle-timeout")] = None,
) -> None:
    """Autoscale between --min and --max replicas (--min 0 scales to zero when idle)."""
    with Client() as c:
        e = c.http.json(
            "PUT",
            f"/api/endpoints/{name}/scale",
            {
                "min_replicas": min_replicas,
                "max_replicas": max_replicas,
                "idle_timeout_s": idle_timeout_s,
            },
        )
    out.print(f"{name}: {e['min_replicas']}..{e['max_replicas']} replicas")


@endpoints_app.command("delete")
def delete(name: str) -> None:
    """Delete an endpoint (its replicas stop)."""
    with Client() as c:
        c.http.json("DELETE", f"/api/endpoints/{name}")
    out.print(f"deleted endpoint {name}")
