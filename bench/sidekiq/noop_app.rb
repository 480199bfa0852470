# The benchmark's Sidekiq app: one no-op job, and the supervisor middlewares chosen by
# SUPERVISOR_CLIENT: "none", "seed" (the seed's Faraday middlewares, verbatim) or "gem".
require "sidekiq"

case ENV.fetch("SUPERVISOR_CLIENT")
when "seed"
  require "faraday"
  require "json"
  require_relative "../../tests/e2e/seed_middlewares"
when "gem"
  $LOAD_PATH.unshift(ENV.fetch("SUPERVISOR_GEM_LIB", "").then { |lib| lib.empty? ? File.expand_path("../../clients/ruby/lib", __dir__) : lib })
  require "sidekiq_supervisor"
end

class NoopJob
  include Sidekiq::Worker

  def perform(number); end
end
