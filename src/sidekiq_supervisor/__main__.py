"""``python -m sidekiq_supervisor`` runs the command-line interface."""

from sidekiq_supervisor.cli.main import app

app()
