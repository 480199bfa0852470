"""What page routes receive: the dashboard service, built once per app on first use."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sidekiq_supervisor.services.dashboard import Dashboard


async def _dashboard(request: Request) -> Dashboard:
    state = request.app.state
    dashboard = getattr(state, "dashboard", None)
    if dashboard is None:
        # Built lazily from what the lifespan opened, so the app factory needs no page wiring.
        services = state.services
        dashboard = state.dashboard = Dashboard.from_settings(services.settings, services.engine)
    return dashboard


DashboardDep = Annotated[Dashboard, Depends(_dashboard)]
