"""The HTTP service: the ingest and read API (and, later, the pages)."""
