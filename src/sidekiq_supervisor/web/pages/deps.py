"""What page routes receive: the dashboard service the lifespan built."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sidekiq_supervisor.services.dashboard import Dashboard


async def _dashboard(request: Request) -> Dashboard:
    return request.app.state.services.dashboard


DashboardDep = Annotated[Dashboard, Depends(_dashboard)]
