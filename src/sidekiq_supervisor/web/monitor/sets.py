"""``/sidekiq/retries``, ``/sidekiq/scheduled``, ``/sidekiq/morgue``: Sidekiq's three job sets.

Paginated, sortable and searchable lists; actions on one row, on the checked rows, or on the whole
set. Rows are named in forms by their exact member (base64), since acting on a member needs its
exact bytes; the form carries each once, and checkboxes and row buttons refer to it by position.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from sidekiq_supervisor.services.sidekiq_monitor import (
    MAX_PAGE_SIZE,
    MAX_SEARCH_LENGTH,
    JobSet,
    Page,
    SetEntry,
    Sort,
    Stats,
)
from sidekiq_supervisor.web.monitor.deps import MonitorDep, MonitorRoute, known_jids
from sidekiq_supervisor.web.monitor.rendering import PREFIX, done, member_of, render, url
from sidekiq_supervisor.web.monitor.set_entries import sidekiq_form_action
from sidekiq_supervisor.web.monitor.set_specs import SET_PAGES, SetPage, all_action, one_action
from sidekiq_supervisor.web.security import read_form, require_csrf

router = APIRouter(prefix=PREFIX, route_class=MonitorRoute)

PageNumber = Annotated[int, Query(ge=1, le=1_000_000)]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Search = Annotated[str, Query(max_length=MAX_SEARCH_LENGTH)]
PAGE_SIZE = 25


def _list_view(spec: SetPage) -> Callable[..., Awaitable[HTMLResponse]]:
    async def list_page(
        request: Request,
        monitor: MonitorDep,
        page: PageNumber = 1,
        sort: Sort | None = None,
        substr: Search = "",
        count: PageSize = PAGE_SIZE,
        direction: Sort | None = None,
    ) -> HTMLResponse:
        sort = sort or direction  # ``direction`` is Sidekiq's name for it: old links keep working

        def gather() -> tuple[Stats, Page[SetEntry]]:
            return monitor.stats(), monitor.set_entries(spec.job_set, page, count, sort, substr or None)

        stats, entries = await run_in_threadpool(gather)
        known = await known_jids(request, (e.job.jid for e in entries.items))
        shown = sort or (Sort.DESC if spec.job_set is JobSet.DEAD else Sort.ASC)
        return render(
            request, "set.html", stats=stats, spec=spec, entries=entries, known=known,
            sort=shown.value, substr=substr, count=count if count != PAGE_SIZE else None,
            refresh=5, live_default="off",
        )  # fmt: skip

    list_page.__doc__ = f"The {spec.title} page."
    return list_page


# A page never shows more rows than this: a longer index is no row of it.
MAX_ROW_DIGITS = 6


def row_number(text: str) -> int | None:
    """A row index posted by a form, or ``None``: ASCII digits only (``str.isdigit`` also takes
    ``²`` and other digits ``int`` refuses), and few of them."""
    if text.isascii() and text.isdigit() and len(text) <= MAX_ROW_DIGITS:
        return int(text)
    return None


def _action_view(spec: SetPage) -> Callable[..., Awaitable[RedirectResponse]]:
    allowed = {code for code, _label in spec.actions}

    async def act(request: Request, monitor: MonitorDep) -> RedirectResponse:
        form = await read_form(request)
        back = form.get("back", [""])[0] or url(request, spec.path)
        members = [member_of(token) for token in form.get("m", [])]
        row_action, _, row = form.get("row", [""])[0].partition(":")
        everything = form.get("all", [""])[0]
        if "key[]" in form or "key" in form:  # Sidekiq's own form: keys and a button's name
            action, count = await sidekiq_form_action(monitor, spec, form)
            return done(request, back, action, count)
        if everything in allowed:
            count = await run_in_threadpool(all_action(monitor, spec.job_set, everything))
            return done(request, back, everything, count)
        row_index = row_number(row)
        if row_action in allowed and row_index is not None:
            action, chosen = row_action, [row_index]
        else:
            action = form.get("action", [""])[0]
            chosen = [i for i in map(row_number, form.get("sel", [])) if i is not None]
        picked = [member for i in chosen if i < len(members) and (member := members[i]) is not None]
        if action not in allowed or not picked:
            return done(request, back, "none")
        count = await run_in_threadpool(one_action(monitor, spec.job_set, action), picked)
        return done(request, back, action, count)

    act.__doc__ = f"An action on {spec.title}: one row (``row``), the checked rows (``sel``) or ``all``."
    return act


for _spec in SET_PAGES:
    router.add_api_route(_spec.path, _list_view(_spec), methods=["GET"], response_class=HTMLResponse)
    router.add_api_route(
        _spec.path, _action_view(_spec), methods=["POST"], dependencies=[Depends(require_csrf)]
    )
