"""The ``sidekiq-supervisor`` command."""
