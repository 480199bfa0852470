"""Shared fixtures: a fresh ledger on SQLite and on the real PostgreSQL, the app, Redis.

Every store-backed test runs twice, once per database (``ledger_url`` is parametrised). The
PostgreSQL database is created for the session and dropped at its end; each test starts from
empty tables. Each SQLite test gets a copy of one file the session migrated once. Redis tests get
a database index of their own: the run claims an empty one with a lock key in database 0 (so
concurrent test runs never share one) when a test first needs it — never at import, so that
collecting the tests needs no Redis — and each test flushes it before and after. Test code asks
for it with ``redis_test_url()`` (or the session fixture of that name).
"""

from __future__ import annotations

import atexit
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.store.engine import make_engine
from sidekiq_supervisor.store.migrate import upgrade
from sidekiq_supervisor.store.schema import metadata
from sidekiq_supervisor.web.app import create_app
from tests.live_service import IN_PROCESS_WRITER

POSTGRES_ADMIN = os.environ.get("TEST_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
# The Redis server whose database indexes the tests claim (TEST_REDIS_URL names one index instead).
REDIS_SERVER = os.environ.get("TEST_REDIS_SERVER", "redis://127.0.0.1:6379")
# The apps the suite builds in process (most of it) store reports on the writer thread: a writer
# process per app would add its start-up to every such test. The services that tests start with
# `serve` (tests.live_service) run the default, a writer process; tests/services/test_ingest_writer
# runs every case on both.
os.environ[IN_PROCESS_WRITER] = "thread"


def _claim_redis_database() -> str:
    """The URL of an empty Redis database index, locked for this test run until it exits.

    The locks live in database 0 (one small key per index), so the claimed index stays empty.
    """
    if "TEST_REDIS_URL" in os.environ:
        return os.environ["TEST_REDIS_URL"]
    locks = redis.Redis.from_url(f"{REDIS_SERVER}/0")
    for index in range(15, 0, -1):
        lock = f"sidekiq-supervisor:tests:db:{index}"
        # Only an empty index is taken: another run's, a benchmark's or an app's data stays alone.
        if redis.Redis.from_url(f"{REDIS_SERVER}/{index}").dbsize() == 0 and locks.set(
            lock, os.getpid(), nx=True, ex=6 * 3600
        ):
            atexit.register(locks.delete, lock)
            return f"{REDIS_SERVER}/{index}"
    raise RuntimeError("no empty Redis database index is free for the tests")


_claimed_redis_url: str | None = None


def redis_test_url() -> str:
    """The URL of this run's own Redis database index, claimed on the first call (at test time)."""
    global _claimed_redis_url
    if _claimed_redis_url is None:
        _claimed_redis_url = _claim_redis_database()
    return _claimed_redis_url


@pytest.fixture(scope="session", name="redis_test_url")
def _redis_test_url_fixture() -> str:
    """The URL of this run's own Redis database index (``redis_test_url()`` as a fixture)."""
    return redis_test_url()


@contextmanager
def postgres_database(*, migrate: bool = True) -> Iterator[str]:
    """The URL of a new PostgreSQL database (migrated unless ``migrate`` is false), dropped at the end."""
    name = f"sidekiq_supervisor_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    try:
        if migrate:
            engine = make_engine(url)
            upgrade(engine)
            engine.dispose()
        yield url
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test session, migrated once, dropped at the end."""
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite ledger migrated once per session, for each test to copy (cheaper than Alembic per test)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "ledger.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as connection:
        # Everything into the main file, so that copying that one file copies the whole ledger.
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


# The PostgreSQL half carries the ``postgres`` mark: the fast lane leaves it to the full run.
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated ledger: a copy of the SQLite template, or the emptied PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "ledger.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    return request.getfixturevalue("empty_postgres_url")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def unmigrated_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, not migrated: a SQLite file not made yet, or a new PostgreSQL
    database of its own (where apps add schemas beside the default app's ledger)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    with postgres_database(migrate=False) as url:
        yield url


@pytest.fixture(scope="session")
def _postgres_emptier(postgres_url: str) -> Iterator[Engine]:
    """One connection of the session that empties the tables before each test (connecting costs)."""
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def empty_postgres_url(postgres_url: str, _postgres_emptier: Engine) -> str:
    """The session's PostgreSQL database with every table emptied (for PostgreSQL-only tests)."""
    with _postgres_emptier.begin() as connection:
        # Nothing here needs to survive a crash: the commit need not wait for the disk.
        connection.execute(text("SET LOCAL synchronous_commit TO OFF"))
        tables = ", ".join(table.name for table in metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY"))
    return postgres_url


@pytest.fixture
def engine(ledger_url: str) -> Iterator[Engine]:
    """An engine on the test's ledger, schema at head (``ledger_url`` is migrated already)."""
    engine = make_engine(ledger_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def second_redis_url() -> Iterator[str]:
    """A second Redis database index of this run's own (tests of two apps, each with its Redis);
    emptied at the end, its lock released as the run exits. Skips where TEST_REDIS_URL pins one."""
    url = _claim_redis_database()
    if url == redis_test_url():
        pytest.skip("TEST_REDIS_URL names one Redis database index; these tests need two")
    yield url
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


@pytest.fixture
def second_redis_client(second_redis_url: str) -> Iterator[redis.Redis]:
    """A client on ``second_redis_url``'s database, empty before and after each test."""
    client = redis.Redis.from_url(second_redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """A client on the tests' own Redis database, empty before and after each test."""
    client = redis.Redis.from_url(redis_test_url())
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def settings(ledger_url: str) -> Settings:
    """Settings for an app on the test's ledger and the tests' Redis database."""
    return Settings(database_url=ledger_url, redis_url=redis_test_url())


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """An HTTP client on a running app (lifespan started: writer up, schema migrated)."""
    with TestClient(create_app(settings)) as client:
        yield client
