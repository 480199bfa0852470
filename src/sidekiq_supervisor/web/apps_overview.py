"""What the overview of apps (the ``/apps`` page, ``GET /api/v1/apps``) reads: the running apps,
and the one ``AppsOverview`` of the running service.

Unprefixed, the overview lists every app; under ``/apps/NAME`` (``/apps/billing/api/v1/apps``),
that app alone, as ``/metrics`` does, so that an app's own token opens its own entry only.
"""

from __future__ import annotations

from fastapi import Request
from starlette.types import Scope

from sidekiq_supervisor.services.app_overview import DEADLINE_SECONDS, AppSource, AppsOverview
from sidekiq_supervisor.web.app_prefix import PREFIX
from sidekiq_supervisor.web.deps import RunningApps, Services, named_app, running_apps
from sidekiq_supervisor.web.paths import root_path

# Where the running service keeps its overview (made by the first request that needs it).
STATE_KEY = "apps_overview"


def overview_of(request: Request) -> AppsOverview:
    """The running service's ``AppsOverview``: one per start, since it remembers the reads under way."""
    apps = running_apps(request.scope)
    found: tuple[RunningApps, AppsOverview] | None = getattr(request.app.state, STATE_KEY, None)
    if found is None or found[0] is not apps:
        # Half the request deadline at most: the answer goes out before the service gives up on it.
        timeout = apps.default.settings.request_timeout_seconds
        found = (apps, AppsOverview(deadline_seconds=min(DEADLINE_SECONDS, timeout / 2)))
        setattr(request.app.state, STATE_KEY, found)
    return found[1]


def sources_of(request: Request) -> list[AppSource]:
    """The apps the overview shows: every app, or the app ``/apps/NAME`` names."""
    app = named_app(request.scope)
    chosen = list(running_apps(request.scope)) if app is None else [app]
    return [_source(services) for services in chosen]


def _source(services: Services) -> AppSource:
    return AppSource(
        services.name,
        services.sidekiq_monitor,
        redis_configured=services.redis_client is not None,
        ledger=services.exporter.ledger,
    )


def site_root(scope: Scope) -> str:
    """The prefix of the supervisor's own URLs: the root path without the ``/apps/NAME`` of an app."""
    root = root_path(scope)
    app = named_app(scope)
    return root if app is None else root.removesuffix(PREFIX + app.name)


def app_url(root: str, name: str, path: str = "/") -> str:
    """The URL of ``path`` of the app ``name`` (its overview by default), under ``root``."""
    return f"{root}{PREFIX}{name}{path}"
