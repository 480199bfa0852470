"""The pages' Jinja2 environment (autoescaped), the filters that format ledger values, and ``render``.

All job data is attacker-controlled (arguments, class names, error messages, worker names): the
environment escapes every value, and no template marks data as safe. The only ``Markup`` values
come from ``web.charts``, which escapes the text it puts in its SVG.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from sidekiq_supervisor import __version__
from sidekiq_supervisor.domain import json_text
from sidekiq_supervisor.domain.durations import format_duration
from sidekiq_supervisor.domain.model import datetime_from_micros
from sidekiq_supervisor.web.deps import services_of
from sidekiq_supervisor.web.paths import root_path, route_path, site_root
from sidekiq_supervisor.web.security import CSRF_FIELD, csrf_token

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
ARGUMENTS_PREVIEW = 120
# The navigation of every page of the main app (the /sidekiq pages are part of it), by route path:
# the templates put the root path before each (``{{ root ~ href }}``).
NAV: tuple[tuple[str, str], ...] = (
    ("/", "Overview"),
    ("/jobs", "Jobs"),
    ("/durations", "Durations"),
    ("/restart", "Restart"),
    ("/recoveries", "Recoveries"),
    ("/alerts", "Alerts"),
    ("/sidekiq", "Sidekiq"),
)


def format_time(moment: datetime | None) -> str:
    """A UTC time to the second, or ``—``."""
    return "—" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_ago(moment: datetime | None) -> str:
    """How long ago ``moment`` was, to the second."""
    if moment is None:
        return "—"
    seconds = round((datetime.now(UTC) - moment).total_seconds())
    return "just now" if seconds < 1 else format_duration(timedelta(seconds=seconds)) + " ago"


def format_arguments(arguments: Any, limit: int | None = ARGUMENTS_PREVIEW) -> str:
    """Arguments as compact JSON, cut to ``limit`` characters for tables."""
    return json_text.preview(arguments, limit)


@lru_cache(maxsize=4096)
def format_class_name(name: str) -> Markup:
    """A class name that may wrap only after ``::`` (``Billing::<wbr>InvoiceJob``), never mid-word.

    A part too long for its box is cut with an ellipsis (``.class-name`` in app.css), and the
    title shows the whole name. Kept per name: a list repeats a few classes, and
    ``Markup.format`` costs 10 us a call.
    """
    parts = Markup("::<wbr>").join(escape(part) for part in str(name).split("::"))
    return Markup('<span class="class-name" title="{}">{}</span>').format(name, parts)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        duration=format_duration,
        when=format_time,
        micros_when=lambda micros: format_time(datetime_from_micros(micros)),
        epoch_when=lambda seconds: format_time(datetime.fromtimestamp(seconds, UTC)),
        ago=format_ago,
        arguments=format_arguments,
        class_name=format_class_name,
    )
    env.globals.update(version=__version__, csrf_field=CSRF_FIELD)
    return env


ENVIRONMENT = _environment()


def template_vars(view: DataclassInstance) -> dict[str, Any]:
    """A page's dataclass as template variables, one per field, each value as it is.

    Not ``dataclasses.asdict``, which would turn nested records (and their lists) into dicts.
    """
    return {field.name: getattr(view, field.name) for field in fields(view)}


def page_context(request: Request) -> dict[str, Any]:
    """What every page's template gets besides its own data.

    ``root`` is the prefix of every URL the page writes (``{{ root }}/jobs``); ``path`` is the route
    path, which the navigation compares with its own (``aria-current``), under any prefix.
    """
    return {
        "request": request,
        "root": root_path(request.scope),
        "path": route_path(request.scope),
        "csrf_token": csrf_token(request),
        "app_badge": app_badge(request),
    }


def app_badge(request: Request) -> dict[str, str] | None:
    """With several apps, the name of the page's app and the URL of the overview of every app
    (the header shows both); None with one app, or outside the main app."""
    apps = getattr(request.app.state, "apps", None)
    if apps is None or len(apps) < 2 or route_path(request.scope).rstrip("/") == "/apps":
        return None  # one app, or the overview of every app itself
    return {"name": services_of(request.scope).name, "overview": f"{site_root(request.scope)}/apps"}


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The page ``name`` rendered with ``context``, the navigation and the CSRF token."""
    page = ENVIRONMENT.get_template(name).render(
        **page_context(request),
        nav=NAV,
        refresh=context.pop("refresh", None),
        **context,
    )
    return HTMLResponse(page, status_code=status_code, headers={"Cache-Control": "no-store"})
