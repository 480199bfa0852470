"""Notifications: the messages that tell alerts, sent to every SUPERVISOR_NOTIFY URL through Apprise.

Apprise speaks Slack, email, Teams, Discord, generic webhooks (``json://``, ``form://``) and a
hundred more; this module keeps no client of its own. It runs in the alert loop's thread, never on
a request's path: a message is kept in the ledger first (one delivery per URL, pending), then each
delivery is tried, and a failed one is tried again later, backing off, until
SUPERVISOR_NOTIFY_GIVE_UP_HOURS. Each URL gets its messages in order: a URL that is down holds
its queue, and gets every message, in order, when it is back. See ``docs/alerts.md``.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from apprise import Apprise, AppriseAsset, NotifyType
from sqlalchemy import Engine

from sidekiq_supervisor.domain import alerts as rules
from sidekiq_supervisor.domain.alerts import DeliveryStatus, Severity
from sidekiq_supervisor.domain.model import Micros, micros_from_seconds
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.store import alerts as store
from sidekiq_supervisor.store.alerts import DueDelivery, NoticeTaken, Target
from sidekiq_supervisor.store.engine import write_transaction

logger = logging.getLogger(__name__)

# Deliveries tried in one pass at most (each bounded by SUPERVISOR_NOTIFY_TIMEOUT_SECONDS).
DELIVERIES_PER_PASS = 50
# A claimed delivery whose process died is taken over this long after the claim's timeout.
CLAIM_GRACE: Micros = 30_000_000
# An error kept for a delivery is cut to this many characters.
ERROR_LENGTH = 500
_NOTIFY_TYPES = {Severity.FAILURE: NotifyType.FAILURE, Severity.SUCCESS: NotifyType.SUCCESS}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When failed deliveries are tried again, and when they are given up (microseconds)."""

    first_delay: Micros = 10_000_000
    max_delay: Micros = 600_000_000
    give_up_after: Micros = 24 * 3_600_000_000


@dataclass(slots=True)
class DeliveryTally:
    """What one pass of deliveries did."""

    sent: int = 0
    failed: int = 0  # tries that failed (to be tried again, or given up)
    given_up: int = 0
    errors: list[str] = field(default_factory=list)


class Notifier:
    """Keeps and sends the messages of one service to its notification URLs."""

    def __init__(
        self,
        engine: Engine,
        urls: tuple[str, ...],
        *,
        name: str | None = None,
        app: str | None = None,
        max_messages: int = 10,
        rate_window: Micros = 3_600_000_000,
        retry: RetryPolicy | None = None,
        timeout_seconds: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        # What each message starts with ([name] FIRING: ...): the service, and the app it is about.
        self.name = (name or f"sidekiq-supervisor@{socket.gethostname()}") + (f" {app}" if app else "")
        self._max_messages = max_messages
        self._rate_window = rate_window
        self._retry = retry or RetryPolicy()
        self._timeout = timeout_seconds
        self._clock = clock
        asset = AppriseAsset(
            app_id="sidekiq-supervisor", app_desc="Sidekiq Supervisor", storage_mode="memory"
        )
        self._services: dict[str, Apprise] = {}
        targets = []
        for url in urls:
            key = hashlib.sha256(url.encode()).hexdigest()
            service = Apprise(asset=asset)
            if not service.add(url) or key in self._services:
                continue  # the settings refuse URLs Apprise cannot use; a repeated URL is sent once
            self._services[key] = service
            targets.append(Target(key, _shown(url)))
        self.targets: tuple[Target, ...] = tuple(targets)

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings, *, app: str | None = None) -> Notifier:
        """A notifier on the settings' URLs, rate limit and retries; its messages name ``app``."""
        retry = RetryPolicy(
            micros_from_seconds(settings.notify_retry_seconds),
            micros_from_seconds(settings.notify_retry_max_seconds),
            micros_from_seconds(settings.notify_give_up_hours * 3600),
        )
        return cls(
            engine,
            settings.notify_urls,
            name=settings.notify_name,
            app=app,
            max_messages=settings.notify_max_messages,
            rate_window=micros_from_seconds(settings.notify_rate_window_minutes * 60),
            retry=retry,
            timeout_seconds=settings.notify_timeout_seconds,
        )

    def _now(self) -> Micros:
        return micros_from_seconds(self._clock())

    def next_message_at(self) -> Micros:
        """When the rate limit lets the next alert message go (now, or later)."""
        now = self._now()
        with self._engine.connect() as connection:
            sent = store.message_times(connection, now - self._rate_window)
        return rules.next_message_at(sent, now, self._max_messages, self._rate_window)

    def tell_waiting(self) -> int | None:
        """One message for every notice waiting, if any waits and the rate limit allows one now;
        its id. Each notice is told by one message only, whichever process makes it."""
        now = self._now()
        try:
            with write_transaction(self._engine) as connection:
                notices = store.waiting_notices(connection)
                if not notices:
                    return None
                sent = store.message_times(connection, now - self._rate_window)
                if rules.next_message_at(sent, now, self._max_messages, self._rate_window) > now:
                    return None
                message = rules.compose(notices, self.name)
                return store.record_message(connection, message, now, self.targets, notices)
        except NoticeTaken:
            return None  # another process told them; its message goes

    def queue_test(self) -> int | None:
        """Keep a test message for every URL (the rate limit does not count it); its id, or None
        when no URL is configured. The alert loop sends it."""
        if not self.targets:
            return None
        message = rules.test_message(self.name, len(self.targets))
        with write_transaction(self._engine) as connection:
            return store.record_message(connection, message, self._now(), self.targets)

    def deliver_due(self, limit: int = DELIVERIES_PER_PASS) -> DeliveryTally:
        """Try the deliveries that are due, each URL's in order; a URL that fails is left for the
        rest of the pass (its next message waits behind the failed one)."""
        tally = DeliveryTally()
        down: set[str] = set()
        tried = 0
        while tried < limit:
            now = self._now()
            with self._engine.connect() as connection:
                due = [d for d in store.due_deliveries(connection, now, limit) if d.target_key not in down]
            if not due:
                break
            for delivery in due:
                if tried >= limit:
                    break
                tried += 1
                if not self._deliver(delivery, tally):
                    down.add(delivery.target_key)
        return tally

    def _deliver(self, delivery: DueDelivery, tally: DeliveryTally) -> bool:
        """Try one delivery and record how it went; whether its URL took it."""
        service = self._services.get(delivery.target_key)
        now = self._now()
        if service is None:
            with write_transaction(self._engine) as connection:
                store.delivery_done(
                    connection, delivery.id, DeliveryStatus.DROPPED, now, attempted=False,
                    error="its URL is no longer in SUPERVISOR_NOTIFY",
                )  # fmt: skip
            return True
        claim_until = now + micros_from_seconds(self._timeout) + CLAIM_GRACE
        with write_transaction(self._engine) as connection:
            if not store.claim_delivery(connection, delivery.id, now, claim_until):
                return True  # another process sends it
        error = self._send(service, delivery)
        now = self._now()
        with write_transaction(self._engine) as connection:
            if error is None:
                store.delivery_done(connection, delivery.id, DeliveryStatus.SENT, now)
                tally.sent += 1
                return True
            tally.failed += 1
            tally.errors.append(error)
            attempts = delivery.attempts + 1
            if now - delivery.message_created_at >= self._retry.give_up_after:
                tally.given_up += 1
                store.delivery_done(connection, delivery.id, DeliveryStatus.FAILED, now, error=error)
            else:
                retry = rules.retry_at(attempts, now, self._retry.first_delay, self._retry.max_delay)
                store.delivery_done(
                    connection, delivery.id, DeliveryStatus.PENDING, now, error=error, next_attempt_at=retry
                )
        return False

    def _send(self, service: Apprise, delivery: DueDelivery) -> str | None:
        """Send through Apprise; None when it went, else why not (Apprise's warnings)."""
        try:
            with service.notify(
                body=delivery.body,
                title=delivery.title,
                notify_type=_NOTIFY_TYPES.get(delivery.severity, NotifyType.INFO),
                timeout=self._timeout,
            ) as result:
                if result:
                    return None
                said = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR")]
                return _cut("; ".join(said) or f"not delivered ({result.status.name.lower()})")
        except Exception as exc:  # a plugin's bug must not stop the loop
            logger.exception("notification failed")
            return _cut(f"{type(exc).__name__}: {exc}")


def _shown(url: str) -> str:
    """The URL as the Alerts page shows it: Apprise's own form with secrets masked, no options."""
    instance = Apprise.instantiate(url)
    if instance is None:
        return url.split("://", 1)[0] + "://"
    shown = instance.url(privacy=True)  # type: ignore[no-untyped-call]  # Apprise leaves url() unannotated
    return str(shown).split("?", 1)[0]


def _cut(text: str) -> str:
    return text if len(text) <= ERROR_LENGTH else text[: ERROR_LENGTH - 1] + "…"
