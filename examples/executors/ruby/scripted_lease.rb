# frozen_string_literal: true

require 'orchestrator/v1/executors_services_pb'
require 'channels'
require 'lease_session'
require 'mailbox'

# An API check's expectation was not met.
CheckFailed = Class.new(StandardError)

# A Lease stream that a check drives step by step: it sends what the check says and returns the
# responses in order (api_checks.rb).
class ScriptedLease
  V1 = Orchestrator::V1
  WAIT = 15 # seconds for any one response

  # nil until the stream ends; then :ok or the GRPC::BadStatus it ended with.
  attr_reader :status

  def initialize(channel, executor_id, capability, max_in_flight: 1)
    hello = V1::ExecutorHello.new(executor_id: executor_id, capabilities: [capability], max_in_flight: max_in_flight,
                                  labels: { 'language' => 'ruby' }, version: 'examples/ruby api-checks')
    @session = LeaseSession.new(Channels.stub(V1::Executors, channel), V1::LeaseRequest.new(hello: hello))
    @responses = Mailbox.new
    @status = nil
    @reader = Thread.new do
      error = @session.run { |response| @responses.push(response) }
      @status = error || :ok
    end
  end

  def write(**kind)
    @session.write(V1::LeaseRequest.new(**kind))
  end

  # The next response of `kind` (a LeaseResponse oneof name), skipping heartbeat acks not asked for.
  def expect(kind, &want)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + WAIT
    loop do
      left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
      response = @responses.pop([left, 0].max)
      ended = @session.ended.set? ? "; stream ended #{@status.inspect}" : ''
      raise CheckFailed, "no #{kind} within #{WAIT}s#{ended}" if response.nil?
      return response.public_send(kind) if response.kind == kind && (want.nil? || want.call(response.public_send(kind)))
      next if response.kind == :heartbeat_ack

      raise CheckFailed, "waiting for #{kind}, got #{response.kind}: #{response.to_h}"
    end
  end

  def welcome = expect(:welcome)

  def assignment = expect(:assignment)

  def ack(lease)
    ack = expect(:ack)
    raise CheckFailed, "ack lease: expected #{lease.to_h}, got #{ack.lease.to_h}" unless ack.lease == lease

    ack
  end

  def complete(lease, result)
    write(completion: V1::TaskCompletion.new(lease: lease, result: result))
    ack = ack(lease)
    raise CheckFailed, "completion refused: #{ack.to_h}" unless ack.accepted
  end

  # RST_STREAM(CANCEL), the way grpc-ruby abandons a call.
  def cancel = @session.cancel

  # Drain, half-close, and wait for the end: the status (:ok, or the GRPC::BadStatus).
  def close
    write(drain: V1::DrainSignal.new)
    @session.half_close
    wait_end
  end

  def wait_end
    raise CheckFailed, "stream did not end within #{WAIT}s" unless @reader.join(WAIT)

    @status
  end
end
