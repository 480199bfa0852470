"""``/sidekiq``: pages with parity to Sidekiq's own Web UI, over Sidekiq's Redis.

``router`` holds every route (the main app includes it); ``create_monitor_app`` serves the same
routes alone, behind the same security middleware.
"""

from fastapi import APIRouter

from sidekiq_supervisor.web.monitor import busy, dashboard, metrics, profiles, queues, set_entries, sets
from sidekiq_supervisor.web.monitor.app import create_monitor_app
from sidekiq_supervisor.web.monitor.rendering import PREFIX

router = APIRouter(tags=["sidekiq"], include_in_schema=False)
for _module in (dashboard, busy, queues, sets, set_entries, metrics, profiles):
    router.include_router(_module.router)


__all__ = ["PREFIX", "create_monitor_app", "router"]
