"""The Sidekiq apps one supervisor watches: read from a TOML file (SUPERVISOR_CONFIG), or one app
named ``default`` made from today's environment variables.

Each app has its own ledger, Sidekiq Redis, tokens and per-app settings. The first app in the file
is the default app: the unprefixed URLs, the CLI without ``--app`` and ``JobManager`` are its.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from sidekiq_supervisor.settings import Settings

DEFAULT_APP = "default"
APP_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# A PostgreSQL schema the ledger's sessions name as their search path when they start: no space,
# quote or backslash, which libpq's startup options would split or escape.
SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,62}")
# Settings that belong to the process (its HTTP server, its pages, its exporter) rather than to
# one app; everything else a file may set per app.
PROCESS_WIDE = frozenset(
    {
        "config",
        "max_body_bytes",
        "header_timeout_seconds",
        "body_timeout_seconds",
        "request_timeout_seconds",
        "username",
        "password",
        "api_token",
        "metrics_max_classes",
        "metrics_cache_seconds",
        "opentelemetry",
        "sqlite_synchronous",
    }
)
# Keys an app table takes beyond the per-app settings.
APP_KEYS = frozenset({"api_tokens", "database_schema"})


class ConfigError(ValueError):
    """The configuration file cannot be used; the message is one line naming the line and key."""


@dataclass(frozen=True, slots=True)
class AppConfig:
    """One app: its name, its settings (the process's, with the file's values for this app) and
    the tokens that open its API (its own and the global ones)."""

    name: str
    settings: Settings
    # The tokens the file gives this app alone (SUPERVISOR_API_TOKEN's open every app).
    own_api_tokens: tuple[str, ...] = ()
    # On PostgreSQL, the schema that holds this app's ledger (None: the database's own schema).
    database_schema: str | None = None

    @property
    def api_tokens(self) -> tuple[str, ...]:
        """Every token this app's API accepts; empty when its API is open."""
        return self.settings.api_tokens + self.own_api_tokens


@dataclass(frozen=True, slots=True)
class Apps:
    """Every app of this supervisor, in the file's order; the first is the default app."""

    settings: Settings
    apps: tuple[AppConfig, ...]
    # The file they were read from (None: made from the environment alone).
    source: Path | None = None

    @property
    def default(self) -> AppConfig:
        """The app of the unprefixed URLs."""
        return self.apps[0]

    @property
    def names(self) -> tuple[str, ...]:
        """The apps' names, in order."""
        return tuple(app.name for app in self.apps)

    def get(self, name: str) -> AppConfig | None:
        """The app called ``name``, or None."""
        return next((app for app in self.apps if app.name == name), None)

    def __iter__(self) -> Iterator[AppConfig]:
        return iter(self.apps)

    def __len__(self) -> int:
        return len(self.apps)


def single_app(settings: Settings) -> Apps:
    """Today's one app, named ``default``, from the environment's settings."""
    return Apps(settings, (AppConfig(DEFAULT_APP, settings),))


def load_apps(settings: Settings, path: str | Path | None = None) -> Apps:
    """The apps of ``path`` (else SUPERVISOR_CONFIG; without either, :func:`single_app`).

    Raises :class:`ConfigError` with one line naming the file, the line and the key at fault.
    """
    chosen = path if path is not None else settings.config
    if not chosen:
        return single_app(settings)
    source = Path(chosen)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read the configuration file ({exc})") from None
    return parse_apps(settings, text, source)


def parse_apps(settings: Settings, text: str, source: Path) -> Apps:
    """The apps described by ``text`` (the contents of ``source``)."""
    where = _Locator(text, source)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    for key in document:
        if key != "apps":
            raise ConfigError(
                f"{where.key(None, key)}: unknown key {key!r} (the file holds [apps.NAME] tables)"
            )
    tables = document.get("apps")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"{source}: no apps: add one [apps.NAME] table per app, with its redis_url")
    apps = tuple(_app(settings, name, table, where) for name, table in tables.items())
    return Apps(settings, apps, source)


def _app(settings: Settings, name: str, table: Any, where: _Locator) -> AppConfig:
    if not APP_NAME.fullmatch(name):
        raise ConfigError(
            f"{where.table(name)}: app name {name!r} must match {APP_NAME.pattern} "
            "(lower-case letters, digits, '-' and '_', up to 63)"
        )
    if not isinstance(table, dict):
        raise ConfigError(f"{where.key(None, name)}: apps.{name} must be a table ([apps.{name}])")
    if "redis_url" not in table:
        raise ConfigError(f"{where.table(name)}: apps.{name} has no redis_url (required)")
    overrides: dict[str, Any] = {}
    for key, value in table.items():
        if key in APP_KEYS:
            continue
        if key in PROCESS_WIDE or key not in Settings.model_fields:
            reason = (
                "is set for the whole process (its environment variable)"
                if key in PROCESS_WIDE
                else "is not a setting"
            )
            raise ConfigError(f"{where.key(name, key)}: apps.{name}.{key} {reason}")
        overrides[key] = value
    tokens = _tokens(name, table.get("api_tokens", []), where)
    schema = table.get("database_schema")
    if schema is not None and not (isinstance(schema, str) and SCHEMA_NAME.fullmatch(schema)):
        raise ConfigError(
            f"{where.key(name, 'database_schema')}: apps.{name}.database_schema must match "
            f"{SCHEMA_NAME.pattern}"
        )
    try:
        # model_validate reads no environment: the process's values, then the file's for this app.
        app_settings = Settings.model_validate({**settings.model_dump(), **overrides})
    except ValidationError as exc:
        error = exc.errors()[0]
        key = str(error["loc"][0]) if error["loc"] else next(iter(overrides), "redis_url")
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{where.key(name, key)}: apps.{name}.{key}: {message}") from None
    return AppConfig(name, app_settings, tokens, schema)


def _tokens(name: str, value: Any, where: _Locator) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(token, str) and token.strip() for token in value):
        raise ConfigError(
            f"{where.key(name, 'api_tokens')}: apps.{name}.api_tokens must be a list of non-empty strings"
        )
    return tuple(token.strip() for token in value)


def ledger_url(app: AppConfig, default: AppConfig) -> str:
    """The database URL of ``app``'s ledger.

    The default app's is DATABASE_URL itself, so a ledger written before apps existed stays the
    default app's. Another app without a ``database_url`` of its own gets, on SQLite, a file beside
    the default one (``supervisor.db`` → ``supervisor.billing.db``); on PostgreSQL the same
    database, its ledger in a schema of its own (:func:`ledger_schema`).
    """
    url = app.settings.database_url
    if app is default or url != default.settings.database_url or not url.startswith("sqlite"):
        return url
    prefix, _, path = url.partition(":///")
    if not path or path == ":memory:":
        return url
    file = PurePosixPath(path)
    suffix = file.suffix or ".db"
    return f"{prefix}:///{file.with_name(f'{file.stem}.{app.name}{suffix}')}"


def ledger_schema(app: AppConfig, default: AppConfig) -> str | None:
    """On PostgreSQL, the schema of ``app``'s ledger: its ``database_schema``, else ``app_NAME``
    for an app sharing the default app's database, else the database's own (None)."""
    if app.database_schema is not None:
        return app.database_schema
    shares_database = app.settings.database_url == default.settings.database_url
    if app is default or not shares_database or app.settings.database_url.startswith("sqlite"):
        return None
    return f"app_{app.name}"


class _Locator:
    """Finds the line of a table or a key in the file's text, for error messages."""

    def __init__(self, text: str, source: Path) -> None:
        self._lines = text.splitlines()
        self._source = source

    def table(self, name: str) -> str:
        header = re.compile(rf"^\s*\[\s*apps\s*\.\s*\"?{re.escape(name)}\"?\s*\]")
        for number, line in enumerate(self._lines, start=1):
            if header.match(line):
                return f"{self._source}:{number}"
        return str(self._source)

    def key(self, app: str | None, key: str) -> str:
        inside = app is None
        assignment = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        table_header = re.compile(r"^\s*\[")
        wanted = None if app is None else re.compile(rf"^\s*\[\s*apps\s*\.\s*\"?{re.escape(app)}\"?\s*\]")
        for number, line in enumerate(self._lines, start=1):
            if table_header.match(line):
                inside = wanted is not None and bool(wanted.match(line))
                if app is None and key in line:
                    return f"{self._source}:{number}"
                continue
            if inside and assignment.match(line):
                return f"{self._source}:{number}"
        return self.table(app) if app is not None else str(self._source)
