"""Every /sidekiq action changes Redis as the page says; none runs without the CSRF token."""

from __future__ import annotations

import json

import pytest

from tests.sidekiq_fixtures import identity
from tests.web.monitor.conftest import csrf_of, tokens


def act(loaded, page: str, data: dict) -> str:
    """Post a form of ``page`` with the page's CSRF token; the page it redirects to."""
    html = loaded.client.get(page).text
    response = loaded.client.post(page.split("?")[0], data={"csrf_token": csrf_of(html), **data},
                                  follow_redirects=False)  # fmt: skip
    assert response.status_code == 303, response.text
    follow = loaded.client.get(response.headers["location"])
    assert follow.status_code == 200
    return follow.text


def form_of(loaded, page: str) -> dict:
    """The hidden member tokens of a set page, and its CSRF token."""
    html = loaded.client.get(page).text
    return {"m": tokens(html), "back": page}


def queued(redis_client, queue: str) -> list[dict]:
    return [json.loads(m) for m in redis_client.lrange(f"queue:{queue}", 0, -1)]


def members(redis_client, key: str) -> list[str]:
    return [m.decode() for m in redis_client.zrange(key, 0, -1)]


def test_retry_now_on_one_row_moves_it_to_its_queue_with_one_retry_less(loaded, redis_client):
    first = loaded.members("retry")[0]
    job = json.loads(first)
    html = act(loaded, "/sidekiq/retries", {**form_of(loaded, "/sidekiq/retries"), "row": "retry:0"})
    assert first not in members(redis_client, "retry")
    pushed = next(j for j in queued(redis_client, job["queue"]) if j["jid"] == job["jid"])
    assert pushed["retry_count"] == job["retry_count"] - 1
    assert "1 job retried now" in html and job["jid"] not in html.split('id="entries"')[-1]


def test_delete_and_kill_of_one_retry(loaded, redis_client):
    doomed, killed = loaded.members("retry")[:2]
    act(loaded, "/sidekiq/retries", {**form_of(loaded, "/sidekiq/retries"), "row": "delete:0"})
    assert doomed not in members(redis_client, "retry") and doomed not in members(redis_client, "dead")
    act(loaded, "/sidekiq/retries", {**form_of(loaded, "/sidekiq/retries"), "row": "kill:0"})
    assert killed not in members(redis_client, "retry") and killed in members(redis_client, "dead")
    assert redis_client.zcard("dead") == len(loaded.value("dead")) + 1


def test_the_checked_rows_only(loaded, redis_client):
    retries = loaded.members("retry")
    html = act(loaded, "/sidekiq/retries",
               {**form_of(loaded, "/sidekiq/retries"), "action": "retry", "sel": ["0", "2"]})  # fmt: skip
    assert members(redis_client, "retry") == [retries[1]]
    moved = {j["jid"] for j in queued(redis_client, "default")}
    assert {json.loads(retries[0])["jid"], json.loads(retries[2])["jid"]} <= moved
    assert "2 jobs retried now" in html


def test_nothing_checked_changes_nothing(loaded, redis_client):
    html = act(loaded, "/sidekiq/retries", {**form_of(loaded, "/sidekiq/retries"), "action": "delete"})
    assert redis_client.zcard("retry") == len(loaded.value("retry"))
    assert "Nothing was selected" in html


def test_add_to_queue_and_kill_on_scheduled(loaded, redis_client):
    scheduled = loaded.members("schedule")
    first = json.loads(scheduled[0])
    act(loaded, "/sidekiq/scheduled", {**form_of(loaded, "/sidekiq/scheduled"), "row": "enqueue:0"})
    assert first["jid"] in {j["jid"] for j in queued(redis_client, first["queue"])}
    act(loaded, "/sidekiq/scheduled", {**form_of(loaded, "/sidekiq/scheduled"), "row": "kill:0"})
    assert scheduled[1] in members(redis_client, "dead")
    assert members(redis_client, "schedule") == scheduled[2:]


def test_retry_now_and_delete_from_the_dead(loaded, redis_client):
    dead = sorted(loaded.value("dead"), key=lambda pair: -pair[1])  # the page shows the newest first
    act(loaded, "/sidekiq/morgue", {**form_of(loaded, "/sidekiq/morgue"), "row": "retry:0"})
    assert json.loads(dead[0][0])["jid"] in {j["jid"] for j in queued(redis_client, "default")}
    act(loaded, "/sidekiq/morgue", {**form_of(loaded, "/sidekiq/morgue"), "row": "delete:0"})
    assert redis_client.zcard("dead") == 0
    # Kill is not an action of the Dead set: refused, nothing changes.
    redis_client.zadd("dead", {dead[1][0]: dead[1][1]})
    act(loaded, "/sidekiq/morgue", {**form_of(loaded, "/sidekiq/morgue"), "row": "kill:0"})
    assert redis_client.zcard("dead") == 1


@pytest.mark.parametrize(("page", "key", "action"), [
    ("/sidekiq/retries", "retry", "retry"), ("/sidekiq/retries", "retry", "kill"),
    ("/sidekiq/scheduled", "schedule", "enqueue"), ("/sidekiq/scheduled", "schedule", "delete"),
    ("/sidekiq/morgue", "dead", "retry"), ("/sidekiq/morgue", "dead", "delete"),
])  # fmt: skip
def test_all_of_a_set(loaded, redis_client, page, key, action):
    before = {json.loads(m)["jid"] for m in loaded.members(key)}
    enqueued_before = sum(redis_client.llen(f"queue:{q.decode()}") for q in redis_client.smembers("queues"))
    dead_before = redis_client.zcard("dead")
    html = act(loaded, page, {"all": action})
    assert redis_client.zcard(key) == 0
    enqueued = sum(redis_client.llen(f"queue:{q.decode()}") for q in redis_client.smembers("queues"))
    if action in ("retry", "enqueue"):
        assert enqueued == enqueued_before + len(before)
    if action == "kill":
        assert redis_client.zcard("dead") == dead_before + len(before)
    assert f"{len(before)} jobs" in html


def test_delete_one_queued_job_and_clear_a_queue_after_confirming(loaded, redis_client):
    reports = loaded.value("queue:reports")
    html = loaded.client.get("/sidekiq/queues/reports").text
    token = tokens_of_queue(html)[0]
    data = {"csrf_token": csrf_of(html), "member": token}
    response = loaded.client.post("/sidekiq/queues/reports/delete", data=data, follow_redirects=False)
    assert response.status_code == 303
    assert [m.decode() for m in redis_client.lrange("queue:reports", 0, -1)] == reports[1:]
    confirm = loaded.client.get("/sidekiq/queues/reports/clear").text
    assert 'id="clear-size">13<' in confirm and redis_client.llen("queue:reports") == 13
    html = act(loaded, "/sidekiq/queues/reports/clear", {})
    assert not redis_client.exists("queue:reports") and b"reports" not in redis_client.smembers("queues")
    assert "13 jobs deleted: the queue is cleared." in html


def tokens_of_queue(html: str) -> list[str]:
    import re

    return re.findall(r'name="member" value="([^"]+)"', html)


@pytest.mark.parametrize(("action", "signal"), [("quiet", b"TSTP"), ("stop", b"TERM")])
def test_quiet_and_stop_one_process_or_all(loaded, redis_client, action, signal):
    process = identity(loaded.dump)
    html = act(loaded, "/sidekiq/busy", {"action": action, "identity": process})
    assert redis_client.lrange(f"{process}-signals", 0, -1) == [signal]
    assert f"{action.capitalize()} sent to 1 process." in html
    act(loaded, "/sidekiq/busy", {"action": f"{action}_all"})
    assert redis_client.lrange(f"{process}-signals", 0, -1) == [signal, signal]
    act(loaded, "/sidekiq/busy", {"action": action, "identity": "nobody:1:abc"})
    assert not redis_client.exists("nobody:1:abc-signals")


@pytest.mark.parametrize(("page", "data"), [
    ("/sidekiq/retries", {"all": "delete"}),
    ("/sidekiq/morgue", {"all": "delete"}),
    ("/sidekiq/scheduled", {"all": "enqueue"}),
    ("/sidekiq/queues/reports/clear", {}),
    ("/sidekiq/busy", {"action": "stop_all"}),
])  # fmt: skip
def test_actions_without_the_csrf_token_are_refused_and_change_nothing(loaded, redis_client, page, data):
    before = snapshot(redis_client)
    loaded.client.get("/sidekiq")  # the CSRF cookie is set
    assert loaded.client.post(page, data=data).status_code == 403
    assert loaded.client.post(page, data={**data, "csrf_token": "forged"}).status_code == 403
    assert snapshot(redis_client) == before


def snapshot(redis_client) -> dict:
    """Every key's value (DUMP bytes vary with a hash's internal order, so read them instead)."""
    read = {b"string": redis_client.get, b"list": lambda k: redis_client.lrange(k, 0, -1),
            b"set": redis_client.smembers, b"hash": redis_client.hgetall,
            b"zset": lambda k: redis_client.zrange(k, 0, -1, withscores=True)}  # fmt: skip
    return {key: read[redis_client.type(key)](key) for key in redis_client.keys("*")}


def test_a_crafted_back_url_stays_in_the_monitor(loaded):
    html = loaded.client.get("/sidekiq/retries").text
    response = loaded.client.post("/sidekiq/retries", data={"csrf_token": csrf_of(html), "back": "https://evil.example/"},
                                  follow_redirects=False)  # fmt: skip
    assert response.headers["location"].startswith("/sidekiq?")


def test_a_member_that_is_not_utf8_json_renders_and_can_be_deleted(loaded, redis_client):
    broken = b"\xff\xfe not json <script>"
    redis_client.zadd("dead", {broken: 1.0})
    page = loaded.client.get("/sidekiq/morgue?sort=asc")
    assert page.status_code == 200 and "\ufffd\ufffd not json &lt;script&gt;" in page.text
    act(
        loaded, "/sidekiq/morgue?sort=asc", {**form_of(loaded, "/sidekiq/morgue?sort=asc"), "row": "delete:0"}
    )
    assert redis_client.zscore("dead", broken) is None
    assert redis_client.zcard("dead") == len(loaded.value("dead"))


def test_a_second_page_of_a_set_and_actions_on_it(loaded, redis_client):
    extra = {json.dumps({"class": "Bulk", "args": [n], "jid": f"{n:024x}", "queue": "default"}): 2e9 + n
             for n in range(30)}  # fmt: skip
    redis_client.zadd("retry", extra)
    total = len(loaded.value("retry")) + 30
    first = loaded.client.get("/sidekiq/retries").text
    second = loaded.client.get("/sidekiq/retries?sort=asc&page=2").text
    assert len(tokens(first)) == 25 and len(tokens(second)) == total - 25
    assert 'href="/sidekiq/retries?sort=asc&amp;page=2" rel="next"' in first
    assert "Page 2 of 2" in second
    page_two = "/sidekiq/retries?sort=asc&page=2"
    act(loaded, page_two, {**form_of(loaded, page_two), "action": "delete", "sel": ["0"]})
    assert redis_client.zcard("retry") == total - 1
    first_on_page_two = sorted(extra, key=extra.get)[25 - len(loaded.value("retry"))]
    assert redis_client.zscore("retry", first_on_page_two) is None


@pytest.mark.parametrize(
    "data",
    [
        {"action": "delete", "sel": ["²"]},
        {"row": "delete:²"},
        {"action": "delete", "sel": ["9" * 5000]},
        {"row": "delete:" + "9" * 5000},
        {"action": "delete", "sel": ["١"]},  # an Arabic-Indic digit
    ],
    ids=["superscript-sel", "superscript-row", "5000-digit-sel", "5000-digit-row", "arabic-indic-digit"],
)
def test_indexes_int_would_refuse_select_nothing_instead_of_failing(loaded, redis_client, data):
    html = act(loaded, "/sidekiq/retries", {**form_of(loaded, "/sidekiq/retries"), **data})

    assert "Nothing was selected" in html
    assert redis_client.zcard("retry") == len(loaded.value("retry"))


def test_a_notice_count_int_would_refuse_is_shown_as_zero(loaded):
    response = loaded.client.get("/sidekiq/retries", params={"done": "delete", "n": "9" * 5000})

    assert response.status_code == 200
