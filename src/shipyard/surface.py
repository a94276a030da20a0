"""A feature's declared surface: what other features may import, loaded when first used.

Each feature's ``__init__.py`` names what it offers the others (``__all__``), by the module that
defines each name, and imports nothing until a name is used, so ``shipyard --help`` and a CLI
command never load the server's modules (SQLAlchemy, FastAPI, the ML runtimes) they do not need::

    if TYPE_CHECKING:                                  # for type checkers: the real names
        from shipyard.auth.actor import Actor as Actor
    _SURFACE = {"actor": ["Actor"], "projects": ["require_project"]}
    __all__ = names(_SURFACE)
    __getattr__ = exports(__name__, _SURFACE)

Imports across features go through the package (``from shipyard.auth import require_project``),
never its modules; the import contract (``[tool.importlinter]`` in pyproject.toml) enforces it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def names(surface: dict[str, list[str]]) -> list[str]:
    """Every exported name, for ``__all__``."""
    return sorted(name for exported in surface.values() for name in exported)


def exports(package: str, surface: dict[str, list[str]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that resolves an exported name from its module on first use."""
    where = {name: module for module, exported in surface.items() for name in exported}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)  # the next access is a plain attribute
        return value

    return __getattr__
