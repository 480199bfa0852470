"""``/alerts``: open alerts, their history, each notification's delivery, and a test button."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from sidekiq_supervisor.clock import now_micros
from sidekiq_supervisor.web.deps import ServicesDep
from sidekiq_supervisor.web.pages.templating import render
from sidekiq_supervisor.web.paths import under_root
from sidekiq_supervisor.web.security import require_csrf

router = APIRouter()

# What a person reads: the newest alerts and messages.
HISTORY = 50
MESSAGES = 20


@router.get("/alerts", response_class=HTMLResponse)
async def alerts(request: Request, services: ServicesDep, tested: int | None = None) -> HTMLResponse:
    """The Alerts page."""
    view = await run_in_threadpool(services.alerter.view, HISTORY, MESSAGES)
    return render(
        request, "alerts.html", refresh=15, health=view.health, targets=view.targets,
        open_alerts=view.open, history=view.history, messages=view.messages,
        next_message_at=view.next_message_at, now=now_micros(), settings=services.settings, tested=tested,
    )  # fmt: skip


@router.post("/alerts/test", dependencies=[Depends(require_csrf)])
async def send_test(request: Request, services: ServicesDep) -> RedirectResponse:
    """Queue a test message to every notification URL, wake the loop to send it, and show the page
    (``tested`` is the message's id; 0 when no URL is configured, -1 when the loop is off)."""
    if not services.settings.alerts_enabled:
        return RedirectResponse(under_root(request, "/alerts?tested=-1"), status_code=303)
    message_id = await run_in_threadpool(services.alerter.notifier.queue_test)
    if message_id is not None:
        services.alerter.wake()
    return RedirectResponse(under_root(request, f"/alerts?tested={message_id or 0}"), status_code=303)
