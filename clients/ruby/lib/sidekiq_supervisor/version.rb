# frozen_string_literal: true

module SidekiqSupervisor
  VERSION = "0.1.0"
end
