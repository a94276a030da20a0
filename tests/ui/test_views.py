"""What the pages compute from service results: columns, sorting links, diffs, trees, charts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shipyard.tracking.schemas import ArtifactOut, CheckpointOut, RunOut, RunStatus, SummaryOut
from shipyard.ui import views

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def run(name: str, config: dict[str, object], **last: float) -> RunOut:
    return RunOut(
        id=name * 4,
        project="p",
        name=name,
        status=RunStatus.finished,
        config=config,
        tags=[],
        notes="",
        environment={"python": "3.11"},
        user="local",
        created_at=NOW,
        updated_at=NOW,
        finished_at=NOW,
        heartbeat_at=NOW,
        summary={k: SummaryOut(last=v, min=v, max=v, step=1, count=2) for k, v in last.items()},
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "–"), (True, "true"), (3, "3"), (0.000123456789, "0.000123457"), (float("nan"), "NaN")],
)
def test_cells_are_short_and_exact_enough(value: object, shown: str) -> None:
    assert views.fmt(value) == shown


def test_columns_default_to_the_first_keys_and_skip_system_metrics() -> None:
    cols = views.pick_columns([], ["a", "b"], ["system/cpu_percent", "val/acc"])
    assert [c.field for c in cols] == ["config.a", "config.b", "summary.val/acc"]
    picked = views.pick_columns(["summary.val/acc", "config.zz"], ["a"], ["val/acc"])
    assert [c.field for c in picked] == ["summary.val/acc"]  # unknown keys are dropped


def test_sort_links_toggle_between_ascending_and_descending() -> None:
    q = views.RunsQuery("p", filter="x = 1", cols=["config.lr"], offset=50)
    assert q.sorted_by("created_at") == "desc"  # the server's default order
    assert q.sort_url("name") == "/projects/p/runs?filter=x+%3D+1&sort=name&cols=config.lr"
    assert "sort=-summary.acc" in q.sort_url("summary.acc")  # metrics: best first
    asc = views.RunsQuery("p", sort=["name"])
    assert asc.sorted_by("name") == "asc" and "sort=-name" in asc.sort_url("name")
    assert "sort=name" in views.RunsQuery("p", sort=["-name"]).sort_url("name")


def test_diff_rows_mark_keys_that_differ_across_n_runs() -> None:
    runs = [
        run("a", {"lr": 0.1, "opt": {"name": "adam"}}, acc=0.9),
        run("b", {"lr": 0.1, "opt": {"name": "sgd"}}, acc=0.8),
        run("c", {"lr": 0.1}, acc=0.8),
    ]
    rows = {r.key: r for r in views.diff_rows(views.flat_configs(runs))}
    assert rows["lr"].same and rows["lr"].values == [0.1, 0.1, 0.1]
    assert not rows["opt.name"].same and rows["opt.name"].values == ["adam", "sgd", None]
    summary = views.diff_rows(views.last_values(runs))
    pc = views.parallel_coordinates(runs, list(rows.values()), summary, ["#1", "#2", "#3"])
    assert [a["label"] for a in pc["axes"]] == ["config.opt.name", "summary.acc"]
    assert pc["axes"][0]["kind"] == "cat" and pc["axes"][1]["values"] == [0.9, 0.8, 0.8]


def test_metric_charts_group_by_prefix_and_system_by_component() -> None:
    keys = ["train/loss", "val/acc", "lr", "system/gpu0_util_percent", "system/cpu_percent"]
    main, system = views.metric_groups("r", keys)
    assert [(g.name, [c.title for c in g.charts]) for g in main] == [
        ("metrics", ["lr"]),
        ("train", ["train/loss"]),
        ("val", ["val/acc"]),
    ]
    assert [g.name for g in system] == ["cpu", "gpu0"]


def test_artifacts_nest_into_folders() -> None:
    arts = [
        ArtifactOut(path=p, size=1, sha256="0" * 64, created_at=NOW)
        for p in ("a/b/c.txt", "a/d.txt", "e.txt")
    ]
    tree = views.artifact_tree(arts)
    assert [f.path for f in tree.files] == ["e.txt"]
    assert tree.folders["a"].folders["b"].files[0].path == "a/b/c.txt"
    assert tree.count == 3 and tree.folders["a"].count == 2


def test_losses_are_minimised_when_ranking_checkpoints() -> None:
    def ckpt(**m: float) -> CheckpointOut:
        return CheckpointOut(id=1, path="c", step=1, metrics=m, created_at=NOW)

    assert views.checkpoint_goal([ckpt(val_loss=0.3)]) == ("val_loss", "min")
    assert views.checkpoint_goal([ckpt(acc=0.9, loss=0.1), ckpt(acc=0.8)]) == ("acc", "max")
    assert views.checkpoint_goal([]) is None


def test_run_ids_in_the_compare_url_are_deduplicated_in_order() -> None:
    assert views.parse_run_ids(" b, a,,b ") == ["b", "a"]


def test_the_lineage_graph_draws_shared_datasets_and_runs_once() -> None:
    from types import SimpleNamespace as V

    run_a = {"name": "train-a"}
    versions = [
        V(
            version=2,
            run_id="r1",
            lineage={"run": run_a, "datasets": [{"name": "d", "version": 1}]},
        ),
        V(
            version=1,
            run_id="r1",
            lineage={"run": run_a, "datasets": [{"name": "d", "version": 1}]},
        ),
        V(version=3, run_id=None, lineage={}),
    ]
    label = lambda d: f"{d['name']}@{d['version']}"  # noqa: E731
    g = views.lineage_graph("m", versions, {2: [("ep", 90)], 3: [("ep", 10)]}, label)
    by_col = {c: [n.label for n in g.nodes if n.col == c] for c in range(4)}
    assert by_col == {0: ["d@1"], 1: ["train-a"], 2: ["m v1", "m v2", "m v3"], 3: ["ep"]}
    pairs = sorted((e.a.label, e.b.label, e.label) for e in g.edges)
    assert pairs == [
        ("d@1", "train-a", ""),
        ("m v2", "ep", "90%"),
        ("m v3", "ep", "10%"),
        ("train-a", "m v1", ""),
        ("train-a", "m v2", ""),
    ]
    rows = [n.y for n in g.nodes if n.col == 2]
    assert rows == sorted(rows) and len(set(rows)) == 3 and g.height > max(rows)
    edge = g.edges[0]
    assert edge.path.startswith(f"M{edge.a.x + views.NODE_W},")
