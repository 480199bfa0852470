"""The apps file (SUPERVISOR_CONFIG): what it makes, and the one line that names a mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidekiq_supervisor.apps import ConfigError, ledger_schema, ledger_url, load_apps, parse_apps
from sidekiq_supervisor.settings import Settings

BASE = Settings(
    database_url="sqlite:///var/ledger.db", redis_url="redis://localhost:6379/0", api_token="global"
)


def parse(text: str) -> object:
    return parse_apps(BASE, text, Path("apps.toml"))


def test_without_a_file_there_is_one_app_named_default_on_the_environment():
    apps = load_apps(BASE)
    assert apps.names == ("default",)
    assert apps.default.settings is BASE
    assert apps.default.api_tokens == ("global",)
    assert ledger_url(apps.default, apps.default) == "sqlite:///var/ledger.db"


def test_each_table_is_an_app_in_the_file_order_and_the_first_is_the_default(tmp_path):
    path = tmp_path / "apps.toml"
    path.write_text(
        """
[apps.shop]
redis_url = "redis://shop-redis:6379/0"

[apps.billing-eu]
redis_url = "redis://billing:6379/2"
api_tokens = ["b1", "b2"]
sidekiq_version = 8
retention_days = 7
"""
    )
    apps = load_apps(BASE, path)
    assert apps.names == ("shop", "billing-eu")
    assert apps.default.name == "shop"
    billing = apps.get("billing-eu")
    assert billing is not None
    assert billing.settings.redis_url == "redis://billing:6379/2"
    assert billing.settings.sidekiq_version == 8
    assert billing.settings.retention_days == 7
    # What the file does not set comes from the process's settings.
    assert billing.settings.max_arguments_bytes == BASE.max_arguments_bytes
    assert apps.default.settings.sidekiq_version == BASE.sidekiq_version
    assert billing.api_tokens == ("global", "b1", "b2")
    assert apps.default.api_tokens == ("global",)
    # The default app keeps DATABASE_URL's ledger; another gets a file beside it.
    assert ledger_url(apps.default, apps.default) == "sqlite:///var/ledger.db"
    assert ledger_url(billing, apps.default) == "sqlite:///var/ledger.billing-eu.db"
    assert ledger_schema(billing, apps.default) is None


def test_settings_config_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "apps.toml"
    path.write_text('[apps.one]\nredis_url = "redis://a/0"\n[apps.two]\nredis_url = "redis://b/0"\n')
    monkeypatch.setenv("SUPERVISOR_CONFIG", str(path))
    assert load_apps(Settings()).names == ("one", "two")


def test_on_postgresql_another_app_gets_a_schema_of_its_own_in_the_same_database():
    base = Settings(database_url="postgresql://db/supervisor", redis_url="")
    apps = parse_apps(
        base,
        '[apps.main]\nredis_url = ""\n[apps.billing]\nredis_url = ""\n'
        '[apps.ops]\nredis_url = ""\ndatabase_url = "postgresql://other/ops"\n'
        '[apps.legacy]\nredis_url = ""\ndatabase_schema = "legacy_jobs"\n',
        Path("apps.toml"),
    )
    main, billing, ops, legacy = apps.apps
    assert ledger_schema(main, main) is None
    assert ledger_schema(billing, main) == "app_billing"
    assert ledger_url(billing, main) == "postgresql+psycopg://db/supervisor"
    assert ledger_schema(ops, main) is None  # a database of its own
    assert ledger_url(ops, main) == "postgresql+psycopg://other/ops"
    assert ledger_schema(legacy, main) == "legacy_jobs"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[apps.Shop]\nredis_url = "redis://a/0"\n', "apps.toml:1: app name 'Shop' must match"),
        ('[apps.shop]\nqueue = "x"\n', "apps.toml:1: apps.shop has no redis_url (required)"),
        (
            '[apps.shop]\nredis_url = "redis://a/0"\n\n'
            '[apps.two]\nredis_url = "redis://b/0"\nsidekiq_versoin = 7\n',
            "apps.toml:6: apps.two.sidekiq_versoin is not a setting",
        ),
        (
            '[apps.shop]\nredis_url = "redis://a/0"\nsidekiq_version = 9\n',
            "apps.toml:3: apps.shop.sidekiq_version: Input should be less than or equal to 8",
        ),
        (
            '[apps.shop]\nredis_url = "redis://a/0"\nmax_body_bytes = 1\n',
            "apps.toml:3: apps.shop.max_body_bytes is set for the whole process",
        ),
        (
            '[apps.shop]\nredis_url = "redis://a/0"\napi_tokens = "one"\n',
            "apps.toml:3: apps.shop.api_tokens must be a list of non-empty strings",
        ),
        ('[apps.shop]\nredis_url = "nope://x"\n', "apps.toml:2: apps.shop.redis_url:"),
        (
            '[apps.shop]\nredis_url = "redis://a/0"\ndatabase_schema = "my jobs"\n',
            "apps.toml:3: apps.shop.database_schema must match",
        ),
        ('title = "x"\n[apps.shop]\nredis_url = "redis://a/0"\n', "apps.toml:1: unknown key 'title'"),
        (
            '[apps.shop\nredis_url = "redis://a/0"\n',
            "apps.toml: not valid TOML (Expected ']' at the end of a table declaration",
        ),
        ("", "apps.toml: no apps"),
    ],
)
def test_a_bad_file_gets_one_line_naming_the_line_and_the_key(text, message):
    with pytest.raises(ConfigError) as raised:
        parse(text)
    assert str(raised.value).startswith(message), str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"missing.toml: cannot read the configuration file"):
        load_apps(BASE, tmp_path / "missing.toml")
