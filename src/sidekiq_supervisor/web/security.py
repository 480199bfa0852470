"""The dashboard's protections: HTTP basic auth, CSRF tokens, and strict security headers.

One ASGI middleware wraps every human page (everything but the JSON API, its docs and the
health check, which keep their own rules):

- when ``SUPERVISOR_USERNAME`` and ``SUPERVISOR_PASSWORD`` are set, a request without them gets
  401 with a basic-auth challenge (both compared in constant time);
- a state-changing request (POST) must carry the CSRF token of its form, equal to the token in
  the ``supervisor_csrf`` cookie (double submit: it works across ``serve --workers`` processes
  without a shared secret), and must not come from another site (``Origin`` / ``Sec-Fetch-Site``);
- every answer carries a Content-Security-Policy that allows no inline script or style, and
  denies framing.
"""

from __future__ import annotations

import binascii
import hmac
import secrets
from base64 import b64decode
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import HTTPException, Request
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse

from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.web.paths import route_path

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSRF_COOKIE = "supervisor_csrf"
CSRF_FIELD = "csrf_token"
# Large enough for a restart confirmation of several thousand jids.
MAX_FORM_BYTES = 512 * 1024
# Routes that are not pages: the API and /metrics have their own tokens, and /docs is Swagger UI
# (with its own inline script; its assets are served under /docs/assets).
NOT_PAGES = ("/api/", "/docs", "/redoc", "/openapi.json", "/healthz", "/metrics")
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
CHALLENGE = {"WWW-Authenticate": 'Basic realm="sidekiq-supervisor", charset="UTF-8"'}


def is_page(path: str) -> bool:
    """Whether ``path`` (a route path: ``/api/v1/jobs`` under any root path) belongs to the human
    pages (and so to this module's rules)."""
    return not any(path == prefix.rstrip("/") or path.startswith(prefix) for prefix in NOT_PAGES)


def credentials_match(authorization: str, expected: tuple[str, str]) -> bool:
    """Whether a Basic ``Authorization`` header names the expected user and password.

    Both parts are always compared, each in constant time, so timing tells nothing about which
    one (or how much of it) was right.
    """
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user_ok = hmac.compare_digest(user.encode(), expected[0].encode())
    password_ok = hmac.compare_digest(password.encode(), expected[1].encode())
    return user_ok & password_ok


def csrf_token(request: Request) -> str:
    """The CSRF token that forms of this page must post back (set as a cookie by the middleware)."""
    token: str = request.scope["state"]["csrf_token"]
    return token


async def read_form(request: Request) -> dict[str, list[str]]:
    """The request's url-encoded form (what the pages' forms post), parsed once per request."""
    cached: dict[str, list[str]] | None = getattr(request.state, "form", None)
    if cached is not None:
        return cached
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise HTTPException(413, "the form is too large")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(413, "the form is too large")
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError as exc:
        raise HTTPException(400, "the form is not UTF-8") from exc
    request.state.form = form
    return form


async def require_csrf(request: Request) -> None:
    """A FastAPI dependency of every POST page: 403 unless the form's token is the cookie's."""
    posted = (await read_form(request)).get(CSRF_FIELD, [""])[0]
    cookie = request.cookies.get(CSRF_COOKIE)
    if not posted or not cookie or not hmac.compare_digest(posted.encode(), cookie.encode()):
        raise HTTPException(403, "the form is stale or forged (CSRF token mismatch); reload the page")


def _cross_site(headers: Headers) -> bool:
    if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return True
    origin = headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    return urlsplit(origin).netloc != headers.get("host")


class PageSecurity:
    """ASGI middleware applying basic auth, the CSRF cookie and the security headers to pages."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self._app = app
        self._credentials = settings.dashboard_credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then add the headers (and the CSRF cookie) to the answer."""
        if scope["type"] != "http" or not is_page(route_path(scope)):
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope["method"], headers)
        if refusal is not None:
            await refusal(scope, receive, _with_headers(send, None))
            return
        cookie = SimpleCookie(headers.get("cookie", "")).get(CSRF_COOKIE)
        token = cookie.value if cookie and cookie.value else None
        new_token = None if token else secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf_token"] = token or new_token
        await self._app(scope, receive, _with_headers(send, new_token))

    def _refusal(self, method: str, headers: Headers) -> PlainTextResponse | None:
        if self._credentials and not credentials_match(headers.get("authorization", ""), self._credentials):
            return PlainTextResponse("authentication required", 401, headers=CHALLENGE)
        if method not in ("GET", "HEAD", "OPTIONS") and _cross_site(headers):
            return PlainTextResponse("cross-site requests are refused", 403)
        return None


def _with_headers(send: Send, new_token: str | None) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            names = {name for name, _ in SECURITY_HEADERS}
            kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
            extra = list(SECURITY_HEADERS)
            if new_token is not None:
                cookie = f"{CSRF_COOKIE}={new_token}; Path=/; HttpOnly; SameSite=Strict"
                extra.append((b"set-cookie", cookie.encode()))
            message["headers"] = kept + extra
        await send(message)

    return send_with_headers
