"""Estimates of a count or a duration summary, for when the exact answer takes too long.

Both come from a sample of the jobs read as windows of ids, among the jobs of the filter's
status, class and queue, whose number the ledger keeps (``store.id_sample``). A sample that
holds too few matching jobs says too little: a summary's is followed by a larger sample, sized by
the share it found, where that stays small; past that the exact answer is worth its time. A
count's gives way to PostgreSQL's planner estimate, or on SQLite, which has no planner, to the
exact count.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from sidekiq_supervisor.domain.durations import (
    DurationOrigin,
    DurationSummary,
    estimate_from_sample,
    rows_to_hold,
)
from sidekiq_supervisor.store import id_sample, queries
from sidekiq_supervisor.store.id_sample import SampledDurations
from sidekiq_supervisor.store.queries import Count, JobFilter
from sidekiq_supervisor.store.text_search import trigram_query


@dataclass(frozen=True, slots=True)
class Sampling:
    """How an estimate samples the jobs.

    A sample reads ``rows`` jobs of the filter's status, class and queue, whatever the needle:
    2-4 us a job on SQLite, so 15,000 take 30-60 ms. A summary's sample holding fewer than
    ``min_rows`` matching rows says too little about the tail percentiles: a larger one follows
    if it reads at most ``max_percent`` of those jobs, else the exact summary answers, however
    long it takes. A count's sample holding fewer than ``min_count_rows`` says too little about
    the share (400 put it within about 5%).
    """

    rows: int = 15_000
    max_percent: float = 5.0
    min_rows: int = 1_000
    min_count_rows: int = 400


SAMPLING = Sampling()


def estimated_count(connection: Connection, job_filter: JobFilter, sampling: Sampling = SAMPLING) -> Count:
    """The number of matching jobs, estimated without reading them all (``estimated``, unless
    the sample held every job or SQLite counted exactly for want of matches)."""
    sample = id_sample.sampled_count(connection, job_filter, rows=sampling.rows)
    if sample is not None and sample.whole:
        return Count(sample.matching, estimated=False)
    if sample is not None and sample.matching >= sampling.min_count_rows:
        return Count(round(sample.matching * sample.population / sample.rows_read), estimated=True)
    if connection.dialect.name == "postgresql":
        return Count(queries.planner_estimate(connection, job_filter), estimated=True)
    return Count(queries.count_jobs(connection, job_filter), estimated=False)


def estimated_summary(
    connection: Connection, origin: DurationOrigin, job_filter: JobFilter, sampling: Sampling = SAMPLING
) -> DurationSummary:
    """The summary of the matching jobs' durations from ``origin``, estimated from a sample
    (``estimated``, unless the sample held every job or too few matching ones to go by)."""
    sample = _durations(connection, origin, job_filter, sampling)
    if sample is None or (not sample.whole and sample.summary.count < sampling.min_rows):
        return queries.duration_summary(connection, origin, job_filter)
    if sample.whole:
        return sample.summary
    return estimate_from_sample(sample.summary, sample.rows_read, sample.population)


def _durations(
    connection: Connection, origin: DurationOrigin, job_filter: JobFilter, sampling: Sampling
) -> SampledDurations | None:
    """A sample of ``rows`` jobs; when it holds too few matching ones, a larger sample sized by
    their share to hold ``min_rows`` of them, if that is at most ``max_percent`` of the jobs it
    draws from."""
    sample = id_sample.sampled_durations(connection, origin, job_filter, rows=sampling.rows)
    if sample is None or sample.whole or not 0 < sample.summary.count < sampling.min_rows:
        return sample
    wanted = rows_to_hold(sampling.min_rows, sample.summary.count, sample.rows_read)
    if wanted > sample.population * sampling.max_percent / 100:
        return sample
    return id_sample.sampled_durations(connection, origin, job_filter, rows=wanted)


# A needle that no trigram serves is checked on every job of the filter's status, class and
# queue. Measured here at a million jobs: read in id order (no status, class or queue), 1.4 us a
# job on SQLite and 0.8 us on PostgreSQL (a parallel scan on two cores); through their index,
# 2.5 and 3.6 us. Half of each, so that a faster machine is not denied an exact answer it had
# time for.
SCAN_MICROS_PER_JOB = {"sqlite": 0.7, "postgresql": 0.4}
INDEXED_MICROS_PER_JOB = {"sqlite": 1.25, "postgresql": 1.8}


# A needle a trigram serves is checked on every job whose arguments match it, whatever the
# filter's status, class and queue (PostgreSQL checks those after): measured at three million
# jobs, 3.1-10.5 us a matching job (4.4-5.1 for a word in a tenth of them). Half the lowest, as
# above. SQLite has no planner to say how many jobs match before it reads them.
TRIGRAM_MICROS_PER_MATCH = {"postgresql": 1.5}


def surely_past(connection: Connection, job_filter: JobFilter, budget_ms: int) -> bool:
    """Whether an exact count or summary of ``job_filter`` is sure to take more than
    ``budget_ms``, so that an estimate should answer at once: a needle too short for a trigram,
    over more jobs than the budget has time to check, or on PostgreSQL a needle its planner
    expects in more jobs than that. It reads in a transaction of its own, so that the exact
    attempt can have one too (``store.time_limits``).
    """
    if job_filter.needle is None:
        return False
    if trigram_query(job_filter.needle) is not None:
        return _many_trigram_matches(connection, job_filter.needle, budget_ms)
    kept = id_sample.kept_part(job_filter)
    with connection.begin():
        jobs = id_sample.kept_size(connection, kept)
    if jobs is None:
        return False
    walked = kept.status is None and kept.job_class is None and kept.queue is None
    micros = (SCAN_MICROS_PER_JOB if walked else INDEXED_MICROS_PER_JOB)[connection.dialect.name]
    return jobs * micros > budget_ms * 1000


def _many_trigram_matches(connection: Connection, needle: str, budget_ms: int) -> bool:
    """Whether PostgreSQL's planner expects ``needle`` in more jobs than ``budget_ms`` has time
    to check. Its estimate was within 0.6-1.6x of the truth for needles in 1-20% of the jobs; it
    cannot tell a needle whose trigrams are common but never together (2.4 s to find none at
    three million jobs, expected in 300), which the budget still stops."""
    micros = TRIGRAM_MICROS_PER_MATCH.get(connection.dialect.name)
    if micros is None:
        return False
    with connection.begin():
        expected = queries.planner_estimate(connection, JobFilter(needle=needle))
    return expected * micros > budget_ms * 1000
