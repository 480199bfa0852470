"""The gem under faults, end to end: a real Sidekiq (Debian's 6.4.1) with the gem loaded, and the real
service behind a front that makes it go down (connections refused), slow (answers after 5 s) or
answer 500. Nothing of ours is mocked: jobs run in Sidekiq, reports cross HTTP, and what arrived
is read from the service's ledger.

For each fault, one Sidekiq process goes through four phases:

1. healthy: a warm-up, then the baseline jobs/s (its jobs' reports are not checked: a buffer this
   small overflows even while the supervisor is up, on a box where it shares 2 cores with Sidekiq);
2. the fault with fewer reports than the bound, then recovery: every report arrives;
3. the fault with rounds of jobs that record six times the bound each: Sidekiq runs them at full
   speed (against the baseline, and, when slow, before the supervisor's first answer is even due),
   the oldest reports are dropped, counted and logged, the sender backs off, and memory levels off;
4. recovery: the newest ``BUFFER_SIZE`` reports arrive, and (when nothing reached the service
   during the fault) nothing else did.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import REDIS_TEST_URL
from tests.e2e.fault_front import SLOW_SECONDS, Fault, FaultFront, fault_front
from tests.e2e.fault_sidekiq import Drain, Ledger, SidekiqApp, jids_for, sidekiq_app, wait_for
from tests.e2e.real_sidekiq import require_sidekiq
from tests.live_service import running_service

# As tests/e2e/fault_sidekiq_app.rb configures the gem.
RETRY_BASE_SECONDS = 0.1
CONCURRENCY = 10
BUFFER_SIZE = 500
# Reports of about 4 KB, so that keeping them would show in the process's memory: a round holds
# 2 x 1,500 of them, 12 MB, against a bound of 2 MB.
PAYLOAD_BYTES = 4_000
ROUND_JOBS = 1_500
ROUNDS = 5
# Rounds before memory is compared: Ruby's heap and malloc arenas grow to their working size first.
SETTLING_ROUNDS = 2
FEW_JOBS = 100  # 200 reports: fewer than the bound
WARM_UP_JOBS = 300
# Faults must not slow Sidekiq; a gem whose job threads waited on the supervisor would run at a
# small fraction of the baseline (while a request is in flight, or not at all on a full buffer).
MIN_SPEED_RATIO = 0.5
BASELINE_ROUNDS = 2
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
    rss_before_kb: int


@pytest.fixture(scope="module")
def supervisor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisor]:
    """``sidekiq-supervisor serve`` on a SQLite ledger, behind a fault front."""
    require_sidekiq()
    workdir = tmp_path_factory.mktemp("gem-faults")
    ledger = workdir / "ledger.db"
    with (
        running_service(f"sqlite:///{ledger}", workdir, REDIS_URL=REDIS_TEST_URL) as service,
        fault_front(service.url) as front,
    ):
        yield Supervisor(front, Ledger(ledger))


@pytest.fixture
def healthy_front(supervisor: Supervisor) -> Iterator[Supervisor]:
    """The supervisor, healthy at the start and at the end of a test."""
    supervisor.front.switch(Fault.HEALTHY)
    yield supervisor
    supervisor.front.switch(Fault.HEALTHY)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("fault", [Fault.DOWN, Fault.SLOW, Fault.ERROR], ids=lambda fault: fault.value)
def test_under_a_fault_jobs_run_at_full_speed_memory_levels_off_and_the_newest_reports_arrive(
    fault: Fault, healthy_front: Supervisor, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """One Sidekiq process through the four phases of the module's docstring, for one fault."""
    front, ledger = healthy_front.front, healthy_front.ledger
    tag = f"{list(Fault).index(fault):x}"  # each test's jobs apart in the shared ledger
    with sidekiq_app(
        REDIS_TEST_URL, front.url, tmp_path, concurrency=CONCURRENCY, buffer_size=str(BUFFER_SIZE)
    ) as app:
        baseline = healthy_baseline(app, tag)
        fewer_than_the_bound_all_arrive(app, front, ledger, fault, tag)
        overflow = overflow_rounds(app, front, fault, tag)

        jobs_ran_at_full_speed(overflow, baseline, front, fault)
        oldest_dropped_counted_and_logged(app, overflow)
        sender_met_the_fault_and_backed_off(overflow, front, fault)
        memory_levelled_off(overflow)
        newest_arrive_after_recovery(app, front, ledger, fault, tag, overflow)


# --- phases ----------------------------------------------------------------------------------


def healthy_baseline(app: SidekiqApp, tag: str) -> float:
    """Phase 1: jobs/s with the supervisor healthy, once Sidekiq is warm; then an empty buffer."""
    app.run(f"{tag}w", WARM_UP_JOBS, PAYLOAD_BYTES)
    baseline = [app.run(f"{tag}h{number}", ROUND_JOBS, PAYLOAD_BYTES) for number in range(BASELINE_ROUNDS)]
    wait_for("the gem sends what it kept", lambda: app.fresh_stats()["buffered"] == 0, timeout=30)
    return jobs_per_second(baseline)


def jobs_per_second(drains: list[Drain]) -> float:
    """Jobs over seconds, rounds taken together."""
    return sum(drain.jobs for drain in drains) / sum(drain.seconds for drain in drains)


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
    rss_before = app.rss_kb()
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
    return Overflow(drains, before, after, started_at, time.monotonic(), rss_before)


def _all_recorded(stats: dict[str, Any], before: dict[str, Any], recorded: int) -> dict[str, Any] | None:
    held = stats["dropped"] - before["dropped"] + stats["buffered"] + stats["delivered"] - before["delivered"]
    return stats if held >= recorded else None


# --- what phase 3 must show ------------------------------------------------------------------


def jobs_ran_at_full_speed(overflow: Overflow, baseline: float, front: FaultFront, fault: Fault) -> None:
    """Sidekiq ran the rounds about as fast as with a healthy supervisor; when slow, it ran the first
    round before the supervisor's first answer was due, while the gem's sender waited on it."""
    if fault is Fault.SLOW:
        ran_before_the_first_slow_answer(overflow, front)
    speed = jobs_per_second(overflow.drains)
    assert speed >= MIN_SPEED_RATIO * baseline, f"{speed:.0f} jobs/s during the fault against {baseline:.0f}"


def ran_before_the_first_slow_answer(overflow: Overflow, front: FaultFront) -> None:
    """The first round's jobs all ran while the gem's first request to the slow supervisor waited."""
    exchanges = front.exchanges(since=overflow.started_at)
    first_round = overflow.drains[0]
    held = [e for e in exchanges if e.fault is Fault.SLOW and e.received_at < first_round.finished_at]
    assert held, "the gem sent nothing to the slow supervisor during the first round"
    released = [e.released_at for e in exchanges if e.released_at is not None]
    assert not released or min(released) > first_round.finished_at, (
        f"the first round of {first_round.jobs} jobs took {first_round.seconds:.1f} s: "
        f"longer than the supervisor's first answer ({SLOW_SECONDS} s)"
    )


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


def memory_levelled_off(overflow: Overflow) -> None:
    """Once Ruby's heap has settled, more reports past the bound take no more memory: the growth
    over the later rounds is far below what keeping their reports would take."""
    settled = overflow.drains[SETTLING_ROUNDS - 1].peak_rss_kb
    later_peak = max(drain.peak_rss_kb for drain in overflow.drains[SETTLING_ROUNDS:])
    later_reports_kb = 2 * ROUND_JOBS * (ROUNDS - SETTLING_ROUNDS) * PAYLOAD_BYTES // 1024
    peaks = [drain.peak_rss_kb // 1024 for drain in overflow.drains]
    assert later_peak - settled < later_reports_kb / 2, (
        f"Sidekiq's peak RSS per round {peaks} MB (from {overflow.rss_before_kb // 1024} MB): it grew by "
        f"{(later_peak - settled) // 1024} MB while the later rounds recorded {later_reports_kb // 1024} MB"
    )


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
