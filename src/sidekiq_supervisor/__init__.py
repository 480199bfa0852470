"""sidekiq-supervisor: a durable ledger of Sidekiq jobs, with questions and restarts.

``from sidekiq_supervisor import JobManager`` gives the seed's console object, bound to the
default app: the ledger of ``DATABASE_URL`` and, when ``SUPERVISOR_CONFIG`` names a file of apps,
the Redis and settings of its first app. ``JobManager.for_app("billing")`` gives another app's.
It is built on first access, not at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["JobManager", "__version__"]

if TYPE_CHECKING:
    from sidekiq_supervisor.services.job_manager import JobManager

_manager: Any = None


def __getattr__(name: str) -> Any:
    # PEP 562: build the environment-bound manager lazily, so importing the package opens nothing.
    global _manager
    if name == "JobManager":
        if _manager is None:
            from sidekiq_supervisor.services.job_manager import JobManager as _JobManager

            _manager = _JobManager.from_environment()
        return _manager
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
