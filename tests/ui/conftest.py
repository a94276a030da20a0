"""Browser fixtures: Debian's Chromium driven by Playwright against a real server on 127.0.0.1.

The UI tests run on SQLite only (their own app from ``Settings(home=...)``), against one server
filled once per module through the SDK. Each test gets a fresh browser context; every console
error and uncaught page error fails the test. Under CI a missing Chromium is a failure, not a
skip (``make test`` installs it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, sync_playwright

import shipyard
from shipyard.app import create_app
from shipyard.client._config import ClientSettings
from shipyard.config import Settings
from shipyard.ui.render import COOKIE
from tests.conftest import ServerThread

CHROMIUM = Path(os.environ.get("SHIPYARD_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SERIES_BLUE = (0x4E, 0x79, 0xA7)  # views.PALETTE[0], the colour of a single run's line
PROJECT = "digits"
# Where the tests leave screenshots; `SHIPYARD_SCREENSHOTS=docs/screenshots` refreshes the docs.
SCREENSHOTS = os.environ.get("SHIPYARD_SCREENSHOTS")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole run."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(
                f"Chromium is not installed at {CHROMIUM}: the browser tests must run in CI; "
                "`make test` installs Debian's chromium (apt-get install -y chromium)"
            )
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (make test installs it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Tab:
    """A browser page on the test server that records console and page errors."""

    page: Page
    base: str
    errors: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)  # substrings of expected console errors

    def goto(self, path: str, status: int = 200) -> None:
        response = self.page.goto(self.base + path)
        assert response is not None and response.status == status, path

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in self.allowed)]


def open_tab(browser: Browser, base: str) -> tuple[Tab, Callable[[], None]]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    tab = Tab(page, base)

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            tab.errors.append(f"console: {msg.text} at {msg.location}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: tab.errors.append(f"pageerror: {exc}"))
    return tab, context.close


def screenshot(tab: Tab, name: str, tmp_path: Path) -> Path:
    """Save a screenshot of the page (to SHIPYARD_SCREENSHOTS when set)."""
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    tab.page.screenshot(path=str(path), full_page=False)
    return path


def drawn_pixels(chart: Locator, rgb: tuple[int, int, int] | None = None) -> int:
    """Pixels painted on a chart's canvas (of about colour ``rgb``, when given)."""
    return int(
        chart.evaluate(
            """(el, rgb) => {
                const c = el.querySelector("canvas");
                if (!c) return 0;
                const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 0; i < d.length; i += 4) {
                    if (d[i + 3] === 0) continue;
                    if (!rgb || (Math.abs(d[i] - rgb[0]) < 40 && Math.abs(d[i + 1] - rgb[1]) < 40
                        && Math.abs(d[i + 2] - rgb[2]) < 40)) n++;
                }
                return n;
            }""",
            list(rgb) if rgb else None,
        )
    )


def points(chart: Locator) -> int:
    """How many x values the chart holds."""
    return int(chart.evaluate("el => el._chart && el._chart.u ? el._chart.u.data[0].length : 0"))


@dataclass
class Seeded:
    """What the module's server holds."""

    server: ServerThread
    sdk: ClientSettings
    runs: dict[str, str]  # name -> id
    featured: str  # the run with images, checkpoints, artifacts and system metrics


def png(value: int) -> np.ndarray:
    img = np.zeros((16, 16, 3), dtype=np.uint8)
    img[:, : value + 1] = (255, 128, 0)
    return img


def seed(sdk: ClientSettings, tmp: Path) -> tuple[dict[str, str], str]:
    """Twelve finished runs of a small sweep, and one run with everything a run can log."""
    ids: dict[str, str] = {}
    steps = np.arange(200)
    for i in range(12):
        lr = (0.1, 0.01, 0.001)[i % 3]
        run = shipyard.init(
            project=PROJECT,
            name=f"mlp-{i:02d}",
            config={"lr": lr, "seed": i, "optimizer": {"name": "adam" if i % 2 else "sgd"}},
            tags=["sweep"],
            settings=sdk,
            system_metrics=False,
        )
        run.log_series("train/loss", steps, np.exp(-steps / (50 + 10 * i)) + 0.01 * i)
        run.log_series("val/acc", steps, 1 - np.exp(-steps / (40 + 5 * i)) - 0.01 * i)
        run.finish()
        ids[run.name] = run.id
    ckpt = tmp / "model.pt"
    ckpt.write_bytes(b"weights" * 100)
    plots = tmp / "plots"
    (plots / "deep").mkdir(parents=True)
    (plots / "confusion.csv").write_text("a,b\n1,2\n")
    (plots / "deep" / "notes.txt").write_text("hello")
    run = shipyard.init(
        project="vision",
        name="resnet-featured",
        config={"lr": 0.05, "arch": {"name": "resnet", "depth": 18}, "augment": True},
        notes="the run every section has something for",
        settings=sdk,
        system_metrics=False,
    )
    n = 20_000
    s = np.arange(n)
    run.log_series("train/loss", s, 1 / (1 + s / 500) + 0.05 * np.sin(s / 20))
    run.log_series("val/acc", np.arange(0, n, 100), np.linspace(0.1, 0.93, n // 100))
    for step in range(0, 50, 10):
        run.log(
            {"system/cpu_percent": 40.0 + step, "system/memory_percent": 30.0 + step}, step=step
        )
        run.log({"system/gpu0_util_percent": 80.0, "system/gpu0_memory_percent": 50.0}, step=step)
    for step in range(4):
        run.log({"samples": shipyard.Image(png(step * 3), caption=f"step {step}")}, step=step)
    run.log_checkpoint(ckpt, metrics={"val/acc": 0.81}, step=100, name="epoch1.pt")
    run.log_checkpoint(ckpt, metrics={"val/acc": 0.93}, step=200, name="epoch2.pt")
    run.log_checkpoint(ckpt, metrics={"val/acc": 0.90}, step=300, name="epoch3.pt")
    run.log_artifact(plots)
    run.finish()
    ids[run.name] = run.id
    return ids, run.id


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """A server on SQLite filled with runs through the SDK, shared by a module's tests."""
    home = tmp_path_factory.mktemp("ui-home")
    app = create_app(Settings(home=home / "server"))
    with ServerThread(app) as server:
        sdk = ClientSettings(url=server.url, home=home / "client", token=server.token)
        ids, featured = seed(sdk, home)
        yield Seeded(server, sdk, ids, featured)


@pytest.fixture
def tab(browser: Browser, seeded: Seeded) -> Iterator[Tab]:
    """A fresh browser context on the seeded server, signed in with the local token (as the
    login link would); fails the test on any console error."""
    t, close = open_tab(browser, seeded.server.url)
    t.page.context.add_cookies(
        [{"name": COOKIE, "value": str(seeded.server.token), "url": seeded.server.url}]
    )
    yield t
    close()
    assert t.unexpected_errors() == [], t.errors
