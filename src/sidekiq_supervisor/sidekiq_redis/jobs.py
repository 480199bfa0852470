"""A job payload as stored in a queue list, a sorted set or a work hash, parsed for display.

The raw member is kept next to the parsed fields: deleting or moving exactly that entry needs the
byte-identical string (LREM and ZREM compare bytes), never a re-serialisation of the parsed job.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from sidekiq_supervisor.domain import json_text
from sidekiq_supervisor.domain.payload import ACTIVE_JOB_WRAPPERS

MAILER_JOBS = frozenset({"ActionMailer::DeliveryJob", "ActionMailer::MailDeliveryJob"})
ACTIVE_JOB_PREFIX = "_aj_"
GLOBAL_ID_KEY = "_aj_globalid"
# The keys a detail page shows in rows of their own; the rest of a payload is its "extras".
SHOWN_KEYS = frozenset({
    "queue", "class", "args", "retry_count", "retried_at", "failed_at", "jid", "error_message",
    "error_class", "backtrace", "error_backtrace", "enqueued_at", "retry", "wrapped", "created_at",
    "tags", "display_class",
})  # fmt: skip
# A stored backtrace is at most this large once inflated: a crafted payload cannot be a zip bomb.
MAX_BACKTRACE_BYTES = 1 << 20
# Epoch seconds are ~1.8e9 today and epoch milliseconds ~1.8e12; 1e11 s is the year 5138.
MILLIS_THRESHOLD = 1e11


def decode_member(value: bytes | str) -> str:
    """A Redis member as text that encodes back to the very same bytes (see ``encode_member``)."""
    # surrogateescape keeps any invalid UTF-8 byte, so acting on a malformed member still finds it.
    return value if isinstance(value, str) else value.decode("utf-8", "surrogateescape")


def encode_member(raw: str) -> bytes:
    """The exact bytes of a member decoded by ``decode_member``."""
    return raw.encode("utf-8", "surrogateescape")


def epoch_seconds(value: Any) -> float | None:
    """A payload timestamp in epoch seconds, whatever unit it was written in; None if it is not one.

    Sidekiq 6/7 write float seconds and Sidekiq 8 integer milliseconds, and one payload can mix both
    after an upgrade. Sidekiq 8 decides by JSON type; the magnitude decides here, because foreign
    clients have written integer seconds and millisecond floats too.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value / 1000.0 if value > MILLIS_THRESHOLD else float(value)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job payload, parsed. ``valid`` is False for a member that is not a JSON object: Sidekiq
    puts unparseable jobs in the Dead set as they came, and the UI shows the raw text as its args."""

    raw: str
    valid: bool
    jid: str | None
    job_class: str | None
    # The class a person thinks of: ActiveJob's wrapped class, or ``Mailer#method`` for mail jobs.
    display_class: str | None
    args: list[Any]
    # The arguments a person thinks of: ActiveJob's own arguments without the ``_aj_*`` bookkeeping.
    display_args: list[Any]
    queue: str | None
    created_at: float | None
    enqueued_at: float | None
    failed_at: float | None
    retried_at: float | None
    retry_count: int | None
    error_class: str | None
    error_message: str | None
    tags: tuple[str, ...]
    bid: str | None
    item: dict[str, Any] = field(default_factory=dict)


def parse_job(value: bytes | str | dict[str, Any]) -> JobRecord:
    """The parsed job of a stored member (or of an already decoded payload object)."""
    if isinstance(value, dict):
        raw, item = orjson.dumps(value).decode(), value
    else:
        raw = decode_member(value)
        try:
            item = json_text.loads(encode_member(raw))
        except json_text.InvalidJSON:
            item = None
    if not isinstance(item, dict):
        return _invalid(raw)
    args = item.get("args")
    args = args if isinstance(args, list) else []
    job_class = _text(item.get("class"))
    display_class, display_args = _display(item, job_class, args)
    retry_count = item.get("retry_count")
    tags = item.get("tags")
    return JobRecord(
        raw=raw,
        valid=True,
        jid=_text(item.get("jid")),
        job_class=job_class,
        display_class=display_class,
        args=args,
        display_args=display_args,
        queue=_text(item.get("queue")),
        created_at=epoch_seconds(item.get("created_at")),
        enqueued_at=epoch_seconds(item.get("enqueued_at")),
        failed_at=epoch_seconds(item.get("failed_at")),
        retried_at=epoch_seconds(item.get("retried_at")),
        retry_count=retry_count
        if isinstance(retry_count, int) and not isinstance(retry_count, bool)
        else None,
        error_class=_text(item.get("error_class")),
        error_message=_text(item.get("error_message")),
        tags=tuple(str(tag) for tag in tags) if isinstance(tags, list) else (),
        bid=_text(item.get("bid")),
        item=item,
    )


def error_backtrace(item: dict[str, Any]) -> tuple[str, ...] | None:
    """The backtrace a failed job carries, or None: Sidekiq stores it (with ``backtrace: true``) as
    base64 of deflated JSON (6.x used MIME base64 with line breaks), older jobs as a plain array.
    A value that cannot be read is shown as that, never raised."""
    stored = item.get("error_backtrace")
    if stored is None:
        return None
    if isinstance(stored, list):
        return tuple(str(line) for line in stored)
    try:
        packed = base64.b64decode(str(stored).encode("ascii", "strict"), validate=False)
        inflater = zlib.decompressobj()
        text = inflater.decompress(packed, MAX_BACKTRACE_BYTES)
        if inflater.unconsumed_tail:
            return ("(the stored backtrace is larger than 1 MB once inflated; not shown)",)
        lines = json_text.loads(text)
    except (binascii.Error, UnicodeEncodeError, zlib.error, json_text.InvalidJSON):
        return ("(the stored backtrace cannot be read)",)
    if not isinstance(lines, list):
        return ("(the stored backtrace cannot be read)",)
    return tuple(str(line) for line in lines)


def extra_items(item: dict[str, Any]) -> dict[str, Any]:
    """The payload's keys that a detail page has no row for (custom options, tags of middlewares)."""
    return {key: value for key, value in item.items() if key not in SHOWN_KEYS}


def latency(job: JobRecord, now: float) -> float:
    """Seconds the job has waited: ``now`` minus ``enqueued_at`` (``created_at`` if missing), else 0."""
    stamp = job.enqueued_at if job.enqueued_at is not None else job.created_at
    return 0.0 if stamp is None else now - stamp


def _invalid(raw: str) -> JobRecord:
    return JobRecord(
        raw=raw,
        valid=False,
        jid=None,
        job_class=None,
        display_class=None,
        args=[raw],
        display_args=[raw],
        queue=None,
        created_at=None,
        enqueued_at=None,
        failed_at=None,
        retried_at=None,
        retry_count=None,
        error_class=None,
        error_message=None,
        tags=(),
        bid=None,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _display(item: dict[str, Any], job_class: str | None, args: list[Any]) -> tuple[str | None, list[Any]]:
    # The same unwrapping Sidekiq's JobRecord#display_class/#display_args does for the Web UI.
    override = _text(item.get("display_class"))
    if job_class not in ACTIVE_JOB_WRAPPERS:
        shown = list(args)
        if item.get("encrypt") and shown:
            shown[-1] = "[encrypted data]"  # Enterprise encrypts the last argument
        return override or job_class, shown
    serialized = args[0] if args and isinstance(args[0], dict) else {}
    wrapped = _text(item.get("wrapped")) or _text(args[0] if args else None)
    arguments = serialized.get("arguments")
    arguments = (
        _without_active_job_keys(arguments) if item.get("wrapped") and isinstance(arguments, list) else []
    )
    if wrapped in MAILER_JOBS and isinstance(serialized.get("arguments"), list):
        mailer = [str(part) for part in serialized["arguments"][:2]]
        shown = arguments[3:]
        if wrapped == "ActionMailer::MailDeliveryJob" and shown and isinstance(shown[0], dict):
            shown = [shown[0].get("params"), shown[0].get("args")]
        return override or "#".join(mailer), shown
    return override or wrapped or job_class, arguments


def _without_active_job_keys(value: Any) -> Any:
    if isinstance(value, list):
        return [_without_active_job_keys(element) for element in value]
    if isinstance(value, dict):
        if len(value) == 1 and GLOBAL_ID_KEY in value:
            return value[GLOBAL_ID_KEY]
        return {
            key: _without_active_job_keys(element)
            for key, element in value.items()
            if not str(key).startswith(ACTIVE_JOB_PREFIX)
        }
    return value
