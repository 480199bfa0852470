# frozen_string_literal: true

require "test_helper"

# The app setting: one supervisor watches several Sidekiq apps, each under /apps/NAME/.
class AppTest < SupervisorTest
  Config = SidekiqSupervisor::Config

  def app_config(host, app = nil)
    Config.new.tap do |config|
      config.host = host
      config.app = app
    end
  end

  def test_an_app_puts_the_reports_under_its_prefix_and_none_keeps_the_default_apps_route
    assert_equal "http://h:8000/apps/billing/api/v1/events", app_config("http://h:8000", "billing").endpoint.to_s
    assert_equal "https://h/supervisor/apps/billing/api/v1/events",
                 app_config("https://u:tok@h/supervisor/", "billing").endpoint.to_s
    assert_equal "http://h:8000/api/v1/events", app_config("http://h:8000").endpoint.to_s
    assert_equal "http://h:8000/api/v1/events", app_config("http://h:8000", " ").endpoint.to_s
    assert_nil app_config("http://h:8000", " ").app
    assert_equal "tok", app_config("https://u:tok@h/supervisor/", "billing").bearer_token
  end

  def test_the_environment_sets_the_app
    config = Config.from_env("SIDEKIQ_SUPERVISOR_HOST" => "http://h:8000", "SIDEKIQ_SUPERVISOR_APP" => " billing ")

    assert_equal "billing", config.app
    assert_equal "http://h:8000/apps/billing/api/v1/events", config.endpoint.to_s
    assert config.enabled?
    assert_nil Config.from_env("SIDEKIQ_SUPERVISOR_HOST" => "http://h:8000", "SIDEKIQ_SUPERVISOR_APP" => "").app
  end

  def test_names_are_the_services_app_names
    config = Config.new
    ["a", "0", "a" * 63, "my_app-2", "billing"].each do |name|
      config.app = name
      assert_equal name, config.app
    end
    ["Billing", "-billing", "_billing", "a" * 64, "bil/ling", "bil ling", "billing.eu", "bílling"].each do |name|
      error = assert_raises(ArgumentError, name) { config.app = name }
      assert_equal "sidekiq-supervisor: app (SIDEKIQ_SUPERVISOR_APP) #{name.inspect} is not an app name: " \
                   "it must match [a-z0-9][a-z0-9_-]{0,62}", error.message
      assert_equal "billing", config.app, "a refused name changes nothing"
    end
  end

  def test_a_bad_name_from_the_environment_turns_reporting_off_instead_of_raising
    config = Config.from_env("SIDEKIQ_SUPERVISOR_HOST" => "http://h:8000", "SIDEKIQ_SUPERVISOR_APP" => "Billing")

    refute config.enabled?
    assert_nil config.endpoint
    assert_match(/\(SIDEKIQ_SUPERVISOR_APP\) "Billing" .* must match \[a-z0-9\]\[a-z0-9_-\]\{0,62\}/, config.problem)
  end

  def test_a_host_that_already_names_the_app_is_not_doubled
    %w[http://h:8000/apps/billing http://h:8000/apps/billing/].each do |host|
      assert_equal "http://h:8000/apps/billing/api/v1/events", app_config(host, "billing").endpoint.to_s
      assert_equal "http://h:8000/apps/billing/api/v1/events", app_config(host).endpoint.to_s
    end
    assert_equal "http://h/sv/apps/billing/api/v1/events",
                 app_config("http://h/sv/apps/billing", "billing").endpoint.to_s
    # Only a whole /apps/NAME segment names an app.
    assert_equal "http://h/myapps/billing/apps/billing/api/v1/events",
                 app_config("http://h/myapps/billing", "billing").endpoint.to_s
  end

  def test_a_host_that_names_another_app_is_a_configuration_error
    config = app_config("http://u:secret@h:8000/apps/shop", "billing")

    refute config.enabled?
    assert_nil config.endpoint
    assert_match(%r{app \(SIDEKIQ_SUPERVISOR_APP\) "billing" differs .* ends with /apps/shop}, config.problem)
    refute_match(/secret/, config.problem, "the problem message must not repeat credentials")
    error = assert_raises(ArgumentError) { config.validate! }
    assert_equal "sidekiq-supervisor: #{config.problem}", error.message
    from_env = Config.from_env("SIDEKIQ_SUPERVISOR_HOST" => "http://h/apps/shop", "SIDEKIQ_SUPERVISOR_APP" => "billing")
    refute from_env.enabled?
  end

  def test_configure_raises_for_an_app_the_host_contradicts_in_either_order
    [%w[host app], %w[app host]].each do |order|
      SidekiqSupervisor.reset!
      error = assert_raises(ArgumentError, order.inspect) do
        SidekiqSupervisor.configure do |config|
          config.logger = logger
          values = { "host" => "http://h:8000/apps/shop", "app" => "billing" }
          order.each { |name| config.public_send("#{name}=", values.fetch(name)) }
        end
      end
      assert_match(/differs from the app the host names/, error.message)
      refute SidekiqSupervisor.enabled?, "what configure kept is not used"
    end
    assert_raises(ArgumentError) { SidekiqSupervisor.configure { |config| config.app = "Billing" } }
  end

  def test_a_bad_app_from_the_environment_is_logged_once_and_jobs_run_unreported
    server = start_server
    ENV["SIDEKIQ_SUPERVISOR_HOST"] = server.url
    ENV["SIDEKIQ_SUPERVISOR_APP"] = "Billing"
    SidekiqSupervisor.reset!
    # A block that leaves host and app alone does not raise for the environment's mistake.
    SidekiqSupervisor.configure { |config| config.logger = logger }
    client = SidekiqSupervisor::ClientMiddleware.new
    worker = SidekiqSupervisor::ServerMiddleware.new

    3.times do
      assert_equal :pushed, client.call("HardWorker", job, "default", nil) { :pushed }
      assert_equal :ran, worker.call(Object.new, job, "default") { :ran }
    end

    refute SidekiqSupervisor.enabled?
    assert_equal 1, log_text.scan(/SIDEKIQ_SUPERVISOR_APP\) "Billing" is not an app name/).size, log_text
    assert_empty server.requests
  ensure
    ENV.delete("SIDEKIQ_SUPERVISOR_HOST")
    ENV.delete("SIDEKIQ_SUPERVISOR_APP")
  end

  def test_reports_are_posted_to_the_apps_batch_route
    server = start_server
    configure_global(server.url, app: "billing", token: "tok")
    client = SidekiqSupervisor::ClientMiddleware.new

    client.call("HardWorker", job, "default", nil) { true }
    assert SidekiqSupervisor.flush(3)

    request = server.requests.first
    assert_equal "/apps/billing/api/v1/events", request.path
    assert_equal "Bearer tok", request.headers["authorization"]
    assert_equal ["queued"], server.delivered_events.map { |e| e["event"] }
  end
end
