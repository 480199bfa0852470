"""What each process counts as it works: reports received and refused, its group commits and ingest
queue, the runs its reports completed and the failures they told of, and the jobs it recovered.

Ordinary prometheus_client instruments, counted where the thing happens, so they only ever grow
(Prometheus reads a counter that drops as a restart of it). Each process counts its own: across
instances ``sum`` them. Under ``serve --workers N`` prometheus_client keeps them in files that
every worker of the instance adds up when it answers a scrape (``exposition``).
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from sidekiq_supervisor.apps import DEFAULT_APP
from sidekiq_supervisor.domain.figures import OTHER_CLASS, busiest, completed_run
from sidekiq_supervisor.domain.model import EventKind, Report
from sidekiq_supervisor.services.report_commit import Refusal
from sidekiq_supervisor.store.writer import WriteResult

# Seconds; a group commit usually takes milliseconds, and past the request deadline (8 s) it fails.
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Seconds; Sidekiq jobs run from milliseconds to hours.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
# The reports clients send (restarts and quarantines are the ledger's own events).
REPORTED = (EventKind.QUEUED, EventKind.STARTED, EventKind.COMPLETE, EventKind.FAILED)

# No ``*_created`` series beside each counter and histogram: Prometheus does not need them to see
# a restart, and multi-process mode has none, so a scrape reads the same with one worker or many.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated


class ClassLabels:
    """Which job classes get a ``class`` label of their own: the busiest ``limit`` ones of the ledger
    (``update``, from each refresh of the ledger's figures) and, while fewer are known, each new
    class as it comes, so that a young ledger's classes are named at once. The rest are ``other``.

    Read on the writer's thread, updated on another: the set is replaced, never changed in place.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._kept: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def update(self, counts: Mapping[str, int]) -> None:
        """Keep, from now on, the busiest classes of ``counts`` (jobs per class)."""
        self._kept = busiest(counts, self.limit)

    def label(self, job_class: str) -> str:
        """The label of ``job_class``: its name when kept (or admitted now), else ``other``."""
        kept = self._kept
        if job_class in kept:
            return job_class
        if len(kept) >= self.limit:
            return OTHER_CLASS
        with self._lock:
            if len(self._kept) < self.limit:
                self._kept = self._kept | {job_class}
        return job_class if job_class in self._kept else OTHER_CLASS


class InstrumentFamilies:
    """The process's counters, histograms and gauges, registered once in ``registry``; every
    series carries the ``app`` it counts for (``for_app`` gives one app's)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "supervisor_reports_received",
            "Valid reports handed to the writer, by kind (stored, or refused with 503).",
            ["app", "kind"],
            registry=registry,
        )
        self.refused = Counter(
            "supervisor_reports_refused",
            "Reports answered 503 and not stored, by reason: overloaded, timeout, database, stopping.",
            ["app", "reason"],
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "supervisor_group_commit_seconds",
            "Seconds each group-commit transaction of reports took, from its first statement to its commit.",
            ["app"],
            buckets=COMMIT_BUCKETS,
            registry=registry,
        )
        self.queue = Gauge(
            "supervisor_ingest_queue_reports",
            "Reports waiting for the writer (a report is refused with 503 past the limit).",
            ["app"],
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.queue_limit = Gauge(
            "supervisor_ingest_queue_limit",
            "SUPERVISOR_INGEST_QUEUE_LIMIT: the most reports the writer lets wait (per process).",
            ["app"],
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.durations = Histogram(
            "supervisor_job_duration_seconds",
            "Started to complete, of each run a report stored here completed, from the ledger's "
            "times of both reports; by class (the busiest SUPERVISOR_METRICS_MAX_CLASSES, else other).",
            ["app", "class"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.failures = Counter(
            "supervisor_job_failures",
            "Runs that raised (failed reports stored here), by class (as supervisor_job_duration_seconds).",
            ["app", "class"],
            registry=registry,
        )
        self.recovered = Counter(
            "supervisor_recovered_jobs",
            "Lost jobs automatic recovery pushed again (SUPERVISOR_AUTO_RECOVER).",
            ["app"],
            registry=registry,
        )
        self.quarantined = Counter(
            "supervisor_quarantined_jobs",
            "Jobs automatic recovery sent to Sidekiq's Dead set after SUPERVISOR_RECOVER_MAX_ATTEMPTS.",
            ["app"],
            registry=registry,
        )

    def for_app(self, app: str, classes: ClassLabels) -> Instruments:
        """What one app's writer and recoverer count with; ``classes`` names its job classes."""
        return Instruments(self, app, classes)


class Instruments:
    """One app's series of the process's instruments (``InstrumentFamilies.for_app``)."""

    def __init__(self, families: InstrumentFamilies, app: str, classes: ClassLabels) -> None:
        self.app = app
        self.classes = classes
        self._families = families
        self.commit_seconds = families.commit_seconds.labels(app)
        self.queue = families.queue.labels(app)
        self.queue_limit = families.queue_limit.labels(app)
        self.recovered = families.recovered.labels(app)
        self.quarantined = families.quarantined.labels(app)
        # Every series of a fixed label set exists from the start (at 0), so that rate() and
        # increase() see the first report or refusal; children looked up once, off the hot path.
        self._received = {kind: families.received.labels(app, kind.value) for kind in REPORTED}
        self._refused = {reason: families.refused.labels(app, reason.value) for reason in Refusal}

    @classmethod
    def unobserved(cls) -> Instruments:
        """Instruments in a registry of their own, for a writer or recoverer no one scrapes."""
        return InstrumentFamilies(CollectorRegistry()).for_app(DEFAULT_APP, ClassLabels(0))

    def reports_received(self, reports: Sequence[Report]) -> None:
        """Count valid reports as they reach the writer."""
        if len(reports) == 1:
            self._received[reports[0].kind].inc()
            return
        for kind, count in Tally(report.kind for report in reports).items():
            self._received[kind].inc(count)

    def reports_refused(self, count: int, reason: Refusal) -> None:
        """Count reports answered 503."""
        self._refused[reason].inc(count)

    def reports_stored(self, reports: Sequence[Report], results: Sequence[WriteResult]) -> None:
        """Count the failures and observe the runs that a committed batch of reports told of."""
        observed: set[str] = set()
        for report, result in zip(reports, results, strict=True):
            job = result.job
            if job is None or not result.fresh or result.before is None:
                continue  # a resend, or a report about a restarted original
            if report.kind is EventKind.FAILED:
                self._families.failures.labels(self.app, self.classes.label(job.job_class)).inc()
            if job.jid in observed:
                continue  # the batch's first fresh report of a job sees its whole change
            observed.add(job.jid)
            micros = completed_run(result.before, job.timeline)
            if micros is not None:
                seconds = micros / 1_000_000
                self._families.durations.labels(self.app, self.classes.label(job.job_class)).observe(seconds)
