"""Rendering of the ``/sidekiq`` pages: the shared Jinja2 environment, the tab bar, formats, redirects.

The pages use the dashboard's environment (autoescaped; job data is attacker-controlled and never
marked safe) and its ``base.html``, plus a few filters for Sidekiq's epoch-second timestamps.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from sidekiq_supervisor.domain.durations import format_duration
from sidekiq_supervisor.services.sidekiq_monitor import (
    SidekiqUnavailable,
    Stats,
    error_backtrace,
    extra_items,
)
from sidekiq_supervisor.web.errors import with_retry_after
from sidekiq_supervisor.web.pages.templating import ENVIRONMENT, NAV, format_time, page_context
from sidekiq_supervisor.web.paths import under_root

PREFIX = "/sidekiq"
# The queue names Sidekiq's Web UI opens a page for (the data layer's rule; it refuses the others).
QUEUE_NAME = re.compile(r"\A[a-z_:.\-0-9]+\Z", re.IGNORECASE)
# The tabs of Sidekiq's Web UI, with the summary figure each one shows.
TABS = (
    ("", "Dashboard", None),
    ("/busy", "Busy", "busy"),
    ("/queues", "Queues", "enqueued"),
    ("/retries", "Retries", "retries"),
    ("/scheduled", "Scheduled", "scheduled"),
    ("/morgue", "Dead", "dead"),
    ("/metrics", "Metrics", None),
    ("/profiles", "Profiles", None),
)


def epoch_time(seconds: float | None) -> str:
    """An epoch-seconds timestamp as a UTC time, or ``—``."""
    return "—" if seconds is None else format_time(datetime.fromtimestamp(seconds, UTC))


# Spans of a day or more are said in words, in the largest unit that fits: "3 days", "2 weeks".
LONG_SPANS = ((365 * 86_400, "year"), (30 * 86_400, "month"), (7 * 86_400, "week"), (86_400, "day"))


def span_in_words(seconds: float) -> str:
    """A span as a person says it: ``4 min 10 s`` or ``2 h 03 min`` under a day, then ``3 days``,
    ``2 weeks``, ``5 months``, ``1 year`` (rounded down)."""
    for length, unit in LONG_SPANS:
        if seconds >= length:
            count = int(seconds // length)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return format_duration(seconds * 1_000_000)


def relative(seconds: float | None, now: float | None = None) -> str:
    """``4 min 10 s ago``, ``in 2 weeks`` for an epoch-seconds timestamp; ``—`` when unknown (the
    pages put the exact time in the element's title)."""
    if seconds is None:
        return "—"
    delta = (now if now is not None else datetime.now(UTC).timestamp()) - seconds
    if abs(delta) < 1:
        return "just now"
    text = span_in_words(abs(delta))
    return f"{text} ago" if delta > 0 else f"in {text}"


def latency(seconds: float) -> str:
    """A queue latency: ``0`` for an empty or fresh queue, else a duration."""
    return "0" if seconds <= 0 else format_duration(seconds * 1_000_000)


def memory(kilobytes: int | None) -> str:
    """A resident set size given in KB, in MB or GB."""
    if kilobytes is None:
        return "—"
    megabytes = kilobytes / 1024
    return f"{megabytes / 1024:.2f} GB" if megabytes >= 1024 else f"{megabytes:.1f} MB"


def member_token(raw: str) -> str:
    """A set or queue member as a form value: its exact bytes, base64 (no quoting or Unicode surprises,
    and a member holding bytes that are not UTF-8 survives the round trip)."""
    return base64.urlsafe_b64encode(raw.encode("utf-8", "surrogateescape")).decode("ascii")


def member_of(token: str) -> str | None:
    """The member a ``member_token`` stands for, or None for a token that is not one."""
    try:
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8", "surrogateescape")
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


def printable(text: object) -> str:
    """Text with any undecodable byte (kept as a lone surrogate) shown as U+FFFD, so it renders."""
    text = str(text)
    try:  # the bytes Redis held, decoded again with U+FFFD for the invalid ones
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # another lone surrogate: no byte to recover
        return text.encode("utf-8", "replace").decode("utf-8")


# The dashboard's environment (its loader, autoescape, filters) plus the monitor's own filters, in
# an overlay: the dashboard's pages never see these.
MONITOR_ENVIRONMENT = ENVIRONMENT.overlay()
MONITOR_ENVIRONMENT.tests["match_queue"] = lambda name: bool(QUEUE_NAME.match(str(name)))
MONITOR_ENVIRONMENT.filters.update(
    epoch=epoch_time,
    relative=relative,
    latency=latency,
    memory=memory,
    token=member_token,
    printable=printable,
    backtrace=error_backtrace,
    extras=extra_items,
)


def url(request: Request, path: str = "", **params: Any) -> str:
    """The URL of the monitor's ``path`` (``/busy``) for the browser, under the request's root path,
    with the query parameters that are set."""
    query = urlencode({key: value for key, value in params.items() if value not in (None, "")})
    return under_root(request, PREFIX + path) + ("?" + query if query else "")


def here(request: Request) -> str:
    """This page's URL without an action's outcome: where a form on it sends the browser back."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("done", "n")]
    return request.url.path + ("?" + urlencode(params) if params else "")


def _nav(request: Request) -> tuple[tuple[str, str], ...]:
    # Alone, the monitor app serves none of the ledger's pages, so its navigation is its own.
    return NAV if hasattr(request.app.state, "apps") else ((PREFIX, "Sidekiq"),)


def render(
    request: Request, template: str, status_code: int = 200, *, stats: Stats | None = None, **context: Any
) -> HTMLResponse:
    """A monitor page: the dashboard's layout with the monitor's tabs (and their figures)."""
    page = MONITOR_ENVIRONMENT.get_template(f"monitor/{template}").render(
        **page_context(request),
        nav=_nav(request),
        refresh=context.pop("refresh", None),
        # The templates link to ``{{ prefix }}/busy``; the tabs compare the route path with ``home``.
        prefix=url(request),
        home=PREFIX,
        tabs=TABS,
        stats=stats,
        notice=notice_of(request),
        here=here(request),
        **context,
    )
    return HTMLResponse(page, status_code=status_code, headers={"Cache-Control": "no-store"})


def unavailable(request: Request, exc: SidekiqUnavailable) -> HTMLResponse:
    """The page shown instead of any monitor page while Sidekiq's Redis cannot be read."""
    return with_retry_after(render(request, "unavailable.html", 503, problem=str(exc)))


# What an action did, by the code it puts in the URL: only these texts can ever be shown, so a
# crafted link cannot make the page say something else.
OUTCOMES = {
    "retry": "{n} retried now (pushed to their queues).",
    "enqueue": "{n} added to their queues.",
    "delete": "{n} deleted.",
    "kill": "{n} moved to the Dead set.",
    "clear": "{n} deleted: the queue is cleared.",
    "quiet": "Quiet sent to {n}.",
    "stop": "Stop sent to {n}.",
    "none": "Nothing was selected, so nothing changed.",
}
NOUNS = {"quiet": "process", "stop": "process"}


def done(request: Request, back: str, outcome: str, count: int = 0) -> RedirectResponse:
    """After an action, back to the page it was taken on (a GET: ``back``, a URL as ``url`` or
    ``here`` make it), saying what happened."""
    home = url(request)
    if not back.startswith(home + "/") and back != home:
        back = home  # only ever back into the monitor: no open redirect
    separator = "&" if "?" in back else "?"
    return RedirectResponse(back + separator + urlencode({"done": outcome, "n": count}), status_code=303)


def notice_of(request: Request) -> str | None:
    """The sentence for the outcome code in the URL, if it is one of ours."""
    outcome = request.query_params.get("done", "")
    if outcome not in OUTCOMES:
        return None
    text = request.query_params.get("n", "0")
    # Only ASCII digits, and not thousands of them (int() refuses over 4,300 digits).
    count = int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else 0
    return OUTCOMES[outcome].format(n=plural(count, NOUNS.get(outcome, "job")))


def plural(count: int, noun: str) -> str:
    """``1 job`` / ``3 jobs``."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
