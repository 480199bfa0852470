"""The Sidekiq payload a restart pushes: what the ledger keeps of it, and how the push is built.

A job is pushed again as it was pushed: its class (ActiveJob's wrapper, not the class people
see), its exact arguments, and every other key of the payload (``retry``, ``retry_for``,
``backtrace``, ``dead``, ``tags``, custom keys), less the keys Sidekiq writes per run. The gem
sends those keys with a job's ``queued`` and ``started`` reports; the seed's middlewares send
class, arguments and queue only, and a restart of such a job gets Sidekiq's defaults.

The ledger keeps a job's payload keys in one of these forms (:class:`PayloadForm`):

* none: nothing beyond the job's class, queue and (unmasked) arguments is known;
* plain: the payload's keys as JSON, arguments excepted (the ``arguments`` column has them exact);
* sealed: the whole payload, arguments included, encrypted: the arguments were masked for people
  (``domain.redaction``), or a payload key looks secret;
* withheld: the same, with no key to encrypt it: nothing secret is kept, and a restart refuses the
  job rather than push the mask.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import orjson

# Written by Sidekiq for each push or run; a restart writes its own jid and times.
PER_RUN_KEYS = frozenset(
    {
        "jid",
        "created_at",
        "enqueued_at",
        "at",
        "retry_count",
        "retried_at",
        "failed_at",
        "error_message",
        "error_class",
        "error_backtrace",
        "discarded_at",
    }
)
# Not payload keys a client may set: the report carries them itself.
REPORT_KEYS = frozenset({"args", "queue"})
# ActiveJob's wrappers: Rails' adapter up to Sidekiq 7.2, Sidekiq's own from 7.3 with Rails 7.2+.
ACTIVE_JOB_WRAPPERS = frozenset(
    {"ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper", "Sidekiq::ActiveJob::Wrapper"}
)
# Sidekiq's own default for a job pushed without a retry option.
DEFAULT_RETRY = True
# Ruby's JSON refuses to generate or parse documents nested over 100 deep, and a payload is one
# object around its args: 99 levels of args (the array itself counted) is the most Sidekiq can
# push, so the most any layer here has to store, show and push again.
MAX_ARGUMENTS_DEPTH = 99


class PayloadForm(StrEnum):
    """How the ledger keeps the payload keys of a job (see the module's docstring)."""

    PLAIN = "plain"
    SEALED = "sealed"
    WITHHELD = "withheld"


def payload_keys(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of a reported payload that a restart pushes again (per-run and report keys gone)."""
    return {key: value for key, value in payload.items() if key not in PER_RUN_KEYS | REPORT_KEYS}


def display_class(job_class: str, keys: Mapping[str, Any], arguments: Any) -> str:
    """The class a person thinks of: ActiveJob's job class rather than its wrapper.

    The gem already reports it (from ``wrapped``); the seed's middlewares report the wrapper, whose
    first argument is ActiveJob's serialized job naming its class.
    """
    if job_class not in ACTIVE_JOB_WRAPPERS:
        return job_class
    wrapped = keys.get("wrapped")
    if isinstance(wrapped, str) and wrapped:
        return wrapped
    first = arguments[0] if isinstance(arguments, list) and arguments else None
    named = first.get("job_class") if isinstance(first, dict) else None
    return named if isinstance(named, str) and named else job_class


def push_keys(
    keys: Mapping[str, Any], *, job_class: str, queue: str, jid: str, timestamp: float | int
) -> dict[str, Any]:
    """The payload of a restart, arguments aside: the kept keys, then the new jid and times.

    ``job_class`` is the class the ledger shows, used only when the payload keeps none (the seed's
    middlewares report the class Sidekiq runs).
    """
    return {
        "retry": DEFAULT_RETRY,
        **keys,
        "class": keys.get("class") or job_class,
        "queue": queue,
        "jid": jid,
        "created_at": timestamp,
        "enqueued_at": timestamp,
    }


def job_timestamp(now: float, sidekiq_major: int) -> float | int:
    """``now`` (epoch seconds) in the unit Sidekiq writes: float seconds up to 7, integer ms from 8."""
    return int(now * 1000) if sidekiq_major >= 8 else float(now)


def nesting_depth(value: Any, *, stop_after: int = MAX_ARGUMENTS_DEPTH) -> int:
    """How deep arrays and objects nest in ``value`` (a scalar is 0, ``[]`` is 1).

    Iterative, so no input can exhaust the stack; it stops counting past ``stop_after``.
    """
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > stop_after:
            return deepest
        pending.extend((child, depth + 1) for child in children if isinstance(child, list | dict))
    return deepest


def may_be_deeper_than(text: str, depth: int) -> bool:
    """False when JSON ``text`` surely nests no deeper than ``depth`` (it opens fewer containers)."""
    return text.count("[") + text.count("{") > depth


# The error a quarantined job carries in Sidekiq's Dead set, where Sidekiq users look for it.
QUARANTINE_ERROR_CLASS = "SidekiqSupervisor::Quarantined"


def dead_payload(payload: bytes, *, error: str, now: float, sidekiq_major: int) -> bytes:
    """``payload`` (a job's JSON object, exactly as a restart pushes it) as a Dead-set member: the
    error and the time it failed spliced in front, the rest (its arguments above all) untouched."""
    stamp = job_timestamp(now, sidekiq_major)
    head = orjson.dumps(
        {"error_class": QUARANTINE_ERROR_CLASS, "error_message": error, "failed_at": stamp, "retry_count": 0}
    )
    body = payload.lstrip()
    if not body.startswith(b"{") or body[1:].lstrip().startswith(b"}"):
        return head
    return head[:-1] + b"," + body[1:]
