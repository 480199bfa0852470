"""The API token with the seed's middlewares, as they are written (``Faraday.post(url, hash)``).

Debian's Faraday 1.x sends no ``Authorization`` for credentials in the URL, so a token there is
silently refused. What works, and the README says: one line in an initializer that gives
Faraday's default connection the header.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import httpx2
import pytest

from tests.live_service import running_service

# Real Sidekiq processes (and the service as a process): not in the fast lane.
pytestmark = pytest.mark.e2e

TOKEN = "s3cret-token"
SEED_POST = """
require "faraday"
require "json"
{setup}
Faraday.post("#{{ENV.fetch("SIDEKIQ_SUPERVISOR_HOST")}}/api/v1/jobs", {{
  job_id: ENV.fetch("JID"), arguments: [1].to_json, job_class: "HardWorker", queue: "default"
}})
"""
INITIALIZER = (
    'Faraday.default_connection_options = { headers: { "Authorization" => "Bearer ' + TOKEN + '" } }'
)


@pytest.fixture
def service(tmp_path):
    if shutil.which("ruby") is None:
        pytest.skip("needs Debian's ruby and ruby-faraday")
    with running_service(
        f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path, SUPERVISOR_API_TOKEN=TOKEN
    ) as running:
        yield running


def seed_post(service, jid: str, host: str, setup: str = "") -> None:
    env = {**os.environ, "SIDEKIQ_SUPERVISOR_HOST": host, "JID": jid, "http_proxy": "", "HTTP_PROXY": ""}
    done = subprocess.run(
        ["ruby", "-e", SEED_POST.format(setup=setup)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def stored(service, jid: str) -> bool:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return httpx2.get(f"{service.url}/api/v1/jobs/{jid}", headers=headers, trust_env=False).status_code == 200


def test_the_documented_initializer_authenticates_the_seeds_faraday_posts(service):
    seed_post(service, "with-initializer", service.url, INITIALIZER)

    assert stored(service, "with-initializer")


def test_a_token_in_the_url_is_not_sent_by_faraday_so_the_readme_does_not_offer_it(service):
    host = service.url.replace("http://", f"http://user:{TOKEN}@")
    seed_post(service, "token-in-url", host)

    assert not stored(service, "token-in-url")
