"""Every read of the ledger.

Lists walk ``jobs.id`` newest first with keyset pagination (``id < cursor``), so the cost of a
page does not grow with its depth.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    func,
    literal,
    literal_column,
    select,
    text,
    true,
    union,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from sidekiq_supervisor.domain.durations import PERCENTILES, DurationOrigin, DurationSummary, nearest_rank
from sidekiq_supervisor.domain.model import EventKind, JobStatus, Micros
from sidekiq_supervisor.store.job_counts import counted
from sidekiq_supervisor.store.records import StoredEvent, StoredJob, job_from_row
from sidekiq_supervisor.store.schema import RECOVERY_EVENTS, job_events, jobs
from sidekiq_supervisor.store.text_search import contains_ignoring_case, trigram_query, trigram_source
from sidekiq_supervisor.store.time_limits import within_budget


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs a question is about. ``needle`` is the seed's arguments filter.

    ``duration_from`` restricts to completed jobs whose duration from that origin is known.
    ``started_before`` keeps jobs whose latest start is older than that time.
    """

    status: JobStatus | None = None
    needle: str | None = None
    job_class: str | None = None
    queue: str | None = None
    duration_from: DurationOrigin | None = None
    started_before: Micros | None = None


def _conditions(job_filter: JobFilter, *, by_queue: bool = False) -> list[ColumnElement[bool]]:
    """The filter's conditions; ``by_queue`` writes the status as SQLite's ``+status``, which no
    index serves, so that SQLite reads the queue's index instead (``_walks_queue``)."""
    status = literal_column("+jobs.status") if by_queue else jobs.c.status
    conditions: list[ColumnElement[bool]] = []
    if job_filter.status is not None:
        conditions.append(status == job_filter.status.value)
    if job_filter.job_class is not None:
        conditions.append(jobs.c.job_class == job_filter.job_class)
    if job_filter.queue is not None:
        conditions.append(jobs.c.queue == job_filter.queue)
    if job_filter.duration_from is not None:
        conditions.append(status == JobStatus.COMPLETE.value)
        conditions.append(_begin_column(job_filter.duration_from).is_not(None))
    if job_filter.started_before is not None:
        conditions.append(jobs.c.started_at < job_filter.started_before)
    if job_filter.needle is not None:
        # Last: where a row is checked against every condition (a sample, a scan), the cheap
        # comparisons rule most rows out before the arguments are read.
        conditions.append(contains_ignoring_case(jobs.c.arguments, job_filter.needle))
    return conditions


def _begin_column(origin: DurationOrigin) -> ColumnElement[int]:
    return jobs.c.queued_at if origin is DurationOrigin.QUEUED else jobs.c.started_at


def matches(job_filter: JobFilter) -> ColumnElement[bool]:
    """Whether a row of ``jobs`` matches ``job_filter``: its conditions as one expression, without
    the trigram index's candidates (``store.id_sample`` puts it in WHERE or in a CASE)."""
    return and_(true(), *_conditions(job_filter))


def duration_of_job(origin: DurationOrigin) -> ColumnElement[int]:
    """A row of ``jobs``'s duration from ``origin`` to completion (NULL until it completes)."""
    return jobs.c.completed_at - _begin_column(origin)


def _matching(
    connection: Connection, job_filter: JobFilter, *columns: Any
) -> tuple[Select[Any], ColumnElement[int]]:
    """SELECT ``columns`` of the matching jobs, and the column that orders them by job id.

    On SQLite, a needle of three or more characters reads the trigram index's candidates first
    (see ``store.text_search``); the needle's own condition still checks each of them.
    """
    query = select(*columns).where(*_conditions(job_filter, by_queue=_walks_queue(connection, job_filter)))
    source = trigram_source(connection.dialect.name, jobs, job_filter.needle)
    if source is None:
        return query, jobs.c.id
    return query.select_from(source.joined).where(source.match), source.key


# A queue of at most this many jobs is read through its own index on SQLite, whatever the status.
SMALL_QUEUE = 10_000


def _walks_queue(connection: Connection, job_filter: JobFilter) -> bool:
    """Whether SQLite should read a filter by queue and status through the queue's index.

    SQLite keeps no statistics here (the service never runs ANALYZE), so given an index by status
    and one by queue it takes the status's, and a rare queue's page walked every job of the
    status (0.3-1 s at a million jobs for a queue of 0.01%). A queue of at most ``SMALL_QUEUE``
    jobs, which a probe of its index tells in at most that many entries, is read through its own
    index instead; a larger one keeps the status's, which finds a page sooner. PostgreSQL's
    planner knows each queue's share from its statistics.
    """
    if connection.dialect.name != "sqlite" or job_filter.queue is None:
        return False
    if job_filter.needle is not None or job_filter.job_class is not None:
        return False  # the trigram or the class index narrows it already
    if job_filter.status is None and job_filter.duration_from is None:
        return False  # nothing competes with the queue's index
    probe = select(literal(1)).where(jobs.c.queue == job_filter.queue).limit(SMALL_QUEUE + 1)
    found: int = connection.execute(select(func.count()).select_from(probe.subquery())).scalar_one()
    return found <= SMALL_QUEUE


# How long PostgreSQL may walk the jobs newest first looking for an arguments filter's page.
WALK_BUDGET_MS = 25
# The walk's random_page_cost: the ledger's hot pages are in memory (or on an SSD), so a walk
# through the index of a status, class or queue costs little more per page than one through
# the primary key. At PostgreSQL's default of 4, the planner walked the primary key for the
# started jobs holding "ab" (4.5% of three million, 3.6% of them): 35,452 jobs checked, 35-60
# ms, past the walk's budget, then 240 ms through the status's index. At 1.1 it walks the
# status's index: 1,640 jobs, 5 ms.
WALK_RANDOM_PAGE_COST = 1.1


def page_jobs(
    connection: Connection,
    job_filter: JobFilter,
    *,
    limit: int,
    before_id: int | None = None,
    walk_budget_ms: int = WALK_BUDGET_MS,
) -> list[StoredJob]:
    """Up to ``limit`` matching jobs, newest first, older than the job ``before_id``.

    On PostgreSQL, an arguments filter's page is first looked for by walking the jobs newest
    first, within ``walk_budget_ms`` (0: no walk); past it, through the trigram index (see
    ``_by_trigrams``). A needle too short for a trigram is walked to the end. The budget needs a
    transaction of its own: on a connection already in one, the walk goes on to the end.
    """
    query, key = _matching(connection, job_filter, jobs)
    if before_id is not None:
        query = query.where(key < before_id)
    newest_first = query.order_by(key.desc()).limit(limit)
    if connection.dialect.name != "postgresql" or job_filter.needle is None:
        return _jobs(connection, newest_first)
    if walk_budget_ms <= 0:
        return _jobs(connection, _by_trigrams(query, limit))
    if connection.in_transaction():
        return _jobs(connection, newest_first)

    def walk(*, sorted_by_index: bool = False) -> list[StoredJob]:
        connection.exec_driver_sql(f"SET LOCAL random_page_cost = {WALK_RANDOM_PAGE_COST}")
        if sorted_by_index:
            connection.exec_driver_sql("SET LOCAL enable_sort = off")
        return _jobs(connection, newest_first)

    if trigram_query(job_filter.needle) is None:
        # No trigram serves the needle: read through the trigram index, every job of the filter
        # would be checked too, so the walk, which stops at the page's end, is never slower. A
        # large page is walked too, not read whole and sorted: PostgreSQL prices the needle's
        # check far below its 1-4 us a job (1,000 of the started jobs holding "ab": 249 ms read
        # and sorted, 50 ms walked).
        with connection.begin():
            return walk(sorted_by_index=True)
    walked = within_budget(connection, walk_budget_ms, walk)
    return walked if walked is not None else _jobs(connection, _by_trigrams(query, limit))


def _by_trigrams(query: Select[Any], limit: int) -> Select[Any]:
    """The newest matching jobs, found through the trigram index.

    Under a LIMIT, PostgreSQL walks the primary key backwards and checks each job against the
    filter: quick when matches are common, a read of the whole table when they are rare, and
    its estimate of an ILIKE's selectivity cannot tell the two apart (44-57 ms for a first page
    at 50,000 jobs that counted in 2 ms). Ordering by ``id + 0``, which no index holds, leaves it
    the trigram index: every match is read, and the newest sorted out.
    """
    return query.order_by((jobs.c.id + 0).desc()).limit(limit)


def _jobs(connection: Connection, query: Select[Any]) -> list[StoredJob]:
    return [job_from_row(row) for row in connection.execute(query)]


def count_jobs(connection: Connection, job_filter: JobFilter) -> int:
    """The exact number of matching jobs: of a filter by status, class and queue alone, summed from
    the counts the writer keeps (``store.job_counts``); of any other, counted from the jobs."""
    if kept_count_answers(job_filter):
        return counted(
            connection, status=job_filter.status, job_class=job_filter.job_class, queue=job_filter.queue
        )
    query, _key = _matching(connection, job_filter, func.count())
    count: int = connection.execute(query.select_from(jobs)).scalar_one()
    return count


def kept_count_answers(job_filter: JobFilter) -> bool:
    """Whether ``store.job_counts`` holds the filter's count (so it costs a few rows): the filter
    is by status, class and queue alone."""
    return (
        job_filter.needle is None and job_filter.duration_from is None and job_filter.started_before is None
    )


# The seed of a sample's windows of ids (``store.id_sample``): the same ledger gives the same
# sample, so an estimate does not change from one refresh to the next while nothing was written.
SAMPLE_SEED = 0


@dataclass(frozen=True, slots=True)
class Count:
    """A number of jobs; ``estimated`` when it is an estimate (scaled from a sample, or
    PostgreSQL's planner's), not a count."""

    value: int
    estimated: bool


def count_within(connection: Connection, job_filter: JobFilter, *, budget_ms: int) -> int | None:
    """The exact count if it takes at most ``budget_ms`` (``None`` past it, or when the budget is
    0 or less); one that ``store.job_counts`` holds answers whatever the budget.

    The connection must not be in a transaction: the count runs in one of its own
    (``store.time_limits``).
    """
    if kept_count_answers(job_filter):
        return count_jobs(connection, job_filter)
    if budget_ms <= 0:
        return None
    return within_budget(connection, budget_ms, lambda: count_jobs(connection, job_filter))


def planner_estimate(connection: Connection, job_filter: JobFilter) -> int:
    """PostgreSQL's estimate of the number of matching jobs (EXPLAIN: nothing is read)."""
    query, _key = _matching(connection, job_filter, literal_column("1"))
    compiled = query.select_from(jobs).compile(dialect=connection.dialect)
    plan = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params).scalar_one()
    return int(plan[0]["Plan"]["Plan Rows"])


def find_job(connection: Connection, jid: str) -> StoredJob | None:
    """The job with this jid, if the ledger has it."""
    row = connection.execute(select(jobs).where(jobs.c.jid == jid)).first()
    return None if row is None else job_from_row(row)


def known_jids(connection: Connection, jids: list[str]) -> frozenset[str]:
    """Which of ``jids`` the ledger knows: a job row, or the history a restart left behind."""
    query = union(
        select(jobs.c.jid).where(jobs.c.jid.in_(jids)),
        select(job_events.c.jid).where(job_events.c.jid.in_(jids)),
    )
    return frozenset(connection.execute(query).scalars())


def job_history(connection: Connection, jid: str) -> list[StoredEvent]:
    """Every report stored for this jid, in event-time order (kept after a restart deletes the job)."""
    query = (
        select(
            job_events.c.jid,
            job_events.c.kind,
            job_events.c.at,
            job_events.c.recorded_at,
            job_events.c.detail,
        )
        .where(job_events.c.jid == jid)
        .order_by(job_events.c.at, job_events.c.id)
    )
    return [
        StoredEvent(r.jid, EventKind(r.kind), r.at, r.recorded_at, r.detail)
        for r in connection.execute(query)
    ]


def duration_summary_within(
    connection: Connection, origin: DurationOrigin, job_filter: JobFilter, *, budget_ms: int
) -> DurationSummary | None:
    """The exact summary if it takes at most ``budget_ms``, else ``None``; a budget of 0 or less
    asks for no exact attempt at all. The connection must not be in a transaction (see
    ``store.time_limits``).
    """
    if budget_ms <= 0:
        return None
    return within_budget(connection, budget_ms, lambda: duration_summary(connection, origin, job_filter))


def duration_summary(
    connection: Connection, origin: DurationOrigin, job_filter: JobFilter
) -> DurationSummary:
    """Count, mean, nearest-rank p50/p95/p99 and max of the matching jobs' durations."""
    job_filter = replace(job_filter, duration_from=origin)
    duration = (jobs.c.completed_at - _begin_column(origin)).label("duration")
    matching = _matching(connection, job_filter, duration)[0].subquery()
    if connection.dialect.name == "postgresql":
        return _summary_in_one_pass(connection, matching.c.duration)
    count, mean, longest = connection.execute(
        select(func.count(), func.avg(matching.c.duration), func.max(matching.c.duration))
    ).one()
    if count == 0:
        return DurationSummary.empty()
    ranks = [nearest_rank(p, count) for p in PERCENTILES]
    ranked = select(
        matching.c.duration, func.row_number().over(order_by=matching.c.duration).label("rank")
    ).subquery()
    rows = connection.execute(select(ranked.c.rank, ranked.c.duration).where(ranked.c.rank.in_(set(ranks))))
    by_rank = {rank: duration for rank, duration in rows}
    p50, p95, p99 = (by_rank[rank] for rank in ranks)
    return DurationSummary.from_micros(count, float(mean), p50, p95, p99, longest)


def _summary_in_one_pass(connection: Connection, duration: ColumnElement[int]) -> DurationSummary:
    """The summary from one read of the rows and one sort (PostgreSQL's ordered-set aggregate).

    ``percentile_disc(p)`` is the value at rank ceil(p * n): the nearest rank. For the fractions
    of ``PERCENTILES`` the float product never lands above an integer, so it agrees with
    ``nearest_rank`` (whose epsilon guards fractions like 0.07). Two reads and a window over
    every row cost twice as much at ten million jobs.
    """
    percentiles = func.percentile_disc(postgresql.array(PERCENTILES)).within_group(duration)
    count, mean, longest, values = connection.execute(
        select(func.count(), func.avg(duration), func.max(duration), percentiles)
    ).one()
    if count == 0:
        return DurationSummary.empty()
    p50, p95, p99 = values
    return DurationSummary.from_micros(count, float(mean), p50, p95, p99, longest)


def recovery_events(connection: Connection) -> Iterator[StoredEvent]:
    """The events of automatic recovery, newest first: the ``restarted`` events it wrote (their
    detail says ``recovered``) and the ``quarantined`` ones, read a page at a time as the caller
    goes on, from the partial index that holds them alone (``RECOVERY_EVENTS``, migration 0015).

    Restarts a person asked for are far more numerous: passing over them cost 140-210 ms at ten
    million jobs. The statement names the index on SQLite, whose planner, without statistics,
    preferred the index by kind and a sort."""
    hint = " INDEXED BY ix_job_events_recoveries" if connection.dialect.name == "sqlite" else ""
    page = (
        f"SELECT id, jid, kind, at, recorded_at, detail FROM job_events{hint} "
        f"WHERE ({RECOVERY_EVENTS}) AND id < :before ORDER BY id DESC LIMIT :limit"
    )
    # Any id is below this: the first page starts from the newest event.
    before = 2**63 - 1
    while True:
        rows = connection.execute(text(page), {"before": before, "limit": RECOVERY_PAGE}).all()
        for row in rows:
            yield StoredEvent(row.jid, EventKind(row.kind), row.at, row.recorded_at, row.detail)
        if len(rows) < RECOVERY_PAGE:
            return
        before = rows[-1].id


RECOVERY_PAGE = 500
