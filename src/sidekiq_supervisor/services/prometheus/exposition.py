"""GET /metrics's answer, in Prometheus' text format: this process's instruments (under ``serve
--workers N``, every worker's, added up) and the figures of the moment, as a prometheus_client
collector yields them: each app's ledger's (from ``ledger_figures``), its Sidekiq's (from its
Redis) and the health of both. Every series but the build's carries an ``app`` label. A scrape
never fails for want of a database or a Redis: it says which is down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from enum import StrEnum
from typing import NamedTuple, TypeVar

from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sidekiq_supervisor import __version__
from sidekiq_supervisor.clock import now_micros
from sidekiq_supervisor.domain.figures import oldest_age_seconds, started_before
from sidekiq_supervisor.domain.model import Micros
from sidekiq_supervisor.services.liveness import SidekiqUnavailable
from sidekiq_supervisor.services.prometheus.ledger_figures import LedgerFigures, LedgerFiguresCache, Reading
from sidekiq_supervisor.services.prometheus.sidekiq_figures import (
    SidekiqFigures,
    read_sidekiq_figures,
    sidekiq_families,
)
from sidekiq_supervisor.services.sidekiq_monitor import SidekiqMonitor

# The classic text format, which every Prometheus reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Key = TypeVar("Key", bound=StrEnum)


class Moment(NamedTuple):
    """What one scrape read: the ledger's figures, Sidekiq's (None when Redis could not be read)."""

    ledger: Reading
    sidekiq: SidekiqFigures | None
    redis_configured: bool
    now: Micros


class ScrapeCollector:
    """The figures of one scrape as metric families (a prometheus_client ``Collector``)."""

    def __init__(self, moment: Moment, *, stuck_after_seconds: float) -> None:
        self._moment = moment
        self._stuck_after = round(stuck_after_seconds * 1_000_000)

    def collect(self) -> Iterator[Metric]:
        """Health first, then what could be read."""
        moment = self._moment
        yield _gauge(
            "supervisor_database_up",
            "1 when the ledger's database answered the last reading of its figures, else 0.",
            moment.ledger.database_up,
        )
        if moment.redis_configured:
            yield _gauge(
                "supervisor_redis_up",
                "1 when Sidekiq's Redis answered this scrape, else 0.",
                moment.sidekiq is not None,
            )
        if moment.ledger.figures is not None:
            yield from self._ledger(moment.ledger.figures)
        if moment.sidekiq is not None:
            yield from sidekiq_families(moment.sidekiq)

    def _ledger(self, figures: LedgerFigures) -> Iterator[Metric]:
        now = self._moment.now
        yield _gauge_by(
            "supervisor_ledger_jobs",
            "Jobs in the ledger by status: queued, started, complete.",
            "status",
            figures.jobs,
        )
        yield _gauge(
            "supervisor_oldest_uncompleted_job_age_seconds",
            "Seconds since the latest start of the oldest uncompleted job (0 with none).",
            oldest_age_seconds(figures.starts, now),
        )
        yield _gauge(
            "supervisor_stuck_jobs",
            "Uncompleted jobs started more than SUPERVISOR_UNCOMPLETED_ALERT_MINUTES ago.",
            started_before(figures.starts, now - self._stuck_after),
        )
        if figures.liveness is not None:
            yield _gauge_by(
                "supervisor_uncompleted_jobs",
                "Uncompleted jobs by where they stand in Sidekiq: running, retrying, orphaned, unknown.",
                "liveness",
                figures.liveness,
            )
        yield _gauge(
            "supervisor_ledger_figures_age_seconds",
            "How old the reading of the ledger behind the supervisor_ledger_*, *_jobs figures is.",
            max(0.0, now / 1_000_000 - figures.read_at),
        )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    """A gauge of one value (``True`` and ``False`` are 1 and 0)."""
    return GaugeMetricFamily(name, documentation, value=float(value))


def _gauge_by(name: str, documentation: str, label: str, counts: Mapping[Key, int]) -> GaugeMetricFamily:
    """A gauge with one series per key of ``counts``, labelled ``label``."""
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, count in counts.items():
        family.add_metric([key.value], count)
    return family


class Exporter:
    """One app's figures for a scrape: its ledger's (read in the background, kept ``max_age``), and
    its Sidekiq's, read from its Redis at each scrape."""

    def __init__(
        self,
        app: str,
        ledger: LedgerFiguresCache,
        monitor: SidekiqMonitor,
        *,
        redis_configured: bool,
        stuck_after_seconds: float,
    ) -> None:
        self.app = app
        self.ledger = ledger
        self._monitor = monitor
        self._redis_configured = redis_configured
        self._stuck_after_seconds = stuck_after_seconds

    def read_sidekiq(self) -> SidekiqFigures | None:
        """Sidekiq's figures from the app's Redis, or None when it has none or it cannot be read
        (a few round trips: on a worker thread)."""
        if not self._redis_configured:
            return None
        with contextlib.suppress(SidekiqUnavailable):
            return read_sidekiq_figures(self._monitor)
        return None

    def families(self, reading: Reading, sidekiq: SidekiqFigures | None) -> Iterator[Metric]:
        """The app's metric families, labelled with its name."""
        moment = Moment(reading, sidekiq, self._redis_configured, now_micros())
        scraped = ScrapeCollector(moment, stuck_after_seconds=self._stuck_after_seconds)
        return _labelled(scraped.collect(), self.app)


class Exposition:
    """Answers scrapes: ``process`` holds the instruments (this process's registry, or with several
    workers the collector of all their files), each app's ``Exporter`` the rest."""

    def __init__(self, process: Collector, exporters: Sequence[Exporter]) -> None:
        self._process = process
        self._exporters = {exporter.app: exporter for exporter in exporters}

    async def scrape(self, apps: Collection[str]) -> bytes:
        """The text of one scrape of ``apps`` (names of this process's apps)."""
        exporters = [self._exporters[app] for app in apps]
        readings = await asyncio.gather(*(exporter.ledger.current() for exporter in exporters))
        # Every app's Redis at once: a scrape of many apps waits for the slowest, not their sum
        # (a silent Redis holds its read until the client's socket timeout).
        figures = await asyncio.gather(*(asyncio.to_thread(exporter.read_sidekiq) for exporter in exporters))
        moments = list(zip(exporters, readings, figures, strict=True))
        every = self._exporters.keys() == set(apps)
        return await asyncio.to_thread(self._answer, moments, None if every else frozenset(apps))

    async def answered(self, apps: Collection[str]) -> None:
        """Once a scrape's answer is sent: start the next reading of each ledger that is stale (a
        reading running while the answer goes out would compete with it for the interpreter)."""
        for app in apps:
            self._exporters[app].ledger.refresh_if_stale()

    async def close(self) -> None:
        """Stop every ledger reading."""
        for exporter in self._exporters.values():
            await exporter.ledger.close()

    def _answer(
        self, moments: Sequence[tuple[Exporter, Reading, SidekiqFigures | None]], apps: frozenset[str] | None
    ) -> bytes:
        """The text of the instruments (of ``apps`` only, unless None: every app's) and each
        app's figures (on a worker thread)."""
        build = GaugeMetricFamily("supervisor_build_info", "This sidekiq-supervisor.", labels=["version"])
        build.add_metric([__version__], 1)
        families: list[Metric] = [build]
        process = self._process.collect()
        families += process if apps is None else _only_apps(process, apps)
        for exporter, reading, sidekiq in moments:
            families += exporter.families(reading, sidekiq)
        return generate_latest(_Merged(families))


def _labelled(families: Iterable[Metric], app: str) -> Iterator[Metric]:
    """``families`` with ``app`` as the first label of every sample."""
    for family in families:
        labelled = Metric(family.name, family.documentation, family.type, family.unit)
        labelled.samples = [
            sample._replace(labels={"app": app, **sample.labels}) for sample in family.samples
        ]
        yield labelled


def _only_apps(families: Iterable[Metric], apps: frozenset[str]) -> Iterator[Metric]:
    """The samples of ``families`` that count for one of ``apps``."""
    for family in families:
        kept = Metric(family.name, family.documentation, family.type, family.unit)
        kept.samples = [sample for sample in family.samples if sample.labels.get("app") in apps]
        yield kept


class _Merged:
    """Families of the same name as one (the text format wants each metric's samples together)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        by_name: dict[str, Metric] = {}
        for family in self._families:
            if family.name in by_name:
                by_name[family.name].samples.extend(family.samples)
            else:
                by_name[family.name] = family
        yield from by_name.values()
