"""Typed reads of, and actions on, Sidekiq's Redis for a monitor with parity to Sidekiq's Web UI.

Each module owns one concern (stats, processes, queues, sorted sets, their actions, metrics) and
reads the layouts of Sidekiq 6, 7 and 8. The service façade ``services.monitor`` is their only caller.
"""
