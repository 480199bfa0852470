"""Browser tests: Debian's Chromium driven by Playwright against a real ``serve`` process.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium``. Screenshots go to
``$SUPERVISOR_SCREENSHOTS`` or a temporary folder, whose path the terminal summary prints.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.conftest import redis_test_url
from tests.live_service import Service, running_service
from tests.receivers import free_port
from tests.web.pages.dataset import Dataset, build, chunks

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)

USER, PASSWORD = "ops", "correct horse"
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}
_screenshots: list[Path] = []


def screenshot_folder() -> Path:
    """Where screenshots go (created once per session)."""
    if not _screenshots:
        chosen = os.environ.get("SUPERVISOR_SCREENSHOTS") or tempfile.mkdtemp(prefix="supervisor-screens-")
        _screenshots.append(Path(chosen))
        _screenshots[0].mkdir(parents=True, exist_ok=True)
    return _screenshots[0]


def assert_fits_and_photograph(page, name: str, width_name: str, scheme: str) -> None:
    """At phone width the page must not scroll sideways; at any width, save its screenshot."""
    if width_name == "phone":
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at phone width"
    page.screenshot(path=str(screenshot_folder() / f"{name}-{width_name}-{scheme}.png"), full_page=True)


def each_look(browser) -> Iterator[tuple[Any, str, str]]:
    """A signed-in page at each width (desktop, phone) in each scheme (light, dark), with the
    width's and the scheme's names: a page is photographed in all four."""
    for width_name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        for scheme in ("light", "dark"):
            context = browser.new_context(
                viewport=viewport,
                color_scheme=scheme,
                http_credentials={"username": USER, "password": PASSWORD},
            )
            try:
                yield context.new_page(), width_name, scheme
            finally:
                context.close()


def pytest_terminal_summary(terminalreporter) -> None:
    """Print the screenshot folder whatever the capture mode."""
    if _screenshots:
        terminalreporter.write_line(f"dashboard screenshots: {_screenshots[0]}")


@contextmanager
def dashboard_service(workdir: Path, data: Dataset | None, **settings: str) -> Iterator[Service]:
    """A service on a new SQLite ledger and the tests' Redis, with page credentials, holding
    ``data`` (``settings``: more of its environment)."""
    env = {
        "REDIS_URL": redis_test_url(),
        "SUPERVISOR_USERNAME": USER,
        "SUPERVISOR_PASSWORD": PASSWORD,
        # The alert loop on, its webhook down: the Alerts page has alerts and failed deliveries.
        "SUPERVISOR_NOTIFY": f"json://127.0.0.1:{free_port()}/hooks/sidekiq",
        "SUPERVISOR_ALERT_UNCOMPLETED_MINUTES": "5",
        "SUPERVISOR_ALERT_INTERVAL_SECONDS": "1",
        **settings,
    }
    with running_service(f"sqlite:///{workdir / 'ledger.db'}", workdir, **env) as service:
        if data is not None:
            with httpx2.Client(base_url=service.url, timeout=30, trust_env=False) as client:
                for body in chunks(data.events):
                    assert client.post("/api/v1/events", json=body).status_code == 200
        yield service


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    """The data the shared service holds."""
    return build()


@pytest.fixture(scope="session")
def service(tmp_path_factory, dataset) -> Iterator[Service]:
    """The shared service (read-only tests only: restarts get their own)."""
    with dashboard_service(tmp_path_factory.mktemp("dashboard"), dataset) as service:
        yield service


# Per module, not per session: Playwright's sync API keeps an asyncio loop running in the main
# thread while it is started, and any later test calling asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium."""
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    """A desktop page logged in with the page credentials; fails the test if any dialog opens."""
    context = browser.new_context(viewport=DESKTOP, http_credentials={"username": USER, "password": PASSWORD})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.dialogs = dialogs
    yield page
    context.close()
    assert dialogs == [], f"a script from job data ran: {dialogs}"
