"""Realistic ledger data for the dashboard tests, and the figures the pages must show for it.

The figures are computed here from the events sent, independently of the service's SQL.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

XSS_CLASS = '<script>alert("class")</script>'
XSS_ARGUMENT = '<script>alert("args")</script>'
XSS_ERROR = '<img src=x onerror=alert("error")><script>alert("error")</script>'
XSS_WORKER = '<script>alert("worker")</script>'
XSS_JID = "evil000000000000000000001"
# Per class: (jobs, shortest and longest run in seconds).
CLASSES = {
    "InvoiceMailer": (40, 0.05, 0.9),
    "ImageResizer": (25, 1.0, 6.0),
    "ReportBuilder": (12, 20.0, 120.0),
}


def nearest_rank(sorted_values: list[float], percent: int) -> float:
    """The nearest-rank percentile, written out independently of the service's code."""
    return sorted_values[max(1, math.ceil(percent * len(sorted_values) / 100)) - 1]


@dataclass
class Dataset:
    """The events to send and what they add up to."""

    now: float
    events: list[dict[str, Any]] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)
    runs: dict[str, list[float]] = field(default_factory=dict)
    stuck: list[str] = field(default_factory=list)

    def add(self, event: str, jid: str, job_class: str, at: float, arguments: Any, **extra: Any) -> None:
        """One report; the job's status follows the latest of its start and completion."""
        self.events.append(
            {"event": event, "job_id": jid, "job_class": job_class, "queue": "default",
             "arguments": arguments, "at": at, **extra}
        )  # fmt: skip
        if event != "failed":
            self.statuses[jid] = event

    def counts(self) -> Counter[str]:
        """Jobs per status."""
        return Counter(self.statuses.values())

    def kind_totals(self) -> Counter[str]:
        """Events per kind (all within the last three hours)."""
        return Counter(event["event"] for event in self.events)

    def p95(self, job_class: str) -> float:
        """The started→complete p95 of a class, in seconds."""
        return nearest_rank(sorted(self.runs[job_class]), 95)


def build(now: float | None = None, seed: int = 7) -> Dataset:
    """Completed jobs of three classes, stuck and fresh uncompleted jobs, queued jobs, and a job
    whose class, arguments, error and worker are all script injections."""
    rng = random.Random(seed)
    data = Dataset(now=now or time.time())
    serial = 0
    for job_class, (count, shortest, longest) in CLASSES.items():
        data.runs[job_class] = []
        for _ in range(count):
            serial += 1
            jid = f"{serial:024x}"
            queued = data.now - rng.uniform(300, 150 * 60)
            started = queued + rng.uniform(0.1, 3)
            run = round(rng.uniform(shortest, longest), 3)
            arguments = [serial, f"customer-{serial % 7}@example.com"]
            data.add("queued", jid, job_class, queued, arguments)
            data.add(
                "started", jid, job_class, started, arguments, worker={"identity": f"web-{serial % 3}:1:abc"}
            )
            data.add("complete", jid, job_class, started + run, arguments)
            data.runs[job_class].append(run)
    for index in range(3):  # uncompleted for 30-50 minutes, no worker identity: restartable
        jid = f"stuck{index:019d}"
        data.add("queued", jid, "ReportBuilder", data.now - 3600, ["tenant-9", index])
        data.add("started", jid, "ReportBuilder", data.now - (30 + 10 * index) * 60, ["tenant-9", index])
        data.stuck.append(jid)
    for index in range(2):  # just started
        data.add("started", f"fresh{index:019d}", "ImageResizer", data.now - 30, [index])
    for index in range(5):
        data.add("queued", f"waiting{index:017d}", "InvoiceMailer", data.now - 20, [index])
    data.add("queued", XSS_JID, XSS_CLASS, data.now - 600, [XSS_ARGUMENT])
    data.add("started", XSS_JID, XSS_CLASS, data.now - 590, [XSS_ARGUMENT], worker={"identity": XSS_WORKER})
    data.add("failed", XSS_JID, XSS_CLASS, data.now - 580, [XSS_ARGUMENT],
             error={"class": "RuntimeError", "message": XSS_ERROR})  # fmt: skip
    data.add("complete", XSS_JID, XSS_CLASS, data.now - 500, [XSS_ARGUMENT])
    data.runs[XSS_CLASS] = [90.0]
    return data


def chunks(events: list[dict[str, Any]], size: int = 200) -> list[dict[str, Any]]:
    """Batch bodies for ``POST /api/v1/events``."""
    return [{"events": events[i : i + size]} for i in range(0, len(events), size)]
