"""The ledger's write path on both databases: ``write_reports`` and the restart's compare-and-set."""

from __future__ import annotations

import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from sidekiq_supervisor.domain.model import EventKind, JobStatus, Report, Timeline
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.queries import find_job, job_history
from sidekiq_supervisor.store.restarts import claim_original, record_replacement
from sidekiq_supervisor.store.schema import job_events, jobs
from sidekiq_supervisor.store.writer import CHUNK, WriteResult, write_reports

T0 = 1_700_000_000_000_000  # epoch microseconds
SECOND = 1_000_000
RECORDED = T0 + 3600 * SECOND


def report(
    jid: str,
    kind: str = "queued",
    at: int = T0,
    *,
    job_class: str = "HardWorker",
    queue: str = "default",
    arguments: str = '[42,"alice@example.com"]',
) -> Report:
    return Report(jid, EventKind(kind), at, job_class, queue, arguments)


def write(engine, reports, recorded_at=RECORDED):
    with write_transaction(engine) as connection:
        return write_reports(connection, reports, recorded_at)


def stored(engine, jid):
    with engine.connect() as connection:
        return find_job(connection, jid)


def history(engine, jid):
    with engine.connect() as connection:
        return [(event.kind.value, event.at) for event in job_history(connection, jid)]


def count_rows(engine, table) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def test_a_first_report_creates_the_job_with_its_description(engine):
    (result,) = write(engine, [report("a1", "queued", T0, job_class="MailWorker", queue="mail")])

    assert result.created is True
    job = stored(engine, "a1")
    assert job == result.job
    assert (job.jid, job.job_class, job.queue, job.arguments) == (
        "a1",
        "MailWorker",
        "mail",
        '[42,"alice@example.com"]',
    )
    assert job.status is JobStatus.QUEUED
    assert job.timeline == Timeline(queued_at=T0, started_at=None, completed_at=None, attempts=0)
    assert job.restarted_from is None


def test_a_started_report_for_an_unknown_jid_creates_it_as_started(engine):
    (result,) = write(engine, [report("lost-queue", "started", T0)])

    assert result.created is True
    assert result.job.status is JobStatus.STARTED
    assert result.job.timeline == Timeline(None, T0, None, 1)


def test_only_the_first_report_of_a_new_jid_in_a_batch_says_created(engine):
    results = write(
        engine,
        [
            report("b1", "queued", T0),
            report("b2", "queued", T0),
            report("b1", "started", T0 + SECOND),
            report("b2", "started", T0 + SECOND),
            report("b1", "complete", T0 + 2 * SECOND),
        ],
    )

    assert [r.created for r in results] == [True, True, False, False, False]
    later = write(engine, [report("b2", "complete", T0 + 3 * SECOND), report("b3", "queued", T0)])
    assert [r.created for r in later] == [False, True]


def test_every_result_shows_its_job_as_committed_at_the_end_of_the_batch(engine):
    results = write(
        engine,
        [
            report("c1", "queued", T0),
            report("c1", "started", T0 + SECOND),
            report("c1", "complete", T0 + 5 * SECOND),
        ],
    )

    committed = stored(engine, "c1")
    assert all(r.job == committed for r in results)
    assert committed.status is JobStatus.COMPLETE
    assert committed.timeline == Timeline(T0, T0 + SECOND, T0 + 5 * SECOND, 1)


def test_every_distinct_report_is_appended_to_the_history_with_its_recording_time(engine):
    write(engine, [report("d1", "queued", T0), report("d1", "started", T0 + SECOND)], recorded_at=RECORDED)
    write(engine, [report("d1", "complete", T0 + 2 * SECOND)], recorded_at=RECORDED + 7)

    with engine.connect() as connection:
        events = job_history(connection, "d1")
    assert [(e.kind, e.at, e.recorded_at) for e in events] == [
        (EventKind.QUEUED, T0, RECORDED),
        (EventKind.STARTED, T0 + SECOND, RECORDED),
        (EventKind.COMPLETE, T0 + 2 * SECOND, RECORDED + 7),
    ]


def test_a_resent_report_changes_nothing(engine):
    write(engine, [report("e1", "queued", T0), report("e1", "started", T0 + SECOND)])
    before = stored(engine, "e1")

    results = write(engine, [report("e1", "started", T0 + SECOND), report("e1", "queued", T0)])

    assert stored(engine, "e1") == before
    assert before.timeline.attempts == 1
    assert [r.created for r in results] == [False, False]
    assert all(r.job == before for r in results)
    assert history(engine, "e1") == [("queued", T0), ("started", T0 + SECOND)]


def test_the_same_report_twice_in_one_batch_counts_once(engine):
    results = write(
        engine,
        [report("f1", "started", T0), report("f1", "started", T0), report("f1", "started", T0)],
    )

    assert [r.created for r in results] == [True, False, False]
    job = stored(engine, "f1")
    assert job.timeline.attempts == 1
    assert history(engine, "f1") == [("started", T0)]


def test_a_duplicate_keeps_the_first_description_of_the_job(engine):
    write(engine, [report("g1", "queued", T0, job_class="First", queue="one", arguments="[1]")])
    write(engine, [report("g1", "started", T0 + 1, job_class="Second", queue="two", arguments="[2]")])

    job = stored(engine, "g1")
    assert (job.job_class, job.queue, job.arguments) == ("First", "one", "[1]")


def test_reports_in_any_arrival_order_fold_to_the_same_job(engine):
    events = [
        ("queued", T0),
        ("started", T0 + 1 * SECOND),
        ("complete", T0 + 2 * SECOND),
        ("started", T0 + 3 * SECOND),
        ("complete", T0 + 4 * SECOND),
    ]
    orders = {
        "in-order": [0, 1, 2, 3, 4],
        "reversed": [4, 3, 2, 1, 0],
        "shuffled": [2, 4, 0, 3, 1],
    }
    for name, order in orders.items():
        for index in order:  # one report per batch: each arrives in its own transaction
            kind, at = events[index]
            write(engine, [report(name, kind, at)])
    write(engine, [report("one-batch", kind, at) for kind, at in reversed(events)])

    expected = Timeline(T0, T0 + 3 * SECOND, T0 + 4 * SECOND, 2)
    for jid in [*orders, "one-batch"]:
        job = stored(engine, jid)
        assert (jid, job.status, job.timeline) == (jid, JobStatus.COMPLETE, expected)


def test_a_start_after_the_latest_completion_makes_the_job_uncompleted_again(engine):
    write(engine, [report("h1", "started", T0), report("h1", "complete", T0 + SECOND)])
    (result,) = write(engine, [report("h1", "started", T0 + 2 * SECOND)])

    assert result.job.status is JobStatus.STARTED
    assert result.job.timeline == Timeline(None, T0 + 2 * SECOND, T0 + SECOND, 2)


def test_a_completion_reported_before_its_start_still_completes_the_job(engine):
    write(engine, [report("i1", "complete", T0 + 2 * SECOND)])
    (result,) = write(engine, [report("i1", "started", T0 + SECOND)])

    assert result.job.status is JobStatus.COMPLETE
    assert result.job.timeline == Timeline(None, T0 + SECOND, T0 + 2 * SECOND, 1)


def test_a_late_queued_report_never_moves_a_job_back(engine):
    write(engine, [report("j1", "started", T0 + SECOND), report("j1", "complete", T0 + 2 * SECOND)])
    (result,) = write(engine, [report("j1", "queued", T0 + 3 * SECOND)])
    write(engine, [report("j1", "queued", T0)])

    assert result.job.status is JobStatus.COMPLETE
    assert stored(engine, "j1").timeline == Timeline(T0, T0 + SECOND, T0 + 2 * SECOND, 1)


def test_a_batch_spanning_several_chunks_is_stored_whole(engine):
    size = CHUNK * 2 + 17
    reports = [report(f"k{n:05d}", "queued", T0 + n) for n in range(size)]
    reports += [report(f"k{n:05d}", "started", T0 + SECOND + n) for n in range(0, size, 3)]

    results = write(engine, reports)

    assert len(results) == len(reports)
    assert sum(r.created for r in results) == size
    assert count_rows(engine, jobs) == size
    assert count_rows(engine, job_events) == len(reports)
    assert stored(engine, f"k{CHUNK:05d}").timeline == Timeline(T0 + CHUNK, None, None, 0)
    assert stored(engine, f"k{CHUNK + 1:05d}").timeline == Timeline(
        T0 + CHUNK + 1, T0 + SECOND + CHUNK + 1, None, 1
    )


def test_concurrent_writers_on_overlapping_jobs_lose_no_update(engine):
    threads, batches, shared_jids = 4, 8, 25
    jids = [f"shared-{n:03d}" for n in range(shared_jids)]

    def batch(thread: int, number: int) -> list[Report]:
        reports = []
        for index, jid in enumerate(jids):
            # Distinct starts and completions per thread and batch, plus the same queued report
            # from every thread (a duplicate that must be stored once).
            start = T0 + (number * threads + thread + 1) * SECOND + index
            reports.append(report(jid, "queued", T0))
            reports.append(report(jid, "started", start))
            if (thread + number) % 2 == 0:
                reports.append(report(jid, "complete", start + SECOND // 2))
        return reports[::-1] if thread % 2 else reports

    barrier = threading.Barrier(threads)

    def run(thread: int) -> list[WriteResult]:
        barrier.wait(timeout=30)
        return [result for number in range(batches) for result in write(engine, batch(thread, number))]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(run, thread) for thread in range(threads)]
        results = [result for future in futures for result in future.result(timeout=60)]

    all_reports = [r for thread in range(threads) for number in range(batches) for r in batch(thread, number)]
    expected: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for r in all_reports:
        expected[r.jid][r.kind.value].add(r.at)
    for jid in jids:
        times = expected[jid]
        job = stored(engine, jid)
        assert job.timeline == Timeline(
            queued_at=min(times["queued"]),
            started_at=max(times["started"]),
            completed_at=max(times["complete"]),
            attempts=len(times["started"]),
        ), jid
        assert len(history(engine, jid)) == sum(len(ats) for ats in times.values())
    assert count_rows(engine, jobs) == shared_jids
    created = [r.job.jid for r in results if r.created]
    assert sorted(created) == jids  # each job was created by exactly one writer


def started_job(engine, jid="orig", started=T0 + SECOND):
    write(engine, [report(jid, "queued", T0), report(jid, "started", started)])
    return stored(engine, jid)


def replace(engine, original, new_jid="fresh", at=T0 + 60 * SECOND):
    replacement = report(new_jid, "queued", at, job_class=original.job_class, arguments=original.arguments)
    with write_transaction(engine) as connection:
        if not claim_original(connection, original):
            return False
        record_replacement(connection, original, replacement, RECORDED)
        return True


def test_a_restart_swaps_a_still_started_job_for_its_queued_replacement(engine):
    original = started_job(engine)

    assert replace(engine, original, "fresh", T0 + 60 * SECOND) is True

    assert stored(engine, "orig") is None
    fresh = stored(engine, "fresh")
    assert fresh.status is JobStatus.QUEUED
    assert fresh.timeline == Timeline(T0 + 60 * SECOND, None, None, 0)
    assert fresh.restarted_from == "orig"
    assert (fresh.job_class, fresh.queue, fresh.arguments) == (
        original.job_class,
        original.queue,
        original.arguments,
    )
    assert history(engine, "orig") == [
        ("queued", T0),
        ("started", T0 + SECOND),
        ("restarted", T0 + 60 * SECOND),
    ]
    assert history(engine, "fresh") == [("queued", T0 + 60 * SECOND)]


def test_a_restart_leaves_a_job_that_completed_meanwhile(engine):
    original = started_job(engine)
    write(engine, [report("orig", "complete", T0 + 2 * SECOND)])
    now = stored(engine, "orig")

    assert replace(engine, original) is False

    assert stored(engine, "orig") == now
    assert stored(engine, "fresh") is None
    assert history(engine, "fresh") == []


def test_a_restart_leaves_a_job_that_started_again_meanwhile(engine):
    original = started_job(engine)
    write(engine, [report("orig", "started", T0 + 2 * SECOND)])
    now = stored(engine, "orig")

    assert replace(engine, original) is False

    assert stored(engine, "orig") == now
    assert now.timeline.attempts == 2
    assert stored(engine, "fresh") is None


def test_a_second_replace_of_the_same_original_does_nothing(engine):
    original = started_job(engine)
    assert replace(engine, original, "first") is True

    assert replace(engine, original, "second") is False

    assert stored(engine, "second") is None
    assert stored(engine, "first").restarted_from == "orig"
    assert count_rows(engine, jobs) == 1


def test_a_resent_report_of_a_restarted_job_changes_nothing(engine):
    original = started_job(engine)
    assert replace(engine, original, "fresh") is True
    resent = report("orig", "started", T0 + SECOND)  # the original worker's report, sent again

    write(engine, [resent])

    assert stored(engine, "orig") is None  # not a queued job with no times, as now
    assert count_rows(engine, jobs) == 1
