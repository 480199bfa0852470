"""Sidekiq's own figures for GET /metrics, read from its Redis on each scrape (a few round trips).

Named as sidekiq-prometheus-exporter names them, so dashboards and rules written for it work on
these too. Every instance reads the same Redis: across instances, take ``max``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from sidekiq_supervisor.services.sidekiq_monitor import QueueSummary, SidekiqMonitor, Stats


@dataclass(frozen=True, slots=True)
class SidekiqFigures:
    """Sidekiq's summary, its queues, and the threads of its live processes."""

    stats: Stats
    queues: tuple[QueueSummary, ...]
    workers: int


def read_sidekiq_figures(monitor: SidekiqMonitor) -> SidekiqFigures:
    """Read them (on a worker thread); ``SidekiqUnavailable`` when Redis cannot be read."""
    stats = monitor.stats()
    queues = monitor.queues()
    workers = sum(process.concurrency for process in monitor.processes())
    return SidekiqFigures(stats, queues, workers)


def sidekiq_families(figures: SidekiqFigures) -> Iterator[Metric]:
    """The figures as sidekiq-prometheus-exporter's metric families."""
    stats = figures.stats
    processed, failed = stats.processed, stats.failed
    yield CounterMetricFamily("sidekiq_processed_jobs", "The total number of processed jobs.", processed)
    yield CounterMetricFamily("sidekiq_failed_jobs", "The total number of failed jobs.", failed)
    gauges = {
        "sidekiq_workers": ("The number of workers across all the processes.", figures.workers),
        "sidekiq_processes": ("The number of processes.", stats.processes),
        "sidekiq_busy_workers": ("The number of workers performing the job.", stats.busy),
        "sidekiq_enqueued_jobs": ("The number of enqueued jobs.", stats.enqueued),
        "sidekiq_scheduled_jobs": ("The number of jobs scheduled for a future execution.", stats.scheduled),
        "sidekiq_retry_jobs": ("The number of jobs scheduled for the next try.", stats.retries),
        "sidekiq_dead_jobs": ("The number of jobs being dead.", stats.dead),
    }
    for name, (documentation, value) in gauges.items():
        yield GaugeMetricFamily(name, documentation, value)
    latency = GaugeMetricFamily(
        "sidekiq_queue_latency_seconds",
        "The number of seconds between oldest job being pushed to the queue and current time.",
        labels=["name"],
    )
    size = GaugeMetricFamily(
        "sidekiq_queue_enqueued_jobs", "The number of enqueued jobs in the queue.", labels=["name"]
    )
    for queue in figures.queues:
        latency.add_metric([queue.name], queue.latency)
        size.add_metric([queue.name], queue.size)
    yield latency
    yield size
