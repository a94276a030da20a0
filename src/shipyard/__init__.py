"""Shipyard: self-hosted deep learning as a service.

The SDK surface, W&B-style::

    with shipyard.init(project="digits", config={"lr": 1e-3}) as run:
        run.log({"train/loss": loss}, step=step)

and MLflow-style queries through ``shipyard.Client()``.
"""

from __future__ import annotations

from typing import Any, Literal

from shipyard.client import Client, ClientSettings, Image, Run, RunView, load_model
from shipyard.packages import PythonModel, save_model

__version__ = "0.1.0"
__all__ = [
    "Client",
    "ClientSettings",
    "Image",
    "PythonModel",
    "Run",
    "RunView",
    "finish",
    "init",
    "load_model",
    "log",
    "run",
    "save_model",
]

run: Run | None = None


def init(
    project: str | None = None,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    *,
    tags: list[str] | None = None,
    notes: str = "",
    id: str | None = None,
    mode: Literal["online", "offline"] = "online",
    system_metrics: bool = True,
    settings: ClientSettings | None = None,
) -> Run:
    """Start (or, with ``id``, resume) a run and make it the current one for ``shipyard.log``."""
    global run
    run = Run(
        project=project,
        name=name,
        config=config,
        tags=tags,
        notes=notes,
        id=id,
        mode=mode,
        system_metrics=system_metrics,
        settings=settings,
    )
    return run


def log(data: dict[str, Any], step: int | None = None, commit: bool = True) -> None:
    """Log to the current run (see ``Run.log``)."""
    if run is None:
        raise RuntimeError("call shipyard.init() before shipyard.log()")
    run.log(data, step=step, commit=commit)


def finish(status: Literal["finished", "failed"] = "finished") -> None:
    """Finish the current run."""
    if run is not None:
        run.finish(status)
