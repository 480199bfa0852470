"""Sidekiq's three job sets as the monitor shows them: each one's page, and what can be done to it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sidekiq_supervisor.services.sidekiq_monitor import JobSet, SidekiqMonitor


@dataclass(frozen=True, slots=True)
class SetPage:
    """How one set is shown: its path, title, the column its score fills, and what can be done."""

    path: str
    title: str
    job_set: JobSet
    score_label: str
    # Action code → button label, for one row or the checked rows (order: as shown).
    actions: tuple[tuple[str, str], ...]
    shows_error: bool


SET_PAGES = (
    SetPage(
        "/retries", "Retries", JobSet.RETRY, "Next retry",
        (("retry", "Retry now"), ("kill", "Kill"), ("delete", "Delete")), True,
    ),
    SetPage(
        "/scheduled", "Scheduled", JobSet.SCHEDULE, "Runs",
        (("enqueue", "Add to queue"), ("kill", "Kill"), ("delete", "Delete")), False,
    ),
    SetPage("/morgue", "Dead", JobSet.DEAD, "Died", (("retry", "Retry now"), ("delete", "Delete")), True),
)  # fmt: skip


def one_action(monitor: SidekiqMonitor, job_set: JobSet, action: str) -> Callable[[list[str]], int]:
    """The monitor call that does ``action`` to given members of ``job_set``."""
    return {
        "retry": lambda members: monitor.retry_now(job_set, members),
        "enqueue": monitor.add_to_queue,
        "delete": lambda members: monitor.delete_entries(job_set, members),
        "kill": lambda members: monitor.kill(job_set, members),
    }[action]


def all_action(monitor: SidekiqMonitor, job_set: JobSet, action: str) -> Callable[[], int]:
    """The monitor call that does ``action`` to every member of ``job_set``."""
    return {
        "retry": lambda: monitor.retry_all(job_set),
        "enqueue": monitor.add_all_to_queue,
        "delete": lambda: monitor.delete_all(job_set),
        "kill": lambda: monitor.kill_all(job_set),
    }[action]


# Sidekiq's form buttons (``name="retry"`` …) and ``/all/<action>`` URLs, as the action codes above.
SIDEKIQ_ACTIONS = {"retry": "retry", "delete": "delete", "kill": "kill", "add_to_queue": "enqueue"}
# And back: the button name a job's page gives each action, as Sidekiq's forms name it.
SIDEKIQ_BUTTONS = {code: name for name, code in SIDEKIQ_ACTIONS.items()}
SPEC_BY_PATH = {spec.path: spec for spec in SET_PAGES}
