"""Reference data in a package: what the model's inputs looked like in training, for drift.

``save_model(..., reference_data=x_train)`` checks the data against the signature like any input
and keeps up to ``REFERENCE_ROWS`` rows of each input (the same rows of every input, drawn at
random with a fixed seed, so the same data gives the same file) in ``reference.npz``, a plain
numpy archive listed and hashed in the manifest like every other file.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

REFERENCE_FILE = "reference.npz"
REFERENCE_ROWS = 5000


def reference_sample(inputs: dict[str, np.ndarray], rows: int = REFERENCE_ROWS) -> bytes:
    """The bytes of ``reference.npz`` for inputs already prepared by the signature."""
    n = min((a.shape[0] if a.ndim else 1 for a in inputs.values()), default=0)
    if n == 0:
        raise ValueError("reference_data has no rows")
    keep = np.arange(n)
    if n > rows:
        keep = np.sort(np.random.default_rng(0).choice(n, rows, replace=False))
    arrays: dict[str, Any] = {name: a[keep] for name, a in inputs.items()}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def load_reference(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of a ``reference.npz``."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}
