"""The Ruby gem's own test suite (clients/ruby/test, minitest), run as a subprocess.

The suite starts a local HTTP server (WEBrick) and child Ruby processes, and loads the
installed Sidekiq in some of them. It needs Debian's ``ruby``, ``ruby-webrick`` and
``ruby-sidekiq``. Without them this test is skipped, with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

# The gem's own suite in Ruby, with a real Sidekiq: not in the fast lane.
pytestmark = pytest.mark.e2e

GEM = Path(__file__).resolve().parents[1] / "clients" / "ruby"
RUN_SUITE = 'Dir["test/**/*_test.rb"].sort.each { |f| require File.expand_path(f) }'
PACKAGES = "apt-get install ruby ruby-webrick ruby-sidekiq"


def _ruby() -> str:
    """The path of ``ruby`` able to load what the suite needs, or skip."""
    ruby = shutil.which("ruby")
    if ruby is None:
        pytest.skip(f"needs `ruby` on PATH ({PACKAGES})")
    for library in ("webrick", "sidekiq"):
        probe = subprocess.run(
            [ruby, "-e", f'require "{library}"'], capture_output=True, text=True, timeout=30, check=False
        )
        if probe.returncode != 0:
            first_line = (probe.stderr.strip().splitlines() or ["no output"])[0]
            pytest.skip(f"needs the Ruby library {library!r} ({PACKAGES}): {first_line}")
    return ruby


@pytest.mark.timeout(180)
def test_the_ruby_gem_suite_passes() -> None:
    ruby = _ruby()
    # The suite's servers are on 127.0.0.1; a proxy from the environment must not get in between.
    proxies = {"http_proxy", "https_proxy", "all_proxy"}
    env = {name: value for name, value in os.environ.items() if name.lower() not in proxies}
    env = {name: value for name, value in env.items() if not name.startswith("SIDEKIQ_SUPERVISOR_")}

    done = subprocess.run(
        [ruby, "-w", "-Ilib", "-Itest", "-e", RUN_SUITE],
        cwd=GEM,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )

    output = f"{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, f"the gem's minitest suite failed (exit {done.returncode}):\n{output}"
    # Every prerequisite was checked above, so nothing may be skipped either.
    assert " 0 failures, 0 errors, 0 skips" in done.stdout, output
