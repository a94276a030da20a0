"""What the pages show, shaped from service results: columns, diffs, galleries, trees, charts.

Pure functions of wire models (``RunOut``, ``ImageOut``...), no session and no HTTP, so each is
easy to test and the routes in ``pages.py`` stay thin.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from shipyard.tracking.schemas import ArtifactOut, CheckpointOut, ImageOut, RunOut, SummaryOut
from shipyard.tracking.service import flatten

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_COLUMNS = 4  # config and summary columns each, when the user picked none
MAX_COMPARE = 20
ENV_KEYS = ("git_commit", "git_dirty", "host", "python", "platform", "command")  # as diff_runs
SYSTEM = "system/"
# Tableau 10: distinct hues that read on light and dark backgrounds alike.
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
MINIMIZE = re.compile(r"loss|err|mse|mae|rmse|perplexity|wer|cer", re.IGNORECASE)


def fmt(value: Any) -> str:
    """A value as a table cell: numbers to 6 significant digits, containers as JSON."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def when(value: datetime | None) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM:SS`` UTC."""
    if value is None:
        return "–"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(run: RunOut) -> str:
    """How long a run ran (or has been running), as ``1h 02m 03s``."""
    end = run.finished_at or datetime.now(UTC)
    start = run.created_at if run.created_at.tzinfo else run.created_at.replace(tzinfo=UTC)
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    seconds = max(0, int((end - start).total_seconds()))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s" if m else f"{s}s"


def size(n: int) -> str:
    """Bytes in human units."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError


def summary_value(s: SummaryOut | None) -> float | str | None:
    """The last value of a summary, as the tables show it."""
    return None if s is None else s.last


# -- runs table --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A picked column of the runs table: ``config.PATH`` or ``summary.KEY``."""

    field: str

    @property
    def kind(self) -> str:
        """``config`` or ``summary``."""
        return self.field.partition(".")[0]

    @property
    def key(self) -> str:
        """The config path or metric key."""
        return self.field.partition(".")[2]

    def value(self, run: RunOut, flat_config: dict[str, Any]) -> Any:
        """The cell of ``run`` in this column."""
        if self.kind == "config":
            return flat_config.get(self.key)
        return summary_value(run.summary.get(self.key))


def pick_columns(
    chosen: Sequence[str], config_keys: Sequence[str], metric_keys: Sequence[str]
) -> list[Column]:
    """The columns asked for, or the first few config and metric keys when none were."""
    known = {f"config.{k}" for k in config_keys} | {f"summary.{k}" for k in metric_keys}
    picked = [c for c in dict.fromkeys(chosen) if c in known]
    if chosen:
        return [Column(c) for c in picked]
    visible = [k for k in metric_keys if not k.startswith(SYSTEM)]
    return [Column(f"config.{k}") for k in config_keys[:DEFAULT_COLUMNS]] + [
        Column(f"summary.{k}") for k in visible[:DEFAULT_COLUMNS]
    ]


@dataclass
class RunsQuery:
    """The state of the runs table, as it travels in the URL."""

    project: str
    filter: str = ""
    sort: list[str] = field(default_factory=list)
    cols: list[str] = field(default_factory=list)
    limit: int = 50
    offset: int = 0

    def url(self, **changes: Any) -> str:
        """This table's URL with some of its state changed."""
        state = {
            "filter": self.filter,
            "sort": self.sort,
            "cols": self.cols,
            "limit": self.limit,
            "offset": self.offset,
            **changes,
        }
        params: list[tuple[str, Any]] = []
        if state["filter"]:
            params.append(("filter", state["filter"]))
        params += [("sort", s) for s in state["sort"]]
        params += [("cols", c) for c in state["cols"]]
        if state["limit"] != 50:
            params.append(("limit", state["limit"]))
        if state["offset"]:
            params.append(("offset", state["offset"]))
        path = f"/projects/{self.project}/runs"
        return f"{path}?{urlencode(params)}" if params else path

    def sorted_by(self, field_name: str) -> str:
        """``asc``, ``desc`` or ``""``: how the table is sorted by ``field_name``."""
        if not self.sort:
            return "desc" if field_name == "created_at" else ""
        first = self.sort[0]
        if first == field_name or first == f"+{field_name}":
            return "asc"
        return "desc" if first == f"-{field_name}" else ""

    def sort_url(self, field_name: str) -> str:
        """The URL sorting by ``field_name``: ascending first, then descending."""
        direction = "" if self.sorted_by(field_name) == "desc" else "-"
        if self.sorted_by(field_name) == "":
            direction = (
                "-" if field_name == "created_at" or field_name.startswith("summary.") else ""
            )
        return self.url(sort=[f"{direction}{field_name}"], offset=0)


# -- run page ----------------------------------------------------------------------------------


@dataclass
class ChartSpec:
    """One chart: a title and the (run, metric) series drawn on it."""

    title: str
    series: list[dict[str, str]]

    @property
    def data(self) -> str:
        """The series as JSON, for the chart's ``data-series`` attribute."""
        return json.dumps(self.series)


@dataclass
class ChartGroup:
    """Charts under one heading (``train``, ``val``, ``system: gpu0``...)."""

    name: str
    charts: list[ChartSpec]


def _section(key: str) -> str:
    head, sep, _ = key.partition("/")
    return head if sep else "metrics"


def metric_groups(run_id: str, keys: Iterable[str]) -> tuple[list[ChartGroup], list[ChartGroup]]:
    """Charts of a run's metrics, by key prefix; system metrics apart, grouped by component.

    ``system/gpu0_util_percent`` and ``system/gpu0_memory_percent`` share the ``gpu0`` group.
    """
    main: dict[str, list[ChartSpec]] = {}
    system: dict[str, list[ChartSpec]] = {}
    for key in sorted(keys):
        spec = ChartSpec(key, [{"run": run_id, "key": key, "label": key, "color": PALETTE[0]}])
        if key.startswith(SYSTEM):
            component = key[len(SYSTEM) :].split("_", 1)[0].split("/", 1)[0]
            system.setdefault(component, []).append(spec)
        else:
            main.setdefault(_section(key), []).append(spec)
    return (
        [ChartGroup(name, charts) for name, charts in main.items()],
        [ChartGroup(name, charts) for name, charts in sorted(system.items())],
    )


@dataclass
class Gallery:
    """The images of one key, by step, for the step slider."""

    key: str
    steps: list[int]
    items: dict[int, list[dict[str, str | int]]]

    @property
    def data(self) -> str:
        """Steps and images as JSON, for the gallery's ``data-gallery`` attribute."""
        return json.dumps(
            {"steps": self.steps, "items": {str(k): v for k, v in self.items.items()}}
        )


def galleries(run_id: str, images: Sequence[ImageOut]) -> list[Gallery]:
    """Images grouped by key, each key's steps in order."""
    out: dict[str, Gallery] = {}
    for img in images:
        g = out.setdefault(img.key, Gallery(img.key, [], {}))
        if img.step not in g.items:
            g.steps.append(img.step)
            g.items[img.step] = []
        g.items[img.step].append(
            {
                "src": f"/runs/{run_id}/artifacts/{img.path}",
                "caption": img.caption,
                "width": img.width,
                "height": img.height,
            }
        )
    for g in out.values():
        g.steps.sort()
    return list(out.values())


@dataclass
class Folder:
    """A folder of the artifacts browser."""

    name: str
    path: str
    folders: dict[str, Folder] = field(default_factory=dict)
    files: list[ArtifactOut] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Files in this folder and below."""
        return len(self.files) + sum(f.count for f in self.folders.values())


def artifact_tree(artifacts: Iterable[ArtifactOut]) -> Folder:
    """Artifacts as nested folders (paths split on ``/``)."""
    root = Folder("", "")
    for a in artifacts:
        node = root
        parts = a.path.split("/")
        for i, part in enumerate(parts[:-1]):
            node = node.folders.setdefault(part, Folder(part, "/".join(parts[: i + 1])))
        node.files.append(a)
    return root


def base_name(path: str) -> str:
    """The last part of a path."""
    return path.rsplit("/", 1)[-1]


def checkpoint_goal(checkpoints: Sequence[CheckpointOut]) -> tuple[str, str] | None:
    """The metric that ranks checkpoints and whether to ``min`` or ``max`` it.

    The first metric the checkpoints share; losses and errors (by name) are minimised.
    """
    if not checkpoints:
        return None
    keys = [k for k in checkpoints[0].metrics if all(k in c.metrics for c in checkpoints)]
    if not keys:
        keys = list(checkpoints[-1].metrics)
    if not keys:
        return None
    key = keys[0]
    return key, "min" if MINIMIZE.search(key) else "max"


# -- compare -----------------------------------------------------------------------------------


@dataclass
class DiffRow:
    """One key across N runs; ``same`` when every run holds the same value."""

    key: str
    values: list[Any]
    same: bool


def diff_rows(values: Sequence[dict[str, Any]]) -> list[DiffRow]:
    """Keys of N runs side by side (``service.diff_runs`` generalised past two runs)."""
    keys = sorted(set().union(*values)) if values else []
    rows = []
    for k in keys:
        vals = [v.get(k) for v in values]
        encoded = [json.dumps(v, sort_keys=True, default=str) for v in vals]
        rows.append(DiffRow(k, vals, len(set(encoded)) == 1))
    return rows


def flat_configs(runs: Sequence[RunOut]) -> list[dict[str, Any]]:
    """Each run's config, flattened to ``a.b`` keys."""
    return [dict(flatten(r.config)) for r in runs]


def last_values(runs: Sequence[RunOut], system: bool = False) -> list[dict[str, Any]]:
    """Each run's metric summaries (last values), system metrics left out unless asked."""
    return [
        {k: s.last for k, s in r.summary.items() if system or not k.startswith(SYSTEM)}
        for r in runs
    ]


def finite(value: Any) -> float | None:
    """A number as a float, or None for NaN, infinities and anything not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def parallel_coordinates(
    runs: Sequence[RunOut], config: Sequence[DiffRow], summary: Sequence[DiffRow], colors: list[str]
) -> dict[str, Any]:
    """Axes for the parallel-coordinates plot: config keys that differ, then every metric.

    Numeric axes carry numbers; any other axis is categorical (its distinct values, in order).
    """
    axes: list[dict[str, Any]] = []
    for prefix, rows in (("config", config), ("summary", summary)):
        for row in rows:
            if prefix == "config" and row.same and len(runs) > 1:
                continue
            nums = [finite(v) for v in row.values]
            present = [v for v in row.values if v is not None]
            if not present:
                continue
            if all(n is not None or v is None for n, v in zip(nums, row.values, strict=True)):
                axes.append({"label": f"{prefix}.{row.key}", "kind": "num", "values": nums})
            else:
                labels = [None if v is None else fmt(v) for v in row.values]
                axes.append({"label": f"{prefix}.{row.key}", "kind": "cat", "values": labels})
    return {
        "runs": [
            {"id": r.id, "name": r.name, "color": c} for r, c in zip(runs, colors, strict=True)
        ],
        "axes": axes[:16],
    }


def compare_charts(runs: Sequence[RunOut], colors: Sequence[str]) -> list[ChartSpec]:
    """One chart per metric (system metrics last), every run that logged it overlaid."""
    keys = sorted({k for r in runs for k in r.summary}, key=lambda k: (k.startswith(SYSTEM), k))
    return [
        ChartSpec(
            key,
            [
                {"run": r.id, "key": key, "label": r.name, "color": c}
                for r, c in zip(runs, colors, strict=True)
                if key in r.summary
            ],
        )
        for key in keys
    ]


def parse_run_ids(text: str) -> list[str]:
    """Run ids from ``?runs=a,b,c`` (spaces and repeats ignored, order kept)."""
    return list(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))


# -- lineage graph --------------------------------------------------------------------------------

LINEAGE_COLUMNS = ("Datasets", "Runs", "Versions", "Endpoints")
NODE_W, NODE_H, COL_GAP, ROW_GAP, TOP = 190, 30, 70, 14, 28


@dataclass
class Node:
    col: int
    label: str
    href: str | None
    title: str
    row: int = 0

    @property
    def x(self) -> int:
        return self.col * (NODE_W + COL_GAP)

    @property
    def y(self) -> int:
        return TOP + self.row * (NODE_H + ROW_GAP)


@dataclass
class Edge:
    a: Node
    b: Node
    label: str = ""

    @property
    def path(self) -> str:
        """A horizontal S-curve from the right side of ``a`` to the left side of ``b``."""
        x1, y1 = self.a.x + NODE_W, self.a.y + NODE_H // 2
        x2, y2 = self.b.x, self.b.y + NODE_H // 2
        mid = (x1 + x2) / 2
        return f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"


@dataclass
class LineageGraph:
    nodes: list[Node]
    edges: list[Edge]
    columns: list[tuple[str, int, int]]  # heading, x and how many nodes
    width: int
    height: int


def _short(text: str, n: int = 26) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def lineage_graph(
    model: str,
    versions: Sequence[Any],
    serving: dict[int, list[tuple[str, int]]],
    dataset_label: Any,
) -> LineageGraph:
    """Dataset versions -> runs -> model versions -> endpoints as positioned boxes and curves
    (an SVG the template draws; no script). Shared datasets and runs are drawn once."""
    nodes: dict[tuple[int, str], Node] = {}
    edges: list[Edge] = []

    def node(col: int, key: str, label: str, href: str | None, title: str) -> Node:
        found = nodes.get((col, key))
        if found is None:
            found = nodes[(col, key)] = Node(col, _short(label), href, title)
        return found

    for v in sorted(versions, key=lambda v: v.version):
        run = v.lineage.get("run") or {}
        vn = node(
            2, str(v.version), f"{model} v{v.version}", f"#v{v.version}", f"version {v.version}"
        )
        rn = None
        if v.run_id:
            name = run.get("name") or v.run_id
            rn = node(1, v.run_id, name, f"/runs/{v.run_id}", f"run {name} ({v.run_id})")
            edges.append(Edge(rn, vn))
        for d in v.lineage.get("datasets") or []:
            label = dataset_label(d)
            dn = node(0, label, label, None, f"dataset {label}")
            if rn is not None:
                edges.append(Edge(dn, rn))
        for endpoint, weight in serving.get(v.version, []):
            en = node(3, endpoint, endpoint, f"/endpoints/{endpoint}", f"endpoint {endpoint}")
            edges.append(Edge(vn, en, f"{weight}%"))
    unique = {(id(e.a), id(e.b)): e for e in edges}
    rows = [0] * len(LINEAGE_COLUMNS)
    for n in nodes.values():
        n.row = rows[n.col]
        rows[n.col] += 1
    width = len(LINEAGE_COLUMNS) * NODE_W + (len(LINEAGE_COLUMNS) - 1) * COL_GAP
    height = TOP + max(max(rows), 1) * (NODE_H + ROW_GAP)
    columns = [(h, i * (NODE_W + COL_GAP), rows[i]) for i, h in enumerate(LINEAGE_COLUMNS)]
    return LineageGraph(list(nodes.values()), list(unique.values()), columns, width, height)
