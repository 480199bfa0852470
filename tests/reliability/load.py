"""A load generator that remembers exactly which reports the service acknowledged.

Threads send the seed's form-encoded reports (``POST /api/v1/jobs``, ``…/started``,
``…/complete``) and the gem's JSON batches (``POST /api/v1/events``) over keep-alive connections
until told to stop. Every request's outcome is kept: its status (``None`` when no answer came),
when it was sent and answered, and the reports it carried, so that a test can check afterwards
that every report answered with a 2xx is in the store.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx2

from sidekiq_supervisor.domain.model import micros_from_seconds

ARGUMENTS = '[1234,"customer-42@example.com",{"plan":"pro"}]'
KINDS = ("queued", "started", "complete")


@dataclass(frozen=True, slots=True)
class Sent:
    """One report: ``at`` is the event time the service stores, or None for its receive time."""

    jid: str
    kind: str
    at: int | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request and what became of it (``status`` None: no answer, see ``error``)."""

    route: str
    status: int | None
    sent: float
    answered: float
    reports: tuple[Sent, ...]
    retry_after: str | None = None
    content_type: str | None = None
    error: str | None = None

    @property
    def seconds(self) -> float:
        """How long the request took."""
        return self.answered - self.sent

    @property
    def acknowledged(self) -> bool:
        """Whether the service said it stored the reports."""
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Load:
    """``threads`` senders against ``url``; use as a context manager or call start/stop."""

    url: str
    threads: int = 4
    batch_size: int = 30
    timeout: float = 30.0
    # Seconds each sender sleeps between requests: 0 is as fast as the service answers.
    pause: float = 0.0
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._in_flight = 0

    def start(self) -> Load:
        """Start the senders."""
        for index in range(self.threads):
            worker = threading.Thread(target=self._send_loop, args=(index,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> None:
        """Stop the senders; each finishes (or times out) its current request first."""
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=self.timeout + 5)

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def acknowledged(self) -> list[Sent]:
        """Every report of every 2xx answer."""
        return [report for outcome in self.outcomes if outcome.acknowledged for report in outcome.reports]

    def statuses(self) -> dict[int | None, int]:
        """How many requests got each status (None: no answer)."""
        counts: dict[int | None, int] = {}
        for outcome in self.outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        return counts

    def in_flight(self) -> int:
        """Requests sent and not answered yet."""
        with self._lock:
            return self._in_flight

    def _record(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)

    def _send_loop(self, index: int) -> None:
        rng = random.Random(f"{self.run_id}-{index}")
        job = 0
        with httpx2.Client(base_url=self.url, timeout=self.timeout, trust_env=False) as client:
            while not self._stop.is_set():
                prefix = f"{self.run_id}-{index}-{job}"
                if job % 2:
                    self._send_batch(client, prefix, rng)
                else:
                    self._send_seed_job(client, prefix, with_at=job % 4 == 0)
                job += 1

    def _send_seed_job(self, client: httpx2.Client, jid: str, *, with_at: bool) -> None:
        """One job's three reports, form-encoded as the seed's middlewares send them."""
        base = time.time()
        for step, kind in enumerate(KINDS):
            if self._stop.is_set():
                return
            form = {"arguments": ARGUMENTS, "job_class": "HardWorker", "queue": "default"}
            at = None
            if with_at:
                seconds = base + step / 1000
                form["at"] = repr(seconds)
                at = micros_from_seconds(seconds)
            if kind == "queued":
                path, form["job_id"] = "/api/v1/jobs", jid
            else:
                path = f"/api/v1/jobs/{jid}/{kind}"
            self._post(client, "form", path, (Sent(jid, kind, at),), data=form)
            time.sleep(self.pause)

    def _send_batch(self, client: httpx2.Client, prefix: str, rng: random.Random) -> None:
        """A JSON batch, as the gem sends it: several jobs' reports, shuffled, each with ``at``."""
        base = time.time()
        items, reports = [], []
        for n in range(self.batch_size):
            jid, kind = f"{prefix}-{n // 3}", KINDS[n % 3]
            seconds = base + (n % 3) / 1000
            items.append(
                {"event": kind, "job_id": jid, "arguments": ARGUMENTS, "job_class": "Batch", "at": seconds}
            )
            reports.append(Sent(jid, kind, micros_from_seconds(seconds)))
        order = list(range(len(items)))
        rng.shuffle(order)  # arrival order must not matter: the store folds by event time
        body = {"events": [items[i] for i in order]}
        headers = {"Prefer": "return=minimal"}
        self._post(client, "batch", "/api/v1/events", tuple(reports), json=body, headers=headers)
        time.sleep(self.pause)

    def _post(
        self, client: httpx2.Client, route: str, path: str, reports: tuple[Sent, ...], **kw: object
    ) -> None:
        sent = time.monotonic()
        with self._lock:
            self._in_flight += 1
        try:
            response = client.post(path, **kw)  # type: ignore[arg-type]
        except httpx2.HTTPError as exc:
            self._record(Outcome(route, None, sent, time.monotonic(), reports, error=type(exc).__name__))
            return
        finally:
            with self._lock:
                self._in_flight -= 1
        answered = time.monotonic()
        if route == "batch" and response.status_code < 300 and response.json().get("refused"):
            # A valid batch has no refused item; count it as a failure the test will show.
            self._record(Outcome(route, 422, sent, answered, reports, error=response.text[:200]))
            return
        self._record(
            Outcome(
                route,
                response.status_code,
                sent,
                answered,
                reports,
                retry_after=response.headers.get("retry-after"),
                content_type=response.headers.get("content-type"),
            )
        )
