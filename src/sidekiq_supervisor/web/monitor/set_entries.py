"""A job of a set on a page of its own (``/sidekiq/retries/<score>-<jid>`` and the like), and the
action URLs and form fields of Sidekiq's Web UI, so that its links and habits work here too.

A job is named by Sidekiq's key, its score and jid; the page shows every field of the payload, the
whole error message and the backtrace, and offers the set's actions. Sidekiq's own forms post
``key[]`` with a button named after the action, and its bulk buttons post to ``/<set>/all/<action>``:
both are accepted (with this app's CSRF token) and do what Sidekiq's do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from sidekiq_supervisor.services.sidekiq_monitor import SetEntry, SidekiqMonitor, Stats
from sidekiq_supervisor.web.monitor.deps import MonitorDep, MonitorRoute, known_jids
from sidekiq_supervisor.web.monitor.rendering import PREFIX, done, render, url
from sidekiq_supervisor.web.monitor.set_specs import (
    SET_PAGES,
    SIDEKIQ_ACTIONS,
    SIDEKIQ_BUTTONS,
    SetPage,
    all_action,
    one_action,
)
from sidekiq_supervisor.web.security import read_form, require_csrf

router = APIRouter(prefix=PREFIX, route_class=MonitorRoute)

# One form acts on at most this many keys (Sidekiq's pages show 25 by default, at most a few hundred).
MAX_FORM_KEYS = 1000


def _members_of(monitor: SidekiqMonitor, spec: SetPage, keys: list[str]) -> list[str]:
    # Sidekiq acts on the first entry a key names; so does this.
    members = []
    for key in keys[:MAX_FORM_KEYS]:
        found = monitor.entries_at(spec.job_set, key)
        if found:
            members.append(found[0].raw)
    return members


def _requested(form: dict[str, list[str]], spec: SetPage) -> str | None:
    """The action a Sidekiq form asks for (the name of the button pressed), if this set offers it."""
    allowed = {code for code, _label in spec.actions}
    for name, code in SIDEKIQ_ACTIONS.items():
        if name in form and code in allowed:
            return code
    return None


async def sidekiq_form_action(
    monitor: SidekiqMonitor, spec: SetPage, form: dict[str, list[str]], keys: list[str] | None = None
) -> tuple[str, int]:
    """Do what a Sidekiq form asks to ``keys`` (else its ``key[]`` fields): the outcome code and count."""
    action = _requested(form, spec)
    keys = keys if keys is not None else form.get("key[]", []) + form.get("key", [])
    if action is None or not keys:
        return "none", 0

    def act() -> int:
        members = _members_of(monitor, spec, keys)
        return one_action(monitor, spec.job_set, action)(members) if members else 0

    return action, await run_in_threadpool(act)


def _detail_view(spec: SetPage) -> Callable[..., Awaitable[HTMLResponse | RedirectResponse]]:
    async def detail_page(request: Request, monitor: MonitorDep, key: str) -> HTMLResponse | RedirectResponse:
        def gather() -> tuple[Stats, tuple[SetEntry, ...]]:
            return monitor.stats(), monitor.entries_at(spec.job_set, key)

        stats, entries = await run_in_threadpool(gather)
        if not entries:  # gone (retried, deleted, run): back to the list, as Sidekiq does
            return RedirectResponse(url(request, spec.path), status_code=302)
        entry = entries[0]
        known = await known_jids(request, [entry.job.jid])
        return render(
            request, "entry.html", stats=stats, spec=spec, entry=entry, known=known, buttons=SIDEKIQ_BUTTONS
        )

    detail_page.__doc__ = f"One job of {spec.title}, with every field, the error and the backtrace."
    return detail_page


def _detail_action_view(spec: SetPage) -> Callable[..., Awaitable[RedirectResponse]]:
    async def act(request: Request, monitor: MonitorDep, key: str) -> RedirectResponse:
        form = await read_form(request)
        action, count = await sidekiq_form_action(monitor, spec, form, [key])
        return done(request, url(request, spec.path), action, count)

    act.__doc__ = f"An action on one job of {spec.title}, named by the button pressed (as Sidekiq's form)."
    return act


def _all_view(spec: SetPage, code: str) -> Callable[..., Awaitable[RedirectResponse]]:
    async def act_on_all(request: Request, monitor: MonitorDep) -> RedirectResponse:
        count = await run_in_threadpool(all_action(monitor, spec.job_set, code))
        return done(request, url(request, spec.path), code, count)

    act_on_all.__doc__ = f"Sidekiq's bulk button on {spec.title}: the action on every job of the set."
    return act_on_all


csrf = [Depends(require_csrf)]
for _spec in SET_PAGES:
    _offered = {code for code, _label in _spec.actions}
    for _name, _code in SIDEKIQ_ACTIONS.items():
        if _code in _offered:
            _url = f"{_spec.path}/all/{_name}"
            router.add_api_route(_url, _all_view(_spec, _code), methods=["POST"], dependencies=csrf)
    _one = f"{_spec.path}/{{key}}"
    router.add_api_route(
        _one, _detail_view(_spec), methods=["GET"], response_class=HTMLResponse, response_model=None
    )
    router.add_api_route(_one, _detail_action_view(_spec), methods=["POST"], dependencies=csrf)
