# frozen_string_literal: true

require_relative "lib/sidekiq_supervisor/version"

# Where the project lives, for the gem's links. Set it to the public repository before the
# first release.
repository = "https://github.com/sidekiq-supervisor/sidekiq-supervisor"

Gem::Specification.new do |spec|
  spec.name = "sidekiq-supervisor"
  spec.version = SidekiqSupervisor::VERSION
  spec.authors = ["sidekiq-supervisor contributors"]
  spec.license = "MIT"
  spec.summary = "Sidekiq middlewares that report every job's queued, started, complete and failed events " \
                 "to a sidekiq-supervisor service."
  spec.description = "Client and server middlewares for Sidekiq 6, 7 and 8 that send job events to " \
                     "sidekiq-supervisor in batches from a background thread, over a keep-alive " \
                     "Net::HTTP connection, without ever failing or slowing a job. Standard library only."
  spec.homepage = repository
  spec.required_ruby_version = ">= 2.7"

  spec.metadata = {
    "homepage_uri" => repository,
    "source_code_uri" => "#{repository}/tree/main/clients/ruby",
    "changelog_uri" => "#{repository}/blob/main/clients/ruby/CHANGELOG.md",
    "rubygems_mfa_required" => "true"
  }

  # The committed files when this is a git checkout; the files on disk otherwise (an
  # uncommitted tree, or a source tarball without git).
  tracked = begin
    IO.popen(%w[git ls-files -z], chdir: __dir__, err: File::NULL, &:read).split("\x0")
  rescue SystemCallError
    []
  end
  on_disk = Dir.glob("**/*", base: __dir__).reject { |f| File.directory?(File.join(__dir__, f)) }
  candidates = tracked.empty? ? on_disk : tracked
  spec.files = candidates.grep(%r{\A(lib/.+\.rb|README\.md|CHANGELOG\.md|sidekiq-supervisor\.gemspec)\z}).sort
  spec.require_paths = ["lib"]

  # Sidekiq is the app's own dependency; these are the versions whose middleware API the gem
  # follows. Nothing else: Net::HTTP, json, logger and socket come with Ruby.
  spec.add_dependency "sidekiq", ">= 6.0", "< 9"
end
