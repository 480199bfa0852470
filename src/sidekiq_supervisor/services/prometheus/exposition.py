"""GET /metrics's answer, in Prometheus' text format: this process's instruments (under ``serve
--workers N``, every worker's, added up) and the figures of the moment, as a prometheus_client
collector yields them: the ledger's (from ``ledger_figures``), Sidekiq's (from its Redis) and the
health of both. A scrape never fails for want of either: it says which is down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
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
        build = GaugeMetricFamily("supervisor_build_info", "This sidekiq-supervisor.", labels=["version"])
        build.add_metric([__version__], 1)
        yield build
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


class _Together:
    """Several collectors as one, for ``generate_latest``."""

    def __init__(self, *collectors: Collector) -> None:
        self._collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self._collectors:
            yield from collector.collect()


class Exporter:
    """Answers scrapes: ``process`` holds the instruments (this process's registry, or with several
    workers the collector of all their files), the rest is read at scrape time."""

    def __init__(
        self,
        process: Collector,
        ledger: LedgerFiguresCache,
        monitor: SidekiqMonitor,
        *,
        redis_configured: bool,
        stuck_after_seconds: float,
    ) -> None:
        self._process = process
        self.ledger = ledger
        self._monitor = monitor
        self._redis_configured = redis_configured
        self._stuck_after_seconds = stuck_after_seconds

    async def scrape(self) -> bytes:
        """The text of one scrape."""
        reading = await self.ledger.current()
        return await asyncio.to_thread(self._answer, reading)  # one trip off the loop

    async def answered(self) -> None:
        """Once a scrape's answer is sent: start the next reading of the ledger if it is stale (a
        reading running while the answer goes out would compete with it for the interpreter)."""
        self.ledger.refresh_if_stale()

    def _answer(self, reading: Reading) -> bytes:
        """Read Sidekiq's Redis, then write the text (on a worker thread)."""
        sidekiq = None
        if self._redis_configured:
            with contextlib.suppress(SidekiqUnavailable):
                sidekiq = read_sidekiq_figures(self._monitor)
        moment = Moment(reading, sidekiq, self._redis_configured, now_micros())
        scraped = ScrapeCollector(moment, stuck_after_seconds=self._stuck_after_seconds)
        return generate_latest(_Together(self._process, scraped))
