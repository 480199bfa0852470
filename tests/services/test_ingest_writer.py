"""The group-commit writer, on its thread and in a process of its own, on both databases: shared
transactions, answers only after commit, isolation."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from sidekiq_supervisor.domain.model import EventKind, JobStatus, Report
from sidekiq_supervisor.services.report_writer import GroupCommitWriter, IngestUnavailable
from sidekiq_supervisor.services.writer_process import ChildFailed, ProcessWriter
from sidekiq_supervisor.store.engine import make_engine
from sidekiq_supervisor.store.queries import find_job
from sidekiq_supervisor.store.schema import jobs

T0 = 1_700_000_000_000_000
SECOND = 1_000_000


def report(jid: str, kind: str = "queued", at: int = T0, *, job_class: str = "HardWorker") -> Report:
    return Report(jid, EventKind(kind), at, job_class, "default", f'["{jid}"]')


def stored(engine, jid):
    with engine.connect() as connection:
        return find_job(connection, jid)


def count_jobs(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(jobs)).scalar_one()


@pytest.fixture(params=[GroupCommitWriter, ProcessWriter], ids=["thread", "process"])
def writer_class(request) -> type[GroupCommitWriter]:
    """Each test runs with the transactions on the writer thread and in a writer process."""
    return request.param


@pytest.fixture
def running_writer(writer_class):
    async def start(engine, **options) -> GroupCommitWriter:
        writer = writer_class(engine, **options)
        await writer.start()
        return writer

    return start


def test_many_concurrent_submits_are_all_stored_each_with_its_own_result(running_writer, engine):
    reports = [
        report(f"job-{n:04d}", kind, T0 + n)
        for n in range(500)
        for kind in (["queued"] if n % 5 else ["started"])
    ]

    async def scenario():
        writer = await running_writer(engine, batch_size=64)
        try:
            return await asyncio.gather(*(writer.submit([r]) for r in reports))
        finally:
            await writer.stop()

    answers = asyncio.run(scenario())

    assert len(answers) == len(reports)
    for sent, answer in zip(reports, answers, strict=True):
        (result,) = answer
        assert result.created is True
        assert result.job.jid == sent.jid
        assert result.job.arguments == sent.arguments
        expected = JobStatus.STARTED if sent.kind is EventKind.STARTED else JobStatus.QUEUED
        assert result.job.status is expected
    assert count_jobs(engine) == len(reports)


def test_reports_for_the_same_job_in_concurrent_submits_fold_together(running_writer, engine):
    async def scenario():
        writer = await running_writer(engine)
        try:
            return await asyncio.gather(
                writer.submit([report("same", "queued", T0)]),
                writer.submit([report("same", "started", T0 + SECOND)]),
                writer.submit([report("same", "complete", T0 + 2 * SECOND)]),
                writer.submit([report("same", "started", T0 + SECOND)]),
            )
        finally:
            await writer.stop()

    answers = asyncio.run(scenario())

    assert sum(result.created for (result,) in answers) == 1
    job = stored(engine, "same")
    assert job.status is JobStatus.COMPLETE
    assert job.timeline.attempts == 1


def test_a_submit_answers_only_once_its_reports_are_committed(running_writer, engine):
    async def scenario():
        writer = await running_writer(engine)
        try:
            seen = []
            for n in range(5):
                jid = f"visible-{n}"
                (result,) = await writer.submit([report(jid)])
                # Another connection than the writer's: it sees only what is committed.
                seen.append((result.job.jid, stored(engine, jid)))
            return seen
        finally:
            await writer.stop()

    for jid, row in asyncio.run(scenario()):
        assert row is not None
        assert row.jid == jid
        assert row.status is JobStatus.QUEUED


POISONS = {
    # PostgreSQL enforces VARCHAR(255); SQLite stores any length.
    "job_class too long": lambda jid: report(jid, job_class="X" * 300),
    # Beyond a signed 64-bit integer: neither database can store it.
    "time out of range": lambda jid: report(jid, at=2**64),
}


@pytest.mark.parametrize("poison", list(POISONS))
def test_a_poisoned_submit_fails_alone_while_its_neighbours_are_stored(running_writer, engine, poison):
    if poison == "job_class too long" and engine.dialect.name == "sqlite":
        pytest.skip("SQLite does not enforce VARCHAR lengths; the out-of-range time covers it")
    neighbours = [[report(f"good-{n}"), report(f"good-{n}", "started", T0 + SECOND)] for n in range(20)]
    bad = [report("bad-companion"), POISONS[poison]("bad")]

    async def scenario():
        writer = await running_writer(engine)
        try:
            submits = [writer.submit(batch) for batch in neighbours[:10]]
            submits.append(writer.submit(bad))
            submits += [writer.submit(batch) for batch in neighbours[10:]]
            return await asyncio.gather(*submits, return_exceptions=True)
        finally:
            await writer.stop()

    answers = asyncio.run(scenario())

    failed = answers.pop(10)
    assert isinstance(failed, IngestUnavailable)
    for batch, answer in zip(neighbours, answers, strict=True):
        assert not isinstance(answer, BaseException), answer
        assert [r.job.jid for r in answer] == [batch[0].jid, batch[0].jid]
        assert stored(engine, batch[0].jid).status is JobStatus.STARTED
    # The poisoned ticket is one transaction: its valid companion is not stored either.
    assert stored(engine, "bad") is None
    assert stored(engine, "bad-companion") is None
    assert count_jobs(engine) == len(neighbours)


def test_stop_commits_what_is_pending_then_refuses_new_submits(running_writer, engine):
    async def scenario():
        writer = await running_writer(engine, batch_size=10)
        # gather starts the coroutines in order: every submit is queued before stop() begins.
        *results, _ = await asyncio.gather(
            *(writer.submit([report(f"drain-{n:03d}")]) for n in range(100)), writer.stop()
        )
        with pytest.raises(IngestUnavailable):
            await writer.submit([report("too-late")])
        return results

    results = asyncio.run(scenario())

    assert [result.job.jid for (result,) in results] == [f"drain-{n:03d}" for n in range(100)]
    assert count_jobs(engine) == 100
    assert stored(engine, "too-late") is None


def test_a_writer_that_was_never_started_refuses_submits(engine, writer_class):
    async def scenario():
        writer = writer_class(engine)
        try:
            await writer.submit([report("never")])
        finally:
            await writer.stop()

    with pytest.raises(IngestUnavailable):
        asyncio.run(scenario())
    assert stored(engine, "never") is None


def test_a_submit_larger_than_the_queue_limit_is_refused(running_writer, engine):
    async def scenario():
        writer = await running_writer(engine, queue_limit=5)
        try:
            with pytest.raises(IngestUnavailable):
                await writer.submit([report(f"big-{n}") for n in range(6)])
            return await writer.submit([report(f"fits-{n}") for n in range(5)])
        finally:
            await writer.stop()

    results = asyncio.run(scenario())

    assert len(results) == 5
    assert count_jobs(engine) == 5
    assert stored(engine, "big-0") is None


def test_pending_reports_count_against_the_queue_limit(running_writer, engine):
    async def scenario():
        writer = await running_writer(engine, queue_limit=5)
        try:
            # gather starts both submits before the writer takes anything from the queue.
            return await asyncio.gather(
                writer.submit([report(f"first-{n}") for n in range(3)]),
                writer.submit([report(f"second-{n}") for n in range(3)]),
                return_exceptions=True,
            )
        finally:
            await writer.stop()

    first, second = asyncio.run(scenario())

    assert [r.job.jid for r in first] == ["first-0", "first-1", "first-2"]
    assert isinstance(second, IngestUnavailable)
    assert count_jobs(engine) == 3


def test_a_writer_process_that_dies_is_replaced_and_only_its_batch_is_refused(engine):
    async def scenario():
        writer = ProcessWriter(engine)
        await writer.start()
        try:
            (before,) = await writer.submit([report("before")])
            lost = writer._process
            os.kill(lost.pid, signal.SIGKILL)
            await asyncio.to_thread(lost.wait, 30)
            # The service learns of the death when the socket closes, or at the latest when it
            # sends the next batch into it: that batch's request is refused, not stored.
            refused = []
            answers = []
            for n in range(20):
                try:
                    answers.append(await writer.submit([report(f"after-{n}")]))
                except IngestUnavailable as exc:
                    refused.append((n, exc))
            return before, lost.pid, writer._process.pid, refused, answers
        finally:
            await writer.stop()

    before, lost_pid, replaced_pid, refused, answers = asyncio.run(scenario())

    assert before.job.jid == "before"
    assert replaced_pid != lost_pid
    assert len(refused) <= 1
    assert all("writer's process stopped" in str(exc) for _, exc in refused)
    assert len(answers) == 20 - len(refused)
    for n in range(20):
        if n not in {m for m, _ in refused}:
            assert stored(engine, f"after-{n}").status is JobStatus.QUEUED
    assert count_jobs(engine) == 1 + len(answers)


def test_a_writer_process_that_cannot_open_the_ledger_fails_the_start(tmp_path):
    unreachable = make_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'ledger.db'}")

    async def scenario():
        writer = ProcessWriter(unreachable)
        try:
            await writer.start()
        finally:
            await writer.stop()

    with pytest.raises(ChildFailed):
        asyncio.run(scenario())


def test_what_crosses_to_the_writer_process_and_back_is_equal_field_for_field(running_writer, engine):
    full = Report(
        "crossing",
        EventKind.STARTED,
        T0,
        "HardWorker",
        "critical",
        '["a",{"b":[1,2.5,null]}]',
        worker='{"identity":"host:1","tid":"abc"}',
        payload_form="sidekiq",
        payload='{"retry":3}',
    )

    async def scenario():
        writer = await running_writer(engine)
        try:
            return await writer.submit([full])
        finally:
            await writer.stop()

    (result,) = asyncio.run(scenario())

    assert result.job.worker is not None and result.job.timeline.started_at == T0
    assert pickle.loads(pickle.dumps(result)) == result
    assert pickle.loads(pickle.dumps(full)) == full


def test_the_writer_process_imports_neither_the_metrics_nor_the_settings():
    """The child loads what a transaction needs; the metrics' client and the settings cost it
    megabytes (docs/ledger.md, "Write path")."""
    probe = (
        "import sys, sidekiq_supervisor.services.writer_child as child; "
        "print(' '.join(sorted(m for m in ('prometheus_client', 'pydantic_settings', "
        "'sidekiq_supervisor.settings', 'sidekiq_supervisor.web', 'fastapi') if m in sys.modules)))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)

    assert loaded.stdout.split() == []
