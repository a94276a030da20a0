"""What a run records about where it ran: code version, host, Python, packages, command line."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from typing import Any


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@functools.cache
def _packages() -> tuple[str, ...]:
    # Listing every distribution takes tens of milliseconds; it does not change in a process.
    return tuple(
        sorted(
            f"{d.metadata['Name']}=={d.version}"
            for d in importlib.metadata.distributions()
            if d.metadata["Name"]
        )
    )


def capture() -> dict[str, Any]:
    """A snapshot of the environment (git fields are absent outside a repository)."""
    env: dict[str, Any] = {
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "command": [sys.executable, *sys.argv],
        "cwd": os.getcwd(),
        "cpus": os.cpu_count(),
        "packages": list(_packages()),
    }
    commit = _git("rev-parse", "HEAD")
    if commit:
        env["git_commit"] = commit
        env["git_dirty"] = bool(_git("status", "--porcelain", "--untracked-files=no"))
        remote = _git("config", "--get", "remote.origin.url")
        if remote:
            env["git_remote"] = remote
    return env
