"""GET /metrics for Prometheus: what each process counts (``instruments``), the ledger's and Sidekiq's
figures read at scrape time (``ledger_figures``, ``sidekiq_figures``), the answer (``exposition``)
and prometheus_client's multi-process mode for ``serve --workers N`` (``multiprocess``)."""
