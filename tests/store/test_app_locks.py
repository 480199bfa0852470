"""Apps whose ledgers share one PostgreSQL database (a schema each) lead, prune and partition
independently: their advisory locks are keyed per ledger."""

from __future__ import annotations

import pytest

from sidekiq_supervisor.store.engine import lock_key, make_engine
from sidekiq_supervisor.store.leadership import ALERTS_LOCK_KEY, RECOVERY_LOCK_KEY, leading
from sidekiq_supervisor.store.migrate import upgrade
from tests.conftest import postgres_database

pytestmark = pytest.mark.postgres


def test_each_apps_ledger_has_its_own_leader_and_one_app_still_has_one():
    with postgres_database(migrate=False) as url:
        default, billing, billing_again = (
            make_engine(url),
            make_engine(url, schema="app_billing"),
            make_engine(url, schema="app_billing"),
        )
        try:
            for engine in (default, billing):
                upgrade(engine)
            with leading(default) as first, leading(billing) as second, leading(billing_again) as third:
                assert (first, second, third) == (True, True, False)
            with leading(billing_again) as after:
                assert after  # released with the block
        finally:
            for engine in (default, billing, billing_again):
                engine.dispose()


def test_the_default_ledgers_keys_are_todays_and_each_schema_gets_keys_of_its_own():
    engines = [make_engine("postgresql+psycopg://db/x", schema=schema) for schema in (None, "app_a", "app_b")]
    keys = [[lock_key(engine, key) for key in (RECOVERY_LOCK_KEY, ALERTS_LOCK_KEY)] for engine in engines]
    assert keys[0] == [RECOVERY_LOCK_KEY, ALERTS_LOCK_KEY]  # a ledger of before apps: the same locks
    flat = [key for each in keys for key in each]
    assert len(set(flat)) == len(flat)
    assert all(-(2**63) <= key < 2**63 for key in flat)  # PostgreSQL's bigint
