"""Alerts in the ledger: open and resolved alerts, the messages that told them, and each message's
delivery to each notification URL.

Every change is conditional on the row as it was read (an alert still open, a notice still
waiting, a delivery still due), so two processes that run the alert loop at once (SQLite, where
each process leads) never open an alert twice, tell a notice twice, or send a delivery twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from sidekiq_supervisor.domain.alerts import (
    AlertRecord,
    Condition,
    DeliveryRecord,
    DeliveryStatus,
    Finding,
    Message,
    MessageKind,
    MessageRecord,
    Notice,
    OpenAlert,
    Severity,
)
from sidekiq_supervisor.domain.model import Micros
from sidekiq_supervisor.store.schema import alert_deliveries, alert_messages, alerts
from sidekiq_supervisor.store.writer import dialect_insert

_OPEN = alerts.c.resolved_at.is_(None)


def open_alerts(connection: Connection) -> list[OpenAlert]:
    """Every alert that has not resolved."""
    query = select(alerts.c.id, alerts.c.key, alerts.c.condition, alerts.c.clear_since).where(_OPEN)
    return [OpenAlert(r.id, r.key, Condition(r.condition), r.clear_since) for r in connection.execute(query)]


def open_alert(connection: Connection, finding: Finding, now: Micros) -> bool:
    """Open an alert for ``finding``; False when one is open for its key already."""
    statement = (
        dialect_insert(connection, alerts)
        .values({**_figures(finding, now), "key": finding.key, "condition": finding.condition.value,
                 "subject": finding.subject[:255], "opened_at": now})
        .on_conflict_do_nothing(index_elements=[alerts.c.key], index_where=_OPEN)
        .returning(alerts.c.id)
    )  # fmt: skip
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT that returns the new key.
    return connection.execute(statement).scalar_one_or_none() is not None


def found_again(connection: Connection, alert_id: int, finding: Finding, now: Micros) -> None:
    """An open alert found again: its figures now, and its condition present (no longer clearing)."""
    connection.execute(
        update(alerts)
        .where(alerts.c.id == alert_id, _OPEN)
        .values({**_figures(finding, now), "clear_since": None})
    )


def clearing(connection: Connection, alert_id: int, now: Micros) -> None:
    """An open alert whose condition is absent: since ``now``, unless it was already."""
    connection.execute(
        update(alerts)
        .where(alerts.c.id == alert_id, _OPEN, alerts.c.clear_since.is_(None))
        .values(clear_since=now)
    )


def resolve(connection: Connection, alert_id: int, now: Micros) -> bool:
    """Resolve an open alert; False when it was resolved already."""
    statement = update(alerts).where(alerts.c.id == alert_id, _OPEN).values(resolved_at=now, updated_at=now)
    return connection.execute(statement).rowcount == 1


def _figures(finding: Finding, now: Micros) -> dict[str, object]:
    return {
        "updated_at": now,
        "count": finding.count,
        "summary": finding.summary,
        "sample": orjson.dumps(list(finding.sample)).decode(),
    }


_WAITING = or_(
    alerts.c.fired_message_id.is_(None),
    and_(alerts.c.resolved_at.is_not(None), alerts.c.resolved_message_id.is_(None)),
)


def waiting_notices(connection: Connection) -> list[Notice]:
    """The notices no message has told yet: alerts that fired, resolved, or both, oldest first."""
    query = select(alerts).where(_WAITING).order_by(alerts.c.id)
    return [
        Notice(
            row.id,
            Condition(row.condition),
            row.subject,
            row.summary,
            row.opened_at,
            firing=row.fired_message_id is None,
            resolved_at=row.resolved_at,
            sample=_sample(row.sample),
        )
        for row in connection.execute(query)
    ]


class NoticeTaken(RuntimeError):
    """Another process told one of the notices first: the message is rolled back."""


@dataclass(frozen=True, slots=True)
class Target:
    """A notification URL as the ledger names it: a hash of the URL, and the URL with its secrets
    masked (the URL itself is never stored)."""

    key: str
    shown: str


def record_message(
    connection: Connection,
    message: Message,
    now: Micros,
    targets: Sequence[Target],
    notices: Sequence[Notice] = (),
) -> int:
    """Keep ``message`` with a pending delivery to each target, and mark ``notices`` told by it.

    Raises ``NoticeTaken`` when another process told one of them meanwhile (roll back then).
    """
    message_id: int = connection.execute(
        insert(alert_messages)
        .values(created_at=now, kind=message.kind.value, severity=message.severity.value,
                title=message.title, body=message.body)
        .returning(alert_messages.c.id)
    ).scalar_one()  # fmt: skip
    if targets:
        connection.execute(
            insert(alert_deliveries),
            [
                {"message_id": message_id, "target_key": target.key, "target": target.shown,
                 "status": DeliveryStatus.PENDING.value, "attempts": 0, "next_attempt_at": now}
                for target in targets
            ],
        )  # fmt: skip
    fired = [n.alert_id for n in notices if n.firing]
    resolved = [n.alert_id for n in notices if n.resolved_at is not None]
    taken = _mark(connection, alerts.c.fired_message_id, fired, message_id)
    taken += _mark(connection, alerts.c.resolved_message_id, resolved, message_id)
    if taken != len(fired) + len(resolved):
        raise NoticeTaken(f"message {message_id}: another process told some of its notices")
    return message_id


def _mark(connection: Connection, column: ColumnElement[int], alert_ids: list[int], message_id: int) -> int:
    if not alert_ids:
        return 0
    statement = (
        update(alerts).where(alerts.c.id.in_(alert_ids), column.is_(None)).values({column.key: message_id})
    )
    return int(connection.execute(statement).rowcount)


def message_times(connection: Connection, since: Micros) -> list[Micros]:
    """When the alert messages (not the tests) since ``since`` were made: the rate limit's window."""
    query = select(alert_messages.c.created_at).where(
        alert_messages.c.kind == MessageKind.ALERTS.value, alert_messages.c.created_at >= since
    )
    return list(connection.execute(query).scalars())


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A delivery to try now, with its message."""

    id: int
    target_key: str
    attempts: int
    message_created_at: Micros
    title: str
    body: str
    severity: Severity


_DUE_STATUSES = (DeliveryStatus.PENDING.value, DeliveryStatus.SENDING.value)


def due_deliveries(connection: Connection, now: Micros, limit: int) -> list[DueDelivery]:
    """The deliveries to try now: for each URL, its oldest delivery not done, when it is due (a
    pending one whose time came, or a claimed one whose claim lapsed: the process sending it
    died). A URL's messages go in order: a later one never overtakes one waiting for a retry."""
    heads = (
        select(func.min(alert_deliveries.c.id))
        .where(alert_deliveries.c.status.in_(_DUE_STATUSES))
        .group_by(alert_deliveries.c.target_key)
    )
    query = (
        select(
            alert_deliveries.c.id, alert_deliveries.c.target_key, alert_deliveries.c.attempts,
            alert_messages.c.created_at, alert_messages.c.title, alert_messages.c.body,
            alert_messages.c.severity,
        )
        .join(alert_messages, alert_messages.c.id == alert_deliveries.c.message_id)
        .where(alert_deliveries.c.id.in_(heads), alert_deliveries.c.next_attempt_at <= now)
        .order_by(alert_deliveries.c.id)
        .limit(limit)
    )  # fmt: skip
    return [
        DueDelivery(r.id, r.target_key, r.attempts, r.created_at, r.title, r.body, Severity(r.severity))
        for r in connection.execute(query)
    ]


def claim_delivery(connection: Connection, delivery_id: int, now: Micros, until: Micros) -> bool:
    """Take a due delivery to send it, until ``until``; False when another process took it."""
    statement = (
        update(alert_deliveries)
        .where(
            alert_deliveries.c.id == delivery_id,
            alert_deliveries.c.status.in_(_DUE_STATUSES),
            alert_deliveries.c.next_attempt_at <= now,
        )
        .values(status=DeliveryStatus.SENDING.value, next_attempt_at=until)
    )
    return connection.execute(statement).rowcount == 1


def delivery_done(
    connection: Connection,
    delivery_id: int,
    status: DeliveryStatus,
    now: Micros,
    *,
    attempted: bool = True,
    error: str | None = None,
    next_attempt_at: Micros | None = None,
) -> None:
    """Record a try's outcome (or a delivery dropped untried): sent, failed for good, or pending
    again until ``next_attempt_at``."""
    values: dict[str, object] = {"status": status.value, "error": error}
    if attempted:
        values.update(attempts=alert_deliveries.c.attempts + 1, last_attempt_at=now)
    if status is DeliveryStatus.SENT:
        values["sent_at"] = now
    values["next_attempt_at"] = next_attempt_at if next_attempt_at is not None else now
    connection.execute(update(alert_deliveries).where(alert_deliveries.c.id == delivery_id).values(values))


# --- Reads for people -----------------------------------------------------------------------


def alert_records(connection: Connection, *, open_only: bool, limit: int) -> list[AlertRecord]:
    """Open alerts (oldest first), or every alert (newest first), at most ``limit``."""
    query = select(alerts)
    query = query.where(_OPEN).order_by(alerts.c.id) if open_only else query.order_by(alerts.c.id.desc())
    return [
        AlertRecord(
            row.id,
            Condition(row.condition),
            row.subject,
            row.opened_at,
            row.updated_at,
            row.resolved_at,
            row._mapping["count"],  # Row.count is tuple's method
            row.summary,
            _sample(row.sample),
            row.fired_message_id,
            row.resolved_message_id,
        )
        for row in connection.execute(query.limit(limit))
    ]


def message_records(connection: Connection, limit: int) -> list[MessageRecord]:
    """The newest ``limit`` messages, each with its deliveries."""
    rows = connection.execute(select(alert_messages).order_by(alert_messages.c.id.desc()).limit(limit)).all()
    deliveries = _deliveries(connection, [row.id for row in rows])
    return [
        MessageRecord(row.id, row.created_at, MessageKind(row.kind), row.title, row.body,
                      tuple(deliveries.get(row.id, ())))
        for row in rows
    ]  # fmt: skip


def _deliveries(connection: Connection, message_ids: Iterable[int]) -> dict[int, list[DeliveryRecord]]:
    wanted = list(message_ids)
    found: dict[int, list[DeliveryRecord]] = defaultdict(list)
    if not wanted:
        return found
    query = (
        select(alert_deliveries)
        .where(alert_deliveries.c.message_id.in_(wanted))
        .order_by(alert_deliveries.c.id)
    )
    for r in connection.execute(query):
        found[r.message_id].append(
            DeliveryRecord(r.target, DeliveryStatus(r.status), r.attempts, r.next_attempt_at,
                           r.last_attempt_at, r.sent_at, r.error)
        )  # fmt: skip
    return found


def prune(connection: Connection, before: Micros) -> int:
    """Forget alerts resolved, and messages made, before ``before`` (with their deliveries); the
    number of alerts and messages deleted."""
    old = select(alert_messages.c.id).where(alert_messages.c.created_at < before)
    connection.execute(delete(alert_deliveries).where(alert_deliveries.c.message_id.in_(old)))
    messages = connection.execute(delete(alert_messages).where(alert_messages.c.created_at < before)).rowcount
    resolved = connection.execute(delete(alerts).where(alerts.c.resolved_at < before)).rowcount
    return int(messages) + int(resolved)


def count_open(connection: Connection) -> int:
    """How many alerts are open."""
    return int(connection.execute(select(func.count()).select_from(alerts).where(_OPEN)).scalar_one())


def _sample(text: str) -> tuple[str, ...]:
    value = orjson.loads(text)
    return tuple(str(jid) for jid in value) if isinstance(value, list) else ()
