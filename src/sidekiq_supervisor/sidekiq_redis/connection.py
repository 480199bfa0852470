"""The one way to open Sidekiq's Redis: the same timeouts for every reader and writer."""

from __future__ import annotations

import redis

# Redis answers in well under a second; a page or a restart waiting longer says "unavailable".
CONNECT_TIMEOUT_SECONDS = 2.0
COMMAND_TIMEOUT_SECONDS = 5.0


def connect(url: str | None) -> redis.Redis | None:
    """A client on the Sidekiq Redis at ``url`` (it connects on first use), or None when no URL is
    configured: every caller models "no Redis" as None. ``ValueError`` for a URL redis-py refuses."""
    if not url:
        return None
    return redis.Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS, socket_timeout=COMMAND_TIMEOUT_SECONDS
    )
