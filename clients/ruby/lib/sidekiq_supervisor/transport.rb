# frozen_string_literal: true

require "json"
require "net/http"
require "time"
require "uri"
require_relative "version"

module SidekiqSupervisor
  # POSTs request bodies to the batch route over one persistent (keep-alive) Net::HTTP
  # connection, with short timeouts. Not thread-safe: one sender uses it at a time.
  # Network errors close the connection (the next post opens a new one) and are raised for
  # the caller to decide; HTTP statuses are returned, never raised.
  class Transport
    # An answer of the batch route, read as the wire contract says.
    Response = Struct.new(:status, :body, :retry_after) do
      # :stored (2xx), :too_large (413), :refused (the request itself is invalid: resending
      # the same bytes would fail the same way), :unauthorized, or :unavailable (retry later).
      def verdict
        case status
        when 200..299 then :stored
        when 413 then :too_large
        when 400, 415, 422 then :refused
        when 401, 403 then :unauthorized
        else :unavailable
        end
      end

      # The items of a 2xx answer that were not stored: [index in the batch, result], where
      # a result is {"status" => 422, "detail" => [...]}. The supervisor lists them in
      # "refused" when asked for a minimal answer, else among every item's "results".
      def refused_items
        answer = JSON.parse(body.to_s)
        return listed_refusals(answer["refused"]) if answer.key?("refused")

        results = answer["results"]
        return [] unless results.is_a?(Array)

        results.each_with_index.filter_map do |result, index|
          [index, result] if result.is_a?(Hash) && result["status"].to_i >= 400
        end
      rescue JSON::ParserError, TypeError, NoMethodError
        [] # a 2xx means stored; a body we cannot read does not change that
      end

      private

      def listed_refusals(refused)
        Array(refused).filter_map { |item| [item["index"], item] if item.is_a?(Hash) && item["index"].is_a?(Integer) }
      end

      public

      def excerpt(limit = 200)
        text = body.to_s.dup.force_encoding(Encoding::UTF_8).scrub
        text.length > limit ? "#{text[0, limit]}..." : text
      end
    end

    USER_AGENT = "sidekiq-supervisor-ruby/#{VERSION} (ruby #{RUBY_VERSION})"

    def initialize(endpoint, token: nil, open_timeout: 1.0, read_timeout: 2.0, write_timeout: 2.0)
      @endpoint = endpoint
      @token = token
      @open_timeout = open_timeout
      @read_timeout = read_timeout
      @write_timeout = write_timeout
      @http = nil
    end

    def post(body)
      response = connection.request(build_request(body))
      Response.new(response.code.to_i, response.body, self.class.retry_after(response["Retry-After"]))
    rescue StandardError
      close
      raise
    end

    def close
      http = @http
      @http = nil
      http.finish if http&.started?
    rescue IOError, SystemCallError
      nil # already closed by the peer: nothing left to release
    end

    # Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or nil.
    def self.retry_after(value)
      text = value.to_s.strip
      return nil if text.empty?
      return Float(text) if text.match?(/\A\d+(\.\d+)?\z/)

      [Time.httpdate(text) - Time.now, 0.0].max
    rescue ArgumentError
      nil
    end

    private

    def build_request(body)
      request = Net::HTTP::Post.new(@endpoint.request_uri)
      request["Content-Type"] = "application/json"
      request["Accept"] = "application/json"
      request["User-Agent"] = USER_AGENT
      # Only the refused items, not one result per report: less to send, less to parse here.
      request["Prefer"] = "return=minimal"
      request["Authorization"] = "Bearer #{@token}" if @token
      request.body = body
      request
    end

    def connection
      return @http if @http&.started?

      # Net::HTTP.new honours http_proxy/no_proxy, as the app's other HTTP clients do.
      http = Net::HTTP.new(@endpoint.hostname, @endpoint.port)
      http.use_ssl = @endpoint.scheme == "https"
      http.open_timeout = @open_timeout
      http.read_timeout = @read_timeout
      http.write_timeout = @write_timeout if http.respond_to?(:write_timeout=)
      # A POST is never retried by Net::HTTP itself; say so, the Reporter owns retries.
      http.max_retries = 0 if http.respond_to?(:max_retries=)
      http.start
      @http = http
    end
  end
end
