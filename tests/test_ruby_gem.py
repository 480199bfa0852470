"""The Ruby gem's own test suite (clients/ruby/test, minitest), run as a subprocess, once per
Sidekiq line the project supports (6.4.1, 7.3.9, 8.1.7).

The suite starts a local HTTP server (WEBrick) and child Ruby processes, and loads Sidekiq in
some of them: Debian's ruby-sidekiq (6.4.1), or the 7.x or 8.x that ``line_environment`` selects
(``../shared/sidekiq-versions``; without it those cases skip, or fail in CI). It needs Debian's
``ruby``, ``ruby-webrick`` and ``ruby-sidekiq``. Without them this test is skipped, with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.real_sidekiq import LINES, line_environment

# The gem's own suite in Ruby, with a real Sidekiq: not in the fast lane.
pytestmark = pytest.mark.e2e

GEM = Path(__file__).resolve().parents[1] / "clients" / "ruby"
RUN_SUITE = 'Dir["test/**/*_test.rb"].sort.each { |f| require File.expand_path(f) }'
PACKAGES = "apt-get install ruby ruby-webrick ruby-sidekiq"


def _ruby(env: dict[str, str]) -> str:
    """The path of ``ruby`` able to load what the suite needs under ``env``, or skip."""
    ruby = shutil.which("ruby", path=env.get("PATH"))
    if ruby is None:
        pytest.skip(f"needs `ruby` on PATH ({PACKAGES})")
    for library in ("webrick", "sidekiq"):
        probe = subprocess.run(
            [ruby, "-e", f'require "{library}"'],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if probe.returncode != 0:
            first_line = (probe.stderr.strip().splitlines() or ["no output"])[0]
            pytest.skip(f"needs the Ruby library {library!r} ({PACKAGES}): {first_line}")
    return ruby


@pytest.mark.timeout(180)
@pytest.mark.parametrize("line", LINES)
def test_the_ruby_gem_suite_passes(line: int) -> None:
    # The suite's servers are on 127.0.0.1; a proxy from the environment must not get in between.
    proxies = {"http_proxy", "https_proxy", "all_proxy"}
    env = {name: value for name, value in os.environ.items() if name.lower() not in proxies}
    env = {name: value for name, value in env.items() if not name.startswith("SIDEKIQ_SUPERVISOR_")}
    # RUBYOPT and PATH select the line (line 6 sets neither: Debian's Sidekiq); an outer RUBYOPT
    # must not load another Sidekiq first.
    env.pop("RUBYOPT", None)
    env.update(line_environment(line))
    ruby = _ruby(env)

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
    assert done.returncode == 0, (
        f"the gem's minitest suite failed on Sidekiq {line} (exit {done.returncode}):\n{output}"
    )
    # Every prerequisite was checked above, so nothing may be skipped either.
    assert " 0 failures, 0 errors, 0 skips" in done.stdout, output
    # The suite ran on the intended line: it prints the Sidekiq its child processes load (and a
    # test of its own compares that with SIDEKIQ_LINE).
    loaded = re.search(r"^Sidekiq under test: (\d+)\.\d+\.\d+\S* \(SIDEKIQ_LINE=(\w+)\)$", done.stdout, re.M)
    assert loaded, output
    assert (loaded.group(1), loaded.group(2)) == (str(line), str(line)), output
    # The gem adds no warnings of its own under `ruby -w` (Sidekiq's sources are not ours).
    gem_warnings = [text for text in done.stderr.splitlines() if "warning:" in text and str(GEM) in text]
    assert not gem_warnings, "\n".join(gem_warnings)


def test_the_gem_keeps_its_house_style() -> None:
    rubocop = shutil.which("rubocop")
    if rubocop is None:
        pytest.skip("needs Debian's rubocop (apt-get install rubocop; .ci/run installs it)")
    done = subprocess.run([rubocop], cwd=GEM, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
