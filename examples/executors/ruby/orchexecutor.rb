# frozen_string_literal: true

# Example orchestratord executor in Ruby (Debian's ruby-grpc 1.51), following docs/EXECUTORS.md.
#
# One Lease stream: hello, then welcome; heartbeats on a thread at welcome.heartbeat_interval_ms
# (or every third of the shortest lease TTL held, when that is sooner: EXECUTORS.md step 2);
# each assignment gets one progress report (it moves the task to RUNNING), runs for --sleep-ms on a
# thread of its own (at most --max-in-flight at once: the server never sends more), then is
# reported once with its lease token; revocations cancel the work; refused acks drop the result;
# UNAVAILABLE acks are sent again. When the stream breaks it reconnects with backoff and lists its
# in-flight leases in hello.resume. Run it through the launcher build.sh writes (it sets the load path).

require 'json'
require 'orchestrator/v1/executors_services_pb'
require 'channels'
require 'event'
require 'flags'
require 'lease_session'

class RubyExecutor
  V1 = Orchestrator::V1
  # ReportAck.code of a report the server could not apply (database unreachable): send it again.
  CODE_UNAVAILABLE = 14
  RESEND_AFTER = 1.0
  LOG_LOCK = Mutex.new

  Work = Struct.new(:lease, :cancel, :ttl_ms) # ttl_ms: what the lease was granted with

  def initialize(flags)
    @flags = flags
    @lock = Mutex.new
    # Guarded by @lock.
    @in_flight = {}             # task_id -> Work
    @unacked = {}               # task_id -> the final report sent, until its ack
    @pending_progress_acks = {} # task_id -> progress acks still due
    @current = nil              # the session reports go to; nil between streams
    @started = 0
    @completed = 0
    @draining = false
    @done = Event.new
  end

  def log(message)
    # One write per line: tests and operators read the log as it grows, and threads interleave.
    line = "#{Time.now.strftime('%H:%M:%S')} [#{@flags.id}] #{message}\n"
    LOG_LOCK.synchronize { $stdout.write(line) }
  end

  def self.describe(lease)
    "task=#{lease.task_id} token=#{lease.fencing_token}"
  end

  def describe(lease) = self.class.describe(lease)

  def run
    channel = Channels.open(@flags.address, tls_ca_file: @flags.tls_ca_file, tls_authority: @flags.tls_authority,
                                            max_receive_message_size: @flags.max_receive_message_size)
    stub = Channels.stub(V1::Executors, channel)
    metadata = @flags.token.empty? ? {} : { 'authorization' => "Bearer #{@flags.token}" }
    log("connecting to #{@flags.address}#{@flags.tls_ca_file.empty? ? '' : ' (TLS)'} " \
        "capabilities=#{@flags.capabilities.join(',')} max_in_flight=#{@flags.max_in_flight}")
    backoff = 0.2
    loop do
      session = LeaseSession.new(stub, V1::LeaseRequest.new(hello: hello), metadata: metadata)
      welcomed = false
      error = session.run do |response|
        welcomed ||= response.kind == :welcome
        on_response(session, response)
      end
      @lock.synchronize { @current = nil if @current.equal?(session) }
      break if @done.set?

      backoff = 0.2 if welcomed
      why = error ? "#{error.class.name.split('::').last} (#{error.code}) #{error.details}" : 'stream ended by the server'
      log("stream failed: #{why}; reconnecting in #{(backoff * 1000).round}ms")
      break if @done.wait(backoff)

      backoff = [backoff * 2, 5.0].min
    end
    log("stopped after #{@completed} completions")
    channel.close
  end

  # Drain, let the tasks in flight finish and their reports be acknowledged, then half-close (on
  # the next stream's welcome when there is no stream now).
  def stop
    session = @lock.synchronize do
      @draining = true
      @current
    end
    return unless session

    session.write(V1::LeaseRequest.new(drain: V1::DrainSignal.new))
    finish_if_idle(session)
  end

  private

  def hello
    resume = @lock.synchronize { @in_flight.values.map(&:lease) }
    V1::ExecutorHello.new(executor_id: @flags.id, capabilities: @flags.capabilities, max_in_flight: @flags.max_in_flight,
                          resume: resume, version: 'examples/ruby 1', labels: { 'language' => 'ruby' })
  end

  def on_response(session, response)
    case response.kind
    when :welcome then welcome(session, response.welcome)
    when :assignment then assign(session, response.assignment)
    when :revocation
      log("revoked #{describe(response.revocation.lease)}: #{response.revocation.reason}")
      abandon(response.revocation.lease, 'revoked')
    when :ack then ack(session, response.ack)
    when :heartbeat_ack
      response.heartbeat_ack.leases.reject(&:valid).each { |s| log("heartbeat ack: lease no longer valid #{describe(s.lease)}") }
    end # a kind newer than this example: ignored
  end

  def welcome(session, w)
    log("welcome session=#{w.session_id} heartbeat=#{w.heartbeat_interval_ms}ms ttl=#{w.lease_ttl_ms}ms " \
        "resumed=#{w.resumed.size} rejected=#{w.rejected_resumes.size} server=#{w.server_version}")
    w.rejected_resumes.each { |lease| abandon(lease, 'resume rejected') }
    resend = @lock.synchronize do
      @current = session
      @pending_progress_acks.clear # the old stream's acks never come on this one
      w.resumed.filter_map { |lease| @unacked[lease.task_id] }
    end
    resend.each { |report| session.write(report) }
    if @lock.synchronize { @draining }
      session.write(V1::LeaseRequest.new(drain: V1::DrainSignal.new))
      finish_if_idle(session)
    end
    interval = w.heartbeat_interval_ms.positive? ? w.heartbeat_interval_ms / 1000.0 : 1.0
    beat = V1::LeaseRequest.new(heartbeat: V1::HeartbeatSignal.new) # empty: every lease on this stream
    Thread.new do
      last = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      # Checked every 50 ms (at most the interval): a task may be granted a TTL at or below it.
      until session.ended.wait([interval, 0.05].min)
        now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        next if now - last < heartbeat_every(interval)

        session.write(beat)
        last = now
      end
    end
  end

  # welcome's interval, or a third of the shortest lease TTL held when that is sooner.
  def heartbeat_every(interval)
    shortest = @lock.synchronize { @in_flight.values.map(&:ttl_ms).select(&:positive?).min }
    shortest ? [[interval, shortest / 3000.0].min, 0.05].max : interval
  end

  def assign(session, a)
    lease = a.lease
    work = Work.new(lease, Event.new, a.lease_ttl_ms)
    number = @lock.synchronize do
      @in_flight[lease.task_id] = work
      @pending_progress_acks[lease.task_id] = @pending_progress_acks.fetch(lease.task_id, 0) + 1
      @started += 1
    end
    log("assigned #{describe(lease)} key=#{a.spec.key} attempt=#{a.attempt}/#{a.max_attempts}")
    session.write(V1::LeaseRequest.new(progress: V1::TaskProgress.new(lease: lease, fraction: 0,
                                                                    message: "started by #{@flags.id}")))
    Thread.new { perform(a, work, number) }
  end

  def perform(assignment, work, number)
    lease = assignment.lease
    seconds = @flags.sleep_ms / 1000.0
    if @flags.die_after.positive? && number == @flags.die_after
      work.cancel.wait(seconds / 2)
      log("dying mid-task #{describe(lease)}")
      Process.kill(:KILL, Process.pid) # no clean-up at all
    end
    return if work.cancel.wait(seconds)

    report = outcome(assignment)
    session = @lock.synchronize do
      held = @in_flight[lease.task_id]
      return unless held && held.lease.fencing_token == lease.fencing_token # revoked meanwhile

      @unacked[lease.task_id] = report
      @current
    end
    log("report #{report.kind} #{describe(lease)}")
    session&.write(report) # otherwise resent after the reconnect's welcome
  end

  def outcome(assignment)
    lease = assignment.lease
    if rand < @flags.fail_probability
      return V1::LeaseRequest.new(failure: V1::TaskFailure.new(lease: lease, message: 'simulated failure', code: 'SIMULATED',
                                                               retryable: !@flags.permanent_failures))
    end

    result = JSON.generate({ executor: @flags.id, key: assignment.spec.key, attempt: assignment.attempt,
                             upstream: assignment.upstream_results.keys.sort })
    V1::LeaseRequest.new(completion: V1::TaskCompletion.new(lease: lease, result: result))
  end

  def ack(session, ack)
    lease = ack.lease
    task_id = lease.task_id
    progress_ack = @lock.synchronize do
      # Reports of one lease are applied in order, so a task's first ack answers its progress.
      due = @pending_progress_acks[task_id]
      if due
        due <= 1 ? @pending_progress_acks.delete(task_id) : @pending_progress_acks[task_id] = due - 1
      end
      !due.nil?
    end
    if progress_ack
      log("progress ack #{describe(lease)} refused code=#{ack.code}: #{ack.message}") unless ack.accepted
      return
    end
    if !ack.accepted && ack.code == CODE_UNAVAILABLE
      # Not applied: the lease is still ours; send the report again shortly (EXECUTORS.md, Fencing tokens).
      log("ack #{describe(lease)} not applied (#{ack.message}); sending it again in #{(RESEND_AFTER * 1000).round}ms")
      Thread.new { resend(lease) }
      return
    end
    @lock.synchronize do
      report = forget(lease)
      @completed += 1 if ack.accepted && report&.kind == :completion
      if @flags.tasks.positive? && @completed >= @flags.tasks && !@draining
        @draining = true
        session.write(V1::LeaseRequest.new(drain: V1::DrainSignal.new)) # no new assignment from now on
      end
    end
    log(ack.accepted ? "ack #{describe(lease)} accepted" : "ack #{describe(lease)} REFUSED code=#{ack.code}: #{ack.message}")
    finish_if_idle(session)
  end

  # Draining with nothing in flight (every report acknowledged): half-close; the server ends the
  # stream OK and #run returns.
  def finish_if_idle(session)
    return unless @lock.synchronize { @draining && @in_flight.empty? }

    @done.set
    session.half_close
  end

  def resend(lease)
    sleep RESEND_AFTER
    report, session = @lock.synchronize { [@unacked[lease.task_id], @current] }
    return unless report && session && report_lease(report).fencing_token == lease.fencing_token

    session.write(report)
  end

  def report_lease(report)
    report.public_send(report.kind).lease
  end

  # Drops the task's in-flight entry and unacked report if they belong to this exact lease (the
  # task may be back here under a newer token); returns the unacked report. Call with @lock held.
  def forget(lease)
    work = @in_flight[lease.task_id]
    return nil unless work && work.lease.fencing_token == lease.fencing_token

    @in_flight.delete(lease.task_id)
    @pending_progress_acks.delete(lease.task_id)
    @unacked.delete(lease.task_id)
  end

  def abandon(lease, why)
    work = @lock.synchronize do
      work = @in_flight[lease.task_id]
      forget(lease)
      work
    end
    return unless work && work.lease.fencing_token == lease.fencing_token

    work.cancel.set
    log("abandoned #{describe(lease)} (#{why})")
  end
end

if $PROGRAM_NAME == __FILE__
  $stdout.sync = true
  begin
    flags = Flags.parse(ARGV)
  rescue OptionParser::ParseError => e
    warn "#{e.message}\n#{Flags.parser(Flags.new).help}"
    exit 2
  end
  executor = RubyExecutor.new(flags)
  # The first signal drains (trap handlers may not take a Mutex: on a thread of its own); a second
  # one exits at once.
  stopping = false
  %w[TERM INT].each do |signal|
    Signal.trap(signal) do
      exit!(1) if stopping
      stopping = true
      Thread.new { executor.stop }
    end
  end
  executor.run
end
