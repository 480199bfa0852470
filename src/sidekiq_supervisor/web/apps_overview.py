"""What the overview of apps (the ``/apps`` page, ``GET /api/v1/apps``) reads: the running apps,
and the one ``AppsOverview`` of the running service.

Unprefixed, the overview lists every app; under ``/apps/NAME`` (``/apps/billing/api/v1/apps``),
that app alone, as ``/metrics`` does, so that an app's own token opens its own entry only.
"""

from __future__ import annotations

from fastapi import Request

from sidekiq_supervisor.services.app_overview import AppSource, AppsOverview
from sidekiq_supervisor.web.deps import Services, named_app, running_apps
from sidekiq_supervisor.web.paths import APPS_PREFIX


def overview_of(request: Request) -> AppsOverview:
    """The running service's ``AppsOverview`` (one per start: it remembers the reads under way)."""
    return running_apps(request.scope).overview


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


def app_url(root: str, name: str, path: str = "/") -> str:
    """The URL of ``path`` of the app ``name`` (its overview by default), under ``root``."""
    return f"{root}{APPS_PREFIX}{name}{path}"
