"""What every PostgreSQL session of the ledger starts with: JIT compiling off (it cost a filtered
read at ten million jobs more than the read itself), an app's schema as the whole search path, and
whatever options the database URL sets itself."""

from __future__ import annotations

import pytest
from sqlalchemy import make_url

from sidekiq_supervisor.store.engine import make_engine

pytestmark = pytest.mark.postgres


def settings(url: str, *names: str, schema: str | None = None) -> list[str]:
    engine = make_engine(url, schema=schema)
    try:
        with engine.connect() as connection:
            return [connection.exec_driver_sql(f"SHOW {name}").scalar_one() for name in names]
    finally:
        engine.dispose()


def test_a_ledger_session_compiles_no_query(postgres_url: str) -> None:
    assert settings(postgres_url, "jit") == ["off"]


def test_the_urls_own_options_and_an_apps_schema_are_kept_beside_it(postgres_url: str) -> None:
    url = make_url(postgres_url).update_query_dict({"options": "-c work_mem=7MB"})
    rendered = url.render_as_string(hide_password=False)
    assert settings(rendered, "jit", "work_mem", "search_path", schema="app_billing") == [
        "off",
        "7MB",
        '"app_billing"',
    ]
