"""The overview of apps in a real browser, with one app's Redis down: the page renders, lists both
apps, says which one's Redis is unreachable, and its link into the other app works."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import PASSWORD, USER, assert_fits_and_photograph, each_look
from tests.conftest import redis_test_url
from tests.live_service import Service, running_service
from tests.receivers import free_port

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def two_apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service of two apps: shop on the tests' Redis, billing on a port nothing listens on."""
    workdir: Path = tmp_path_factory.mktemp("apps-overview")
    config = workdir / "apps.toml"
    config.write_text(
        f'[apps.shop]\nredis_url = "{redis_test_url()}"\n\n'
        f'[apps.billing]\nredis_url = "redis://127.0.0.1:{free_port()}/0"\n'
    )
    env = {
        "REDIS_URL": redis_test_url(),
        "SUPERVISOR_CONFIG": str(config),
        "SUPERVISOR_USERNAME": USER,
        "SUPERVISOR_PASSWORD": PASSWORD,
    }
    with running_service(f"sqlite:///{workdir / 'ledger.db'}", workdir, **env) as service:
        yield service


def test_the_overview_of_apps_shows_the_app_whose_redis_is_down_and_links_into_the_other(page, two_apps):
    response = page.goto(two_apps.url + "/apps")
    assert response is not None and response.status == 200

    rows = page.locator("#apps tbody tr")
    assert [row.get_attribute("data-app") for row in rows.all()] == ["shop", "billing"]
    billing = page.locator('#apps tr[data-app="billing"]')
    assert billing.get_attribute("data-redis") == "unreachable"
    assert billing.get_by_text("Redis unreachable").is_visible()
    assert billing.locator('[data-figure="processed_today"]').inner_text() == "—"
    shop = page.locator('#apps tr[data-app="shop"]')
    assert shop.get_attribute("data-redis") == "ok"
    assert shop.get_by_text("reachable", exact=True).is_visible()

    shop.locator("a.app-link").click()
    page.wait_for_url("**/apps/shop/")
    assert page.locator("h1").inner_text() == "Overview"


def test_the_overview_of_apps_fits_a_phone_in_both_schemes(browser, two_apps):
    for look, width, scheme in each_look(browser):
        look.goto(two_apps.url + "/apps")
        assert look.locator("#apps tbody tr").count() == 2
        assert_fits_and_photograph(look, "apps", width, scheme)
