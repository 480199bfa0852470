"""Fixtures of the ``/sidekiq`` pages' server-side tests: the monitor app alone, on a Redis holding a
real Sidekiq dump, its clock at the dump's capture time; and what the dump holds, computed here."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sidekiq_supervisor.services.sidekiq_monitor import SidekiqMonitor
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.web.monitor import create_monitor_app
from tests.conftest import redis_test_url
from tests.sidekiq_fixtures import load

# The dumps every page test runs on; 6.4.1 has tests of its own where its layout differs.
LAYOUTS = ("7.3.10", "8.1.7")


@dataclass
class Loaded:
    """A client on the monitor app, and the dump its Redis holds."""

    client: TestClient
    dump: dict[str, Any]
    version: str

    def value(self, key: str) -> Any:
        return self.dump["keys"][key]["value"]

    def members(self, key: str) -> list[str]:
        """A zset's members, by score."""
        return [member for member, _score in sorted(self.value(key), key=lambda pair: pair[1])]

    def expected_stats(self) -> dict[str, int]:
        """The summary figures, computed from the dump the way Sidekiq::Stats does."""
        processes = self.value("processes")
        return {
            "processed": int(self.value("stat:processed")),
            "failed": int(self.value("stat:failed")),
            "busy": sum(int(self.value(identity)["busy"]) for identity in processes),
            "enqueued": sum(len(self.value(f"queue:{name}")) for name in self.value("queues")),
            "retries": len(self.value("retry")),
            "scheduled": len(self.value("schedule")),
            "dead": len(self.value("dead")),
        }


def monitor_client(settings: Settings, clock: float | None = None) -> TestClient:
    """A client on the monitor app alone; with ``clock``, its monitor reads time from it."""
    app = create_monitor_app(settings)
    if clock is not None:
        app.state.sidekiq_monitor = SidekiqMonitor.from_url(settings.redis_url, clock=lambda: clock)
    return TestClient(app)


def open_monitor(redis_client, version: str) -> Iterator[Loaded]:
    dump = load(redis_client, version)
    for key, entry in dump["keys"].items():
        if entry["ttl"] > 0:
            redis_client.persist(key)  # heartbeats expire in a minute; the tests must not race them
    settings = Settings(redis_url=redis_test_url(), database_url="sqlite://")
    with monitor_client(settings, dump["captured_at"]) as client:
        yield Loaded(client, dump, version)


@pytest.fixture(params=LAYOUTS)
def loaded(request, redis_client) -> Iterator[Loaded]:
    """The monitor on the Sidekiq 7 and the Sidekiq 8 dumps."""
    yield from open_monitor(redis_client, request.param)


@pytest.fixture
def loaded6(redis_client) -> Iterator[Loaded]:
    """The monitor on the Sidekiq 6.4.1 dump."""
    yield from open_monitor(redis_client, "6.4.1")


def data_values(html: str, attribute: str) -> dict[str, str]:
    """``{key: text}`` of every element ``attribute="key"`` whose content is plain text."""
    return {
        key: unescape(text).strip() for key, text in re.findall(rf'{attribute}="([^"]*)"[^>]*>([^<]*)<', html)
    }


def csrf_of(html: str) -> str:
    """The CSRF token of the page's forms."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def tokens(html: str) -> list[str]:
    """The member tokens (``m``) of a set page's form, in row order."""
    return re.findall(r'name="m" value="([^"]+)"', html)


def jid_of(member: str) -> str:
    return json.loads(member)["jid"]
