"""Per-class execution metrics against the metrics keys real Sidekiq 7 and 8 processes wrote."""

from __future__ import annotations

import pytest

from sidekiq_supervisor.sidekiq_redis.metrics import read_metrics
from tests.sidekiq_fixtures import load

# The one per-minute hash each dump holds, and its minute.
MINUTE_KEY = {"7.3.10": "j|20261128|13:42", "8.1.7": "j|261128|13:45"}


def expected_totals(dump: dict, key: str) -> dict[str, tuple[int, int, int]]:
    """class → (executions, failures, ms), straight from the dump's hash."""
    fields = dump["keys"][key]["value"]
    classes = {field.split("|")[0] for field in fields}
    return {c: tuple(int(fields.get(f"{c}|{m}", 0)) for m in ("p", "f", "ms")) for c in classes}


@pytest.mark.parametrize("version", ["7.3.10", "8.1.7"])
def test_the_last_hour_holds_each_class_totals(redis_client, version):
    dump = load(redis_client, version)
    expected = expected_totals(dump, MINUTE_KEY[version])
    assert expected["FastJob"] == (20, 0, 402)

    result = read_metrics(redis_client, now=dump["captured_at"], minutes=60)

    assert {c.job_class: (c.executions, c.failures, c.total_ms) for c in result.classes} == expected
    # The most total run time first, as Sidekiq's table; ties by name.
    assert [c.job_class for c in result.classes] == ["FastJob", "MailerJob", "DoomedJob", "FlakyJob"]
    fast = result.classes[0]
    assert (fast.successes, fast.average_ms) == (20, 402 / 20)
    assert result.classes[3].average_ms == 0.0  # every FlakyJob run failed: nothing timed
    assert (result.bucket_seconds, result.ends_at - result.starts_at) == (60, pytest.approx(3540, abs=60))
    (bucket,) = fast.buckets
    assert bucket.starts_at == dump["captured_at"] - dump["captured_at"] % 60


@pytest.mark.parametrize("version", ["7.3.10", "8.1.7"])
def test_a_period_that_ends_before_the_minute_written_is_empty(redis_client, version):
    dump = load(redis_client, version)
    minute_start = dump["captured_at"] - dump["captured_at"] % 60

    assert read_metrics(redis_client, now=minute_start - 1, minutes=60).classes == ()
    assert len(read_metrics(redis_client, now=minute_start + 60, minutes=2).classes) == 4
    assert read_metrics(redis_client, now=minute_start + 60, minutes=1).classes == ()


def test_sidekiq_8_ten_minute_rollups_serve_periods_in_hours(redis_client):
    dump = load(redis_client, "8.1.7")
    expected = expected_totals(dump, "j|261128|13:4")

    result = read_metrics(redis_client, now=dump["captured_at"], hours=24)

    assert {c.job_class: (c.executions, c.failures, c.total_ms) for c in result.classes} == expected
    assert (result.bucket_seconds, len(result.classes[0].buckets)) == (600, 1)


def test_sidekiq_6_writes_no_metrics(redis_client):
    dump = load(redis_client, "6.4.1")

    assert read_metrics(redis_client, now=dump["captured_at"], minutes=480).classes == ()


def test_classes_are_filtered_by_a_case_insensitive_substring(redis_client):
    dump = load(redis_client, "7.3.10")

    result = read_metrics(redis_client, now=dump["captured_at"], class_filter="mAiL")

    assert [(c.job_class, c.executions, c.total_ms) for c in result.classes] == [("MailerJob", 6, 61)]


def test_both_layouts_of_one_minute_add_up_during_an_upgrade(redis_client):
    now = 1795873347.0  # 2026-11-28 13:42:27 UTC
    redis_client.hset("j|20261128|13:42", mapping={"A|p": 2, "A|ms": 10})
    redis_client.hset("j|261128|13:42", mapping={"A|p": 3, "A|f": 1, "A|ms": 20})

    (only,) = read_metrics(redis_client, now=now, minutes=1).classes

    assert (only.executions, only.failures, only.total_ms, only.average_ms) == (5, 1, 30, 7.5)


def test_minutes_are_clamped_to_the_eight_hours_the_hashes_live(redis_client):
    result = read_metrics(redis_client, now=1795873347.0, minutes=10_000)

    assert result.ends_at - result.starts_at == pytest.approx(479 * 60 + 27)
