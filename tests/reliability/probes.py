"""Single timed requests that must end in a clear JSON answer, whatever the outage."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2


@dataclass(frozen=True, slots=True)
class Probe:
    """One request's answer (``status`` None: none came within the client's timeout)."""

    what: str
    status: int | None
    seconds: float
    body: Any = None
    retry_after: str | None = None

    def is_json_error(self, status: int) -> bool:
        """Whether the answer is ``status`` with a JSON object that says what went wrong."""
        return self.status == status and isinstance(self.body, dict) and bool(self.body.get("error"))


def probe(client: httpx2.Client, method: str, path: str, **kw: Any) -> Probe:
    """Send one request and time it; a non-JSON body is kept as text."""
    what = f"{method} {path}"
    start = time.monotonic()
    try:
        response = client.request(method, path, **kw)
    except httpx2.HTTPError:
        return Probe(what, None, time.monotonic() - start)
    seconds = time.monotonic() - start
    try:
        body = response.json()
    except ValueError:
        body = response.text[:300]
    return Probe(what, response.status_code, seconds, body, response.headers.get("retry-after"))


def concurrently(*calls: Callable[[], Probe]) -> list[Probe]:
    """Run the probes at once (each on its own thread) and return them in order."""
    results: list[Probe | None] = [None] * len(calls)

    def run(index: int) -> None:
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
        time.sleep(0.05)  # a set order of arrival, still all in flight together
    for thread in threads:
        thread.join()
    return [result for result in results if result is not None]
