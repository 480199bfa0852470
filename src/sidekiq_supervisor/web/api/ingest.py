"""The seed's three reports, and the batch route the gem uses. A 2xx means committed."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from sidekiq_supervisor.clock import now_micros
from sidekiq_supervisor.domain.model import EventKind, Micros, Report
from sidekiq_supervisor.services.report_writer import WriteResult
from sidekiq_supervisor.web.api.auth import require_api_token
from sidekiq_supervisor.web.api.bodies import json_object, read_body, read_fields
from sidekiq_supervisor.web.api.openapi_errors import BATCH_ERRORS, REPORT_ERRORS, ResponsesDict
from sidekiq_supervisor.web.api.presenters import job_document, json_response, restarted_document
from sidekiq_supervisor.web.api.schemas import (
    JOB_ID,
    EventIn,
    EventsIn,
    JobQueuedIn,
    JobReportIn,
    request_body,
)
from sidekiq_supervisor.web.deps import Services, ServicesDep

router = APIRouter(prefix="/api/v1", tags=["ingest"], dependencies=[Depends(require_api_token)])
# The full paths of the seed's report routes (/jobs, /jobs/{job_id}/<event>) and of the batch route.
REPORT_PATH = re.compile(rf"{router.prefix}/jobs(?:/([^/]+)/(started|complete|failed))?")
EVENTS_PATH = f"{router.prefix}/events"
# What ``schemas.JobId`` accepts (1 to 128 of these characters); anything else is worded by it.
PLAIN_JID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")

Body = TypeVar("Body", JobQueuedIn, JobReportIn)

STORED: ResponsesDict = {200: {"description": "The job was known; the report is stored."}}
CREATED: ResponsesDict = {201: {"description": "The job is new; the report is stored."}}
REPORT_ANSWERS: ResponsesDict = {**CREATED, **STORED, **REPORT_ERRORS}


def report_from_fields(
    fields: dict[str, Any], kind: EventKind, path_jid: str | None, received: Micros, services: Services
) -> Report:
    """The report of a seed route's body fields (the jid in the path, or in the body when queued).

    Raises ``RequestValidationError`` naming each invalid field.
    """
    if path_jid is None:
        queued = _validated(JobQueuedIn, fields, services)
        return services.intake.report(queued, kind, queued.job_id, received)
    jid = _valid_path_jid(path_jid)
    return services.intake.report(_validated(JobReportIn, fields, services), kind, jid, received)


def _validated(model: type[Body], fields: dict[str, Any], services: Services) -> Body:
    try:
        return model.model_validate(fields, context=services.validation_limits)
    except ValidationError as exc:
        raise RequestValidationError(_errors(exc, "body")) from None


def _errors(exc: ValidationError, *where: str | int) -> list[dict[str, Any]]:
    # Input values are left out: arguments can be large and may hold secrets.
    return [
        {"loc": [*where, *error["loc"]], "msg": error["msg"], "type": error["type"]}
        for error in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def _valid_path_jid(job_id: str) -> str:
    if PLAIN_JID.fullmatch(job_id):  # JobId's constraints, without pydantic's call
        return job_id
    try:
        return JOB_ID.validate_python(job_id)
    except ValidationError as exc:
        raise RequestValidationError(_errors(exc, "path", "job_id")) from None


async def _store(services: Services, report: Report) -> Response:
    (result,) = await services.writer.submit([report])
    return stored_response(result)


def stored_response(result: WriteResult) -> Response:
    """The answer to a stored report: 201 for a new job, 200 for a known or restarted one."""
    status, body = stored_answer(result)
    return Response(body, status_code=status, media_type="application/json")


def stored_answer(result: WriteResult) -> tuple[int, bytes]:
    """The status and JSON body of ``stored_response``."""
    if result.job is None:
        return 200, orjson.dumps(restarted_document(result.jid))
    return 201 if result.created else 200, orjson.dumps(job_document(result.job))


@router.post("/jobs", responses=REPORT_ANSWERS, openapi_extra=request_body(JobQueuedIn))
async def job_queued(request: Request, services: ServicesDep) -> Response:
    """Record that a job was queued (the seed's client middleware)."""
    received = now_micros()
    fields = await read_fields(request, services.settings.max_body_bytes)
    return await _store(services, report_from_fields(fields, EventKind.QUEUED, None, received, services))


def _path_report(kind: EventKind) -> Callable[[str, Request, Services], Awaitable[Response]]:
    async def store_report(job_id: str, request: Request, services: ServicesDep) -> Response:
        received = now_micros()
        fields = await read_fields(request, services.settings.max_body_bytes)
        return await _store(services, report_from_fields(fields, kind, job_id, received, services))

    return store_report


# The seed's other three reports: one handler, each event at its own documented address.
PATH_REPORTS = {
    EventKind.STARTED: "Record that a worker started the job (creates it if its queued report was lost).",
    EventKind.COMPLETE: "Record that the job completed.",
    EventKind.FAILED: "Record that a run raised (the job stays uncompleted; the error joins its history).",
}
for _kind, _summary in PATH_REPORTS.items():
    router.add_api_route(
        f"/jobs/{{job_id}}/{_kind.value}",
        _path_report(_kind),
        methods=["POST"],
        name=f"job_{_kind.value}",
        description=_summary,
        responses=REPORT_ANSWERS,
        openapi_extra=request_body(JobReportIn),
    )


# Batches are JSON only (the gem's): no form encoding can carry a list of reports.
@router.post("/events", responses=BATCH_ERRORS, openapi_extra=request_body(EventsIn, ("application/json",)))
async def events(request: Request, services: ServicesDep) -> Response:
    """Store a batch of reports; each item gets its own status (201, 200 or 422 with errors).

    With ``Prefer: return=minimal`` (RFC 7240), the answer lists only the refused items, by
    index, in ``refused``: what the gem asks for, since it acts on nothing else.
    """
    received = now_micros()
    try:
        body = await read_body(request, services.settings.max_body_bytes)
        batch = EventsIn.model_validate(json_object(body))
    except ValidationError as exc:
        raise RequestValidationError(_errors(exc, "body")) from None
    limit = services.settings.max_batch_reports
    if len(batch.events) > limit:
        return json_response({"error": f"a batch holds at most {limit} events"}, 413)
    items = [_batch_item(item, index, received, services) for index, item in enumerate(batch.events)]
    reports = [item for item in items if isinstance(item, Report)]
    stored = await services.writer.submit(reports) if reports else []
    summary = {"stored": len(reports), "rejected": len(items) - len(reports)}
    if _prefers_minimal(request):
        refused = [{"index": i, **item} for i, item in enumerate(items) if not isinstance(item, Report)]
        response = json_response({**summary, "refused": refused})
        response.headers["Preference-Applied"] = "return=minimal"
        return response
    results = iter(stored)
    documents = [_item_result(next(results)) if isinstance(item, Report) else item for item in items]
    return json_response({**summary, "results": documents})


def _prefers_minimal(request: Request) -> bool:
    preferences = request.headers.get("prefer", "").lower().replace(" ", "").split(",")
    return "return=minimal" in preferences


def _batch_item(item: Any, index: int, received: Micros, services: Services) -> Report | dict[str, Any]:
    """The item as a report, or its 422 result."""
    try:
        valid = EventIn.model_validate(item, context=services.validation_limits)
    except ValidationError as exc:
        return {"status": 422, "detail": _errors(exc, "body", "events", index)}
    return services.intake.report(valid, EventKind(valid.event), valid.job_id, received)


def _item_result(result: WriteResult) -> dict[str, Any]:
    if result.job is None:
        return {"status": 200, "jid": result.jid, "job_status": "restarted"}
    status = 201 if result.created else 200
    return {"status": status, "jid": result.jid, "job_status": result.job.status.value}
