"""Fixtures of the fault tests: ledgers to crash, and a PostgreSQL reached through a proxy."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from sidekiq_supervisor.store.engine import make_engine
from tests.reliability.proxy import TcpProxy, tcp_proxy


@dataclass(frozen=True)
class Ledger:
    """A fresh, empty ledger and the environment the service needs for it."""

    url: str
    env: dict[str, str]


def _emptied(url: str) -> str:
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE jobs, job_events, job_payloads RESTART IDENTITY"))
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite-full", "sqlite-normal", "postgres"])
def durable_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Ledger:
    """Each durability setting the README promises a 2xx survives a crash of the service on."""
    if request.param == "postgres":
        return Ledger(_emptied(request.getfixturevalue("postgres_url")), {})
    synchronous = request.param.removeprefix("sqlite-").upper()
    return Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", {"SUPERVISOR_SQLITE_SYNCHRONOUS": synchronous})


@pytest.fixture
def proxied_postgres(postgres_url: str) -> Iterator[tuple[str, TcpProxy]]:
    """The session's PostgreSQL, emptied, and a URL that reaches it through a proxy we can cut."""
    _emptied(postgres_url)
    url = make_url(postgres_url)
    with tcp_proxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), proxy
