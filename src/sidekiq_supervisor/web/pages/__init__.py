"""The dashboard: server-rendered pages over the supervisor's ledger, for people."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from sidekiq_supervisor.web.pages import alerts, durations, jobs, overview, recoveries, restart

STATIC = Path(__file__).resolve().parents[1] / "static"

router = APIRouter(tags=["pages"], include_in_schema=False)
for module in (overview, jobs, durations, restart, recoveries, alerts):
    router.include_router(module.router)

__all__ = ["STATIC", "router"]
