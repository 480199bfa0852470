"""Fixtures of the dashboard's server-side tests: an app filled with the shared dataset."""

from __future__ import annotations

import re

import pytest

from tests.web.pages.dataset import Dataset, build, chunks


def send(client, data: Dataset) -> None:
    """Store the dataset's events through the ingest API."""
    for body in chunks(data.events):
        response = client.post("/api/v1/events", json=body)
        assert response.status_code == 200, response.text


@pytest.fixture
def dataset(client) -> Dataset:
    """The shared dataset, stored in the test's ledger."""
    data = build()
    send(client, data)
    return data


def csrf_of(html: str) -> str:
    """The CSRF token of the page's form."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)
