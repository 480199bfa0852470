"""Schemathesis against /openapi.json of a live service: no 5xx, and every answer as published.

The generated requests cover every operation (ingest, reads, liveness, restarts), valid and
invalid. Checked: no server error, only documented status codes, the documented content type,
and the documented response schema. Left out on purpose: the batch route's per-item refusals
inside a 200 (by design), ``arguments`` being JSON text in a string (a schema cannot say so),
and the Allow header of 405s. Generated headers that frame the message itself
(``Content-Length``, ``Transfer-Encoding``, ``Host``) are the HTTP client's to set, not the
API's: a garbled one is refused by the server's HTTP parser with a bare 400 before any route
sees the request (RFC 9112 asks for exactly that), so they are taken out of each case.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import redis_test_url
from tests.reliability.service import ServiceProcess

# Reliability: fuzzes every operation of the service, run as a process.
pytestmark = [pytest.mark.slow, pytest.mark.e2e]

# Small per operation: 13 operations, each example one HTTP round trip.
EXAMPLES_PER_OPERATION = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
FRAMING_HEADERS = {"content-length", "transfer-encoding", "host"}


@pytest.fixture(scope="module")
def fuzzed_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One service for the whole fuzz run, on SQLite and the tests' Redis database."""
    workdir: Path = tmp_path_factory.mktemp("fuzz")
    service = ServiceProcess(f"sqlite:///{workdir / 'ledger.db'}", workdir, REDIS_URL=redis_test_url())
    service.start()
    try:
        yield service
    finally:
        service.stop()
        redis.Redis.from_url(redis_test_url()).flushdb()  # restarts pushed jobs there


@pytest.fixture(scope="module")
def api_schema(fuzzed_service: ServiceProcess) -> schemathesis.BaseSchema:
    """The live service's published schema."""
    return schemathesis.openapi.from_url(f"{fuzzed_service.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


# Generous: the examples of one operation on a loaded 2-core machine (a bound, not a measure).
@pytest.mark.timeout(300)
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_answers_as_published(
    case: schemathesis.Case, fuzzed_service: ServiceProcess
) -> None:
    for name in [name for name in case.headers or {} if name.lower() in FRAMING_HEADERS]:
        del case.headers[name]
    case.call_and_validate(base_url=fuzzed_service.url, checks=CHECKS, timeout=60)
