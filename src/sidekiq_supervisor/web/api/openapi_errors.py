"""The error answers of the JSON API and /healthz, as /openapi.json documents them.

Every route declares, with ``error_responses``, exactly the error statuses it can answer, so the
published schema lists those, and only those (see ``drop_undeclared_validation_errors``). The
bodies are the ones ``web.errors``, ``web.deadline`` and the routes really send: a JSON object
whose ``error`` says what went wrong. ``tests/web/test_openapi_errors.py`` provokes each
documented status of each route, so the documentation cannot drift from the behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from fastapi.openapi.constants import REF_PREFIX
from pydantic import BaseModel, Field

ResponsesDict = dict[int | str, dict[str, Any]]


class ErrorBody(BaseModel):
    """Any refusal of the API: ``error`` says what went wrong (and, when 503, to retry later)."""

    error: str = Field(description="What went wrong, for people.")
    detail: str | None = Field(None, description="The same message, on refusals raised as HTTP errors.")


class FieldError(BaseModel):
    """One invalid field: where it is and what is wrong with it (the input is never echoed)."""

    loc: list[str | int] = Field(description='Where: e.g. `["body", "arguments"]`, `["query", "limit"]`.')
    msg: str
    type: str


class ValidationErrorBody(BaseModel):
    """A 422: the request is well-formed but some fields are invalid; nothing was stored."""

    error: str = Field(description='`"invalid "` and the names of the invalid fields.')
    detail: list[FieldError]


class HealthBody(BaseModel):
    """The answer of /healthz: each check by name, ``"ok"`` or what is wrong."""

    status: Literal["ok", "unavailable"]
    version: str
    checks: dict[str, str] = Field(description="`database`, `writer` and `writes`: `ok` or the problem.")


class HealthProblemBody(BaseModel):
    """/healthz when reports could not be stored right now.

    Only ``error`` when the database did not answer the check's read within the request deadline.
    """

    error: str = Field(description="Every failed check, in one sentence.")
    status: Literal["unavailable"] | None = None
    version: str | None = None
    checks: dict[str, str] | None = Field(None, description="As in the 200 answer.")


RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}
CHALLENGE_HEADER = {
    "WWW-Authenticate": {
        "description": 'Always `Bearer realm="sidekiq-supervisor"`.',
        "schema": {"type": "string"},
    }
}

# What each status means wherever it is answered; ``error_responses`` may reword one for a route.
DESCRIPTIONS: dict[int, str] = {
    400: "The body is not valid JSON, or a form body is not UTF-8. Nothing was stored; do not resend.",
    401: "`SUPERVISOR_API_TOKEN` is set and the request carries none of its tokens "
    "(`Authorization: Bearer <token>`, or the token as the password of HTTP basic auth).",
    404: "The ledger knows no job with this jid.",
    409: "The service's settings do not allow it; `error` says which.",
    413: "The body is larger than `SUPERVISOR_MAX_BODY_BYTES`. Nothing was stored; do not resend.",
    415: "The body is neither `application/x-www-form-urlencoded` nor `application/json`.",
    422: "Some fields are invalid; `detail` names each one. Nothing was stored; do not resend.",
    503: "The database is unavailable, or did not answer within `SUPERVISOR_REQUEST_TIMEOUT_SECONDS`. "
    "Retry after `Retry-After` seconds.",
}
# Rewordings for the routes that need them.
REPORT_NOT_STORED = (
    "Not stored: too many reports are waiting for the writer (`SUPERVISOR_INGEST_QUEUE_LIMIT`), the "
    "service is shutting down, or the database is unavailable or did not let the report be committed "
    "within `SUPERVISOR_REQUEST_TIMEOUT_SECONDS`. Resend after `Retry-After` seconds, with the same `at`."
)
BATCH_TOO_LARGE = (
    "The body is larger than `SUPERVISOR_MAX_BODY_BYTES`, or the batch holds more than "
    "`SUPERVISOR_MAX_BATCH_REPORTS` events. Nothing was stored; do not resend as it is."
)
NO_HISTORY = "The ledger holds no report for this jid."
NO_NOTIFY_URL = (
    "No notification URL is configured (`SUPERVISOR_NOTIFY`), or the alert loop is off "
    "(`SUPERVISOR_ALERTS=false`): there is nothing to send the test to, or nothing to send it."
)
SIDEKIQ_UNAVAILABLE = (
    "Sidekiq's Redis cannot be read (down, not answering within 5 s, or `REDIS_URL` empty), or the "
    "database is unavailable. Retry after `Retry-After` seconds."
)
RESTART_FAILED = (
    "Sidekiq's Redis cannot be read or refused a push (down, not answering within 5 s, or "
    "`REDIS_URL` empty), or the database is unavailable. The job being restarted then, and those "
    "after it, are left as they were. Retry after `Retry-After` seconds."
)
INGEST_UNAVAILABLE = (
    "Reports could not be stored right now: the database is unreachable or read-only, the writer "
    "has not been able to commit within `SUPERVISOR_REQUEST_TIMEOUT_SECONDS` (a held write lock), "
    "its queue is full, or it stopped. `checks` says which."
)

_MODELS: dict[int, type[BaseModel]] = {422: ValidationErrorBody}
_HEADERS: dict[int, dict[str, Any]] = {401: CHALLENGE_HEADER, 503: RETRY_AFTER_HEADER}


def error_responses(*codes: int, describe: Mapping[int, str] | None = None) -> ResponsesDict:
    """The ``responses=`` entries for the error statuses ``codes`` of one route.

    ``describe`` rewords some of them for this route (e.g. ``{413: BATCH_TOO_LARGE}``).
    """
    wording = {**DESCRIPTIONS, **(describe or {})}
    responses: ResponsesDict = {}
    for code in codes:
        entry: dict[str, Any] = {"model": _MODELS.get(code, ErrorBody), "description": wording[code]}
        if code in _HEADERS:
            entry["headers"] = _HEADERS[code]
        responses[code] = entry
    return responses


# Ready for the ingest routes (web/api/ingest.py): the seed's three reports and the batch route.
REPORT_ERRORS = error_responses(400, 401, 413, 415, 422, 503, describe={503: REPORT_NOT_STORED})
BATCH_ERRORS = error_responses(
    400, 401, 413, 422, 503, describe={413: BATCH_TOO_LARGE, 503: REPORT_NOT_STORED}
)
HEALTH_RESPONSES: ResponsesDict = {
    200: {"model": HealthBody, "description": "Reports can be stored: every check is `ok`."},
    503: {"model": HealthProblemBody, "description": INGEST_UNAVAILABLE, "headers": RETRY_AFTER_HEADER},
}


def drop_undeclared_validation_errors(schema: dict[str, Any]) -> None:
    """Remove FastAPI's automatic 422 from operations that document their errors here without one.

    FastAPI adds a 422 to every route with a parameter, but a route whose only parameter is a
    free-text path segment (``/jobs/{job_id}``) cannot answer 422. An operation that documents
    an error with this module's bodies declared all of its errors, 422 included when it has one
    (as ``ValidationErrorBody``), so FastAPI's own 422 there is one it never answers.
    """
    ours = {f"{REF_PREFIX}{model.__name__}" for model in (ErrorBody, ValidationErrorBody, HealthProblemBody)}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            declared = any(_schema_ref(responses[code]) in ours for code in responses if code[:1] in "45")
            if declared and _schema_ref(responses.get("422", {})) == f"{REF_PREFIX}HTTPValidationError":
                del responses["422"]


def _schema_ref(response: dict[str, Any]) -> str | None:
    ref: str | None = response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
    return ref


# The API's token, as clients may present it (web.api.auth), and the dashboard's basic auth.
SECURITY_SCHEMES = {
    "apiToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "One of `SUPERVISOR_API_TOKEN`'s tokens, as `Authorization: Bearer <token>`.",
    },
    "apiTokenAsPassword": {
        "type": "http",
        "scheme": "basic",
        "description": "The API token as the password (or the user, without one) of HTTP basic auth.",
    },
    "dashboard": {
        "type": "http",
        "scheme": "basic",
        "description": "`SUPERVISOR_USERNAME` and `SUPERVISOR_PASSWORD`, for the pages and /sidekiq.",
    },
}
# The paths that take the API token: the API, and Prometheus' scrape.
TOKEN_PATHS = ("/api/v1/", "/metrics")


def declare_security(schema: dict[str, Any]) -> None:
    """Publish the security schemes, and that every ``/api/v1`` operation (and /metrics) takes the
    API token.

    Either scheme opens the API when ``SUPERVISOR_API_TOKEN`` is set; without it the API is open.
    """
    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in schema.get("paths", {}).items():
        if path.startswith(TOKEN_PATHS):
            for operation in operations.values():
                operation["security"] = [{"apiToken": []}, {"apiTokenAsPassword": []}]
