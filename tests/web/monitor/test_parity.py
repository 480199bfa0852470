"""Parity with Sidekiq's own API: a real Sidekiq process of each line and jobs written by Ruby's
``Sidekiq::Client``; the /sidekiq pages must show what ``Sidekiq::Stats`` and friends compute."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from sidekiq_supervisor.settings import Settings
from tests.conftest import redis_test_url
from tests.e2e.real_sidekiq import LINES, line_environment, require_sidekiq, sidekiq, wait_until
from tests.web.monitor.conftest import data_values, monitor_client

# Ruby and a real Sidekiq process: not in the fast lane.
pytestmark = pytest.mark.e2e

# Jobs of every kind, written the way a Rails app writes them: pushes, schedules, failures, deaths.
WRITE = """
require "sidekiq/api"
require "json"
5.times { |i| Sidekiq::Client.push("class" => "ParityJob", "queue" => "parity", "args" => [i, "<b>"]) }
3.times { |i| Sidekiq::Client.push("class" => "ParityMailer", "queue" => "mailers", "args" => [i]) }
2.times { |i| Sidekiq::Client.push("class" => "SleepyJob", "queue" => "default", "args" => ["nap"]) }
4.times { |i| Sidekiq::Client.push("class" => "Later", "args" => [i], "at" => Time.now.to_f + 60 * i + 60) }
failed = ->(i) { {"class" => "FailingJob", "args" => [i], "queue" => "default", "jid" => SecureRandom.hex(12),
  "retry" => true, "retry_count" => i, "error_class" => "RuntimeError", "error_message" => "boom #{i}",
  "failed_at" => Time.now.to_f, "created_at" => Time.now.to_f} }
Sidekiq.redis do |c|
  3.times { |i| c.zadd("retry", Time.now.to_f + 60 * (i + 1), Sidekiq.dump_json(failed.(i))) }
  c.incrby("stat:processed", 1234)
  c.incrby("stat:failed", 56)
  c.incrby("stat:processed:#{Time.now.utc.strftime('%Y-%m-%d')}", 1234)
  c.incrby("stat:failed:#{Time.now.utc.strftime('%Y-%m-%d')}", 56)
end
2.times { |i| Sidekiq::DeadSet.new.kill(Sidekiq.dump_json(failed.(10 + i)), notify_failure: false) }
"""

READ = """
require "sidekiq/api"
require "json"
s = Sidekiq::Stats.new
h = Sidekiq::Stats::History.new(7)
puts JSON.generate(
  "processed" => s.processed, "failed" => s.failed, "busy" => s.workers_size, "enqueued" => s.enqueued,
  "retries" => s.retry_size, "scheduled" => s.scheduled_size, "dead" => s.dead_size,
  "processes" => s.processes_size, "latency" => s.default_queue_latency,
  "queues" => Sidekiq::Queue.all.map { |q| [q.name, q.size] }.to_h,
  "history" => [h.processed.values.sum, h.failed.values.sum],
  "identities" => Sidekiq::ProcessSet.new.map { |p| p["identity"] },
  # Sidekiq 7.2+ yields a Work object (its job's jid); older lines a hash with the payload.
  "running" => Sidekiq::Workers.new.map { |_p, _t, work|
    work.respond_to?(:job) ? work.job.jid : work["payload"]["jid"] },
  "dead_jids" => Sidekiq::DeadSet.new.map(&:jid), "retry_jids" => Sidekiq::RetrySet.new.map(&:jid))
"""


def ruby(script: str, line_env: dict[str, str]) -> str:
    env = {"REDIS_URL": redis_test_url(), "PATH": "/usr/bin:/bin", **line_env}
    done = subprocess.run(
        ["ruby", "-e", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    # Sidekiq 7 and 8 log their Redis connection to stdout first: the answer is the last line.
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


@pytest.mark.parametrize("line", LINES)
def test_the_dashboard_and_lists_match_sidekiqs_own_api(redis_client, tmp_path, line):
    require_sidekiq()
    line_env = line_environment(line)
    redis_client.set("e2e:sleep:nap", 1)  # the two SleepyJobs stay busy until the key goes
    ruby(WRITE, line_env)
    env = {"REDIS_URL": redis_test_url(), "SUPERVISOR_CLIENT": "none", **line_env}
    settings = Settings(redis_url=redis_test_url(), database_url="sqlite://")
    with sidekiq(env, tmp_path, redis_client, "parity"), monitor_client(settings) as client:
        busy_now = lambda: client.get("/sidekiq/stats").json()["sidekiq"]["busy"]  # noqa: E731
        wait_until("both sleepy jobs run", lambda: busy_now() == 2)
        truth = json.loads(ruby(READ, line_env))
        page = client.get("/sidekiq?days=7").text
        figures = client.get("/sidekiq/stats").json()["sidekiq"]
        busy = client.get("/sidekiq/busy").text
        queues = client.get("/sidekiq/queues").text
        retries = client.get("/sidekiq/retries").text
        dead = client.get("/sidekiq/morgue").text
        redis_client.delete("e2e:sleep:nap")
    shown = data_values(page, "data-stat")
    for key in ("processed", "failed", "busy", "enqueued", "retries", "scheduled", "dead"):
        assert shown[key] == f"{truth[key]:,}", key
        assert figures[key] == truth[key], key
    assert truth["busy"] == 2 and truth["enqueued"] == 8 and truth["processed"] >= 1234
    assert figures["processes"] == truth["processes"] == 1
    assert abs(figures["default_latency"] - truth["latency"]) < 5
    assert data_values(page, "data-history") == {"processed": f"{truth['history'][0]:,}",
                                                 "failed": f"{truth['history'][1]:,}"}  # fmt: skip
    sizes = dict(re.findall(r'data-queue="([^"]+)">.*?data-size>([^<]+)<', queues, re.S))
    assert sizes == {name: str(size) for name, size in truth["queues"].items()}
    assert [f'data-identity="{i}"' in busy for i in truth["identities"]] == [True]
    assert sorted(re.findall(r'class="jid"[^>]*>([0-9a-f]{24})<', busy)) == sorted(truth["running"])
    # Ruby's JobSet#each walks from the highest score; the UI shows retries soonest first, the
    # dead newest first.
    assert re.findall(r'<tr data-jid="([^"]+)"', retries) == truth["retry_jids"][::-1]
    assert re.findall(r'<tr data-jid="([^"]+)"', dead) == truth["dead_jids"]
