"""``/sidekiq/profiles``: the jobs Sidekiq 8 ran under its profiler, and each profile's data.

Sidekiq's "View" button uploads a profile to profiler.firefox.com; this page never sends job data
to a third party. "Data" downloads the profile, which that site (or any Firefox Profiler) opens.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from sidekiq_supervisor.services.sidekiq_monitor import ProfileRecord, Stats
from sidekiq_supervisor.web.monitor.deps import MonitorDep, MonitorRoute
from sidekiq_supervisor.web.monitor.rendering import PREFIX, render, url
from sidekiq_supervisor.web.pages.templating import template_vars

router = APIRouter(prefix=PREFIX, route_class=MonitorRoute)


@dataclass(frozen=True, slots=True)
class ProfilesPage:
    """The figures, the stored profiles, and the Sidekiq major version (profiles need 8)."""

    stats: Stats
    profiles: tuple[ProfileRecord, ...]
    major: int


@router.get("/profiles", response_class=HTMLResponse)
async def profiles(request: Request, monitor: MonitorDep) -> HTMLResponse:
    """The Profiles page."""

    def gather() -> ProfilesPage:
        return ProfilesPage(stats=monitor.stats(), profiles=monitor.profiles(), major=monitor.sidekiq_major())

    return render(request, "profiles.html", **template_vars(await run_in_threadpool(gather)))


@router.get("/profiles/{key}/data", response_model=None)
async def profile_data(request: Request, monitor: MonitorDep, key: str) -> Response:
    """A profile's data as Sidekiq serves it: gzipped JSON, to save or open in a profiler."""
    data = await run_in_threadpool(monitor.profile_data, key)
    if data is None:
        return RedirectResponse(url(request, "/profiles"), status_code=302)
    headers = {
        "Content-Encoding": "gzip",
        "Content-Disposition": f'attachment; filename="{_filename(key)}.json"',
        "Cache-Control": "no-store",
    }
    return Response(data, media_type="application/json", headers=headers)


@router.get("/profiles/{key}", include_in_schema=False)
async def profile(request: Request, key: str) -> RedirectResponse:
    """Sidekiq's "View" address: here, the profile's data (nothing is uploaded anywhere)."""
    return RedirectResponse(url(request, f"/profiles/{key}/data"), status_code=302)


def _filename(key: str) -> str:
    # The key is Sidekiq's "<token>-<jid>"; a header takes only plain characters.
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in key)[:100] or "profile"
