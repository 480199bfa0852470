"""Shared fixtures: a fresh ledger on SQLite and on the real PostgreSQL, the app, Redis.

Every store-backed test runs twice, once per database (``ledger_url`` is parametrised). The
PostgreSQL database is created for the session and dropped at its end; each test starts from
empty tables. Redis tests get a database index of their own: the session claims an empty one
with a lock key in database 0 (so concurrent test runs never share one), and each test flushes
it before and after.
"""

from __future__ import annotations

import atexit
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.store.engine import make_engine
from sidekiq_supervisor.store.migrate import upgrade
from sidekiq_supervisor.web.app import create_app

POSTGRES_ADMIN = os.environ.get("TEST_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_SERVER = "redis://127.0.0.1:6379"


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


REDIS_TEST_URL = _claim_redis_database()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test session, migrated once, dropped at the end."""
    name = f"sidekiq_supervisor_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """The URL of an empty, migrated ledger: a new SQLite file, or the emptied PostgreSQL one."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("empty_postgres_url")


@pytest.fixture
def empty_postgres_url(postgres_url: str) -> str:
    """The session's PostgreSQL database with every table emptied (for PostgreSQL-only tests)."""
    engine = make_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE jobs, job_events, job_rollups, job_payloads RESTART IDENTITY"))
    engine.dispose()
    return postgres_url


@pytest.fixture
def engine(ledger_url: str) -> Iterator[Engine]:
    """An engine on the test's ledger, schema at head."""
    engine = make_engine(ledger_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """A client on the tests' own Redis database, empty before and after each test."""
    client = redis.Redis.from_url(REDIS_TEST_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def settings(ledger_url: str) -> Settings:
    """Settings for an app on the test's ledger and the tests' Redis database."""
    return Settings(database_url=ledger_url, redis_url=REDIS_TEST_URL)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """An HTTP client on a running app (lifespan started: writer up, schema migrated)."""
    with TestClient(create_app(settings)) as client:
        yield client
