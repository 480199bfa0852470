"""Request shapes of the API: validation rules, and the schemas /openapi.json publishes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    model_validator,
)

from sidekiq_supervisor.domain import json_text
from sidekiq_supervisor.domain.payload import MAX_ARGUMENTS_DEPTH, may_be_deeper_than, nesting_depth

MAX_ARGUMENTS_BYTES = 64 * 1024
# The highest plausible epoch-seconds value; a larger ``at`` is almost surely milliseconds.
MAX_EPOCH_SECONDS = 1e11

TOO_DEEP = f"nests deeper than {MAX_ARGUMENTS_DEPTH} levels (the most Sidekiq can push)"

JobId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
JOB_ID: TypeAdapter[str] = TypeAdapter(JobId)
# Control characters have no place in a class or queue name, and PostgreSQL refuses NUL outright.
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]+$"
Name = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=NO_CONTROL_CHARACTERS)]


def canonical_arguments(value: Any, info: ValidationInfo) -> str:
    """JSON text (or, in JSON bodies, an array) to compact UTF-8 JSON text of an array.

    The size limit is ``SUPERVISOR_MAX_ARGUMENTS_BYTES``, passed by the routes in the
    validation context (``{"max_arguments_bytes": n}``); 64 KiB without one.
    """
    limit = (info.context or {}).get("max_arguments_bytes", MAX_ARGUMENTS_BYTES)
    if isinstance(value, str | bytes):
        # Characters never outnumber UTF-8 bytes, so this refuses early what is surely too long.
        if len(value) > limit:
            raise ValueError(f"is longer than {limit} bytes")
        try:
            value = json_text.loads(value)
        except json_text.InvalidJSON as exc:
            raise ValueError(TOO_DEEP if str(exc) == json_text.TOO_DEEP else str(exc)) from None
    if not isinstance(value, list):
        raise ValueError("must be a JSON array (Sidekiq's job args)")
    try:
        encoded = json_text.dumps(value)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
    if len(encoded) > limit:
        raise ValueError(f"is longer than {limit} bytes")
    text = encoded.decode()
    if may_be_deeper_than(text, MAX_ARGUMENTS_DEPTH) and nesting_depth(value) > MAX_ARGUMENTS_DEPTH:
        raise ValueError(TOO_DEEP)
    return text


def payload_object(value: Any, info: ValidationInfo) -> Any:
    """A reported Sidekiq payload: a JSON object within the size and nesting limits of arguments."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object (Sidekiq's job payload)")
    limit = (info.context or {}).get("max_arguments_bytes", MAX_ARGUMENTS_BYTES)
    try:
        encoded = json_text.dumps(value)
    except RecursionError:
        raise ValueError(f"nests deeper than {MAX_ARGUMENTS_DEPTH + 1} levels") from None
    if len(encoded) > limit:
        raise ValueError(f"is longer than {limit} bytes")
    # The payload is the object around the args: one level more than they may have.
    if nesting_depth(value, stop_after=MAX_ARGUMENTS_DEPTH + 1) > MAX_ARGUMENTS_DEPTH + 1:
        raise ValueError(f"nests deeper than {MAX_ARGUMENTS_DEPTH + 1} levels (the most Sidekiq can push)")
    return value


def _not_a_boolean(value: Any) -> Any:
    # Lax float parsing would read true as 1.0, i.e. one second after the epoch.
    if isinstance(value, bool):
        raise ValueError("must be a number of epoch seconds")
    return value


Arguments = Annotated[
    str,
    BeforeValidator(canonical_arguments),
    Field(description='The job\'s args as JSON text, e.g. `[42,"alice@example.com"]` (a JSON array).'),
]
# The bounds sit on the number itself: put on ``float | None`` as a whole, pydantic applied them
# to an explicit null too and raised TypeError, a 500 for `"at": null` (found by the fuzzer).
EpochSeconds = Annotated[float, Field(ge=0, le=MAX_EPOCH_SECONDS, allow_inf_nan=False)]
EventTime = Annotated[
    EpochSeconds | None,
    BeforeValidator(_not_a_boolean),
    Field(
        default=None,
        description="When the event happened on the client, in epoch seconds; default: receive time.",
    ),
]


MAX_ERROR_MESSAGE = 10_000
WORKER_KEYS = ("identity", "hostname", "pid", "thread")
OptionalName = Annotated[str | None, StringConstraints(max_length=255, pattern=NO_CONTROL_CHARACTERS)]
# Form bodies' flat fields of the nested worker and error: (nested name, ((form field, key), ...)).
FLAT_FORM_FIELDS = tuple(
    (name, tuple((f"{name}_{key}", key) for key in keys))
    for name, keys in (("worker", WORKER_KEYS), ("error", ("class", "message")))
)


def _first_characters(text: Any) -> Any:
    # Sidekiq keeps 10,000 characters of a message; so do we, rather than refuse the report.
    return text[:MAX_ERROR_MESSAGE] if isinstance(text, str) else text


class WorkerIn(BaseModel):
    """The Sidekiq process and thread that started the job (how restarts tell running jobs)."""

    model_config = ConfigDict(extra="ignore")

    identity: OptionalName = Field(None, description="Sidekiq's process identity, `hostname:pid:nonce`.")
    hostname: OptionalName = None
    pid: int | None = Field(None, ge=0, le=2**31 - 1)
    thread: OptionalName = Field(None, description="Sidekiq's thread id (the work hash field).")


class ErrorIn(BaseModel):
    """What a failed run raised."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    error_class: Name = Field(alias="class", description="The exception class.")
    message: Annotated[str, BeforeValidator(_first_characters)] = Field("", max_length=MAX_ERROR_MESSAGE)


class ReportBody(BaseModel):
    """The fields every report carries, whichever route it comes by."""

    model_config = ConfigDict(extra="ignore", strict=False)

    arguments: Arguments
    job_class: Name = Field(description="The Sidekiq job class, e.g. `HardWorker`.")
    queue: Name = Field("default", description="The Sidekiq queue.")
    at: EventTime = None
    worker: WorkerIn | None = Field(None, description="On `started`: who runs the job.")
    error: ErrorIn | None = Field(None, description="On `failed`: what the run raised.")
    payload: Annotated[dict[str, Any] | None, BeforeValidator(payload_object)] = Field(
        None,
        description=(
            "On `queued` and `started` (JSON bodies): the job's Sidekiq payload less `args` and the "
            "keys Sidekiq writes per run, so that a restart pushes the very same job "
            "(`class`, `wrapped`, `retry`, `tags`, custom keys). Never shown."
        ),
    )


class JobReportIn(ReportBody):
    """A ``started``, ``complete`` or ``failed`` report (the jid is in the path).

    Form bodies give the worker and the error as flat fields (``worker_identity``,
    ``worker_hostname``, ``worker_pid``, ``worker_thread``, ``error_class``, ``error_message``).
    """

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_form_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        nested = data  # copied only when a form nests something: most reports carry neither group
        for name, fields in FLAT_FORM_FIELDS:
            flat = {key: data[field] for field, key in fields if field in data}
            if flat and name not in data:
                nested = {**nested, name: flat}
        return nested


class JobQueuedIn(JobReportIn):
    """A ``queued`` report, as the seed's client middleware sends it."""

    job_id: JobId = Field(description="The Sidekiq jid.")


class EventIn(ReportBody):
    """One report inside a batch (JSON only, so the worker and the error come nested)."""

    job_id: JobId = Field(description="The Sidekiq jid.")
    event: Literal["queued", "started", "complete", "failed"]


class EventsIn(BaseModel):
    """A batch of reports, stored together; each gets its own result."""

    # Items are validated one by one, so that one bad item gets its own 422; /openapi.json still
    # describes them as EventIn (see web.app).
    events: list[Any] = Field(description="Reports shaped as `EventIn`.")


FORM_OR_JSON = ("application/x-www-form-urlencoded", "application/json")


def request_body(model: type[BaseModel], media_types: tuple[str, ...] = FORM_OR_JSON) -> dict[str, Any]:
    """``openapi_extra`` declaring that ``model`` comes in one of ``media_types`` (form or JSON)."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "requestBody": {"required": True, "content": {media: {"schema": schema} for media in media_types}}
    }
