"""prometheus_client's multi-process mode as ``serve --workers N`` sets it up (the real workers are
in tests/e2e/test_prometheus.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from sidekiq_supervisor.services.prometheus import multiprocess


def test_serve_with_several_workers_makes_a_fresh_directory_and_removes_it(monkeypatch):
    monkeypatch.delenv(multiprocess.ENVIRONMENT, raising=False)
    with multiprocess.shared_directory_for(1) as alone:
        assert alone is None and multiprocess.ENVIRONMENT not in os.environ
    with multiprocess.shared_directory_for(2) as made:
        assert made is not None and made.is_dir() and not any(made.iterdir())
        assert os.environ[multiprocess.ENVIRONMENT] == str(made)
    assert not made.exists() and multiprocess.ENVIRONMENT not in os.environ


def test_a_directory_given_is_kept_but_emptied_of_an_earlier_runs_files(monkeypatch, tmp_path):
    monkeypatch.setenv(multiprocess.ENVIRONMENT, str(tmp_path))
    (tmp_path / "counter_123.db").write_bytes(b"old")
    (tmp_path / "gauge_livesum_123.db").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("mine")

    with multiprocess.shared_directory_for(4) as given:
        assert given == tmp_path
        assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]
    assert tmp_path.is_dir()


def test_a_worker_forgets_the_queue_gauges_of_workers_that_died_unannounced(monkeypatch, tmp_path):
    monkeypatch.setenv(multiprocess.ENVIRONMENT, str(tmp_path))
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead, alive = int(ended.stdout), os.getpid()
    for pid in (dead, alive):
        (tmp_path / f"gauge_livesum_{pid}.db").write_bytes(b"")
    (tmp_path / f"counter_{dead}.db").write_bytes(b"")

    multiprocess.worker_started()

    # The dead worker's counters still count (totals never go back); its queue does not.
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        f"counter_{dead}.db",
        f"gauge_livesum_{alive}.db",
    ]
    multiprocess.worker_stopping()
    assert sorted(path.name for path in tmp_path.iterdir()) == [f"counter_{dead}.db"]
