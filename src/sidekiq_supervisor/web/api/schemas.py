"""Request shapes of the API: validation rules, and the schemas /openapi.json publishes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, TypeAdapter

MAX_ARGUMENTS_BYTES = 64 * 1024
# The highest plausible epoch-seconds value; a larger ``at`` is almost surely milliseconds.
MAX_EPOCH_SECONDS = 1e11

JobId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
JOB_ID: TypeAdapter[str] = TypeAdapter(JobId)
Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]


def canonical_arguments(value: Any) -> str:
    """JSON text (or, in JSON bodies, an array) to compact UTF-8 JSON text of an array."""
    if isinstance(value, str | bytes):
        if len(value) > MAX_ARGUMENTS_BYTES:
            raise ValueError(f"is longer than {MAX_ARGUMENTS_BYTES} bytes")
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ValueError("is not valid JSON text") from None
    if not isinstance(value, list):
        raise ValueError("must be a JSON array (Sidekiq's job args)")
    text = orjson.dumps(value).decode()
    if len(text) > MAX_ARGUMENTS_BYTES:
        raise ValueError(f"is longer than {MAX_ARGUMENTS_BYTES} bytes")
    return text


Arguments = Annotated[
    str,
    BeforeValidator(canonical_arguments),
    Field(description='The job\'s args as JSON text, e.g. `[42,"alice@example.com"]` (a JSON array).'),
]
EventTime = Annotated[
    float | None,
    Field(
        default=None,
        ge=0,
        le=MAX_EPOCH_SECONDS,
        allow_inf_nan=False,
        description="When the event happened on the client, in epoch seconds; default: receive time.",
    ),
]


class JobReportIn(BaseModel):
    """A ``started`` or ``complete`` report (the jid is in the path)."""

    model_config = ConfigDict(extra="ignore", strict=False)

    arguments: Arguments
    job_class: Name = Field(description="The Sidekiq job class, e.g. `HardWorker`.")
    queue: Name = Field("default", description="The Sidekiq queue.")
    at: EventTime = None


class JobQueuedIn(JobReportIn):
    """A ``queued`` report, as the seed's client middleware sends it."""

    job_id: JobId = Field(description="The Sidekiq jid.")


class EventIn(JobQueuedIn):
    """One report inside a batch."""

    event: Literal["queued", "started", "complete"]


class EventsIn(BaseModel):
    """A batch of reports, stored together; each gets its own result."""

    events: list[dict[str, Any]] = Field(description="Reports shaped as `EventIn`.")


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring that ``model`` may come form-encoded or as JSON."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": schema},
                "application/json": {"schema": schema},
            },
        }
    }
