"""Where a request sits under its root path: the route path that classifies it, and the prefix of
the URLs a page gives out.

An app served under a prefix (a ``Mount``, a proxy that sets ``root_path``, ``/apps/NAME`` for one
of several apps) gets ``scope["path"]`` whole, ``/apps/billing/jobs``, and the prefix in
``scope["root_path"]``, ``/apps/billing``. The routes match the path within the root path
(``/jobs``), so the middlewares classify a request by that same path, and every URL a page writes
(links, forms, redirects, static assets, what the scripts fetch) begins with the root path.
"""

from __future__ import annotations

from fastapi import Request
from starlette._utils import get_route_path
from starlette.types import Scope

from sidekiq_supervisor.web.deps import named_app

# Each app's URLs, when the supervisor watches several: /apps/NAME/... (web.app_prefix).
APPS_PREFIX = "/apps/"


def route_path(scope: Scope) -> str:
    """The request's path within its root path: ``/jobs`` for ``/apps/billing/jobs``."""
    # Starlette's own rule (what its router matches), so a middleware never classifies a request
    # otherwise than the route that answers it.
    return get_route_path(scope)


def root_path(scope: Scope) -> str:
    """The prefix of every URL the app gives out: ``/apps/billing``, or empty at the site's root."""
    root: str = scope.get("root_path", "")
    return root.rstrip("/")


def under_root(request: Request, path: str) -> str:
    """The URL of ``path`` (a route path, with its query if any) for the browser: under the root path."""
    return root_path(request.scope) + path


def site_root(scope: Scope) -> str:
    """The prefix of the supervisor's own URLs (the overview of apps, /apps): the root path
    without the ``/apps/NAME`` of the app a request is for."""
    root = root_path(scope)
    app = named_app(scope)
    return root if app is None else root.removesuffix(APPS_PREFIX + app.name)
