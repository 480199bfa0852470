"""Estimates of a count or a duration summary, for when the exact answer takes too long.

PostgreSQL estimates a count with its planner's statistics and a summary from a ``TABLESAMPLE``
of the jobs. SQLite has neither: both come from a sample of the jobs read as windows of ids,
among the jobs of the filter's status, class and queue, whose number the ledger keeps
(``store.id_sample``). A sample that holds too few matching jobs says too little, and the exact
answer is worth its time then.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy.engine import Connection

from sidekiq_supervisor.domain.durations import (
    DurationOrigin,
    DurationSummary,
    estimate_from_sample,
    sample_percent,
)
from sidekiq_supervisor.store import id_sample, queries
from sidekiq_supervisor.store.job_counts import counted
from sidekiq_supervisor.store.queries import Count, DurationSample, JobFilter
from sidekiq_supervisor.store.text_search import trigram_query


@dataclass(frozen=True, slots=True)
class Sampling:
    """How an estimate samples the jobs table.

    PostgreSQL's summary sample aims at ``rows`` matching rows (20,000 put p99 within a few
    percent of the exact one on the benchmark's ledger) and reads at most ``max_percent`` of the
    table's pages. SQLite's reads ``sqlite_rows`` jobs of the filter's status, class and queue
    (it has no planner to say how many match): 2-4 us a job, so 15,000 take 30-60 ms. A
    summary's sample holding fewer than ``min_rows`` matching rows says too little about the
    tail percentiles, and a count's holding fewer than ``min_count_rows`` too little about the
    share (400 put it within about 5%): the exact answer is read then, however long it takes.
    """

    rows: int = 20_000
    max_percent: float = 5.0
    min_rows: int = 1_000
    sqlite_rows: int = 15_000
    min_count_rows: int = 400


SAMPLING = Sampling()


def estimated_count(connection: Connection, job_filter: JobFilter, sampling: Sampling = SAMPLING) -> Count:
    """The number of matching jobs, estimated without reading them all (``estimated``, unless
    the sample held every job or too few matching ones to go by)."""
    if connection.dialect.name == "postgresql":
        return Count(queries.planner_estimate(connection, job_filter), estimated=True)
    sample = id_sample.sampled_count(connection, job_filter, rows=sampling.sqlite_rows)
    if sample is not None and sample.whole:
        return Count(sample.matching, estimated=False)
    if sample is None or sample.matching < sampling.min_count_rows:
        return Count(queries.count_jobs(connection, job_filter), estimated=False)
    return Count(round(sample.matching * sample.population / sample.rows_read), estimated=True)


def estimated_summary(
    connection: Connection, origin: DurationOrigin, job_filter: JobFilter, sampling: Sampling = SAMPLING
) -> DurationSummary:
    """The summary of the matching jobs' durations from ``origin``, estimated from a sample
    (``estimated``, unless the sample held every job or too few matching ones to go by)."""
    if connection.dialect.name == "postgresql":
        expected = queries.planner_estimate(connection, replace(job_filter, duration_from=origin))
        percent = sample_percent(sampling.rows, expected, sampling.max_percent)
        sample = queries.sample_duration_summary(connection, origin, job_filter, percent=percent)
        population, whole = counted(connection), False
    else:
        sampled = _sqlite_durations(connection, origin, job_filter, sampling)
        if sampled is None:
            return queries.duration_summary(connection, origin, job_filter)
        sample, population, whole = sampled
    if whole:
        return sample.summary
    if sample.summary.count < sampling.min_rows:
        return queries.duration_summary(connection, origin, job_filter)
    return estimate_from_sample(sample.summary, sample.rows_read, population)


def _sqlite_durations(
    connection: Connection, origin: DurationOrigin, job_filter: JobFilter, sampling: Sampling
) -> tuple[DurationSample, int, bool] | None:
    """SQLite's sample of ``sqlite_rows`` jobs; when it holds too few matching ones, a larger
    sample sized by their share to hold ``min_rows`` of them, if that is at most ``max_percent``
    of the jobs it draws from."""
    sampled = id_sample.sampled_durations(connection, origin, job_filter, rows=sampling.sqlite_rows)
    if sampled is None:
        return None
    sample, population, whole = sampled
    if whole or sample.summary.count == 0 or sample.summary.count >= sampling.min_rows:
        return sampled
    # A tenth more than the share says, so that the larger sample is not short by chance.
    wanted = -(-sample.rows_read * sampling.min_rows * 11 // (sample.summary.count * 10))
    if wanted > population * sampling.max_percent / 100:
        return sampled
    return id_sample.sampled_durations(connection, origin, job_filter, rows=wanted)


# A needle that no trigram serves is checked on every job of the filter's status, class and
# queue. Measured here at a million jobs: 1.4 us a job on SQLite, read in id order (more through
# an index), and 0.8 us on PostgreSQL (a parallel scan on two cores). Half of each, so that a
# faster machine is not denied an exact answer it had time for.
SCAN_MICROS_PER_JOB = {"sqlite": 0.7, "postgresql": 0.4}


def surely_past(connection: Connection, job_filter: JobFilter, budget_ms: int) -> bool:
    """Whether an exact count or summary of ``job_filter`` is sure to take more than
    ``budget_ms``, so that an estimate should answer at once: a needle too short for a trigram,
    over more jobs than the budget has time to check. It reads in a transaction of its own, so
    that the exact attempt can have one too (``store.time_limits``).
    """
    if job_filter.needle is None or trigram_query(job_filter.needle) is not None:
        return False
    with connection.begin():
        jobs = id_sample.kept_size(connection, id_sample.kept_part(job_filter))
    return jobs is not None and jobs * SCAN_MICROS_PER_JOB[connection.dialect.name] > budget_ms * 1000
