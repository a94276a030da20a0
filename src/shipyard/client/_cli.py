"""What the feature commands (``shipyard runs``, ``models``, ``datasets``...) share: the project
option and its check, and durations written 30m or 2h. The root ``shipyard.cli`` imports every
feature's commands, so this lives beside the SDK's settings rather than there."""

from __future__ import annotations

import re
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


DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``30m``, ``2h``, ``90s``, ``1d`` or plain seconds."""
    m = DURATION.match(text.strip())
    if m is None:
        raise Unprocessable(f"duration {text!r}: use 90s, 30m, 2h or 1d")
    return float(m.group(1)) * SECONDS[m.group(2)]
