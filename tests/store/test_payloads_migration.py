"""Migration 0004 (kept payloads): jobs stored before it whose secrets were masked are withheld."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from sidekiq_supervisor.domain.model import EventKind, Report
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.migrate import alembic_config, current_revision, upgrade
from sidekiq_supervisor.store.writer import write_reports

T0 = 1_700_000_000_000_000


def test_masked_jobs_of_an_older_ledger_are_withheld_from_restarts_and_the_rest_untouched(engine):
    command.downgrade(alembic_config(engine), "0003")
    assert current_revision(engine) == "0003"
    with engine.begin() as connection:
        for jid, arguments in (("masked", '[{"password":"[REDACTED]"}]'), ("plain", '[1,"[REDACTED"]')):
            connection.execute(
                text(
                    "INSERT INTO jobs (jid, job_class, queue, arguments, status, attempts) "
                    "VALUES (:jid, 'W', 'default', :arguments, 'started', 1)"
                ),
                {"jid": jid, "arguments": arguments},
            )

    upgrade(engine)

    with engine.connect() as connection:
        rows = connection.execute(text("SELECT jid, form, payload FROM job_payloads ORDER BY jid")).all()
    assert [tuple(row) for row in rows] == [("masked", "withheld", None)]
    # New reports keep their own payloads beside the migrated ones.
    report = Report(
        "new", EventKind.QUEUED, T0, "W", "default", "[]", payload_form="plain", payload='{"a":1}'
    )
    with write_transaction(engine) as connection:
        write_reports(connection, [report, report], T0)
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM job_payloads WHERE jid = 'new'")).scalar_one()
    assert count == 1
