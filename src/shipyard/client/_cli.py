"""What the feature commands (``shipyard runs``, ``models``, ``datasets``...) share: the project
option and its check. The root ``shipyard.cli`` imports every feature's commands, so this lives
beside the SDK's settings rather than there."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.errors import Unprocessable

ProjectOpt = Annotated[
    str | None,
    typer.Option(
        "--project", "-p", envvar="SHIPYARD_PROJECT", help="Project (or SHIPYARD_PROJECT)."
    ),
]


def require_project(project: str | None) -> str:
    """The project a command acts in; a one-line error when none was named."""
    if not project:
        raise Unprocessable("name the project with --project or SHIPYARD_PROJECT")
    return project
