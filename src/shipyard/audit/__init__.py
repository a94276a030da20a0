"""The audit log: an append-only record of every mutation, written in the mutation's transaction.

``record(session, actor, action, object_type, object_id, ...)`` is called by every use case that
changes something; ``search`` and ``parse_since`` read the log back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.surface import exports, names

if TYPE_CHECKING:
    from shipyard.audit.service import parse_since as parse_since
    from shipyard.audit.service import record as record
    from shipyard.audit.service import search as search

_SURFACE = {"service": ["parse_since", "record", "search"]}
__all__ = names(_SURFACE)
__getattr__ = exports(__name__, _SURFACE)
