"""Reading report bodies: form-encoded (what the seed's Faraday middleware sends) or JSON."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError

from sidekiq_supervisor.domain import json_text
from sidekiq_supervisor.web.api.form_fields import form_fields

MAX_BODY_BYTES = 1024 * 1024


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, refused with 413 past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the body is larger than {limit} bytes")
    body = await request.body()
    if len(body) > limit:
        raise HTTPException(413, f"the body is larger than {limit} bytes")
    return body


async def read_fields(request: Request, limit: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The body's fields (at most ``limit`` bytes of it); for a repeated form field, the last counts."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    body = await read_body(request, limit)
    if media_type == "application/json":
        return json_object(body)
    if media_type in ("application/x-www-form-urlencoded", ""):
        try:
            return form_fields(body)
        except UnicodeDecodeError:
            raise HTTPException(400, "the form body is not UTF-8") from None
    raise HTTPException(415, "send application/x-www-form-urlencoded or application/json")


def json_object(body: bytes) -> dict[str, Any]:
    """A JSON object body, or a 400/422 saying what is wrong with it."""
    try:
        data = json_text.loads(body)
    except json_text.InvalidJSON as exc:
        raise HTTPException(
            400, f"the body {exc}" if str(exc) == json_text.TOO_DEEP else "the body is not valid JSON"
        ) from None
    if not isinstance(data, dict):
        # Shaped like every other 422 (and as /openapi.json documents it): ``detail`` is a list of
        # {loc, msg, type}. A plain string there broke the published schema (found by the fuzzer).
        error = {"loc": ["body"], "msg": "the body must be a JSON object", "type": "dict_type"}
        raise RequestValidationError([error])
    return data
