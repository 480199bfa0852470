"""The app served under a root path (``/apps/billing``, as a ``Mount`` serves it): every URL its pages
give out carries the prefix, and the middlewares classify requests by the path within it.

The app is driven through httpx's ASGI transport with ``root_path`` set: the request's path is the
whole path (``/apps/billing/jobs``) and ``root_path`` its prefix, as Starlette's ``Mount`` and the
ASGI spec have it. Its lifespan runs on the transport's own event loop (a blocking portal), so
reports reach the writer as from a server.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI

from sidekiq_supervisor.services.sidekiq_monitor import SidekiqMonitor
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.web.app import create_app
from sidekiq_supervisor.web.deadline import RequestDeadline
from sidekiq_supervisor.web.monitor import create_monitor_app
from tests.sidekiq_fixtures import VERSIONS, load, running_jids
from tests.web.pages.conftest import csrf_of
from tests.web.pages.dataset import build, chunks

ROOT = "/apps/billing"
# Attributes holding a URL: links, forms, scripts, stylesheets, and what scripts fetch (data-url).
URL_ATTRIBUTE = re.compile(r'\s(href|action|src|data-[a-z-]*url)="([^"]*)"')
# The main navigation, by route path, as today's site (at the root) shows it.
NAV = [("/", "Overview"), ("/jobs", "Jobs"), ("/durations", "Durations"), ("/restart", "Restart"),
       ("/recoveries", "Recoveries"), ("/alerts", "Alerts"), ("/sidekiq", "Sidekiq")]  # fmt: skip
# Words of the route paths; any other segment is a name (a jid, a queue, a set entry's key).
ROUTE_WORDS = frozenset(
    [
        "jobs",
        "durations",
        "restart",
        "recoveries",
        "alerts",
        "sidekiq",
        "busy",
        "queues",
        "retries",
        "scheduled",
        "morgue",
        "metrics",
        "profiles",
        "clear",
        "data",
        "stats",
    ]
)
# Every page of the dashboard and of /sidekiq must be among the pages a crawl from / opens.
PAGES = {
    "/", "/jobs", "/jobs/*", "/durations", "/restart", "/recoveries", "/alerts",
    "/sidekiq", "/sidekiq/busy", "/sidekiq/queues", "/sidekiq/queues/*", "/sidekiq/queues/*/clear",
    "/sidekiq/retries", "/sidekiq/retries/*", "/sidekiq/scheduled", "/sidekiq/scheduled/*",
    "/sidekiq/morgue", "/sidekiq/morgue/*", "/sidekiq/metrics", "/sidekiq/metrics/*", "/sidekiq/profiles",
}  # fmt: skip


@dataclass
class Site:
    """An app served under ``root``, with a client that keeps its cookies (the CSRF token's)."""

    portal: BlockingPortal
    client: httpx2.AsyncClient
    root: str

    def get(self, url: str, **kwargs: Any) -> httpx2.Response:
        """GET ``url`` (a whole path, prefix included, as a browser asks for it)."""
        return self.portal.call(partial(self.client.get, url, **kwargs))

    def post(self, url: str, **kwargs: Any) -> httpx2.Response:
        """POST to ``url`` (a whole path)."""
        return self.portal.call(partial(self.client.post, url, **kwargs))


@contextmanager
def served(app: FastAPI, root: str) -> Iterator[Site]:
    """``app`` with its lifespan started, reached through httpx's ASGI transport under ``root``."""
    transport = httpx2.ASGITransport(app=app, root_path=root)
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        client = httpx2.AsyncClient(transport=transport, base_url="http://test")
        with portal.wrap_async_context_manager(client):
            yield Site(portal, client, root)


def urls_of(html: str) -> list[tuple[str, str]]:
    """Every ``(attribute, URL)`` of the page, entities decoded."""
    return [(name, unescape(value)) for name, value in URL_ATTRIBUTE.findall(html)]


def outside_the_site(url: str) -> bool:
    """A URL that names no path of the site: another site's, a fragment, a query on this page."""
    return url.startswith(("#", "?")) or urlsplit(url).scheme in ("http", "https", "mailto")


def wrong_urls(html: str, root: str) -> list[str]:
    """The URLs of the page that point into the site without its root path."""
    return [
        f"{name}={url}"
        for name, url in urls_of(html)
        if not outside_the_site(url) and not (url.startswith(root + "/") and not url.startswith(root + "//"))
    ]


def shape(route: str) -> str:
    """A route path with its names starred: ``/jobs/abc`` → ``/jobs/*`` (one page of each kind)."""
    if route.startswith("/static/"):
        return route
    return "/".join(part if not part or part in ROUTE_WORDS else "*" for part in route.split("/")) or "/"


def crawl(site: Site) -> dict[str, str]:
    """Open every page a link reaches from the overview (one of each shape), checking each page's
    URLs as it goes; ``{shape: HTML}`` of the pages opened."""
    pages: dict[str, str] = {}
    queue = [site.root + "/"]
    while queue:
        url = queue.pop(0)
        route = urlsplit(url).path.removeprefix(site.root)
        if shape(route) in pages:
            continue
        response = site.get(url)
        assert response.status_code == 200, (url, response.status_code)
        pages[shape(route)] = response.text
        if not response.headers["content-type"].startswith("text/html"):
            continue
        assert wrong_urls(response.text, site.root) == [], url
        queue += [found for name, found in urls_of(response.text) if name in ("href", "src", "data-url")
                  and not outside_the_site(found)]  # fmt: skip
    return pages


@dataclass
class Filled:
    """Settings of an app on the filled ledger and Redis, the time the Sidekiq dump was taken and
    the Sidekiq line that wrote it."""

    settings: Settings
    captured_at: float
    version: str

    @property
    def pages(self) -> set[str]:
        """The pages a crawl must open: all of them, but a class's metrics on Sidekiq 6, which
        keeps none (its metrics page says so and links no class)."""
        return PAGES - {"/sidekiq/metrics/*"} if self.version.startswith("6.") else PAGES

    @contextmanager
    def served(self, root: str) -> Iterator[Site]:
        """The app on them under ``root``; its /sidekiq pages read the dump's time as now (so the
        dump's metrics are recent)."""
        app = create_app(self.settings)
        with served(app, root) as site:
            clock = self.captured_at
            # After the lifespan, which built the app's services: the same, with a monitor on the clock.
            apps, default = app.state.apps, app.state.apps.default
            monitor = SidekiqMonitor.from_url(self.settings.redis_url, clock=lambda: clock)
            apps.by_name[default.name] = replace(default, sidekiq_monitor=monitor)
            try:
                yield site
            finally:
                monitor.close()


@pytest.fixture(params=VERSIONS)
def filled(request, settings: Settings, redis_client) -> Filled:
    """The dashboard's dataset in the ledger and a real Sidekiq dump in Redis (each line's); the
    jobs the dump runs are in the ledger too, so /sidekiq links them to their pages."""
    dump = load(redis_client, request.param)
    for key, entry in dump["keys"].items():
        if entry["ttl"] > 0:
            redis_client.persist(key)  # the heartbeat must not expire mid-test
    data = build()
    for jid in sorted(running_jids(dump)):
        data.add("queued", jid, "HardJob", data.now - 60, [1])
    with served(create_app(settings), ROOT) as site:
        for body in chunks(data.events):
            response = site.post(ROOT + "/api/v1/events", json=body)  # the API, under the prefix too
            assert response.status_code == 200, response.text
    return Filled(settings, dump["captured_at"], request.param)


@pytest.mark.parametrize("root", [ROOT, ""], ids=["prefixed", "unprefixed"])
def test_every_page_answers_and_every_url_it_gives_carries_the_root_path(filled: Filled, root: str):
    with filled.served(root) as site:
        pages = crawl(site)

    assert filled.pages - pages.keys() == set()
    assert {"/static/app.css", "/static/app.js", "/static/theme.js", "/static/monitor.css",
            "/static/monitor.js"} <= pages.keys()  # fmt: skip
    overview = pages["/"]
    nav = re.findall(r'<a href="([^"]*)"(?: aria-current="page")?>(\w+)</a>', overview.split("</nav>")[0])
    assert nav == [(root + route, label) for route, label in NAV]
    assert f'data-url="{root}/sidekiq/stats"' in pages["/sidekiq"]
    assert f'href="{root}/jobs/' in pages["/sidekiq/busy"]  # a running job the ledger knows
    if not root:  # today's URLs, exactly
        assert all(not url.startswith("/apps/") for page in pages.values() for _name, url in urls_of(page))


@pytest.mark.parametrize("root", [ROOT, ""], ids=["prefixed", "unprefixed"])
def test_the_navigation_marks_the_current_page_under_the_root_path(
    settings: Settings, redis_client, root: str
):
    load(redis_client, "8.1.7")
    with served(create_app(settings), root) as site:
        jobs = site.get(root + "/jobs/nothing-here").text
        queues = site.get(root + "/sidekiq/queues").text
        overview = site.get(root + "/").text

    def current(html: str) -> list[str]:
        return re.findall(r'<a href="([^"]*)" aria-current="page">', html)

    assert current(jobs) == [root + "/jobs"]
    assert f'<p><a href="{root}/jobs">Back to the jobs</a></p>' in jobs  # the 404 page's link
    assert current(queues) == [root + "/sidekiq", root + "/sidekiq/queues"]  # the main nav, then the tab
    assert current(overview) == [root + "/"]


def test_forms_post_under_the_root_path_and_their_redirects_carry_it(filled: Filled):
    with filled.served(ROOT) as site:
        restart = site.get(ROOT + "/restart?q=tenant-9").text
        assert f'action="{ROOT}/restart"' in restart
        token = csrf_of(restart)
        done = site.post(ROOT + "/restart", data={"csrf_token": token, "q": "tenant-9", "jids": "nothing"})
        assert done.status_code == 200
        assert wrong_urls(done.text, ROOT) == []
        assert f'href="{ROOT}/restart?q=tenant-9"' in done.text

        alerts = site.post(ROOT + "/alerts/test", data={"csrf_token": token})
        assert (alerts.status_code, alerts.headers["location"]) == (303, ROOT + "/alerts?tested=-1")

        retries = site.get(ROOT + "/sidekiq/retries").text
        rows = re.findall(r'name="sel" value="(\d+)"', retries)
        back = re.search(r'name="back" value="([^"]*)"', retries)
        assert back and back.group(1) == ROOT + "/sidekiq/retries"
        form = {"csrf_token": token, "back": back.group(1), "action": "delete", "sel": rows[:1],
                "m": re.findall(r'name="m" value="([^"]+)"', retries)}  # fmt: skip
        deleted = site.post(ROOT + "/sidekiq/retries", data=form)
        assert (deleted.status_code, deleted.headers["location"]) == (
            303,
            ROOT + "/sidekiq/retries?done=delete&n=1",
        )

        quiet = site.post(ROOT + "/sidekiq/busy", data={"csrf_token": token, "action": "quiet_all"})
        assert quiet.headers["location"] == ROOT + "/sidekiq/busy?done=quiet&n=1"
        # A ``back`` outside the monitor (or outside this root path) goes to the monitor's home.
        away = site.post(ROOT + "/sidekiq/retries", data={**form, "back": "/sidekiq/retries"})
        assert away.headers["location"].startswith(ROOT + "/sidekiq?done=")
        assert site.get(ROOT + "/sidekiq/dashboard/stats").headers["location"] == ROOT + "/sidekiq/stats"
        assert site.get(ROOT + "/sidekiq/retries/0-gone").headers["location"] == ROOT + "/sidekiq/retries"


def test_the_monitor_alone_links_and_redirects_under_its_root_path(settings: Settings, redis_client):
    load(redis_client, "8.1.7")
    with served(create_monitor_app(settings), ROOT) as site:
        home = site.get(ROOT + "/")
        dashboard = site.get(ROOT + "/sidekiq")
    assert home.headers["location"] == ROOT + "/sidekiq"
    assert dashboard.status_code == 200
    assert wrong_urls(dashboard.text, ROOT) == []
    assert re.findall(r'<nav aria-label="Main">\s*<a href="([^"]*)"', dashboard.text) == [ROOT + "/sidekiq"]


def test_page_security_guards_prefixed_pages_and_not_the_prefixed_api(settings: Settings):
    guarded = settings.model_copy(update={"username": "ops", "password": "s3cret"})
    with served(create_app(guarded), ROOT) as site:
        for path in ("/", "/jobs", "/sidekiq/queues", "/static/app.css"):
            refused = site.get(ROOT + path)
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"].startswith("Basic ")
            page = site.get(ROOT + path, auth=("ops", "s3cret"))
            assert page.status_code == 200, path
            assert "content-security-policy" in page.headers
        assert site.post(ROOT + "/restart", data={"jids": "x"}).status_code == 401
        # One CSRF cookie for all the apps of the site: its path is the site's root, not the app's.
        (cookie,) = site.client.cookies.jar
        assert (cookie.name, cookie.path) == ("supervisor_csrf", "/")

        api = site.get(ROOT + "/api/v1/stats")
        assert api.status_code == 200
        assert "content-security-policy" not in api.headers  # not a page: the API keeps its own rules
        assert site.get(ROOT + "/healthz").status_code == 200


@pytest.mark.parametrize(
    ("path", "kept"),
    [("/jobs", False), ("/sidekiq/queues", True), ("/restart", True), ("/static/app.css", True)],
)
def test_the_deadline_exempts_routes_by_their_path_under_the_root_path(path: str, kept: bool):
    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(0.3)  # longer than the deadline: only an exempt route may finish
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    async def request() -> int:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        scope = {"type": "http", "method": "GET", "path": ROOT + path, "root_path": ROOT, "headers": [],
                 "query_string": b""}  # fmt: skip
        await RequestDeadline(slow_app, seconds=0.05)(scope, receive, send)
        return int(sent[0]["status"])

    assert asyncio.run(request()) == (200 if kept else 503)
