"""Access to the JSON API: when ``SUPERVISOR_API_TOKEN`` is set, every /api/v1 route wants a token.

A token comes as ``Authorization: Bearer <token>``, or as the password of HTTP basic auth (the
user of ``http://TOKEN@host`` when there is no password), since a URL with credentials in
``SIDEKIQ_SUPERVISOR_HOST`` is how many apps are deployed.
"""

from __future__ import annotations

import binascii
import hmac
from base64 import b64decode

from fastapi import HTTPException, Request

from sidekiq_supervisor.web.deps import named_app, running_apps, services_of

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="sidekiq-supervisor"'}


async def require_api_token(request: Request) -> None:
    """A FastAPI dependency: 401 unless the request carries one of the configured tokens."""
    tokens = services_of(request.scope).api_tokens
    if not tokens:
        return
    presented = presented_token(request.headers.get("authorization", ""))
    if presented is None or not matches_any(presented, tokens):
        raise HTTPException(401, "a valid API token is required", headers=CHALLENGE)


async def require_token_of_every_app(request: Request) -> None:
    """A FastAPI dependency for answers about every app (an unprefixed /metrics, the overview of
    apps): 401 unless the token opens each app, its own API tokens' or the global one. Under
    ``/apps/NAME`` the answer is that app's alone, and its tokens open it."""
    if named_app(request.scope) is not None:
        await require_api_token(request)
        return
    guarded = [services.api_tokens for services in running_apps(request.scope) if services.api_tokens]
    if not guarded:
        return
    presented = presented_token(request.headers.get("authorization", ""))
    if presented is None or not all(matches_any(presented, tokens) for tokens in guarded):
        raise HTTPException(401, "a valid API token is required", headers=CHALLENGE)


def presented_token(authorization: str) -> str | None:
    """The token of a Bearer or Basic ``Authorization`` header, or None."""
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return credentials or None
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = b64decode(credentials, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return password or user or None


def matches_any(presented: str, tokens: tuple[str, ...]) -> bool:
    """Whether ``presented`` is one of ``tokens``, comparing every one in constant time."""
    given = presented.encode()
    found = False
    for token in tokens:
        found |= hmac.compare_digest(given, token.encode())
    return found
