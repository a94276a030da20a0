"""Logging model packages from a run and loading them back by URI (SDK side of the registry)."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.client._config import ClientSettings
from shipyard.client._http import Http
from shipyard.errors import NotFound, Unprocessable
from shipyard.packages import MANIFEST, LoadedModel, load_package, save_model

if TYPE_CHECKING:
    from shipyard.client._run import Run


def log_model(
    run: Run,
    model: Any,
    name: str | None = None,
    *,
    input_example: Any | None = None,
    artifacts: dict[str, str | Path] | None = None,
    metadata: dict[str, Any] | None = None,
    artifact_path: str = "model",
    description: str = "",
    tags: dict[str, str] | None = None,
    reference_data: Any | None = None,
) -> dict[str, Any] | None:
    """Package ``model``, upload it under ``artifact_path``, and register it as ``name``.
    ``reference_data`` (training inputs) is sampled into the package for input drift."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "pkg"
        save_model(
            model,
            folder,
            input_example=input_example,
            artifacts=artifacts,
            metadata=metadata,
            run_id=run.id,
            reference_data=reference_data,
        )
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                run.upload_file(file, f"{artifact_path}/{file.relative_to(folder).as_posix()}")
    if name is None:
        return None
    version: dict[str, Any] = run.http.json(
        "POST",
        f"/api/projects/{run.project}/models/{name}/versions",
        {
            "source": f"runs:/{run.id}/{artifact_path}",
            "description": description,
            "tags": tags or {},
        },
    )
    return version


def _download(http: Http, url: str, target: Path, sha256: str | None = None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with http.client.stream("GET", url) as r:
        if r.status_code >= 400:
            r.read()
            from shipyard.client._http import error_of

            raise error_of(r)
        expected = sha256 or r.headers.get("x-content-sha256")
        with open(target, "wb") as f:
            for chunk in r.iter_bytes(1 << 20):
                digest.update(chunk)
                f.write(chunk)
    if expected and digest.hexdigest() != expected:
        target.unlink()
        raise Unprocessable(f"{url}: downloaded bytes do not match their sha256")


def load_model(
    uri: str | Path,
    *,
    runtime: str | None = None,
    threads: int = 0,
    settings: ClientSettings | None = None,
) -> LoadedModel:
    """Load a package from ``models:/NAME@ALIAS``, ``models:/NAME/3``, ``runs:/RUN_ID/PATH`` or
    a local folder; downloads are cached under ``SHIPYARD_HOME/cache`` and verified by sha256."""
    text = str(uri)
    if not text.startswith(("models:/", "runs:/")):
        return load_package(Path(text), runtime=runtime, threads=threads)
    settings = settings or ClientSettings()
    http = Http(settings.url, settings.token)
    try:
        folder = _fetch(http, settings, text)
    finally:
        http.close()
    return load_package(folder, runtime=runtime, threads=threads)


def _fetch(http: Http, settings: ClientSettings, uri: str) -> Path:
    cache = settings.home / "cache"
    folder: Path
    if uri.startswith("runs:/"):
        run_id, _, prefix = uri[len("runs:/") :].partition("/")
        prefix = prefix.strip("/") or "model"
        listing = http.json("GET", f"/api/runs/{run_id}/artifacts", params={"prefix": prefix})
        files = {
            a["path"][len(prefix) + 1 :]: a for a in listing if a["path"].startswith(prefix + "/")
        }
        if MANIFEST not in files:
            raise NotFound(f"{uri} holds no model package ({MANIFEST} is missing)")
        folder = cache / "runs" / run_id / prefix
        tmp = Path(tempfile.mkdtemp(dir=cache.parent if cache.parent.exists() else None))
        for rel, a in files.items():
            _download(http, f"/api/runs/{run_id}/artifacts/{a['path']}", tmp / rel, a["sha256"])
        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(tmp), folder)
        return folder
    version = http.json("GET", "/api/models/resolve", params={"uri": uri})
    base = (
        f"/api/projects/{version['project']}/models/{version['model']}/versions/"
        f"{version['version']}/files"
    )
    folder = (
        cache
        / "models"
        / version["project"]
        / version["model"]
        / f"{version['version']}-{version['manifest_sha256'][:16]}"
    )
    if not (folder / MANIFEST).exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent))
        for rel, entry in version["files"].items():
            _download(http, f"{base}/{rel}", tmp / rel, entry["sha256"])
        shutil.rmtree(folder, ignore_errors=True)
        shutil.move(str(tmp), folder)
    return folder
