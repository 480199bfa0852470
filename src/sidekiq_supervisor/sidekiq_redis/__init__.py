"""Sidekiq's own Redis, read and written as Sidekiq's own API does, for Sidekiq 6, 7 and 8.

One module per concern, each the only reader of its keys: ``keys`` names them; ``processes``
(heartbeats, work, signals: Sidekiq's ``ProcessSet`` and ``WorkSet``), ``jobs`` (a payload parsed
for display), ``stats``, ``queues``, ``sets`` and ``set_actions`` (retry, schedule, dead),
``metrics``, ``profiles``; ``snapshot`` (what the liveness rules need, built from ``processes``)
and ``enqueue`` (a restart's push).
"""
