"""The JSON API's duration summary says when it is an estimate from a sample."""

from __future__ import annotations

from dataclasses import replace

from sidekiq_supervisor.domain.durations import DurationSummary
from sidekiq_supervisor.web.api.presenters import summary_document

EXACT = DurationSummary.from_micros(3, 2_000_000.0, 1_000_000, 3_000_000, 3_000_000, 3_000_000)


def test_an_exact_summary_reads_as_it_always_did():
    assert summary_document(EXACT) == {
        "count": 3,
        "mean_seconds": 2.0,
        "p50_seconds": 1.0,
        "p95_seconds": 3.0,
        "p99_seconds": 3.0,
        "max_seconds": 3.0,
    }


def test_an_estimated_summary_is_marked_as_one():
    document = summary_document(replace(EXACT, estimated=True))

    assert document["estimated"] is True
    assert {key: value for key, value in document.items() if key != "estimated"} == summary_document(EXACT)
