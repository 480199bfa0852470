"""The recoveries list reads automatic recovery's events alone, newest first, from the partial
index of migration 0015, however many restarts people asked for beside them."""

from __future__ import annotations

import orjson
from sqlalchemy import Engine, insert, inspect

from sidekiq_supervisor.store.queries import recovery_events
from sidekiq_supervisor.store.schema import job_events
from tests.store.plans import plan, statements

T0 = 1_700_000_000_000_000


def event(number: int, kind: str, detail: dict[str, object]) -> dict[str, object]:
    at = T0 + number
    return {
        "jid": f"j{number:04}",
        "kind": kind,
        "at": at,
        "recorded_at": at,
        "detail": orjson.dumps(detail).decode(),
    }


def test_the_list_holds_recoverys_events_alone_newest_first_from_their_index(engine: Engine) -> None:
    rows = []
    for number in range(300):
        if number % 50 == 7:
            rows.append(event(number, "restarted", {"new_jid": f"n{number}", "recovered": "orphaned"}))
        elif number % 50 == 9:
            rows.append(event(number, "quarantined", {"reason": "restarted too often"}))
        else:
            rows.append(event(number, "restarted", {"new_jid": f"n{number}"}))
    with engine.begin() as connection:
        connection.execute(insert(job_events), rows)
    expected = [
        row["jid"] for row in reversed(rows) if row["kind"] == "quarantined" or "recovered" in row["detail"]
    ]
    with engine.connect() as connection, statements(engine) as seen:
        assert [found.jid for found in recovery_events(connection)] == expected
        if engine.dialect.name == "sqlite":
            statement, parameters = seen[-1]
            assert "USING INDEX ix_job_events_recoveries" in plan(connection, statement, parameters)
    assert "ix_job_events_recoveries" in {
        index["name"] for index in inspect(engine).get_indexes("job_events")
    }
