"""Failures turned into clear JSON answers instead of 500s."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TypeVar

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match

from sidekiq_supervisor.domain.filters import InvalidFilter
from sidekiq_supervisor.services.liveness import SidekiqUnavailable
from sidekiq_supervisor.services.outage_log import OutageLog
from sidekiq_supervisor.services.report_writer import IngestUnavailable
from sidekiq_supervisor.services.restart import RestartFailed
from sidekiq_supervisor.web.api.presenters import json_response

logger = logging.getLogger(__name__)
# Seconds a client should wait after a 503 (the database, the writer or Redis unavailable).
RETRY_AFTER_SECONDS = "2"
AnyResponse = TypeVar("AnyResponse", bound=Response)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(InvalidFilter, _invalid_filter)
    app.add_exception_handler(IngestUnavailable, _unavailable)
    app.add_exception_handler(RestartFailed, _restart_failed)
    app.add_exception_handler(SidekiqUnavailable, _restart_failed)
    app.add_exception_handler(DataError, _unstorable_value)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(DBAPIError, _database_down)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    response = json_response({"error": exc.detail, "detail": exc.detail}, exc.status_code)
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names the methods of the first route whose path matched; a path served by
        # several routes (GET and POST /api/v1/jobs) answers all of theirs.
        response.headers["Allow"] = ", ".join(allowed_methods(request))
    return response


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at the request's path."""
    scope = {**request.scope, "method": "GET"}
    methods: set[str] = set()
    for route in _leaf_routes(request.app.router.routes):
        if route.matches(scope)[0] is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def _leaf_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    # FastAPI keeps an included router's routes in it (``original_router``), with their full paths.
    for route in routes:
        included = getattr(getattr(route, "original_router", None), "routes", None)
        if included is not None:
            yield from _leaf_routes(included)
        else:
            yield route


async def _invalid_request(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # Only where and what: echoing the input back could repeat secrets from job arguments.
    errors = [{key: error[key] for key in ("loc", "msg", "type") if key in error} for error in exc.errors()]
    fields = ", ".join(sorted({_field_name(error["loc"]) for error in errors if error.get("loc")}))
    return json_response({"error": f"invalid {fields or 'request'}", "detail": errors}, 422)


def _field_name(loc: list[str | int]) -> str:
    names = [str(part) for part in loc if isinstance(part, str) and part not in ("body", "query", "path")]
    return names[-1] if names else ".".join(map(str, loc))


async def _invalid_filter(_request: Request, exc: Exception) -> Response:
    # Shaped like every other 422 (and as /openapi.json documents it): loc, msg and type.
    error = {"loc": ["query", "q"], "msg": str(exc), "type": "value_error"}
    return json_response({"error": str(exc), "detail": [error]}, 422)


async def _unavailable(_request: Request, exc: Exception) -> Response:
    return unavailable_response(exc)


def unavailable_response(exc: Exception) -> Response:
    """The 503 for reports the writer could not take (``IngestUnavailable``)."""
    return retry_later({"error": f"not stored: {exc}; retry later"})


async def _restart_failed(_request: Request, exc: Exception) -> Response:
    # Sidekiq's Redis is down, not answering or not configured (RestartFailed, SidekiqUnavailable).
    return retry_later({"error": str(exc)})


def retry_later(body: dict[str, object]) -> Response:
    """A JSON 503 with ``Retry-After``, as every 503 of the service is answered."""
    return with_retry_after(json_response(body, 503))


def with_retry_after(response: AnyResponse) -> AnyResponse:
    """``response`` (a 503, JSON or a page) saying when to try again."""
    response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response


async def _unstorable_value(_request: Request, exc: Exception) -> Response:
    # The database refused a value the client sent (PostgreSQL: a NUL in text, a number out of
    # range): the request's fault, not an outage.
    logger.info("a value the database cannot hold: %s", str(exc).splitlines()[0])
    return json_response(
        {"error": "a value in the request cannot be stored or looked up (a NUL character?)"}, 422
    )


# Requests that find the database down: one line when that starts, not one per request (a request
# that succeeds does not pass here, so a quiet minute counts as the end of the outage).
_READS_OUTAGE = OutageLog(logger, "the database (reading)", forget_after=60)


async def _database_down(_request: Request, exc: Exception) -> Response:
    _READS_OUTAGE.failed(exc)
    return retry_later({"error": "the database is unavailable; retry later"})
