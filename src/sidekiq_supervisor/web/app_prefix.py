"""``/apps/NAME/...``: every URL of an app under its name's prefix (the unprefixed URLs are the
default app's). Pure ASGI middleware, outermost, so that everything inside sees one app's request.

A prefixed request keeps its full ``path`` and gains the prefix in ``root_path``, as under
Starlette's ``Mount``: the routes match the rest, and the pages build their links from
``root_path``. The scope carries the app's Services (``web.deps.services_of`` reads them).
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from sidekiq_supervisor.apps import APP_NAME
from sidekiq_supervisor.web.deps import APP_SCOPE_KEY, PREFIXED_SCOPE_KEY, RunningApps, Services
from sidekiq_supervisor.web.paths import APPS_PREFIX, route_path


class AppPrefix:
    """Routes ``/apps/NAME/rest`` to the app NAME's ``/rest``; 404 naming an unknown NAME."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hand the request on, with the Services of the app it is for."""
        apps: RunningApps | None = getattr(scope["app"].state, "apps", None)
        if scope["type"] not in ("http", "websocket") or apps is None:
            await self.app(scope, receive, send)  # the lifespan, or an app not started
            return
        name, services, rest = _split(apps, route_path(scope))
        if name is None:
            scope[APP_SCOPE_KEY] = services  # in place: copying the scope costs every request
            await self.app(scope, receive, send)
            return
        if services is None:
            await _unknown_app(name, scope, send)
            return
        root_path = scope.get("root_path", "") + APPS_PREFIX + name
        if rest is None:  # /apps/NAME: its overview is /apps/NAME/
            await _redirect(root_path + "/", scope, send)
            return
        scope["root_path"] = root_path
        scope[APP_SCOPE_KEY] = services
        scope[PREFIXED_SCOPE_KEY] = True
        await self.app(scope, receive, send)


def _split(apps: RunningApps, path: str) -> tuple[str | None, Services | None, str | None]:
    """(the app's name, its Services, the route path within it) of a request's ``path``.

    The name is None for the default app's paths (no prefix, or ``/apps/`` alone: the overview);
    the Services are None for an unknown name; the route path is None for ``/apps/NAME`` without
    its slash.
    """
    if not path.startswith(APPS_PREFIX):
        return None, apps.default, path
    name, slash, rest = path[len(APPS_PREFIX) :].partition("/")
    if not name:
        return None, apps.default, path
    return name, apps.get(name), (slash + rest if slash else None)


def app_route(scope: Scope) -> tuple[Services, str] | None:
    """The Services of the app a request is for and its route path within that app, as
    ``AppPrefix`` hands them on, without changing the scope; None when ``AppPrefix`` would answer
    the request itself (an unknown app, ``/apps/NAME`` without a slash) or the app has not started."""
    apps: RunningApps | None = getattr(scope["app"].state, "apps", None)
    if apps is None:
        return None
    _name, services, path = _split(apps, route_path(scope))
    return None if services is None or path is None else (services, path)


async def _unknown_app(name: str, scope: Scope, send: Send) -> None:
    shown = name if APP_NAME.fullmatch(name) else name[:64]
    body = orjson.dumps({"error": f"no app named {shown!r}", "app": shown})
    await _respond(scope, send, 404, body, [(b"content-type", b"application/json")])


async def _redirect(location: str, scope: Scope, send: Send) -> None:
    query = scope.get("query_string", b"")
    target = location.encode("latin-1", "replace") + (b"?" + query if query else b"")
    await _respond(scope, send, 307, b"", [(b"location", target)])


async def _respond(
    scope: Scope, send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    if scope["type"] != "http":
        await send({"type": "websocket.close", "code": 1008})
        return
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
