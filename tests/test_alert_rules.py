"""The alert rules shipped in deploy/prometheus: promtool finds them valid and their unit tests
(alerts.test.yml) pass, every rule has tests, and every metric a rule reads is one /metrics
publishes, under that very name."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.web.app import create_app
from tests import sidekiq_fixtures
from tests.debian_tools import required_tool

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"
RULES = DEPLOY / "alerts.yml"
RULE_TESTS = DEPLOY / "alerts.test.yml"
METRIC = re.compile(r"\b(?:supervisor|sidekiq)_[a-z_]+\b")


def promtool() -> str:
    return required_tool("promtool", "prometheus")


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_finds_the_rules_valid():
    checked = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout


def test_the_rules_unit_tests_pass():
    tested = subprocess.run(
        [promtool(), "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, cwd=DEPLOY
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_rule_has_a_test_where_it_fires_and_one_where_it_does_not():
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    for rule in rules():
        outcomes = {bool(case["exp_alerts"]) for case in cases if case["alertname"] == rule["alert"]}
        assert outcomes == {True, False}, rule["alert"]


@pytest.fixture
def published(settings: Settings, redis_client) -> set[str]:
    """The names of every sample a scrape gives once each kind of figure has something to say."""
    sidekiq_fixtures.load(redis_client, "7.3.10")
    with TestClient(create_app(settings.model_copy(update={"metrics_cache_seconds": 0}))) as client:
        fields = {"arguments": "[1]", "job_class": "Billing"}
        client.post("/api/v1/jobs/j1/started", data={**fields, "at": "100"})
        client.post("/api/v1/jobs/j1/complete", data={**fields, "at": "101"})
        client.post("/api/v1/jobs/j2/failed", data=fields)
        client.get("/metrics")  # the first reading of the ledger
        text = client.get("/metrics").text
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_every_metric_the_rules_read_is_published(published):
    read = {name for rule in rules() for name in METRIC.findall(rule["expr"])}

    assert read - published == set()
    assert len(read) >= 10
