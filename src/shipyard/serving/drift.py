"""Input drift: an endpoint's recent requests against the reference data in its model package.

A package carries reference data when it was saved with ``reference_data`` (``run.log_model(...,
reference_data=x_train)``): a sample of each input in ``reference.npz`` (see
``shipyard.packages.reference``). The router keeps the bodies of each version's last answered
requests (``EndpointTraffic.inputs``); asking for drift decodes them with their protocol (the
protocol table's, by the path each was sent to) and compares every feature with the reference,
as Evidently and WhyLabs do:

- **Features.** An input of at most ``MAX_COLUMNS`` values a row gives one feature per value
  (``x[0]``, ``x[1]``, ...; ``x`` alone for one value); a wider one (an image) gives two, its
  per-row ``mean(x)`` and ``std(x)``. Non-numeric inputs are left out.
- **PSI**, the population stability index, over ten bins at the reference's deciles, or over its
  values when it has few distinct ones (pixel intensities, categories, a constant); a value the
  reference never took falls in a bin of its own. Proportions are floored at ``EPSILON``.
  Drifted when PSI >= the threshold (0.2 by default: the usual "significant shift" line).
- **KS**, the two-sample Kolmogorov-Smirnov statistic (largest gap between the two empirical
  distributions), reported beside PSI for those who read that one.

A version is ``no_reference`` (its package has none), ``collecting`` (fewer than ``min_rows``
rows so far), ``ok`` or ``drift`` (some feature drifted).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.errors import ShipyardError
from shipyard.packages import Signature
from shipyard.serving.protocols import ProtocolError
from shipyard.serving.protocols.table import protocol_of

MAX_COLUMNS = 128  # values a row up to which each is its own feature
BINS = 10
EPSILON = 1e-4  # the smallest proportion a bin is given, so a bin empty on one side stays finite


def decode(signature: Signature, path: str, body: bytes) -> dict[str, np.ndarray]:
    """The inputs of a request body sent to ``path`` (a path of the protocol table)."""
    protocol = protocol_of(path)
    if protocol is None:
        raise ProtocolError(f"{path!r} is no inference path")
    return protocol.decode(signature, body)[0]


def features(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Feature columns (float64, one value a row) of named input arrays; see the module doc."""
    out: dict[str, np.ndarray] = {}
    for name, array in inputs.items():
        if array.dtype.kind not in "biuf" or array.ndim == 0:
            continue
        flat = array.reshape(array.shape[0], -1).astype(np.float64)
        width = flat.shape[1]
        if width == 1:
            out[name] = flat[:, 0]
        elif width <= MAX_COLUMNS:
            for i in range(width):
                out[f"{name}[{i}]"] = flat[:, i]
        else:
            out[f"mean({name})"] = flat.mean(axis=1)
            out[f"std({name})"] = flat.std(axis=1)
    return out


def _proportions(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = np.unique(reference)
    if len(values) <= BINS:  # few distinct values: one bin each, and one for any other value
        ref_counts = np.searchsorted(values, reference)
        ref_hist = np.bincount(ref_counts, minlength=len(values) + 1).astype(np.float64)
        place = np.searchsorted(values, current)
        known = (place < len(values)) & (values[np.minimum(place, len(values) - 1)] == current)
        cur_hist = np.bincount(np.where(known, place, len(values)), minlength=len(values) + 1)
    else:
        edges = np.unique(np.quantile(reference, np.linspace(0, 1, BINS + 1)[1:-1]))
        ref_hist = np.bincount(
            np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1
        ).astype(np.float64)
        cur_hist = np.bincount(
            np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1
        )
    ref_p = np.maximum(ref_hist / len(reference), EPSILON)
    cur_p = np.maximum(cur_hist.astype(np.float64) / len(current), EPSILON)
    return ref_p, cur_p


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """The population stability index of ``current`` against ``reference`` (0: the same)."""
    ref_p, cur_p = _proportions(reference, current)
    return float(np.sum((cur_p - ref_p) * np.log(cur_p / ref_p)))


def ks(reference: np.ndarray, current: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the two ECDFs."""
    a, b = np.sort(reference), np.sort(current)
    points = np.concatenate([a, b])
    gap = np.searchsorted(a, points, side="right") / len(a) - np.searchsorted(
        b, points, side="right"
    ) / len(b)
    return float(np.max(np.abs(gap)))


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    name: str
    psi: float
    ks: float
    reference_mean: float
    current_mean: float
    drifted: bool


def compare(
    reference: dict[str, np.ndarray], current: dict[str, np.ndarray], threshold: float
) -> list[FeatureDrift]:
    """Every feature of the current inputs against the reference, most drifted first."""
    ref_features = features(reference)
    out = []
    for name, values in features(current).items():
        ref = ref_features.get(name)
        if ref is None:
            continue
        finite_ref, finite_cur = ref[np.isfinite(ref)], values[np.isfinite(values)]
        if not len(finite_ref) or not len(finite_cur):
            continue
        score = psi(finite_ref, finite_cur)
        out.append(
            FeatureDrift(
                name=name,
                psi=score,
                ks=ks(finite_ref, finite_cur),
                reference_mean=float(finite_ref.mean()),
                current_mean=float(finite_cur.mean()),
                drifted=score >= threshold,
            )
        )
    out.sort(key=lambda f: f.psi, reverse=True)
    return out


MEASURED = ("ok", "drift")  # the statuses of a version whose features were compared


def totals(features: Iterable[Any]) -> tuple[int, float]:
    """How many of a version's compared features drifted, and the largest PSI among them."""
    features = list(features)
    return sum(f.drifted for f in features), max((f.psi for f in features), default=0.0)


def measured_totals(report: Any) -> list[tuple[int, float]]:
    """``totals`` of each version a drift report (``DriftOut``) compared (none: no data)."""
    return [totals(v.features) for v in report.versions if v.status in MEASURED]


def current_inputs(
    signature: Signature, requests: Iterable[tuple[str, bytes]]
) -> tuple[dict[str, np.ndarray], int]:
    """The recorded requests' inputs stacked by name, and how many rows they hold. A body that
    no longer decodes (it should not: only answered ones are kept) is skipped."""
    parts: dict[str, list[np.ndarray]] = {}
    for path, body in requests:
        try:
            inputs = decode(signature, path, body)
        except ShipyardError:
            continue
        for name, array in inputs.items():
            parts.setdefault(name, []).append(array)
    stacked = {name: np.concatenate(arrays) for name, arrays in parts.items()}
    rows = min((a.shape[0] for a in stacked.values()), default=0)
    return stacked, rows


def version_drift(
    version: int,
    signature: Signature,
    reference: dict[str, np.ndarray] | None,
    requests: list[tuple[str, bytes]],
    threshold: float,
    min_rows: int,
) -> dict[str, Any]:
    """One served version's drift report (see the module doc for its states)."""
    report: dict[str, Any] = {
        "version": version,
        "requests": len(requests),
        "rows": 0,
        "reference_rows": 0,
        "status": "no_reference",
        "features": [],
    }
    if reference is None:
        return report
    report["reference_rows"] = min((a.shape[0] for a in reference.values()), default=0)
    current, rows = current_inputs(signature, requests)
    report["rows"] = rows
    if rows < min_rows:
        report["status"] = "collecting"
        return report
    drift = compare(reference, current, threshold)
    report["features"] = drift
    report["status"] = "drift" if any(f.drifted for f in drift) else "ok"
    return report
