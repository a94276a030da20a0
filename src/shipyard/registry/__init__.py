"""The model registry: registered models, numbered versions, aliases, approvals and lineage.

``get_model``, ``get_version``, ``model_by_id``, ``resolve`` and ``version_path`` are lookups
without a role check, for the server's own work after its own check (serving an endpoint's
version).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.surface import exports, names

if TYPE_CHECKING:
    from shipyard.registry.service import get_model as get_model
    from shipyard.registry.service import get_version as get_version
    from shipyard.registry.service import model_by_id as model_by_id
    from shipyard.registry.service import resolve as resolve
    from shipyard.registry.service import version_path as version_path

_SURFACE = {"service": ["get_model", "get_version", "model_by_id", "resolve", "version_path"]}
__all__ = names(_SURFACE)
__getattr__ = exports(__name__, _SURFACE)
