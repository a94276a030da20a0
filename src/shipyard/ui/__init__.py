"""The web UI: server-rendered pages (Jinja2 + htmx, uPlot charts) over the feature services.

``app.py`` includes :data:`router` and serves :data:`STATIC_DIR` at ``/static``.
"""

from __future__ import annotations

from fastapi import APIRouter

from shipyard.ui import auth, monitoring, operations, pages, platform
from shipyard.ui.render import STATIC_DIR

router = APIRouter(include_in_schema=False)
router.include_router(auth.router)
router.include_router(pages.router)
router.include_router(pages.data_router)
router.include_router(platform.router)
router.include_router(platform.data_router)
router.include_router(operations.router)
router.include_router(operations.data_router)
router.include_router(monitoring.router)

__all__ = ["STATIC_DIR", "router"]
