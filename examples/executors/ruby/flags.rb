# frozen_string_literal: true

require 'optparse'

# The executor's command line: the same flags as the Python, Go and Java examples.
Flags = Struct.new(:address, :id, :capabilities, :max_in_flight, :sleep_ms, :fail_probability,
                   :permanent_failures, :die_after, :tasks, :token, :tls_ca_file, :tls_authority,
                   :max_receive_message_size, keyword_init: true) do
  def self.parse(argv)
    flags = new(address: env('ORCHESTRATOR_ADDRESS', '127.0.0.1:50051'), id: "ruby-#{Process.pid}",
                capabilities: ['echo'], max_in_flight: 1, sleep_ms: 100, fail_probability: 0.0,
                permanent_failures: false, die_after: 0, tasks: 0, token: env('ORCHESTRATOR_TOKEN', ''),
                tls_ca_file: '', tls_authority: '', max_receive_message_size: 4 << 20)
    rest = parser(flags).parse(argv)
    raise OptionParser::NeedlessArgument, rest.join(' ') unless rest.empty?

    flags
  end

  def self.env(name, fallback)
    value = ENV.fetch(name, '')
    value.empty? ? fallback : value
  end

  def self.parser(flags)
    OptionParser.new do |o|
      o.banner = 'usage: orchexecutor [flags]   (--name VALUE or --name=VALUE)'
      o.on('--address HOST:PORT', 'orchestratord gRPC address (default $ORCHESTRATOR_ADDRESS or 127.0.0.1:50051)') { |v| flags.address = v }
      o.on('--id ID', 'executor id, stable across reconnects (default ruby-<pid>)') { |v| flags.id = v }
      o.on('--capabilities A,B', Array, 'comma-separated capabilities (default echo)') { |v| flags.capabilities = v }
      o.on('--max-in-flight N', Integer, 'tasks held at once (default 1)') { |v| flags.max_in_flight = v }
      o.on('--sleep-ms N', Integer, 'simulated work per task (default 100)') { |v| flags.sleep_ms = v }
      o.on('--fail-probability P', Float, 'probability a task fails (default 0)') { |v| flags.fail_probability = v }
      o.on('--permanent-failures', 'failures are not retryable') { flags.permanent_failures = true }
      o.on('--die-after N', Integer, 'SIGKILL itself halfway through task N') { |v| flags.die_after = v }
      o.on('--tasks N', Integer, 'drain and exit after N accepted completions (0 = run forever)') { |v| flags.tasks = v }
      o.on('--token JWT', 'bearer token for --auth jwt servers (default $ORCHESTRATOR_TOKEN)') { |v| flags.token = v }
      o.on('--tls-ca-file PEM', 'use TLS, trusting this CA (for --grpc-tls-address)') { |v| flags.tls_ca_file = v }
      o.on('--tls-authority NAME', 'TLS server name to verify, when it differs from the address host') { |v| flags.tls_authority = v }
      o.on('--max-receive-message-size N', Integer, 'largest assignment accepted, bytes (default 4194304)') do |v|
        flags.max_receive_message_size = v
      end
    end
  end
end
