"""Small helpers shared by the API tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def job(client, jid: str) -> dict[str, Any]:
    """The job document, asserting it exists."""
    response = client.get(f"/api/v1/jobs/{jid}")
    assert response.status_code == 200, response.text
    return response.json()


def total(client) -> int:
    """How many jobs the ledger holds."""
    return client.get("/api/v1/stats").json()["jobs"]["total"]


def iso(seconds: float | None) -> str | None:
    """Epoch seconds as the API writes times."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()
