"""The arguments filter through migration 0002's indexes finds exactly what the scan found, and
both databases find the same jobs: ``fold_case(needle) in fold_case(arguments)``.

SQLite's scan computes that (``contains_casefold``); PostgreSQL's is ILIKE's, checked here against
a forced sequential scan while the reads are forced onto the trigram index.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from sidekiq_supervisor.domain.filters import fold_case, like_pattern
from sidekiq_supervisor.domain.model import EventKind, JobStatus, Report
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.queries import WALK_BUDGET_MS, JobFilter, count_jobs, find_job, page_jobs
from sidekiq_supervisor.store.restarts import claim_original, record_replacement
from sidekiq_supervisor.store.text_search import trigram_query
from sidekiq_supervisor.store.writer import write_reports
from tests.store.plans import statements

T0 = 1_700_000_000_000_000

ARGUMENTS = [
    '[42,"alice@example.com"]',
    '[{"email":"Alice@Example.COM"}]',
    '["Straße 5"]',
    '["STRASSE 7"]',
    '["ΣΊΣΥΦΟΣ"]',
    '["σίσυφος"]',
    '["Kelvin 5\u212a"]',
    '["İstanbul"]',
    '["\ufb01le"]',
    '["Élan Vital","ÖSTERREICH"]',
    '["100%"]',
    '["100x"]',
    '["a_b"]',
    '["axb"]',
    '["C:\\\\temp"]',
    '["say \\"hi\\""]',
    '["AND OR NOT * ^ : ( ) NEAR"]',
    '["emoji 🎉 party"]',
    '["tab\\tsep"]',
    "[1,2,3]",
]
NEEDLES = [
    "alice", "ALICE@example.com", '"email":"a', "ß", "ss", "strasse", "STRASSE", "straße", "STRAẞE",
    "σίσυφος", "ΣΊΣΥΦΟΣ", "σίσυφοσ", "k", "5k", "kelvin 5k", "i̇st", "istanbul", "file", "\ufb01le",
    "élan", "österreich", "%", "100%", "_", "a_b", "\\", "c:\\\\t", '\\"hi\\"', '"', "AND", "or not",
    "* ^", ":", "( )", "near", "🎉", "🎉 p", "tab\\t", "1,2", "nobody", "a", "ab", "  ", "]",
    "\x00\x00\x00", "ali\x00ce", "alice\x00",
]  # fmt: skip


def write(engine: Engine, *reports: Report) -> None:
    with write_transaction(engine) as connection:
        write_reports(connection, list(reports), T0)


def queued(jid: str, arguments: str) -> Report:
    return Report(jid, EventKind.QUEUED, T0, "HardWorker", "default", arguments)


@pytest.fixture
def seeded(engine: Engine) -> dict[str, str]:
    """Jobs j00.. holding ARGUMENTS; the second half started (for the status filter)."""
    jobs = {f"j{index:02}": arguments for index, arguments in enumerate(ARGUMENTS)}
    write(engine, *(queued(jid, arguments) for jid, arguments in jobs.items()))
    started = [
        Report(jid, EventKind.STARTED, T0 + 1, "HardWorker", "default", "[]") for jid in list(jobs)[10:]
    ]
    write(engine, *started)
    return jobs


@contextmanager
def reading(engine: Engine, *, index: bool) -> Iterator[Connection]:
    """A connection that makes PostgreSQL use its indexes (``index``) or scan; SQLite as it is."""
    with engine.connect() as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            switches = ["enable_seqscan"] if index else ["enable_bitmapscan", "enable_indexscan"]
            for switch in switches:
                connection.execute(text(f"SET LOCAL {switch} = off"))
        yield connection


def scanned(engine: Engine, needle: str, status: JobStatus | None = None) -> list[str]:
    """What the filter found before migration 0002: a scan, newest first."""
    with reading(engine, index=False) as connection:
        if connection.dialect.name == "sqlite":
            sql = "SELECT jid, status FROM jobs WHERE contains_casefold(arguments, :needle) ORDER BY id DESC"
            rows = connection.execute(text(sql), {"needle": needle})
        else:
            sql = "SELECT jid, status FROM jobs WHERE arguments ILIKE :pattern ESCAPE '\\' ORDER BY id DESC"
            rows = connection.execute(text(sql), {"pattern": like_pattern(needle)})
        return [jid for jid, row_status in rows if status is None or row_status == status]


def found(engine: Engine, flt: JobFilter, page: int = 4, walk_budget_ms: int = WALK_BUDGET_MS) -> list[str]:
    """Every job the filter finds, walked ``page`` at a time through the cursor."""
    with reading(engine, index=True) as connection:
        jids: list[str] = []
        before = None
        while rows := page_jobs(connection, flt, limit=page, before_id=before, walk_budget_ms=walk_budget_ms):
            jids += [job.jid for job in rows]
            before = rows[-1].id
        assert count_jobs(connection, flt) == len(jids)
        return jids


@pytest.mark.parametrize("needle", NEEDLES)
def test_the_filter_finds_exactly_what_the_scan_found(engine, seeded, needle):
    if "\x00" in needle and engine.dialect.name == "postgresql":
        pytest.skip("PostgreSQL refuses NUL in any text parameter (the API refuses such a filter)")
    expected = scanned(engine, needle)

    assert found(engine, JobFilter(needle=needle)) == expected
    assert found(engine, JobFilter(needle=needle, status=JobStatus.STARTED)) == scanned(
        engine, needle, JobStatus.STARTED
    )
    # PostgreSQL's way past the walk's budget (every match through the trigram index, the newest
    # sorted out) pages the same.
    assert found(engine, JobFilter(needle=needle), walk_budget_ms=0) == expected
    # One rule on both databases.
    oracle = [jid for jid, arguments in reversed(seeded.items()) if fold_case(needle) in fold_case(arguments)]
    assert expected == oracle


SHORT_NEEDLES = [needle for needle in NEEDLES if trigram_query(needle) is None and "\x00" not in needle]


@pytest.mark.parametrize("status", [None, JobStatus.STARTED])
def test_a_needle_too_short_for_a_trigram_is_walked_page_by_page_to_the_end(engine, seeded, status):
    """Outside a transaction, as the service reads: on PostgreSQL each page of a needle no
    trigram serves is one walk newest first along an index (no sort), planned as for pages held
    in memory, and never the read of every match that the trigram fallback makes (``ORDER BY
    id + 0``)."""
    assert {"a", "ab", "ß", "%"} <= set(SHORT_NEEDLES)
    for needle in SHORT_NEEDLES:
        flt = JobFilter(needle=needle, status=status)
        with statements(engine) as seen, engine.connect() as connection:
            jids: list[str] = []
            before = None
            while rows := page_jobs(connection, flt, limit=2, before_id=before, walk_budget_ms=1):
                jids += [job.jid for job in rows]
                before = rows[-1].id

        assert jids == scanned(engine, needle, status), needle
        sql = [statement for statement, _ in seen]
        assert not any("id + " in statement for statement in sql), needle
        if engine.dialect.name == "postgresql":
            assert any("random_page_cost" in statement for statement in sql)
            assert any("enable_sort = off" in statement for statement in sql)


def test_unicode_folds_one_character_at_a_time_on_both_databases(engine, seeded):
    # As ILIKE does: ß, the ligature and final sigma stay themselves; Kelvin's sign, İ and Σ lower.
    folds = {
        "strasse": ["j03"],
        "STRASSE": ["j03"],
        "straße": ["j02"],
        "σίσυφοσ": ["j04"],
        "σίσυφος": ["j05"],
        "ΣΊΣΥΦΟΣ": ["j04"],
        "kelvin 5k": ["j06"],
        "file": [],
        "istanbul": ["j07"],
    }
    for needle, expected in folds.items():
        assert found(engine, JobFilter(needle=needle)) == expected, needle


def search_candidates(connection: Connection, needle: str) -> list[int]:
    """Row ids that SQLite's trigram index holds for ``needle`` (no check against the rows)."""
    sql = "SELECT rowid FROM jobs_search WHERE jobs_search MATCH :query"
    return [rowid for (rowid,) in connection.execute(text(sql), {"query": trigram_query(needle)})]


def test_the_index_follows_a_restart_that_deletes_the_original(engine):
    write(engine, queued("old", '["Ünique-Needle"]'), queued("other", '["plain"]'))
    write(engine, Report("old", EventKind.STARTED, T0 + 1, "HardWorker", "default", "[]"))
    with engine.connect() as connection:
        original = find_job(connection, "old")
    assert original is not None

    with write_transaction(engine) as connection:
        assert claim_original(connection, original)
        replacement = Report("new", EventKind.QUEUED, T0 + 2, "HardWorker", "default", original.arguments)
        record_replacement(connection, original, replacement, T0 + 2)

    assert found(engine, JobFilter(needle="ünique-needle")) == ["new"]
    assert scanned(engine, "ünique-needle") == ["new"]
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            new = find_job(connection, "new")
            assert new is not None
            assert search_candidates(connection, "ünique-needle") == [new.id]


def test_the_index_forgets_a_deleted_row_whose_id_comes_back(engine):
    # SQLite hands the largest rowid out again once its row is gone.
    write(engine, queued("first", '["keep"]'), queued("gone", '["vanishing-text"]'))
    with write_transaction(engine) as connection:
        connection.execute(text("DELETE FROM jobs WHERE jid = 'gone'"))
    write(engine, queued("reborn", '["something else"]'))

    assert found(engine, JobFilter(needle="vanishing")) == []
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            assert search_candidates(connection, "vanishing") == []
            assert len(search_candidates(connection, "something else")) == 1
