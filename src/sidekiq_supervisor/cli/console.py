"""The interactive console: IPython when installed, else the standard library's REPL."""

from __future__ import annotations

import code
import sys
from collections.abc import Callable
from typing import Any

from sidekiq_supervisor import __version__
from sidekiq_supervisor.services.job_manager import JobManager

BANNER = """sidekiq-supervisor {version} console (Python {python})
JobManager is ready:  JobManager.uncompleted_jobs("optional string")
                      JobManager.queued_to_completion_duration().summary()
The seed's calls work bare too: restart_uncompleted_jobs("optional string", dry_run=True)"""
APP_LINE = """
JobManager is the app {app}'s; JobManager.for_app("NAME") gives another app's."""
# The seed writes these both as JobManager's methods and bare (``restart_uncompleted_jobs(...)``).
SEED_CALLS = (
    "queued_jobs",
    "uncompleted_jobs",
    "completed_jobs",
    "all_jobs",
    "queued_to_completion_duration",
    "completed_jobs_duration",
    "uncompleted_jobs_liveness",
    "restart_uncompleted_jobs",
)


def namespace(manager: JobManager) -> dict[str, Any]:
    """The names the console starts with: ``JobManager`` and the seed's calls bound to it."""
    return {"JobManager": manager, **{name: getattr(manager, name) for name in SEED_CALLS}}


def interact(manager: JobManager, app: str | None = None) -> None:
    """Open the console with ``JobManager`` bound to ``manager`` (the app ``app``'s, when named)."""
    banner = BANNER.format(version=__version__, python=sys.version.split()[0])
    if app is not None:
        banner += APP_LINE.format(app=app)
    names = namespace(manager)
    start_ipython: Callable[..., object] | None
    try:
        from IPython import start_ipython
    except ImportError:
        start_ipython = None
    # Started outside the ``except``: a console run inside it chained the ImportError to, and
    # printed it before, every traceback of the session.
    if start_ipython is None:
        _stdlib_console(banner, names)
        return
    print(banner)
    start_ipython(argv=["--no-banner"], user_ns=names, display_banner=False)


def _stdlib_console(banner: str, names: dict[str, Any]) -> None:
    try:
        import readline
        import rlcompleter

        readline.set_completer(rlcompleter.Completer(names).complete)
        readline.parse_and_bind("tab: complete")
    except ImportError:  # readline is missing on some platforms; the console works without it
        pass
    code.interact(banner=banner, local=names, exitmsg="")
