"""``/sidekiq/profiles``: Sidekiq 8's profiles, listed and downloaded; nothing else is readable there.

No profiler (vernier) is installed here, so the profiles are written in Sidekiq 8.1.7's layout
(``Sidekiq::Profiler#call``: a ``profiles`` member scored by its expiry and a hash of that name)."""

from __future__ import annotations

import gzip
import json

PROFILE = {"meta": {"product": "Sidekiq"}, "threads": []}


def write_profile(redis_client, now: float, token: str, jid: str, *, expires_in: float = 86_400) -> str:
    key = f"{token}-{jid}"
    data = gzip.compress(json.dumps(PROFILE).encode())
    fields = {"started_at": int(now) - 60, "jid": jid, "type": "ReportJob", "token": token,
              "size": len(data), "elapsed": 1.25, "data": data}  # fmt: skip
    redis_client.hset(key, mapping=fields)
    redis_client.zadd("profiles", {key: now + expires_in})
    return key


def test_profiles_are_listed_newest_first_and_their_data_downloads(loaded, redis_client):
    now = loaded.dump["captured_at"]
    older = write_profile(redis_client, now, "nightly", "a" * 24, expires_in=3_600)
    newer = write_profile(redis_client, now, "nightly", "b" * 24)
    write_profile(redis_client, now, "stale", "c" * 24, expires_in=-1)  # expired: not shown

    page = loaded.client.get("/sidekiq/profiles").text
    assert page.index(f'data-profile="{newer}"') < page.index(f'data-profile="{older}"')
    assert "stale-" not in page

    download = loaded.client.get(f"/sidekiq/profiles/{newer}/data")
    assert download.status_code == 200
    assert download.headers["content-encoding"] == "gzip"
    assert download.json() == PROFILE  # the client inflates it, as a browser does


def test_the_data_url_reads_only_listed_profiles(loaded, redis_client):
    redis_client.hset("secret-hash", "data", "not a profile")
    answer = loaded.client.get("/sidekiq/profiles/secret-hash/data", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (302, "/sidekiq/profiles")


def test_no_profiles_says_so(loaded):
    page = loaded.client.get("/sidekiq/profiles")
    assert page.status_code == 200 and 'id="no-profiles"' in page.text
