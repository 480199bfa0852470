"""What page routes receive: the dashboard service the lifespan built."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sidekiq_supervisor.services.dashboard import Dashboard
from sidekiq_supervisor.web.deps import services_of


async def _dashboard(request: Request) -> Dashboard:
    return services_of(request.scope).dashboard


DashboardDep = Annotated[Dashboard, Depends(_dashboard)]
