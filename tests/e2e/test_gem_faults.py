"""The gem under faults, end to end: a real Sidekiq (Debian's 6.4.1) with the gem loaded, and the real
service behind a front that makes it go down (connections refused), slow (answers after 5 s) or
answer 500. Nothing of ours is mocked: jobs run in Sidekiq, reports cross HTTP, and what arrived
is read from the service's ledger.

For each fault, one Sidekiq process goes through four phases:

1. healthy: a warm-up (its jobs' reports are not checked: a buffer this small overflows even
   while the supervisor is up, on a box where it shares 2 cores with Sidekiq);
2. the fault with fewer reports than the bound, then recovery: every report arrives;
3. the fault with rounds of jobs that record six times the bound each: Sidekiq runs every job
   while nothing reaches the supervisor (when slow, while the gem's request hangs on it), the
   oldest reports are dropped, counted and logged, and the sender backs off;
4. recovery: the newest ``BUFFER_SIZE`` reports arrive, and (when nothing reached the service
   during the fault) nothing else did.

Outcomes only: how fast the jobs ran against a healthy supervisor, and how Sidekiq's memory
behaved, depend on the machine's load, and ``bench/gem_faults.py`` prints them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import redis_test_url
from tests.e2e.fault_front import SLOW_SECONDS, Fault, FaultFront, fault_front
from tests.e2e.fault_sidekiq import Drain, Ledger, SidekiqApp, jids_for, sidekiq_app, wait_for
from tests.e2e.real_sidekiq import line_environment, require_sidekiq
from tests.live_service import running_service

# Real Sidekiq processes (and the service as a process): not in the fast lane.
pytestmark = pytest.mark.e2e

# As tests/e2e/fault_sidekiq_app.rb configures the gem.
RETRY_BASE_SECONDS = 0.1
CONCURRENCY = 10
BUFFER_SIZE = 500
# Reports of about 4 KB, so that keeping them would show in the process's memory: a round holds
# 2 x 1,500 of them, 12 MB, against a bound of 2 MB.
PAYLOAD_BYTES = 4_000
ROUND_JOBS = 1_500
ROUNDS = 5
FEW_JOBS = 100  # 200 reports: fewer than the bound
WARM_UP_JOBS = 300
# A round takes about a second; a gem that holds jobs back fails here rather than at the test's timeout.
ROUND_TIMEOUT = 20
# Jobs near the boundary between dropped and kept reports may go either way: jobs run side by side.
ORDER_SLACK = 2 * CONCURRENCY
FAULT_LOG = {
    Fault.DOWN: "cannot reach the supervisor",
    Fault.SLOW: "Net::ReadTimeout",
    Fault.ERROR: "the supervisor answered 500",
}


@dataclass(frozen=True)
class Supervisor:
    """The front the gem talks to (the real service behind it), and the service's ledger."""

    front: FaultFront
    ledger: Ledger


@dataclass
class Overflow:
    """What phase 3 saw: each round's drain, and the gem's counters before and after."""

    drains: list[Drain]
    before: dict[str, Any]
    after: dict[str, Any]
    started_at: float
    ended_at: float


@pytest.fixture(scope="module")
def supervisor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisor]:
    """``sidekiq-supervisor serve`` on a SQLite ledger, behind a fault front."""
    require_sidekiq()
    workdir = tmp_path_factory.mktemp("gem-faults")
    ledger = workdir / "ledger.db"
    with (
        running_service(f"sqlite:///{ledger}", workdir, REDIS_URL=redis_test_url()) as service,
        fault_front(service.url) as front,
    ):
        yield Supervisor(front, Ledger(ledger))


@pytest.fixture
def healthy_front(supervisor: Supervisor) -> Iterator[Supervisor]:
    """The supervisor, healthy at the start and at the end of a test."""
    supervisor.front.switch(Fault.HEALTHY)
    yield supervisor
    supervisor.front.switch(Fault.HEALTHY)


# Every fault on every line: the gem's buffer, sender and back-off are the same code, its hooks
# into Sidekiq are what differ.
CASES = [
    pytest.param(fault, line, id=f"sidekiq{line}-{fault.value}")
    for line in (6, 7, 8)
    for fault in (Fault.DOWN, Fault.SLOW, Fault.ERROR)
]


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("fault", "line"), CASES)
def test_under_a_fault_jobs_run_at_full_speed_memory_levels_off_and_the_newest_reports_arrive(
    fault: Fault, line: int, healthy_front: Supervisor, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """One Sidekiq process through the four phases of the module's docstring, for one fault."""
    front, ledger = healthy_front.front, healthy_front.ledger
    tag = f"{list(Fault).index(fault):x}{line}"  # each test's jobs apart in the shared ledger
    with sidekiq_app(
        redis_test_url(),
        front.url,
        tmp_path,
        concurrency=CONCURRENCY,
        line_env=line_environment(line),
        buffer_size=str(BUFFER_SIZE),
    ) as app:
        warm_up(app, tag)
        fewer_than_the_bound_all_arrive(app, front, ledger, fault, tag)
        overflow = overflow_rounds(app, front, fault, tag)

        jobs_ran_while_nothing_reached_the_supervisor(overflow, front, fault)
        oldest_dropped_counted_and_logged(app, overflow)
        sender_met_the_fault_and_backed_off(overflow, front, fault)
        newest_arrive_after_recovery(app, front, ledger, fault, tag, overflow)


# --- phases ----------------------------------------------------------------------------------


def warm_up(app: SidekiqApp, tag: str) -> None:
    """Phase 1: jobs with the supervisor healthy, until Sidekiq is warm; then an empty buffer."""
    app.run(f"{tag}w", WARM_UP_JOBS, PAYLOAD_BYTES)
    wait_for("the gem sends what it kept", lambda: app.fresh_stats()["buffered"] == 0, timeout=30)


def fewer_than_the_bound_all_arrive(
    app: SidekiqApp, front: FaultFront, ledger: Ledger, fault: Fault, tag: str
) -> None:
    """Phase 2: reports fewer than the bound wait out the fault, and all of them arrive."""
    failed_before = app.fresh_stats()["failed_requests"]
    front.switch(fault)
    jids = jids_for(f"{tag}f", FEW_JOBS)
    app.run(f"{tag}f", FEW_JOBS, PAYLOAD_BYTES)
    wait_for(
        "the gem meets the fault",
        lambda: app.fresh_stats()["failed_requests"] > failed_before,
        timeout=SLOW_SECONDS + 5,
    )
    assert FAULT_LOG[fault] in app.log_text(), app.log_text()[-2000:]
    front.switch(Fault.HEALTHY)

    # The gem's own retry must succeed: a slow service may have stored them already, answering too late.
    wait_for("the gem delivers the few jobs' reports", lambda: app.fresh_stats()["buffered"] == 0, timeout=20)
    assert ledger.events(f"{tag}f") == {jid: {"started", "complete"} for jid in jids}


def overflow_rounds(app: SidekiqApp, front: FaultFront, fault: Fault, tag: str) -> Overflow:
    """Phase 3: rounds of jobs recording far more reports than the bound, during the fault."""
    before = app.fresh_stats()
    assert before["buffered"] == 0, before
    started_at = time.monotonic()
    front.switch(fault)
    drains = [
        app.run(f"{tag}o{number}", ROUND_JOBS, PAYLOAD_BYTES, ROUND_TIMEOUT) for number in range(ROUNDS)
    ]
    recorded = 2 * ROUNDS * ROUND_JOBS
    # A job counts itself done before its `complete` report is recorded: wait for the last ones.
    after = wait_for(
        "the gem has recorded every report of the rounds",
        lambda: _all_recorded(app.fresh_stats(), before, recorded),
        timeout=10,
    )
    return Overflow(drains, before, after, started_at, time.monotonic())


def _all_recorded(stats: dict[str, Any], before: dict[str, Any], recorded: int) -> dict[str, Any] | None:
    held = stats["dropped"] - before["dropped"] + stats["buffered"] + stats["delivered"] - before["delivered"]
    return stats if held >= recorded else None


# --- what phase 3 must show ------------------------------------------------------------------


def jobs_ran_while_nothing_reached_the_supervisor(
    overflow: Overflow, front: FaultFront, fault: Fault
) -> None:
    """Every job of every round ran while no report could be delivered: the jobs never waited for
    the supervisor. When slow, the gem's request hung on it while the first round ran."""
    assert [drain.jobs for drain in overflow.drains] == [ROUND_JOBS] * ROUNDS
    assert overflow.after["delivered"] == overflow.before["delivered"], (
        "no request can succeed during the fault"
    )
    if fault is Fault.SLOW:
        first_round = overflow.drains[0]
        exchanges = front.exchanges(since=overflow.started_at)
        held = [e for e in exchanges if e.fault is Fault.SLOW and e.received_at < first_round.finished_at]
        assert held, "the gem sent nothing to the slow supervisor during the first round"


def oldest_dropped_counted_and_logged(app: SidekiqApp, overflow: Overflow) -> None:
    """Exactly the reports past the bound were dropped; nothing was acknowledged; it was logged."""
    recorded = 2 * ROUNDS * ROUND_JOBS
    after, before = overflow.after, overflow.before
    assert after["delivered"] == before["delivered"], "no request can succeed during the fault"
    assert after["buffered"] == BUFFER_SIZE, after
    assert after["dropped"] - before["dropped"] == recorded - BUFFER_SIZE, after
    assert "buffer full (the supervisor is unreachable or slow): dropped the oldest reports" in app.log_text()


def sender_met_the_fault_and_backed_off(overflow: Overflow, front: FaultFront, fault: Fault) -> None:
    """The gem's sender tried (the front saw it, or when down the gem counted refusals), and retried
    with backoff, not in a hot loop (which would make thousands of requests)."""
    failures = overflow.after["failed_requests"] - overflow.before["failed_requests"]
    seen = [e for e in front.exchanges(since=overflow.started_at) if e.received_at <= overflow.ended_at]
    tries = failures if fault is Fault.DOWN else len(seen)
    assert all(exchange.fault is fault for exchange in seen), "the front was not in the fault's mode"
    seconds = overflow.ended_at - overflow.started_at
    assert 1 <= tries <= seconds / RETRY_BASE_SECONDS + 2, f"{tries} requests in {seconds:.1f} s"


# --- phase 4 ---------------------------------------------------------------------------------


def newest_arrive_after_recovery(
    app: SidekiqApp, front: FaultFront, ledger: Ledger, fault: Fault, tag: str, overflow: Overflow
) -> None:
    """Phase 4: the newest BUFFER_SIZE reports arrive; when the service saw nothing during the fault
    (down, 500), they are all it has of those jobs."""
    front.switch(Fault.HEALTHY)
    stats = wait_for(
        "the gem delivers what it kept",
        lambda: (stats := app.fresh_stats())["buffered"] == 0 and stats,
        timeout=20,
    )
    assert stats["delivered"] - overflow.before["delivered"] == BUFFER_SIZE, stats

    last = f"{tag}o{ROUNDS - 1}"
    events = ledger.events(last)
    # The jobs pushed last started last; at most their own number of reports (and a few of the jobs
    # running beside them) came after theirs: fewer than the bound, so theirs were kept.
    newest_jobs = jids_for(last, ROUND_JOBS)[ROUND_JOBS - BUFFER_SIZE // 2 + ORDER_SLACK :]
    missing = [jid for jid in newest_jobs if events.get(jid) != {"started", "complete"}]
    assert not missing, f"{len(missing)} of the newest jobs lack reports, e.g. {missing[:3]}"
    if fault is Fault.SLOW:
        return  # a slow service stored the batches it answered too late: older reports may be there
    earlier = sum(ledger.count(f"{tag}o{number}") for number in range(ROUNDS - 1))
    assert earlier == 0, f"{earlier} reports of the earlier rounds arrived: they were dropped"
    times = ledger.times(last)
    assert len(times) == BUFFER_SIZE
    # Over a thousand reports were recorded after half of the last round was done, and the gem keeps
    # them in the order they were recorded, not the order the jobs were pushed (a thread that waits
    # for Ruby's lock records its reports late): every kept one happened after that point.
    halfway = overflow.drains[-1].halfway_at
    early = [at for at in times if at < halfway]
    assert not early, f"{len(early)} stored reports are older than the last half-round: not the newest"
