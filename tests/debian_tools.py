"""Debian's tools that some tests run: found on PATH, or the test is skipped (and in CI, where
``.ci/run`` installs them and sets ``SUPERVISOR_CI``, it fails)."""

from __future__ import annotations

import os
import shutil

import pytest


def required_tool(name: str, package: str) -> str:
    """The path of ``name``; skips (fails in CI) saying which Debian package has it."""
    found = shutil.which(name)
    if found is None:
        reason = f"{name} is not installed: apt-get install {package} (.ci/run does)"
        if os.environ.get("SUPERVISOR_CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found
