# Developer shortcuts; CI runs `bash .ci/run`. Python from PATH (your virtual environment).
PYTHON ?= python
# Real Sidekiq, Ruby and service processes (e2e), Chromium (browser) and anything over ~2 s (slow)
# are left to `make test`, and so is the PostgreSQL half of the tests that run on both databases
# (`postgres`). The fast lane runs on two workers (pytest-xdist): each claims its own
# Redis index and makes its own databases, so they never meet.
FAST_LANE := not slow and not e2e and not browser and not postgres
# The coverage floor: also [tool.coverage.report] fail_under in pyproject.toml (keep them equal).
COVERAGE_FLOOR := 92

.PHONY: lint typecheck test-fast test check

lint:
	ruff check src tests bench
	ruff format --check src tests bench

typecheck:
	mypy

test-fast:
	$(PYTHON) -m pytest -n 2 -m "$(FAST_LANE)"

test:
	$(PYTHON) -m pytest --cov=sidekiq_supervisor --cov-report=term --cov-fail-under=$(COVERAGE_FLOOR)

check: lint typecheck test-fast
