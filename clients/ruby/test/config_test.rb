# frozen_string_literal: true

require "test_helper"

class ConfigTest < SupervisorTest
  Config = SidekiqSupervisor::Config

  def test_it_reads_host_token_and_mode_from_the_environment
    config = Config.from_env(
      "SIDEKIQ_SUPERVISOR_HOST" => "http://supervisor.internal:8000",
      "SIDEKIQ_SUPERVISOR_TOKEN" => "s3cret", "SIDEKIQ_SUPERVISOR_MODE" => "sync"
    )

    assert_equal "http://supervisor.internal:8000/api/v1/events", config.endpoint.to_s
    assert_equal "s3cret", config.bearer_token
    assert config.sync?
    assert config.enabled?
  end

  def test_defaults_are_the_documented_ones
    config = Config.from_env({})

    assert_equal [10_000, 500, 0.5, 1.0, 2.0, 5.0, 0.5, 30.0],
                 [config.buffer_size, config.batch_size, config.flush_interval, config.open_timeout,
                  config.read_timeout, config.shutdown_timeout, config.retry_base, config.retry_max]
    refute config.sync?
    refute config.enabled?
    assert_equal "SIDEKIQ_SUPERVISOR_HOST is not set", config.problem
  end

  def test_the_token_comes_from_the_url_credentials_which_never_reach_the_endpoint
    config = Config.from_env("SIDEKIQ_SUPERVISOR_HOST" => "https://user:TO%2Bken@supervisor.internal/base/")

    assert_equal "TO+ken", config.bearer_token
    assert_equal "https://supervisor.internal/base/api/v1/events", config.endpoint.to_s
    assert_equal "TOKEN", Config.from_env("SIDEKIQ_SUPERVISOR_HOST" => "http://TOKEN@h:1").bearer_token
    explicit = Config.from_env("SIDEKIQ_SUPERVISOR_HOST" => "http://u:url@h:1", "SIDEKIQ_SUPERVISOR_TOKEN" => "env")
    assert_equal "env", explicit.bearer_token
    assert_nil Config.from_env("SIDEKIQ_SUPERVISOR_HOST" => "http://h:1").bearer_token
  end

  def test_a_host_without_scheme_is_http_and_a_bad_one_disables_reporting
    assert_equal "http://supervisor.internal:8000/api/v1/events",
                 Config.from_env("SIDEKIQ_SUPERVISOR_HOST" => "supervisor.internal:8000").endpoint.to_s
    bad = Config.from_env("SIDEKIQ_SUPERVISOR_HOST" => "ftp://user:pw@files")

    refute bad.enabled?
    assert_match(/not an http\(s\) URL/, bad.problem)
    refute_match(/pw/, bad.problem, "the problem message must not repeat credentials")
  end

  def test_an_unknown_mode_is_async
    config = Config.new
    { "SYNC" => :sync, " async " => :async, :sync => :sync, "bogus" => :async }.each do |mode, expected|
      config.mode = mode
      assert_equal expected, config.normalized_mode, mode.inspect
    end
    refute config.known_mode?
  end

  def test_batch_size_never_exceeds_what_the_service_takes
    config = Config.new
    config.batch_size = 50_000
    assert_equal 5_000, config.effective_batch_size
    config.batch_size = 0
    assert_equal 1, config.effective_batch_size
  end
end
