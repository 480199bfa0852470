"""Configuration, read from the environment once per process (never at import)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///sidekiq_supervisor.db"
DEFAULT_REDACT_KEYS = "password,passwd,secret,token,api_key,apikey,private_key,authorization,card_number,cvv"


class Settings(BaseSettings):
    """Every setting the service reads; the table in the README documents each one."""

    model_config = SettingsConfigDict(env_prefix="SUPERVISOR_", extra="ignore", populate_by_name=True)

    # A TOML file naming the Sidekiq apps to watch (sidekiq_supervisor.apps); unset: one app,
    # ``default``, from the variables below.
    config: str | None = None
    database_url: str = Field(DEFAULT_DATABASE_URL, validation_alias="DATABASE_URL")
    redis_url: str = Field("redis://localhost:6379/0", validation_alias="REDIS_URL")
    # Group commit: the writer takes at most this many reports per transaction.
    ingest_batch_size: int = Field(1000, ge=1, le=50_000)
    # Pending reports beyond this make ingest answer 503 instead of queueing without bound.
    ingest_queue_limit: int = Field(50_000, ge=1)
    # Where the group-commit writer runs its transactions: "process" (a child process with its own
    # engine, so that they and the requests each use a core) or "thread" (beside the event loop).
    ingest_writer: str = Field("process", pattern="^(thread|process)$")
    # SQLite's synchronous pragma: FULL makes a 2xx survive power loss, NORMAL only a crash.
    sqlite_synchronous: str = Field("FULL", pattern="^(FULL|NORMAL|full|normal)$")
    # Sidekiq's major version decides the unit of timestamps in pushed jobs (seconds up to 7, ms from 8).
    sidekiq_version: int = Field(7, ge=6, le=8)
    # A Sidekiq process whose last heartbeat is older than this is taken for gone.
    process_stale_seconds: float = Field(60.0, gt=0)
    max_batch_reports: int = Field(5000, ge=1)
    # Limits of a report: its arguments as compact JSON, and a request body (413 beyond it).
    max_arguments_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)
    max_body_bytes: int = Field(1024 * 1024, ge=16 * 1024, le=64 * 1024 * 1024)
    # A client that has not sent a request's headers (or a chunk of its body) within this many
    # seconds is cut off (408 for a body), so slow clients cannot hold connections.
    header_timeout_seconds: float = Field(10.0, gt=0, le=3600)
    body_timeout_seconds: float = Field(10.0, gt=0, le=3600)
    # A request that touches the ledger and is not answered within this gets 503 (web.deadline).
    request_timeout_seconds: float = Field(8.0, gt=0)
    # API tokens, comma-separated so that a new one can be added before the old one goes. When
    # set, every /api/v1 route wants one (Bearer, or as the password of HTTP basic auth).
    api_token: str | None = Field(None, repr=False)
    # The dashboard's HTTP basic auth: when both are set, every page and action wants them.
    username: str | None = Field(None)
    password: str | None = Field(None, repr=False)
    # The overview lists jobs uncompleted for longer than this (a page may ask for another value).
    uncompleted_alert_minutes: float = Field(10.0, gt=0)

    # Retention: completed jobs whose completion is older than this many days are deleted (their
    # durations kept in hourly roll-ups); history recorded before this many days is trimmed. 0
    # keeps everything. The pruner runs every prune_interval_seconds in each serve process.
    retention_days: float = Field(30.0, ge=0)
    history_retention_days: float = Field(30.0, ge=0)
    prune_interval_seconds: float = Field(300.0, gt=0)
    # Automatic recovery (off by default): every recover_interval_seconds, jobs whose process has
    # stopped heartbeating are pushed again; jobs reported with no process identity only once they
    # are recover_unknown_after_seconds old (unset: never).
    auto_recover: bool = False
    recover_interval_seconds: float = Field(15.0, ge=1)
    recover_unknown_after_seconds: float | None = Field(None, gt=0)
    # A job lost this many times (along original → copy → copy) goes to Sidekiq's Dead set instead.
    recover_max_attempts: int = Field(3, ge=1)
    # Where recovered jobs go (their own queue when unset), and the classes recovery leaves alone:
    # shell patterns, comma-separated (``Billing::*,ExportJob``).
    recover_queue: str | None = Field(None, min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")
    recover_exclude: str = ""
    # Alerts and notifications (docs/alerts.md). SUPERVISOR_NOTIFY: one or more Apprise URLs
    # (Slack, email, Teams, Discord, webhooks, ...), separated by spaces, newlines or commas.
    notify: str = Field("", repr=False)
    # The alert loop runs when SUPERVISOR_NOTIFY is set, unless this says otherwise (true: keep
    # alerts for the Alerts page without sending any).
    alerts: bool | None = None
    alert_interval_seconds: float = Field(30.0, gt=0, le=3600)
    # An alert resolves once its condition has been absent this long (a flapping one stays open).
    alert_resolve_after_seconds: float = Field(60.0, ge=0)
    # The conditions' thresholds; 0 turns a condition off.
    alert_uncompleted_minutes: float = Field(60.0, ge=0)
    alert_slow_factor: float = Field(10.0, ge=0)
    alert_slow_min_seconds: float = Field(60.0, ge=0)
    alert_orphaned: int = Field(1, ge=0)
    alert_recovered: int = Field(1, ge=0)
    alert_quarantined: int = Field(1, ge=0)
    alert_recovery_window_minutes: float = Field(60.0, gt=0)
    alert_failure_percent: float = Field(25.0, ge=0, le=100)
    alert_failure_min_runs: int = Field(20, ge=1)
    alert_failure_window_minutes: float = Field(15.0, gt=0)
    alert_silence_minutes: float = Field(15.0, ge=0)
    # The rate limit: at most this many alert messages per window; notices wait and go together.
    notify_max_messages: int = Field(10, ge=1)
    notify_rate_window_minutes: float = Field(60.0, gt=0)
    # A failed delivery is tried again after notify_retry_seconds, doubling up to the maximum,
    # until notify_give_up_hours after the message was made. Each try gives up after the timeout.
    notify_retry_seconds: float = Field(10.0, gt=0)
    notify_retry_max_seconds: float = Field(600.0, gt=0)
    notify_give_up_hours: float = Field(24.0, gt=0)
    notify_timeout_seconds: float = Field(10.0, gt=0, le=300)
    # The name messages give the service (``[name] FIRING: ...``); the host's name when unset.
    notify_name: str | None = Field(None, min_length=1, max_length=100)
    prune_batch_size: int = Field(1000, ge=1, le=10_000)
    # Fernet keys, comma-separated, newest first: the exact payload of a job whose arguments were
    # masked is kept encrypted with the first, so that a restart pushes the real values.
    secret_key: str | None = Field(None, repr=False)
    # Words that mark a key of the job arguments as secret: its value is masked before storage.
    redact_keys: str = Field(DEFAULT_REDACT_KEYS)
    # GET /metrics: the busiest N job classes get a label of their own (the rest share ``other``),
    # and the ledger's figures are read again, in the background, once a scrape finds them older.
    metrics_max_classes: int = Field(20, ge=0, le=1000)
    metrics_cache_seconds: float = Field(10.0, ge=0)
    # FastAPI's native OpenTelemetry (spans, metrics and logs through the global providers). Off
    # unless asked for: looking the providers up cost 38 µs of the 220 µs a report took.
    opentelemetry: bool = Field(False)

    @property
    def recover_exclude_patterns(self) -> tuple[str, ...]:
        """SUPERVISOR_RECOVER_EXCLUDE as its patterns."""
        return tuple(part.strip() for part in self.recover_exclude.split(",") if part.strip())

    @property
    def redaction_words(self) -> tuple[str, ...]:
        """The lower-case words of ``redact_keys``; empty when redaction is off."""
        return tuple(word.strip().lower() for word in self.redact_keys.split(",") if word.strip())

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """The keys that seal kept payloads (the first) and open them (any); empty when none."""
        return tuple(key.strip() for key in (self.secret_key or "").split(",") if key.strip())

    @property
    def notify_urls(self) -> tuple[str, ...]:
        """SUPERVISOR_NOTIFY as its URLs."""
        return split_notify_urls(self.notify)

    @property
    def alerts_enabled(self) -> bool:
        """Whether ``serve`` runs the alert loop: SUPERVISOR_ALERTS, or else whether URLs are set."""
        return self.alerts if self.alerts is not None else bool(self.notify_urls)

    @property
    def api_tokens(self) -> tuple[str, ...]:
        """The accepted API tokens; empty when the API is open."""
        return tuple(token.strip() for token in (self.api_token or "").split(",") if token.strip())

    @property
    def dashboard_credentials(self) -> tuple[str, str] | None:
        """The dashboard's basic-auth user and password, or ``None`` when the pages are open."""
        if self.username and self.password:
            return self.username, self.password
        return None

    @model_validator(mode="after")
    def _both_dashboard_credentials_or_none(self) -> Settings:
        # Half a pair used to leave every page and action open without a word.
        if bool(self.username) != bool(self.password):
            given, missing = ("USERNAME", "PASSWORD") if self.username else ("PASSWORD", "USERNAME")
            raise ValueError(
                f"SUPERVISOR_{given} is set without SUPERVISOR_{missing}: set both to protect the "
                "dashboard, or neither to leave it open"
            )
        return self

    @field_validator("secret_key")
    @classmethod
    def _fernet_keys(cls, value: str | None) -> str | None:
        from cryptography.fernet import Fernet

        for key in (value or "").split(","):
            if key.strip():
                try:
                    Fernet(key.strip().encode())
                except ValueError:
                    # The key itself is never echoed: it is a secret.
                    raise ValueError(
                        "each key must be a Fernet key, 32 url-safe base64-encoded bytes "
                        "(sidekiq-supervisor secret-key prints a new one)"
                    ) from None
        return value

    @field_validator("notify")
    @classmethod
    def _apprise_urls(cls, value: str) -> str:
        urls = split_notify_urls(value)
        if urls:
            from apprise import Apprise

            for url in urls:
                if Apprise.instantiate(url) is None:
                    # Masked: a notification URL carries its service's token or password.
                    raise ValueError(
                        f"{masked_url(url)} is not a notification URL Apprise can use (see "
                        "https://github.com/caronc/apprise/wiki for each service's form)"
                    )
        return value

    @field_validator("database_url")
    @classmethod
    def _use_psycopg_for_postgres(cls, url: str) -> str:
        # Heroku-style and plain postgres URLs both mean psycopg 3 here.
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                url = "postgresql+psycopg://" + url[len(prefix) :]
                break
        _check_database_url(url)
        return url

    @field_validator("redis_url")
    @classmethod
    def _usable_redis_url(cls, url: str) -> str:
        if url:  # empty: no Sidekiq Redis (no restarts, no /sidekiq)
            from redis.connection import parse_url

            try:
                parse_url(url)  # type: ignore[no-untyped-call]  # redis-py leaves parse_url unannotated
            except ValueError as exc:
                raise ValueError(f"{masked_url(url)} is not a usable Redis URL ({exc})") from None
        return url


def split_notify_urls(text: str) -> tuple[str, ...]:
    """Notification URLs separated by spaces, newlines or commas (a comma inside a URL, as in
    ``mailto://...?to=a@x.org,b@x.org``, stays: only one before another ``scheme://`` separates)."""
    return tuple(url for url in _URL_SEPARATOR.split(text.strip()) if url)


_URL_SEPARATOR = re.compile(r"\s+|,\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")


def masked_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, even when the URL cannot be parsed."""
    return _PASSWORD.sub(r"\1***@", url)


_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
DATABASES = ("sqlite", "postgresql")


def _check_database_url(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
        _ = parsed.port  # a port that is not a number fails here
    except (ArgumentError, ValueError):
        raise ValueError(
            f"{masked_url(url)} is not a database URL (sqlite:///FILE or postgresql://...)"
        ) from None
    if parsed.get_backend_name() not in DATABASES:
        raise ValueError(
            f"{masked_url(url)} names {parsed.get_backend_name()!r}: the ledger runs on SQLite "
            "(sqlite:///FILE) or PostgreSQL (postgresql://...)"
        )
