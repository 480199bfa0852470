"""Failures the CLI reports as one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from sidekiq_supervisor.domain.filters import InvalidFilter
from sidekiq_supervisor.services.liveness import SidekiqUnavailable
from sidekiq_supervisor.services.restart import RestartFailed


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as one line on stderr; the caller raises the returned exit."""
    typer.echo(f"sidekiq-supervisor: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def reported_failures() -> Iterator[None]:
    """Turn the failures a user can cause or fix into one clear line."""
    try:
        yield
    except InvalidFilter as exc:
        raise fail(str(exc), code=2) from None
    except SidekiqUnavailable as exc:
        raise fail(str(exc)) from None
    except RestartFailed as exc:
        if exc.report.restarted:
            Console(stderr=True).print(exc.report)
        raise fail(f"{exc}; the job being restarted was left as it was") from None
