"""The pages in a real browser: they load without console errors, charts draw, controls work."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
from playwright.sync_api import Locator, expect

import shipyard
from tests.conftest import bearer
from tests.ui.conftest import (
    PROJECT,
    SERIES_BLUE,
    Seeded,
    Tab,
    drawn_pixels,
    points,
    screenshot,
)


def names(tab: Tab) -> list[str]:
    return tab.page.locator("table.runs tbody td.name").all_inner_texts()


def sort_header(tab: Tab, field: str) -> Locator:
    return tab.page.locator("table.runs thead th", has=tab.page.locator(f'a[data-sort="{field}"]'))


def api_names(seeded: Seeded, **query: object) -> list[str]:
    with shipyard.Client(settings=seeded.sdk) as client:
        return [r.name for r in client.runs(PROJECT, **query)]  # type: ignore[arg-type]


def test_overview_lists_projects_with_run_counts_and_recent_runs(tab: Tab) -> None:
    tab.goto("/")
    page = tab.page
    row = page.locator("table.projects tbody tr", has=page.get_by_role("link", name=PROJECT))
    expect(row.locator("td.num").first).to_have_text("12")
    expect(row.locator(".chip")).to_have_count(3)
    expect(row.locator(".chip").first).to_contain_text("mlp-11")
    expect(page.get_by_role("link", name="resnet-featured").first).to_be_visible()


def test_runs_table_filters_with_the_api_language_and_sorts_by_clicking(
    tab: Tab, seeded: Seeded, tmp_path: Path
) -> None:
    tab.goto(f"/projects/{PROJECT}/runs")
    page = tab.page
    expect(page.locator("table.runs tbody tr")).to_have_count(12)
    screenshot(tab, "runs.png", tmp_path)

    query = "config.lr < 0.05 and summary.val/acc > 0.85"
    visited = page.evaluate("history.length")
    page.get_by_label("Filter").fill(query)
    page.get_by_label("Filter").press("Enter")
    expected = api_names(seeded, filter=query)
    assert 0 < len(expected) < 12
    expect(page.locator("#runs-count")).to_have_text(re.compile(f"of {len(expected)}$"))
    assert names(tab) == expected
    assert parse_qs(urlsplit(page.url).query)["filter"] == [query]
    assert page.evaluate("history.length") == visited + 1  # one entry: Back undoes the filter

    header = sort_header(tab, "summary.val/acc")
    header.get_by_role("link").click()
    expect(header).to_have_attribute("aria-sort", "descending")
    assert names(tab) == api_names(seeded, filter=query, order_by="-summary.val/acc")
    header.get_by_role("link").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    assert names(tab) == api_names(seeded, filter=query, order_by="summary.val/acc")

    # the filter box keeps the sort: applying another filter stays sorted by val/acc ascending
    page.get_by_label("Filter").fill("config.optimizer.name = adam")
    page.get_by_label("Filter").press("Enter")
    expect(page.locator("#runs-count")).to_have_text(re.compile("of 6$"))
    assert names(tab) == api_names(
        seeded, filter="config.optimizer.name = adam", order_by="summary.val/acc"
    )

    page.get_by_label("Filter").fill("config.lr >")
    page.get_by_label("Filter").press("Enter")
    expect(page.locator("#filter-error")).to_contain_text("filter")
    expect(page.locator("table.runs tbody tr")).to_have_count(0)


def test_runs_table_pages_on_the_server_and_picks_columns(tab: Tab, seeded: Seeded) -> None:
    tab.goto(f"/projects/{PROJECT}/runs?limit=5")
    page = tab.page
    expect(page.locator("#runs-count")).to_have_text("Runs 1–5 of 12")
    page.get_by_role("link", name="Next →").click()
    expect(page.locator("#runs-count")).to_have_text("Runs 6–10 of 12")
    assert names(tab) == api_names(seeded)[5:10]
    page.get_by_role("link", name="Next →").click()
    expect(page.locator("#runs-count")).to_have_text("Runs 11–12 of 12")
    page.get_by_role("link", name="← Previous").click()
    expect(page.locator("#runs-count")).to_have_text("Runs 6–10 of 12")

    headers = page.locator("table.runs thead th")
    expect(headers.filter(has_text="optimizer.name")).to_have_count(1)
    page.get_by_text("Columns").click()
    page.get_by_role("checkbox", name="optimizer.name").uncheck()
    expect(headers.filter(has_text="optimizer.name")).to_have_count(0)
    expect(headers.filter(has_text="seed")).to_have_count(1)
    assert "cols=config.lr" in page.url and "optimizer" not in page.url
    cell = page.locator("table.runs tbody tr").first.locator("td.config").first
    expect(cell).to_have_text(re.compile(r"^0\.\d+$"))


def test_select_runs_and_compare_them(tab: Tab, seeded: Seeded, tmp_path: Path) -> None:
    tab.goto(f"/projects/{PROJECT}/runs")
    page = tab.page
    page.get_by_label("Select mlp-03").check()
    page.get_by_label("Select mlp-07").check()
    page.get_by_label("Select mlp-08").check()
    expect(page.locator("#selected-count")).to_have_text("3 selected")
    # the selection survives the table being swapped by a sort
    sort_header(tab, "name").get_by_role("link").click()
    expect(sort_header(tab, "name")).to_have_attribute("aria-sort", "ascending")
    expect(page.get_by_label("Select mlp-08")).to_be_checked()  # restored after the swap
    page.get_by_label("Select mlp-08").uncheck()
    expect(page.get_by_label("Select mlp-03")).to_be_checked()
    expect(page.locator("#selected-count")).to_have_text("2 selected")

    page.get_by_role("button", name="Compare selected").click()
    expect(page).to_have_url(re.compile(r"/compare\?runs="))
    picked = parse_qs(urlsplit(page.url).query)["runs"][0].split(",")
    assert set(picked) == {seeded.runs["mlp-03"], seeded.runs["mlp-07"]}

    charts = page.locator(".chart")
    expect(charts).to_have_count(2)
    for chart in charts.all():
        expect(chart).to_have_attribute("data-drawn", "1")
        assert drawn_pixels(chart, SERIES_BLUE) > 100  # the first run's line
        assert drawn_pixels(chart, (0xF2, 0x8E, 0x2B)) > 100  # the second run's line
    expect(charts.first.locator(".u-legend")).to_contain_text("mlp-07")
    screenshot(tab, "compare.png", tmp_path)

    lr = page.locator("table.diff-table tr", has=page.locator("th", has_text=re.compile("^lr$")))
    expect(lr).to_have_class("differs")
    same = page.locator("table.diff-table tr", has_text="optimizer.name")
    expect(same).to_have_class("same")
    page.get_by_label("Only rows that differ").check()
    expect(same).to_be_hidden()
    expect(lr).to_be_visible()

    expect(page.locator("svg.parcoords")).to_have_attribute("data-drawn", "1")
    expect(page.locator("svg.parcoords path.line")).to_have_count(2)


def test_run_page_draws_every_section(tab: Tab, seeded: Seeded, tmp_path: Path) -> None:
    tab.goto(f"/runs/{seeded.featured}")
    page = tab.page
    chart = page.locator(".chart-box", has_text="train/loss").locator(".chart")
    expect(chart).to_have_attribute("data-drawn", "1")
    assert drawn_pixels(chart, SERIES_BLUE) > 300
    assert 1000 <= points(chart) <= 2000  # 20,000 points, downsampled by the server
    screenshot(tab, "run.png", tmp_path)

    page.get_by_label("Smoothing").fill("0.9")
    expect(chart.locator(".u-legend")).to_contain_text("(raw)")
    page.get_by_label("X axis").select_option("time")
    expect(chart.locator(".u-legend")).to_contain_text("time")
    assert chart.evaluate("el => el._chart.u.data[0][0]") > 1e9  # a Unix time
    page.get_by_label("X axis").select_option("step")

    full = chart.evaluate("el => el._chart.u.scales.x.max - el._chart.u.scales.x.min")
    box = chart.locator(".u-over").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.4, y, steps=5)
    page.mouse.up()
    zoomed = chart.evaluate("el => el._chart.u.scales.x.max - el._chart.u.scales.x.min")
    assert zoomed < full / 3

    system = page.locator("section", has=page.locator("#system-h"))
    expect(system.locator("h3")).to_have_text(["cpu", "gpu0", "memory"])
    system.scroll_into_view_if_needed()
    for c in system.locator(".chart").all():
        c.scroll_into_view_if_needed()
        expect(c).to_have_attribute("data-drawn", "1")

    gallery = page.locator(".gallery")
    image = gallery.locator("img")
    expect(gallery.locator("output")).to_have_text("3")
    page.get_by_label("Step", exact=True).fill("0")
    expect(gallery.locator("output")).to_have_text("0")
    expect(image).to_have_attribute("src", re.compile(r"/samples/0_0\.png$"))
    page.wait_for_function("() => document.querySelector('.gallery img').naturalWidth === 16")

    kv = page.locator("table.kv tr", has_text="arch.name")
    expect(kv.locator("td")).to_have_text("resnet")
    expect(page.locator("table.kv th", has_text=re.compile("^python$"))).to_have_count(1)

    best = page.locator("table.checkpoints tr.best")
    expect(best).to_have_count(1)
    expect(best).to_contain_text("epoch2.pt")

    with page.expect_download() as download:
        page.get_by_role("link", name="confusion.csv").click()
    assert Path(download.value.path()).read_text() == "a,b\n1,2\n"


def test_run_page_follows_a_running_run(tab: Tab, seeded: Seeded) -> None:
    run = shipyard.init(project="live", name="live", settings=seeded.sdk, system_metrics=False)
    try:
        run.log_series("train/loss", np.arange(10), np.linspace(1, 0.5, 10))
        wait_for_points(seeded, run.id, "train/loss", 10)
        tab.goto(f"/runs/{run.id}")
        page = tab.page
        chart = page.locator(".chart-box", has_text="train/loss").locator(".chart")
        expect(chart).to_have_attribute("data-drawn", "1")
        assert points(chart) == 10
        expect(page.locator("#live .badge")).to_have_text("running")

        run.log_series("train/loss", np.arange(10, 60), np.linspace(0.5, 0.1, 50))
        run.log({"val/acc": 0.5}, step=60)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.chart')].some("
            "el => el._chart && el._chart.u && el._chart.u.data[0].length === 60)"
        )
        new = page.locator("#new-charts .chart")
        expect(new).to_have_count(1)
        expect(new).to_have_attribute("data-drawn", "1")
    finally:
        run.finish()
    expect(page.locator("#live .badge")).to_have_text("finished")
    expect(page.locator("#live")).not_to_have_attribute("hx-trigger", re.compile("every"))


def wait_for_points(seeded: Seeded, run_id: str, key: str, n: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = httpx.get(
            f"{seeded.server.url}/api/runs/{run_id}/metrics",
            headers=bearer(str(seeded.server.token)),
        )
        if r.status_code == 200 and r.json()["metrics"].get(key, {}).get("count") == n:
            return
        time.sleep(0.05)
    raise AssertionError(f"the SDK did not deliver {n} points of {key}")


def test_unknown_runs_and_projects_get_an_html_404_page(tab: Tab) -> None:
    tab.allowed.append("status of 404")  # Chromium logs the failed document load itself
    for path in ("/runs/" + "0" * 32, "/projects/nowhere/runs", "/compare?runs=nope"):
        tab.goto(path, status=404)
        expect(tab.page.locator("h1")).to_contain_text("404")
        expect(tab.page.get_by_role("link", name="Back to the projects")).to_be_visible()
