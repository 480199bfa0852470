"""Our ``/sidekiq`` against the real Sidekiq::Web of each Sidekiq line (6.4.1, 7.3.9, 8.1.7).

Both serve the same Redis, written by a real Sidekiq process of the line (``sidekiq_web.py``):
every page URL of that line's Sidekiq::Web must answer on ours too and show the same jobs; the JSON
endpoints must have the same shape and figures; every action must leave Redis as Sidekiq's does.
Each case is named by its line. A route ours lacks fails its case: this is a drop-in's checklist.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.web.monitor.sidekiq_web import Made, Sites

# Opening a line's site runs a real Sidekiq process and Sidekiq::Web: more than the default minute,
# and not in the fast lane.
pytestmark = [pytest.mark.timeout(300), pytest.mark.e2e]

ALL = (6, 7, 8)
# A key no job has: Sidekiq redirects its detail pages to the list.
GONE_KEY = "1000000000.5-0123456789abcdef01234567"


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    """Each line's real Sidekiq::Web and our monitor, opened on first use and kept for the module."""
    opened = Sites(tmp_path_factory.mktemp("sidekiq-web"))
    try:
        yield opened
    finally:
        opened.close()


def cases(table: list[tuple[str, tuple[int, ...], Any]]) -> list[Any]:
    """``pytest.param(line, case)`` for every line a case applies to, named ``sidekiqN-case``,
    grouped by line."""
    return [
        pytest.param(line, case, id=f"sidekiq{line}-{name}")
        for line in ALL
        for name, lines, case in table
        if line in lines
    ]


def keys(entries: list[Any]) -> list[str]:
    """Sidekiq's names of jobs of a sorted set (``<score>-<jid>``), as its pages link them."""
    return [entry.key for entry in entries]


def first_line_of_backtrace(made: Made, which: str) -> str:
    entry = (made.retries if which == "retry" else made.dead)[0]
    lines = entry.backtrace()
    assert lines and "compat_jobs.rb" in lines[0], lines[:3]
    return lines[0]


# ---------------------------------------------------------------------------------------------
# a. Every page URL answers on both, with the same jobs


@dataclass(frozen=True)
class Page:
    """A page URL (under /sidekiq) and what both answers must contain, or must not."""

    path: Callable[[Made], str]
    shows: Callable[[Made], list[str]] = lambda made: []
    hides: Callable[[Made], list[str]] = lambda made: []
    # Checked on Sidekiq's page only (the harness's own check): its links to the jobs' pages.
    links: Callable[[Made], list[str]] = lambda made: []
    # A list: the jobs it shows come in the same order on both.
    ordered: bool = False


def _detail(kind: str, made: Made) -> list[str]:
    entry = (made.retries if kind == "retry" else made.dead)[0]
    return [entry.jid, entry.job["error_message"], first_line_of_backtrace(made, kind)]


PAGES: list[tuple[str, tuple[int, ...], Page]] = [
    ("dashboard", ALL, Page(lambda m: "/")),
    ("dashboard-180-days", ALL, Page(lambda m: "/?days=180")),
    ("busy", ALL, Page(lambda m: "/busy", lambda m: [m.busy_jid])),
    ("busy-only-jobs", (8,), Page(lambda m: "/busy?only=jobs", lambda m: [m.busy_jid])),
    ("busy-only-processes", (8,), Page(lambda m: "/busy?only=processes", hides=lambda m: [m.busy_jid])),
    ("queues", ALL, Page(lambda m: "/queues", lambda m: ["alpha", "beta", "gamma", "default"])),
    ("queue", ALL, Page(lambda m: "/queues/alpha", lambda m: m.queue_jids("alpha"), ordered=True)),
    (
        "queue-ascending",
        ALL,
        Page(lambda m: "/queues/alpha?direction=asc", lambda m: m.queue_jids("alpha"), ordered=True),
    ),
    (
        "retries",
        ALL,
        Page(
            lambda m: "/retries",
            lambda m: [e.jid for e in m.retries],
            links=lambda m: keys(m.retries),
            ordered=True,
        ),
    ),
    (
        "retries-count-5",
        ALL,
        Page(
            lambda m: "/retries?count=5",
            lambda m: [e.jid for e in m.retries[:5]],
            lambda m: [m.retries[5].jid],
            ordered=True,
        ),
    ),
    ("retry", ALL, Page(lambda m: f"/retries/{m.retries[0].key}", lambda m: _detail("retry", m))),
    ("retry-gone", ALL, Page(lambda m: f"/retries/{GONE_KEY}")),
    (
        "retries-search",
        (6,),
        Page(lambda m: f"/retries?substr={m.retries[2].jid}", lambda m: [m.retries[2].jid]),
    ),
    (
        "retries-search",
        (7, 8),
        Page(
            lambda m: f"/retries?substr={m.retries[2].jid}",
            lambda m: [m.retries[2].jid],
            lambda m: [m.retries[0].jid],
        ),
    ),
    (
        "scheduled",
        ALL,
        Page(
            lambda m: "/scheduled",
            lambda m: [e.jid for e in m.scheduled],
            links=lambda m: keys(m.scheduled),
            ordered=True,
        ),
    ),
    (
        "scheduled-job",
        ALL,
        Page(lambda m: f"/scheduled/{m.scheduled[1].key}", lambda m: [m.scheduled[1].jid]),
    ),
    ("scheduled-gone", ALL, Page(lambda m: f"/scheduled/{GONE_KEY}")),
    (
        "scheduled-search",
        (6,),
        Page(lambda m: f"/scheduled?substr={m.scheduled[1].jid}", lambda m: [m.scheduled[1].jid]),
    ),
    (
        "scheduled-search",
        (7, 8),
        Page(
            lambda m: f"/scheduled?substr={m.scheduled[1].jid}",
            lambda m: [m.scheduled[1].jid],
            lambda m: [m.scheduled[0].jid],
        ),
    ),
    (
        "morgue",
        ALL,
        Page(
            lambda m: "/morgue", lambda m: [e.jid for e in m.dead], links=lambda m: keys(m.dead), ordered=True
        ),
    ),
    ("morgue-job", ALL, Page(lambda m: f"/morgue/{m.dead[0].key}", lambda m: _detail("dead", m))),
    ("morgue-gone", ALL, Page(lambda m: f"/morgue/{GONE_KEY}")),
    ("morgue-search", (6,), Page(lambda m: f"/morgue?substr={m.dead[1].jid}", lambda m: [m.dead[1].jid])),
    (
        "morgue-search",
        (7, 8),
        Page(
            lambda m: f"/morgue?substr={m.dead[1].jid}", lambda m: [m.dead[1].jid], lambda m: [m.dead[0].jid]
        ),
    ),
    ("metrics", (7, 8), Page(lambda m: "/metrics", lambda m: ["CompatOkJob"])),
    ("metrics-24h", (8,), Page(lambda m: "/metrics?period=24h", lambda m: ["CompatOkJob"])),
    ("metrics-search", (7, 8), Page(lambda m: "/metrics?substr=compatok", lambda m: ["CompatOkJob"])),
    ("metrics-job", (7, 8), Page(lambda m: "/metrics/CompatOkJob", lambda m: ["CompatOkJob"])),
    ("profiles", (8,), Page(lambda m: "/profiles")),
]


def _location_path(response: Any) -> str:
    return urlsplit(response.headers.get("location", "")).path


@pytest.mark.parametrize(("line", "page"), cases(PAGES))
def test_every_page_answers_like_sidekiqs(sites: Sites, line: int, page: Page) -> None:
    site = sites.get(line)
    path = page.path(site.made)
    theirs = site.sidekiq_get(path)
    if path.split("/")[-1] == GONE_KEY:
        # Sidekiq sends the detail page of a job that is gone back to its list.
        assert theirs.status_code == 302, theirs.text[:300]
        ours = site.ours_get(path, follow_redirects=False)
        back = _location_path(theirs)
        assert ours.status_code in (302, 303) and _location_path(ours) == back, (
            f"ours answers {path} with {ours.status_code} {ours.headers.get('location')}; "
            f"Sidekiq redirects to {back}"
        )
        return
    assert theirs.status_code == 200, (
        f"Sidekiq::Web {line}: {path} → {theirs.status_code} {theirs.text[:300]}"
    )
    shown = unescape(theirs.text)
    for text in page.shows(site.made):
        assert text in shown, f"Sidekiq's {path} does not show {text!r}: the harness is wrong"
    for text in page.hides(site.made):
        assert text not in shown, f"Sidekiq's {path} shows {text!r}: the harness is wrong"
    for key in page.links(site.made):
        assert key in shown, f"Sidekiq's {path} names no job {key!r}: the harness is wrong"

    ours = site.ours_get(path)
    assert ours.status_code == 200, f"ours: {path} → {ours.status_code} {ours.text[:300]}"
    ours_shown = unescape(ours.text)
    missing = [text for text in page.shows(site.made) if text not in ours_shown]
    extra = [text for text in page.hides(site.made) if text in ours_shown]
    assert not missing and not extra, f"ours: {path} lacks {missing}, shows {extra} (Sidekiq's does not)"
    if page.ordered:
        theirs_order = sorted(page.shows(site.made), key=shown.find)
        ours_order = sorted(page.shows(site.made), key=ours_shown.find)
        assert ours_order == theirs_order, f"ours: {path} lists {ours_order}, Sidekiq's {theirs_order}"


# ---------------------------------------------------------------------------------------------
# b. The JSON endpoints: same keys at every level, same figures


# Values that change by themselves between two requests: only their type is compared.
VOLATILE = {
    "server_utc_time",
    "redis.uptime_in_days",
    "redis.connected_clients",
    "redis.used_memory_human",
    "redis.used_memory_peak_human",
}
# Seconds since the oldest job of "default" was pushed: equal within a second.
LATENCY = "sidekiq.default_latency"


def json_differences(theirs: Any, ours: Any, where: str = "") -> list[str]:
    """How ``ours`` differs from ``theirs``: keys missing or extra at any level, values unequal."""
    name = where or "(top)"
    if isinstance(theirs, dict):
        if not isinstance(ours, dict):
            return [f"{name}: Sidekiq has an object, ours {ours!r}"]
        found = [f"{name}: ours lacks {key!r}" for key in theirs if key not in ours]
        found += [f"{name}: ours has {key!r} too" for key in ours if key not in theirs]
        for key in theirs:
            if key in ours:
                found += json_differences(theirs[key], ours[key], f"{where}.{key}" if where else key)
        return found
    if where in VOLATILE:
        same_type = type(theirs) is type(ours)
        return [] if same_type else [f"{name}: Sidekiq's {theirs!r}, ours {ours!r} (another type)"]
    if where == LATENCY and isinstance(ours, int | float) and not isinstance(ours, bool):
        return [] if abs(theirs - ours) <= 1 else [f"{name}: Sidekiq's {theirs!r}, ours {ours!r}"]
    if theirs != ours or type(theirs) is not type(ours):
        return [f"{name}: Sidekiq's {theirs!r}, ours {ours!r}"]
    return []


JSON_PATHS = [
    ("stats", ALL, "/stats"),
    ("stats-queues", ALL, "/stats/queues"),
    ("dashboard-stats", ALL, "/dashboard/stats"),
]


@pytest.mark.parametrize(("line", "path"), cases(JSON_PATHS))
def test_json_matches_sidekiqs(sites: Sites, line: int, path: str) -> None:
    site = sites.get(line)
    theirs = site.theirs.get(site.sidekiq_url + path, follow_redirects=True)
    assert theirs.status_code == 200, theirs.text[:300]
    theirs_json = theirs.json()
    if path == "/stats/queues":
        assert theirs_json == {name: len(site.made.queues[name]) for name in site.made.queues}
    else:
        assert theirs_json["sidekiq"]["retries"] == len(site.made.retries)
        assert theirs_json["sidekiq"]["busy"] == 1

    ours = site.ours_get(path)
    assert ours.status_code == 200, f"ours: {path} → {ours.status_code} {ours.text[:300]}"
    assert ours.headers.get("content-type", "").startswith("application/json"), ours.headers
    differences = json_differences(theirs_json, ours.json())
    assert not differences, f"ours: {path} differs from Sidekiq's:\n" + "\n".join(differences)


# ---------------------------------------------------------------------------------------------
# c. Every action leaves Redis as Sidekiq's does


@dataclass(frozen=True)
class Action:
    """A form POST of Sidekiq's pages: where it goes and its fields (by line where they differ)."""

    path: Callable[[Made], str]
    form: Callable[[Made, int], dict[str, Any]]


def button(field: str, label: str) -> Callable[[Made, int], dict[str, Any]]:
    return lambda made, line: {field: label}


def all_button(field: str, label: str, action: str) -> Callable[[Made, int], dict[str, Any]]:
    """The "all" buttons: 6 and 7 post their own name, 8.1 posts ``action=<x>_all``."""
    return lambda made, line: {"action": action} if line >= 8 else {field: label}


ACTIONS: list[tuple[str, tuple[int, ...], Action]] = [
    ("retry-retry", ALL, Action(lambda m: f"/retries/{m.retries[0].key}", button("retry", "Retry Now"))),
    ("retry-delete", ALL, Action(lambda m: f"/retries/{m.retries[0].key}", button("delete", "Delete"))),
    ("retry-kill", ALL, Action(lambda m: f"/retries/{m.retries[0].key}", button("kill", "Kill"))),
    (
        "retries-checked-retry",
        ALL,
        Action(lambda m: "/retries", lambda m, line: {"key[]": keys(m.retries[1:3]), "retry": "Retry Now"}),
    ),
    (
        "retries-checked-delete",
        ALL,
        Action(lambda m: "/retries", lambda m, line: {"key[]": keys(m.retries[1:3]), "delete": "Delete"}),
    ),
    (
        "retries-checked-kill",
        ALL,
        Action(lambda m: "/retries", lambda m, line: {"key[]": keys(m.retries[1:3]), "kill": "Kill"}),
    ),
    (
        "retries-all-retry",
        ALL,
        Action(lambda m: "/retries/all/retry", all_button("retry", "Retry All", "retry_all")),
    ),
    (
        "retries-all-delete",
        ALL,
        Action(lambda m: "/retries/all/delete", all_button("delete", "Delete All", "delete_all")),
    ),
    (
        "retries-all-kill",
        ALL,
        Action(lambda m: "/retries/all/kill", all_button("kill", "Kill All", "kill_all")),
    ),
    ("dead-retry", ALL, Action(lambda m: f"/morgue/{m.dead[0].key}", button("retry", "Retry Now"))),
    ("dead-delete", ALL, Action(lambda m: f"/morgue/{m.dead[0].key}", button("delete", "Delete"))),
    (
        "morgue-checked-retry",
        ALL,
        Action(lambda m: "/morgue", lambda m, line: {"key[]": keys(m.dead[:2]), "retry": "Retry Now"}),
    ),
    (
        "morgue-checked-delete",
        ALL,
        Action(lambda m: "/morgue", lambda m, line: {"key[]": keys(m.dead[:2]), "delete": "Delete"}),
    ),
    (
        "morgue-all-retry",
        ALL,
        Action(lambda m: "/morgue/all/retry", all_button("retry", "Retry All", "retry_all")),
    ),
    (
        "morgue-all-delete",
        ALL,
        Action(lambda m: "/morgue/all/delete", all_button("delete", "Delete All", "delete_all")),
    ),
    (
        "scheduled-add-to-queue",
        ALL,
        Action(lambda m: f"/scheduled/{m.scheduled[0].key}", button("add_to_queue", "Add to queue")),
    ),
    (
        "scheduled-delete",
        ALL,
        Action(lambda m: f"/scheduled/{m.scheduled[0].key}", button("delete", "Delete")),
    ),
    (
        "scheduled-checked-add-to-queue",
        ALL,
        Action(
            lambda m: "/scheduled",
            lambda m, line: {"key[]": keys(m.scheduled[1:3]), "add_to_queue": "Add to queue"},
        ),
    ),
    (
        "scheduled-checked-delete",
        ALL,
        Action(lambda m: "/scheduled", lambda m, line: {"key[]": keys(m.scheduled[1:3]), "delete": "Delete"}),
    ),
    (
        "scheduled-all-delete",
        (8,),
        Action(lambda m: "/scheduled/all/delete", button("action", "delete_all")),
    ),
    (
        "scheduled-all-add-to-queue",
        (8,),
        Action(lambda m: "/scheduled/all/add_to_queue", button("action", "add_all_to_queue")),
    ),
    ("queue-clear", ALL, Action(lambda m: "/queues/alpha", button("delete", "Delete"))),
    (
        "queue-delete-job",
        ALL,
        Action(
            lambda m: "/queues/alpha/delete",
            lambda m, line: {"key_val": m.queues["alpha"][1].decode(), "delete": "Delete"},
        ),
    ),
]


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _job_of(item: Any) -> Any:
    """A list item or a sorted-set entry ``(score, member JSON)`` as a job dict, when it is one."""
    if isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[1], str):
        item = json.loads(item[1])
    return item


def _summary(items: list[Any]) -> list[str]:
    """Each job of a list or sorted set as ``jid`` (``@score`` for a sorted set's entry)."""
    found = []
    for item in items:
        job = _job_of(item)
        name = job.get("jid", _short(job)) if isinstance(job, dict) else _short(job)
        score = f"@{item[0]}" if isinstance(item, list | tuple) and len(item) == 2 else ""
        found.append(f"{name}{score}")
    return found


def _value_difference(theirs: Any, ours: Any) -> str:
    """What differs in one key: which jobs (by jid), else the first job's differing fields."""
    if not (isinstance(theirs, list) and isinstance(ours, list)):
        return f"Sidekiq {_short(theirs)}, ours {_short(ours)}"
    if sorted(_summary(theirs)) == sorted(_summary(ours)) and _summary(theirs) != _summary(ours):
        return f"the same jobs in another order: Sidekiq {_summary(theirs)}, ours {_summary(ours)}"
    if _summary(theirs) != _summary(ours):
        return f"Sidekiq holds {_summary(theirs)}, ours {_summary(ours)}"
    for their_item, our_item in zip(theirs, ours, strict=True):
        their_job, our_job = _job_of(their_item), _job_of(our_item)
        if their_job != our_job and isinstance(their_job, dict) and isinstance(our_job, dict):
            fields = sorted(set(their_job) | set(our_job))
            pairs = [
                (name, their_job.get(name, "(absent)"), our_job.get(name, "(absent)")) for name in fields
            ]
            changed = [f"{name}: Sidekiq {_short(a)}, ours {_short(b)}" for name, a, b in pairs if a != b]
            return f"job {their_job.get('jid')}: " + "; ".join(changed)
    return f"Sidekiq {_short(theirs)}, ours {_short(ours)}"


def state_differences(theirs: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """Key by key, how Redis after our action differs from Redis after Sidekiq's."""
    found = [f"{key}: Sidekiq leaves it, ours does not" for key in theirs if key not in ours]
    found += [f"{key}: ours leaves it, Sidekiq does not" for key in ours if key not in theirs]
    for key in theirs:
        if key in ours and theirs[key] != ours[key]:
            found.append(f"{key}: {_value_difference(theirs[key], ours[key])}")
    return found


@pytest.mark.parametrize(("line", "action"), cases(ACTIONS))
def test_actions_leave_redis_as_sidekiqs_do(sites: Sites, line: int, action: Action) -> None:
    site = sites.get(line)
    path, form = action.path(site.made), action.form(site.made, line)
    before = site.state()
    theirs = site.sidekiq_post(path, form)
    assert theirs.status_code == 302, (
        f"Sidekiq::Web {line}: POST {path} → {theirs.status_code} {theirs.text[:300]}"
    )
    after_theirs = site.state()
    assert after_theirs != before, (
        f"Sidekiq::Web {line}: POST {path} {form} changed nothing: the harness is wrong"
    )

    site.reset()
    ours = site.ours_post(path, form)
    after_ours = site.state()
    problems = []
    if ours.status_code not in (302, 303) or _location_path(ours) != _location_path(theirs):
        problems.append(
            f"ours answers POST {path} with {ours.status_code} {ours.headers.get('location')} "
            f"{ours.text[:200]!r}; Sidekiq redirects to {_location_path(theirs)}"
        )
    problems += state_differences(after_theirs, after_ours)
    assert not problems, "\n".join(problems)
