"""Is an uncompleted job still alive in Sidekiq? The rules that keep restarts from running a job twice.

A Sidekiq process proves it is alive with a heartbeat (its ``beat``, every 5 s in Sidekiq 6 and
10 s from 7, in a hash that expires after 60 s). Each beat also rewrites the process's work hash,
the jobs its threads run. So a job is visibly running only after the first beat that follows its
start; before that, a job started on a live process is given the benefit of the doubt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Liveness(StrEnum):
    """Where an uncompleted job stands in Sidekiq."""

    RUNNING = "running"  # a live process runs it: restarting would run it twice
    RETRYING = "retrying"  # in the retry or scheduled set: Sidekiq will run it again itself
    ORPHANED = "orphaned"  # no live process runs it and Sidekiq holds no retry for it
    UNKNOWN = "unknown"  # no worker identity was reported, and Sidekiq shows no trace of it

    @property
    def restartable(self) -> bool:
        """Whether a restart takes jobs of this kind by default."""
        return self in (Liveness.ORPHANED, Liveness.UNKNOWN)


@dataclass(frozen=True, slots=True)
class SidekiqSnapshot:
    """What Sidekiq's Redis said at one moment (times in epoch seconds).

    ``beats`` maps each process identity with a heartbeat hash to its last beat; ``running``
    maps each jid in a work hash to the identity whose thread runs it; ``retrying`` and
    ``dead`` are the jids in the retry/scheduled sets and in the Dead set. ``sidekiq_major`` is the
    major version the live processes run (from their info; 6 when it is not said), if any runs.
    """

    taken_at: float
    beats: Mapping[str, float]
    running: Mapping[str, str]
    retrying: frozenset[str]
    dead: frozenset[str]
    sidekiq_major: int | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A job's liveness and the reason, in words a person can check.

    ``settles_in`` is set when the verdict rests on a process that may be gone: the seconds until
    that process, if it does not beat again, is taken for gone and the job becomes restartable.
    """

    liveness: Liveness
    reason: str
    settles_in: float | None = None
    # The process whose missing heartbeat makes the job orphaned: definite evidence of its loss.
    gone_process: str | None = None


def classify(
    jid: str, identity: str | None, started_at: float | None, snapshot: SidekiqSnapshot, stale_after: float
) -> Verdict:
    """The liveness of an uncompleted job started at ``started_at`` by process ``identity``."""
    live = {name: beat for name, beat in snapshot.beats.items() if snapshot.taken_at - beat <= stale_after}
    runner = snapshot.running.get(jid)
    # A killed process's work hash outlives it by up to a minute: only a live runner counts.
    if runner in live:
        return _may_be_alive(f"process {runner} is running it", [live[runner]], snapshot, stale_after)
    if jid in snapshot.retrying:
        return Verdict(Liveness.RETRYING, "it is in Sidekiq's retry or scheduled set")
    if identity is None:
        return _without_identity(jid, started_at, live, snapshot, stale_after)
    beat = live.get(identity)
    if beat is None:
        return Verdict(
            Liveness.ORPHANED, f"its process {identity} is gone (no heartbeat)", gone_process=identity
        )
    if started_at is not None and started_at >= beat:
        reason = f"process {identity} started it after its last heartbeat"
        return _may_be_alive(reason, [beat], snapshot, stale_after)
    if jid in snapshot.dead:
        return Verdict(Liveness.ORPHANED, "Sidekiq gave up on it: it is in the Dead set")
    return Verdict(Liveness.ORPHANED, f"process {identity} is alive but no longer runs it")


def _without_identity(
    jid: str,
    started_at: float | None,
    live: Mapping[str, float],
    snapshot: SidekiqSnapshot,
    stale_after: float,
) -> Verdict:
    # Any live process that has not beaten since the start may run the job without showing it yet.
    if started_at is not None:
        silent = [beat for beat in live.values() if started_at >= beat]
        if silent:
            reason = "it started after a live process's last heartbeat"
            return _may_be_alive(reason, silent, snapshot, stale_after)
    reason = "in Sidekiq's Dead set" if jid in snapshot.dead else "no worker identity was reported"
    return Verdict(Liveness.UNKNOWN, reason)


def _may_be_alive(reason: str, beats: list[float], snapshot: SidekiqSnapshot, stale_after: float) -> Verdict:
    """A running verdict that holds until the last of ``beats``' processes is taken for gone."""
    newest = max(beats)
    age = max(0.0, snapshot.taken_at - newest)
    settles_in = max(0.0, stale_after - age)
    timing = f"last heartbeat {age:.0f} s ago; taken for gone at {stale_after:g} s"
    return Verdict(Liveness.RUNNING, f"{reason} ({timing})", settles_in)


def worker_identity(worker: Mapping[str, object] | None, snapshot: SidekiqSnapshot) -> str | None:
    """The process identity a started report named, or one found by its hostname and pid."""
    if not worker:
        return None
    identity = worker.get("identity")
    if isinstance(identity, str) and identity:
        return identity
    hostname, pid = worker.get("hostname"), worker.get("pid")
    if not hostname or pid is None:
        return None
    prefix = f"{hostname}:{pid}:"
    return next((known for known in snapshot.beats if known.startswith(prefix)), f"{hostname}:{pid}")
