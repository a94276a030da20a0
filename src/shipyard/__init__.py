"""Shipyard: self-hosted deep learning as a service.

The SDK surface: ``init`` starts a run, ``Run.log`` records metrics and media, ``Client`` queries.
"""

from __future__ import annotations

__version__ = "0.1.0"
