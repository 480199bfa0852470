"""A job of a set on a page of its own, at Sidekiq's URL (``/sidekiq/retries/<score>-<jid>``), and
Sidekiq's own action URLs and form fields: what they show, and what they do to Redis."""

from __future__ import annotations

import base64
import json
import re
import zlib
from html import unescape

import pytest

from sidekiq_supervisor.web.security import CSRF_COOKIE

SETS = [("/retries", "retry"), ("/scheduled", "schedule"), ("/morgue", "dead")]


def key_of(redis_client, zset: str, index: int = 0) -> tuple[str, str]:
    """The ``<score>-<jid>`` key of a set's member by rank, and the member."""
    member, score = redis_client.zrange(zset, index, index, withscores=True)[0]
    return f"{score!r}-{json.loads(member)['jid']}", member.decode()


def post(loaded, url: str, data: dict) -> str:
    """Post with the CSRF token a page gave; where the answer sends the browser."""
    loaded.client.get("/sidekiq")  # the CSRF cookie, which the form's token must equal
    token = loaded.client.cookies[CSRF_COOKIE]
    response = loaded.client.post(url, data={"csrf_token": token, **data}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.headers["location"]


def failed_job(jid: str, **extra) -> dict:
    return {"class": "ReportJob", "args": [1, {"to": "a@example.com"}], "queue": "reports", "jid": jid,
            "retry": True, "retry_count": 2, "error_class": "Net::ReadTimeout", "created_at": 1.7e9,
            "enqueued_at": 1.7e9, "failed_at": 1.7e9, "retried_at": 1.7e9 + 60, **extra}  # fmt: skip


@pytest.mark.parametrize(("path", "zset"), SETS)
def test_each_listed_job_links_to_its_own_page_which_shows_every_field(loaded, redis_client, path, zset):
    key, member = key_of(redis_client, zset)
    job = json.loads(member)
    listing = loaded.client.get(f"/sidekiq{path}").text
    assert f'href="/sidekiq{path}/{key}"' in listing

    page = loaded.client.get(f"/sidekiq{path}/{key}")
    assert page.status_code == 200
    text = unescape(page.text)
    assert job["jid"] in text and job["queue"] in text
    assert (
        json.dumps(job["args"], separators=(",", ":"), ensure_ascii=False)[1:-1] in text or job["args"] == []
    )
    if zset != "schedule":
        assert job["error_class"] in text and job["error_message"] in text


def test_the_page_shows_the_whole_message_the_backtrace_and_the_extra_keys(loaded, redis_client):
    message = "could not reach the billing service " * 30  # ~1,000 characters, cut on the list
    lines = [f"app/jobs/report_job.rb:{n}:in `perform'" for n in range(1, 40)]
    # As Sidekiq stores it: base64 of deflated JSON (6.x with MIME line breaks, as here).
    packed = base64.encodebytes(zlib.compress(json.dumps(lines).encode())).decode()
    job = failed_job("a1" * 12, error_message=message, error_backtrace=packed, tenant="acme", backtrace=True)
    redis_client.zadd("retry", {json.dumps(job): 1.8e9})
    page = loaded.client.get(f"/sidekiq/retries/{1.8e9!r}-{'a1' * 12}")
    assert page.status_code == 200
    text = unescape(page.text)
    assert message.strip() in text
    backtrace = re.search(r'<pre class="backtrace" id="backtrace">(.*?)</pre>', page.text, re.S)
    assert backtrace and unescape(backtrace.group(1)).split("\n")[:-1] == lines
    extras = re.search(r'<pre class="arguments" id="job-extras">(.*?)</pre>', page.text, re.S)
    assert extras and json.loads(unescape(extras.group(1))) == {"tenant": "acme"}


@pytest.mark.parametrize(
    "stored",
    [
        "not base64 at all!",
        base64.b64encode(b"not deflated").decode(),
        base64.b64encode(zlib.compress(b"{not json")).decode(),
        base64.b64encode(zlib.compress(b"[" + b'"x",' * 400_000 + b'"x"]')).decode(),  # 1.6 MB inflated
        ["an", "old", "array", "backtrace"],
        12,
    ],
    ids=["garbage", "not-deflated", "not-json", "too-large", "array", "number"],
)
def test_a_backtrace_that_cannot_be_read_is_said_so_never_a_server_error(loaded, redis_client, stored):
    redis_client.zadd("dead", {json.dumps(failed_job("b2" * 12, error_backtrace=stored)): 1.8e9})
    page = loaded.client.get(f"/sidekiq/morgue/{1.8e9!r}-{'b2' * 12}")
    assert page.status_code == 200
    trace = unescape(re.search(r'id="backtrace">(.*?)</pre>', page.text, re.S).group(1))
    if isinstance(stored, list):
        assert trace.split("\n")[:-1] == stored
    else:
        assert "the stored backtrace" in trace


@pytest.mark.parametrize("key", ["1795873368.33-nojid", "garbage", "inf-x", "1e999-x", "-"])
def test_a_key_that_names_no_job_goes_back_to_the_list_as_sidekiq_does(loaded, key):
    page = loaded.client.get(f"/sidekiq/retries/{key}", follow_redirects=False)
    assert (page.status_code, page.headers["location"]) == (302, "/sidekiq/retries")


def test_sidekiqs_detail_form_retries_deletes_and_kills(loaded, redis_client):
    (retry_key, retried), (delete_key, deleted), (kill_key, killed) = (
        key_of(redis_client, "retry", i) for i in range(3)
    )
    dead_before = redis_client.zcard("dead")

    assert post(loaded, f"/sidekiq/retries/{retry_key}", {"retry": "Retry now"}).startswith(
        "/sidekiq/retries?done=retry&n=1"
    )
    assert post(loaded, f"/sidekiq/retries/{delete_key}", {"delete": "Delete"}).startswith(
        "/sidekiq/retries?done=delete&n=1"
    )
    assert post(loaded, f"/sidekiq/retries/{kill_key}", {"kill": "Kill"}).startswith(
        "/sidekiq/retries?done=kill&n=1"
    )

    remaining = {m.decode() for m in redis_client.zrange("retry", 0, -1)}
    assert not remaining & {retried, deleted, killed}
    pushed = [json.loads(m) for m in redis_client.lrange(f"queue:{json.loads(retried)['queue']}", 0, -1)]
    assert json.loads(retried)["jid"] in {job["jid"] for job in pushed}
    assert redis_client.zcard("dead") == dead_before + 1
    # A second post finds nothing: the job has gone, and nothing else moves.
    assert post(loaded, f"/sidekiq/retries/{retry_key}", {"retry": "Retry now"}).endswith("n=0")


def test_sidekiqs_list_form_acts_on_the_checked_keys(loaded, redis_client):
    keys = [key_of(redis_client, "schedule", i) for i in range(2)]
    size = redis_client.zcard("schedule")
    where = post(
        loaded, "/sidekiq/scheduled", {"key[]": [k for k, _ in keys], "add_to_queue": "Add to Queue"}
    )
    assert where.startswith("/sidekiq/scheduled?done=enqueue&n=2")
    assert redis_client.zcard("schedule") == size - 2
    # A button the set does not offer (kill on Dead) changes nothing.
    dead_key, _ = key_of(redis_client, "dead")
    assert "done=none" in post(loaded, "/sidekiq/morgue", {"key[]": [dead_key], "kill": "Kill"})


@pytest.mark.parametrize(
    ("url", "zset", "target"),
    [
        ("/sidekiq/retries/all/kill", "retry", "dead"),
        ("/sidekiq/retries/all/delete", "retry", None),
        ("/sidekiq/scheduled/all/add_to_queue", "schedule", "queues"),
        ("/sidekiq/scheduled/all/delete", "schedule", None),
        ("/sidekiq/morgue/all/retry", "dead", "queues"),
        ("/sidekiq/morgue/all/delete", "dead", None),
    ],
)
def test_sidekiqs_bulk_urls_act_on_the_whole_set(loaded, redis_client, url, zset, target):
    size = redis_client.zcard(zset)
    enqueued = sum(redis_client.llen(f"queue:{q.decode()}") for q in redis_client.smembers("queues"))
    dead = redis_client.zcard("dead")
    assert f"n={size}" in post(loaded, url, {})
    assert redis_client.zcard(zset) == 0
    if target == "dead":
        assert redis_client.zcard("dead") == min(dead + size, 10_000)
    if target == "queues":
        now = sum(redis_client.llen(f"queue:{q.decode()}") for q in redis_client.smembers("queues"))
        assert now == enqueued + size


def test_sidekiqs_action_urls_need_the_csrf_token(loaded, redis_client):
    key, _ = key_of(redis_client, "retry")
    size = redis_client.zcard("retry")
    assert loaded.client.post("/sidekiq/retries/all/delete").status_code == 403
    assert loaded.client.post(f"/sidekiq/retries/{key}", data={"delete": "Delete"}).status_code == 403
    assert redis_client.zcard("retry") == size


def test_sidekiqs_queue_forms_delete_one_job_by_its_text_and_clear_the_queue(loaded, redis_client):
    (name, *_rest) = sorted(m.decode() for m in redis_client.smembers("queues"))
    first, *others = [m.decode() for m in redis_client.lrange(f"queue:{name}", 0, -1)]
    where = post(loaded, f"/sidekiq/queues/{name}/delete", {"key_val": first, "delete": "Delete"})
    assert "done=delete&n=1" in where
    assert [m.decode() for m in redis_client.lrange(f"queue:{name}", 0, -1)] == others

    assert f"done=clear&n={len(others)}" in post(loaded, f"/sidekiq/queues/{name}", {"delete": "Delete"})
    assert not redis_client.exists(f"queue:{name}")
    assert name.encode() not in redis_client.smembers("queues")


def test_a_queue_page_takes_sidekiqs_direction_and_count(loaded, redis_client):
    name = max(
        (m.decode() for m in redis_client.smembers("queues")), key=lambda q: redis_client.llen(f"queue:{q}")
    )
    jids = [json.loads(m)["jid"] for m in redis_client.lrange(f"queue:{name}", 0, -1)]
    oldest_first = loaded.client.get(f"/sidekiq/queues/{name}?direction=asc&count=2").text
    newest_first = loaded.client.get(f"/sidekiq/queues/{name}?direction=desc&count=2").text
    shown = lambda html: [jid for jid in jids if jid in html]  # noqa: E731
    assert shown(oldest_first) == jids[-2:] and shown(newest_first) == jids[:2]


def test_busy_shows_only_the_table_asked_for_as_sidekiq_8_does(loaded):
    both = loaded.client.get("/sidekiq/busy").text
    jobs = loaded.client.get("/sidekiq/busy?only=jobs").text
    processes = loaded.client.get("/sidekiq/busy?only=processes").text
    assert 'id="work-count"' in both and "<h2>Processes</h2>" in both
    assert 'id="work-count"' in jobs and "<h2>Processes</h2>" not in jobs
    assert 'id="work-count"' not in processes and "<h2>Processes</h2>" in processes
    assert loaded.client.get("/sidekiq/busy?only=threads").status_code == 422


def test_sidekiqs_busy_form_signals_by_the_button_pressed(loaded, redis_client):
    identity = next(iter(redis_client.smembers("processes"))).decode()
    assert "done=quiet&n=1" in post(loaded, "/sidekiq/busy", {"identity": identity, "quiet": "Quiet"})
    assert redis_client.lrange(f"{identity}-signals", 0, -1) == [b"TSTP"]
    assert "done=stop&n=1" in post(loaded, "/sidekiq/busy", {"stop": "Stop"})  # every process
    assert redis_client.lrange(f"{identity}-signals", 0, -1) == [b"TERM", b"TSTP"]


def test_a_queue_page_numbers_each_job_by_its_place_in_line(loaded, redis_client):
    name = max(
        (m.decode() for m in redis_client.smembers("queues")), key=lambda q: redis_client.llen(f"queue:{q}")
    )
    size = redis_client.llen(f"queue:{name}")

    def places(html: str) -> list[int]:
        return [int(n.replace(",", "")) for n in re.findall(r'class="num position"[^>]*>([\d,]+)<', html)]

    assert places(loaded.client.get(f"/sidekiq/queues/{name}?direction=asc&count=3").text) == [1, 2, 3]
    assert places(loaded.client.get(f"/sidekiq/queues/{name}?count=3").text) == [size, size - 1, size - 2]
    assert places(loaded.client.get(f"/sidekiq/queues/{name}?count=3&page=2").text)[0] == size - 3


def test_head_is_sidekiqs_cheap_health_check(loaded):
    answer = loaded.client.head("/sidekiq")
    assert answer.status_code == 200 and answer.content == b""
