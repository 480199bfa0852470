"""Hypothesis strategies for random report streams: valid reports of a few jobs with colliding
times (so duplicates and ties are common), and bad reports mixed in, alone or inside batches.

A stream is a list of requests. Each valid report is meant to be stored; each bad one to be
refused with a 4xx (or a 422 item inside its batch) and to leave no trace, which is why bad
reports use jids of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

KINDS = ("queued", "started", "complete", "failed")
# An explicit JSON null for ``at`` (a Ruby client's nil); form bodies leave the field out instead.
NULL = "null"
# A handful of times: duplicates (same job, kind and time) and ties between kinds happen often.
# None and NULL mean "no time": the service stamps its receive time.
TIMES = (None, NULL, 1_700_000_000, 1_700_000_000.5, 1_700_000_001, 1_700_000_002.25, 1_700_000_003)
JOBS_PER_STREAM = 4

# Field overrides that each make a report invalid (None removes the field).
BAD_FIELDS: dict[str, dict[str, Any]] = {
    "at negative": {"at": -1},
    "at in milliseconds": {"at": 1.7e12},
    "at not a number": {"at": "yesterday"},
    "at a boolean": {"at": True},
    "arguments not JSON": {"arguments": "[1, 'a'"},
    "arguments an object": {"arguments": '{"a": 1}'},
    "arguments a number": {"arguments": "5"},
    "no job_class": {"job_class": None},
    "control character in job_class": {"job_class": "Hard\x01Worker"},
    "NUL in queue": {"queue": "de\x00fault"},
    "empty queue": {"queue": ""},
    "worker pid negative": {"worker": {"pid": -5}},
    "error without class": {"error": {"message": "boom"}},
}
# Jids that no route may store.
BAD_JIDS = ("", "has space", "x" * 129, "semi;colon", "ünïcode")


@dataclass(frozen=True)
class Item:
    """One report: ``job`` indexes the stream's jobs; ``bad`` names what is wrong with it."""

    job: int
    kind: str
    at: float | str | None
    bad: str | None = None
    bad_jid: str | None = None


@dataclass(frozen=True)
class Request:
    """How the items go out: ``form`` or ``json`` (one item each), or a ``batch``."""

    how: str
    items: tuple[Item, ...]


@dataclass
class Stream:
    """The requests of one example, plus the malformed bodies mixed in."""

    requests: list[Request]
    garbage: list[tuple[str, bytes]] = field(default_factory=list)


valid_items = st.builds(
    Item, job=st.integers(0, JOBS_PER_STREAM - 1), kind=st.sampled_from(KINDS), at=st.sampled_from(TIMES)
)
bad_field_items = st.builds(
    Item,
    job=st.integers(0, JOBS_PER_STREAM - 1),
    kind=st.sampled_from(KINDS),
    at=st.sampled_from(TIMES),
    bad=st.sampled_from(sorted(BAD_FIELDS)),
)
bad_jid_items = st.builds(
    Item,
    job=st.just(0),
    kind=st.sampled_from(KINDS),
    at=st.sampled_from(TIMES),
    bad=st.just("bad jid"),
    bad_jid=st.sampled_from(BAD_JIDS),
)
items = st.one_of(valid_items, valid_items, valid_items, bad_field_items, bad_jid_items)

single = st.builds(Request, how=st.sampled_from(["form", "json"]), items=st.tuples(items))
batch = st.builds(Request, how=st.just("batch"), items=st.lists(items, min_size=1, max_size=8).map(tuple))
# Bodies no parser should choke on: the service must answer them with a 4xx.
GARBAGE = (
    ("application/json", b"{not json"),
    ("application/json", b"[1, 2]"),
    ("application/json", b'{"events": 5}'),
    ("application/json", b'{"events": [1, null, "x"]}'),
    ("application/json", b"\xff\xfe"),
    ("application/x-www-form-urlencoded", b"job_id=%FF&arguments=[]"),
    ("text/plain", b"hello"),
)
streams = st.builds(
    Stream,
    requests=st.lists(st.one_of(single, single, batch), min_size=1, max_size=10),
    garbage=st.lists(st.sampled_from(GARBAGE), max_size=2),
)
