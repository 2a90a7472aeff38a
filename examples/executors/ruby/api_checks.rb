# frozen_string_literal: true

# Checks that an unmodified grpc-ruby client (Debian's 1.51) gets what the gRPC contract promises
# from orchestratord: unary, server-streaming and bidi calls, deadlines, metadata, message limits
# both ways, compression, rich error details, UNIMPLEMENTED, cancellation, and TLS. The same checks
# as the Java example's ApiChecks.java. Each prints one line, "PASS name (N ms): detail" or
# "FAIL name (N ms): why"; the last line is "api-checks: ok=N failed=N"; exit status 1 when one failed.
#
#   orchexecutor-api-checks --address HOST:PORT [--capability PREFIX]
#       [--tls-address HOST:PORT --tls-ca-file PEM [--tls-authority NAME]] [--only a,b]
#
# It needs a server of its own or, at least, capabilities of its own (PREFIX, default a random
# one): its Lease streams take every task that requires them.

require 'google/protobuf/well_known_types'
require 'google/rpc/status_pb'
require 'optparse'
require 'securerandom'
require 'orchestrator/v1/workflows_services_pb'
require 'channels'
require 'scripted_lease'

class ApiChecks
  V1 = Orchestrator::V1
  MIB = 1 << 20
  CALL_SECONDS = 30

  attr_reader :idle_workflow_id

  def initialize(address, prefix)
    @address = address
    @prefix = prefix
    # gRPC's default receive limit, said out loud; every check shares this one connection.
    @channel = Channels.open(address, max_receive_message_size: 4 * MIB)
    @workflows = Channels.stub(V1::Workflows, @channel)
    @idle_workflow_id = nil
  end

  def close
    if @idle_workflow_id
      begin
        @workflows.cancel_workflow(V1::CancelWorkflowRequest.new(workflow_id: @idle_workflow_id, reason: 'api-checks done'),
                                   deadline: deadline)
      rescue GRPC::BadStatus
        nil # best effort
      end
    end
    @channel.close
  end

  # -- helpers -------------------------------------------------------------------------------------

  def deadline(seconds = CALL_SECONDS) = Time.now + seconds

  def check(condition, message)
    raise CheckFailed, message unless condition
  end

  def equal(expected, actual, what)
    raise CheckFailed, "#{what}: expected #{expected.inspect}, got #{actual.inspect}" unless expected == actual
  end

  # Runs a call that must fail with the GRPC::BadStatus subclass `error_class`; returns the error.
  def expect_status(error_class)
    yield
  rescue GRPC::BadStatus => e
    raise CheckFailed, "expected #{error_class}, got #{e.class}: #{e.details}" unless e.is_a?(error_class)

    e
  else
    raise CheckFailed, "expected #{error_class}, the call succeeded"
  end

  def self.task(key, capability, *depends_on, payload: '')
    V1::TaskSpec.new(key: key, required_capabilities: [capability], depends_on: depends_on, payload: payload)
  end

  def task(...) = self.class.task(...)

  def query(*tasks) = V1::Query.new(graph: V1::Dag.new(tasks: tasks))

  def now_ms = Process.clock_gettime(Process::CLOCK_MONOTONIC, :millisecond)

  def submit(*tasks, **fields)
    @workflows.submit_query(V1::SubmitQueryRequest.new(query: query(*tasks), **fields), deadline: deadline).workflow.workflow_id
  end

  def get(workflow_id, tasks: false, stub: @workflows)
    stub.get_workflow(V1::GetWorkflowRequest.new(workflow_id: workflow_id, include_tasks: tasks), deadline: deadline).workflow
  end

  # A workflow no executor serves (its capability has none): RUNNING for as long as the checks run.
  def idle
    @idle_workflow_id ||= submit(task('only', "#{@prefix}-nobody"))
  end

  def lease_stream(name, capability, max_in_flight: 1, channel: @channel)
    stream = ScriptedLease.new(channel, "ruby-checks-#{name}-#{@prefix}", capability, max_in_flight: max_in_flight)
    [stream, stream.welcome]
  end

  # A Lease stream for capability PREFIX-NAME, welcomed, and a workflow of independent tasks `keys` for it.
  def stream_and_workflow(name, *keys, max_in_flight: 1)
    cap = "#{@prefix}-#{name}"
    stream, = lease_stream(name, cap, max_in_flight: max_in_flight)
    [stream, submit(*keys.map { |key| task(key, cap) })]
  end

  def closed_ok(stream, what)
    status = stream.close
    check(status == :ok, "#{what} ended #{status.inspect}")
  end

  # A watch of `workflow_id` on a thread: its events, then how it ended (:ok or the GRPC::BadStatus).
  Watch = Struct.new(:op, :events, :first, :ended, :status)

  def watch(workflow_id, stub: @workflows, **request)
    w = Watch.new(nil, [], Event.new, Event.new, nil)
    w.op = stub.watch_workflow(V1::WatchWorkflowRequest.new(workflow_id: workflow_id, **request), return_op: true,
                                                                                               deadline: deadline(60))
    Thread.new do
      w.op.execute.each do |event|
        w.events << event
        w.first.set
      end
      w.status = :ok
    rescue GRPC::BadStatus => e
      w.status = e
    ensure
      w.ended.set
    end
    w
  end

  def ended(watch, seconds = 15)
    check(watch.ended.wait(seconds), "watch did not end within #{seconds}s")
    watch.status
  end

  # -- the checks ----------------------------------------------------------------------------------

  def unary_plan
    cap = "#{@prefix}-plan"
    plan = @workflows.plan_workflow(V1::PlanWorkflowRequest.new(query: query(task('a', cap), task('b', cap, 'a'),
                                                                             task('c', cap, 'a', 'b'))), deadline: deadline)
    equal(%w[a b c], plan.analysis.topological_order.to_a, 'topological order')
    equal(3, plan.analysis.task_count, 'task_count')
    equal(3, plan.analysis.edge_count, 'edge_count')
    equal('explicit', plan.planning.planner, 'planner')
    "3 tasks planned by #{plan.planning.planner}"
  end

  def unary_submit_get_traceparent
    trace_id = SecureRandom.hex(16)
    request = V1::SubmitQueryRequest.new(request_id: "ruby-#{SecureRandom.uuid}", query: query(task('only', "#{@prefix}-nobody")))
    metadata = { 'traceparent' => "00-#{trace_id}-#{SecureRandom.hex(8)}-01",
                 'x-ruby-client' => 'grpc-ruby', # plain custom metadata is accepted alongside
                 'x-ruby-blob-bin' => "\x00\x01\x02\xff".b } # binary: grpc-ruby base64-encodes -bin values
    first = @workflows.submit_query(request, metadata: metadata, deadline: deadline)
    check(first.created, 'first submit: created=false')
    equal(trace_id, first.workflow.trace_id, 'workflow trace_id (from the traceparent header)')
    again = @workflows.submit_query(request, deadline: deadline)
    check(!again.created, 'same request_id again: created=true')
    equal(first.workflow.workflow_id, again.workflow.workflow_id, 'same request_id, workflow id')
    workflow = get(first.workflow.workflow_id, tasks: true)
    equal(:WORKFLOW_STATE_RUNNING, workflow.state, 'state')
    equal(1, workflow.tasks.size, 'tasks')
    @idle_workflow_id = workflow.workflow_id
    "#{workflow.workflow_id} trace_id=#{trace_id}, resubmit deduplicated"
  end

  def bidi_lease_and_server_streaming_watch
    cap = "#{@prefix}-lease"
    stream, welcome = lease_stream('lease', cap, max_in_flight: 2)
    check(welcome.heartbeat_interval_ms.positive? && welcome.lease_ttl_ms.positive?, "welcome without intervals: #{welcome.to_h}")
    check(!welcome.session_id.empty?, 'welcome without session_id')

    trace_id = SecureRandom.hex(16)
    c = task('c', cap, 'a', 'b', payload: 'payload of c')
    submitted = @workflows.submit_query(V1::SubmitQueryRequest.new(query: query(task('a', cap), task('b', cap, 'a'), c)),
                                        metadata: { 'traceparent' => "00-#{trace_id}-#{SecureRandom.hex(8)}-01" },
                                        deadline: deadline)
    workflow_id = submitted.workflow.workflow_id
    watch = watch(workflow_id, stop_when_finished: true)

    results = {}
    %w[a b c].each do |key|
      a = stream.assignment
      equal(key, a.spec.key, 'assignment order (a chain)')
      equal(workflow_id, a.workflow_id, 'assignment workflow_id')
      equal(1, a.attempt, 'attempt')
      check(a.traceparent.include?(trace_id), "assignment traceparent #{a.traceparent} lacks trace #{trace_id}")
      lease = a.lease
      check(lease.fencing_token >= 1, "fencing token #{lease.fencing_token}")

      stream.write(progress: V1::TaskProgress.new(lease: lease, fraction: 0.5, message: 'half way (ruby)'))
      check(stream.ack(lease).accepted, 'progress refused')

      stream.write(heartbeat: V1::HeartbeatSignal.new(leases: [lease]))
      beat = stream.expect(:heartbeat_ack) { |ack| ack.leases.size == 1 }
      status = beat.leases[0]
      check(status.valid && status.lease == lease, "heartbeat ack: #{status.to_h}")

      wrong = V1::LeaseToken.new(task_id: lease.task_id, fencing_token: lease.fencing_token + 1)
      stream.write(completion: V1::TaskCompletion.new(lease: wrong, result: 'forged'))
      refused = stream.ack(wrong)
      check(!refused.accepted && refused.code == 9, "completion with a token never issued: #{refused.to_h}")

      if key == 'c'
        equal('payload of c', a.spec.payload, 'payload')
        equal(results, a.upstream_results.to_h, 'upstream results of c')
      end
      result = "result of #{key} from ruby"
      stream.complete(lease, result)
      results[key] = result
    end
    closed_ok(stream, 'Lease stream after drain + half-close')

    equal(:ok, ended(watch), 'watch status')
    events = watch.events
    check(events.each_cons(2).all? { |x, y| y.sequence > x.sequence }, 'event sequences not increasing')
    types = events.map(&:type)
    equal(:EVENT_TYPE_WORKFLOW_SUBMITTED, types.first, 'first event')
    equal(:EVENT_TYPE_WORKFLOW_SUCCEEDED, types.last, 'last event')
    equal(3, types.count(:EVENT_TYPE_TASK_SUCCEEDED), 'task_succeeded events')
    equal(3, types.count(:EVENT_TYPE_TASK_RUNNING), 'task_running events (progress)')
    equal(:WORKFLOW_STATE_SUCCEEDED, get(workflow_id).state, 'workflow state')
    "#{workflow_id}: 3 tasks leased, progressed, heartbeated, forged token refused (9), completed; " \
      "watch got #{events.size} events and ended OK"
  end

  # grpc-ruby cancels a Lease stream (RST_STREAM CANCEL) while it holds a lease: the server gives
  # the lease back at once, and the next stream gets the task with a higher fencing token.
  def lease_cancel_requeues
    first, workflow_id = stream_and_workflow('cancel', 'once')
    held = first.assignment.lease
    cancelled = now_ms
    first.cancel
    status = first.wait_end
    check(status.is_a?(GRPC::Cancelled), "cancelled stream's status: #{status.inspect}")
    second, = lease_stream('second', "#{@prefix}-cancel")
    again = second.assignment
    requeue_ms = now_ms - cancelled
    equal(held.task_id, again.lease.task_id, 'task handed to the next stream')
    check(again.lease.fencing_token > held.fencing_token, "fencing token did not grow: #{again.lease.to_h}")
    second.complete(again.lease, 'done by the second stream')
    closed_ok(second, 'second lease stream')
    equal(:WORKFLOW_STATE_SUCCEEDED, get(workflow_id).state, 'workflow state')
    "token #{held.fencing_token} given back on RST_STREAM; token #{again.lease.fencing_token} to the next stream " \
      "after #{requeue_ms} ms"
  end

  def deadline_exceeded
    request = V1::SubmitQueryRequest.new(request_id: "ruby-deadline-#{SecureRandom.uuid}", wait: true,
                                         query: query(task('never', "#{@prefix}-nobody")))
    start = now_ms
    e = expect_status(GRPC::DeadlineExceeded) { @workflows.submit_query(request, deadline: Time.now + 0.8) }
    unary_ms = now_ms - start
    check(unary_ms >= 700 && unary_ms < 5000, "unary deadline after #{unary_ms} ms")
    # The workflow was stored all the same: the same request id finds it; cancel it.
    request.wait = false
    id = @workflows.submit_query(request, deadline: deadline).workflow.workflow_id
    @workflows.cancel_workflow(V1::CancelWorkflowRequest.new(workflow_id: id, reason: 'api-checks'), deadline: deadline)

    # Server streaming: a watch of a workflow that does not end, under a 600 ms deadline.
    seen = 0
    start = now_ms
    expect_status(GRPC::DeadlineExceeded) do
      @workflows.watch_workflow(V1::WatchWorkflowRequest.new(workflow_id: idle), deadline: Time.now + 0.6).each { seen += 1 }
    end
    watch_ms = now_ms - start
    check(seen >= 1, 'watch delivered no event before its deadline')
    "unary wait=true after #{unary_ms} ms (#{e.details}); watch after #{watch_ms} ms, #{seen} events"
  end

  # grpc-ruby compresses one call's request when its metadata says so (grpc-internal-encoding-request,
  # read and removed by grpc core); the channel-wide way is the grpc.default_compression_algorithm arg.
  GZIP = { 'grpc-internal-encoding-request' => 'gzip' }.freeze

  def message_over_4mib
    big = V1::SubmitQueryRequest.new(query: query(task('big', "#{@prefix}-nobody", payload: SecureRandom.bytes(5 * MIB)))) # incompressible
    e = expect_status(GRPC::ResourceExhausted) { @workflows.submit_query(big, deadline: deadline) }
    # Same connection, next call fine.
    unary_plan
    z = gzip_bomb(@workflows, metadata: GZIP)
    "5 MiB request: #{e.details}; gzip bomb: #{z.details}"
  end

  # 5 MiB of zeros is 5 KiB on the wire gzipped, and inflates past the server's limit: refused,
  # and the server's message says the request was compressed (an uncompressed one is refused too).
  def gzip_bomb(stub, **call)
    zeros = V1::SubmitQueryRequest.new(query: query(task('zeros', "#{@prefix}-nobody", payload: "\0" * (5 * MIB))))
    e = expect_status(GRPC::ResourceExhausted) { stub.submit_query(zeros, deadline: deadline, **call) }
    check(e.details.include?('compressed'), "the request was not compressed: #{e.details}")
    e
  end

  def gzip_requests
    cap = "#{@prefix}-plan"
    plan = @workflows.plan_workflow(V1::PlanWorkflowRequest.new(query: query(task('a', cap), task('b', cap, 'a'))),
                                    metadata: GZIP, deadline: deadline)
    equal(2, plan.analysis.task_count, 'task_count')
    # And a channel that compresses every request.
    gzip_channel = GRPC::Core::Channel.new(@address, Channels.channel_args.merge(
      GRPC::Core::CompressionOptions.new(default_algorithm: :gzip).to_channel_arg_hash
    ), :this_channel_is_insecure)
    gzip_stub = Channels.stub(V1::Workflows, gzip_channel)
    plan = gzip_stub.plan_workflow(V1::PlanWorkflowRequest.new(query: query(task('a', cap))), deadline: deadline)
    equal(1, plan.analysis.task_count, 'task_count (gzip channel)')
    gzip_bomb(gzip_stub)
    gzip_channel.close
    'PlanWorkflow with grpc-encoding gzip, per call and per channel'
  end

  def large_response
    stream, workflow_id = stream_and_workflow('big', 'x', 'y', max_in_flight: 2)
    sent = {}
    [stream.assignment, stream.assignment].each do |a|
      result = SecureRandom.bytes(5 * MIB / 2)
      sent[a.spec.key] = result
      stream.complete(a.lease, result) # a 2.5 MiB message to the server
    end
    closed_ok(stream, 'lease stream')
    # Two 2.5 MiB results: a GetWorkflow(include_tasks) response over the 4 MiB this channel takes.
    e = expect_status(GRPC::ResourceExhausted) { get(workflow_id, tasks: true) }
    # grpc-ruby has no per-call receive limit: a channel with a higher one.
    roomy = Channels.open(@address, max_receive_message_size: 16 * MIB)
    workflow = get(workflow_id, tasks: true, stub: Channels.stub(V1::Workflows, roomy))
    roomy.close
    equal(:WORKFLOW_STATE_SUCCEEDED, workflow.state, 'state')
    workflow.tasks.each do |t|
      check(sent[t.spec.key] == t.result, "result of #{t.spec.key} differs")
    end
    unary_plan
    "client limit: #{e.details}; with 16 MiB: #{V1::Workflow.encode(workflow).bytesize} bytes, results intact"
  end

  def unimplemented
    # Any path works with the generic ClientStub#request_response and the message classes' codecs.
    %w[/orchestrator.v1.Workflows/NoSuchMethod /orchestrator.v1.NoSuchService/Plan].map do |path|
      e = expect_status(GRPC::Unimplemented) do
        @workflows.request_response(path, V1::PlanWorkflowRequest.new, V1::PlanWorkflowRequest.method(:encode),
                                    V1::PlanWorkflowResponse.method(:decode), deadline: deadline(10))
      end
      check(e.details.include?(path.delete_prefix('/')), "details do not name the method: #{e.details}")
      e.details
    end.join('; ')
  end

  def status_details
    cap = "#{@prefix}-plan"
    e = expect_status(GRPC::InvalidArgument) do
      @workflows.plan_workflow(V1::PlanWorkflowRequest.new(query: query(task('p', cap, 'q'), task('q', cap, 'p'))),
                               deadline: deadline)
    end
    check(e.metadata.key?('grpc-status-details-bin'), "no grpc-status-details-bin in #{e.metadata.keys}")
    status = e.to_rpc_status # decodes the trailer as a Google::Rpc::Status
    check(!status.nil?, 'to_rpc_status: nil')
    equal(GRPC::Core::StatusCodes::INVALID_ARGUMENT, status.code, 'details code')
    check(status.details.size >= 1, 'no details')
    problem = status.details[0].unpack(V1::ValidationProblem)
    check(!problem.nil?, "first detail is a #{status.details[0].type_url}, not a ValidationProblem")
    equal('CYCLE', problem.code, 'problem code')
    "google.rpc.Status with #{status.details.size} ValidationProblem: #{problem.message}"
  end

  def cancel_watch
    rounds = 30
    rounds.times do
      w = watch(idle)
      check(w.first.wait(10), 'no first event within 10s')
      check(!w.ended.set?, "watch of a running workflow ended by itself: #{w.status.inspect}")
      w.op.cancel
      status = ended(w, 10)
      check(status.is_a?(GRPC::Cancelled), "status after cancel: #{status.inspect}")
    end
    equal(:WORKFLOW_STATE_RUNNING, get(idle).state, 'idle workflow state')
    "#{rounds} watches cancelled (Operation#cancel) after their first event; the channel still serves"
  end

  # More concurrent streams than the server's SETTINGS_MAX_CONCURRENT_STREAMS (100) on one channel:
  # grpc core queues the excess until streams end; every watch replays a finished workflow.
  def many_streams
    stream, workflow_id = stream_and_workflow('many', 'm')
    stream.complete(stream.assignment.lease, 'm')
    closed_ok(stream, 'lease stream')
    expected = -1
    20.times do
      if get(workflow_id).state == :WORKFLOW_STATE_SUCCEEDED
        expected = @workflows.list_events(V1::ListEventsRequest.new(workflow_id: workflow_id, page_size: 1000),
                                          deadline: deadline).events.size
        break
      end
      sleep 0.1
    end
    check(expected.positive?, 'workflow did not succeed')
    n = 250
    watches = Array.new(n) { watch(workflow_id, stop_when_finished: true) }
    watches.each do |w|
      status = ended(w, 60)
      check(status == :ok, "a watch ended #{status.inspect}")
      equal(expected, w.events.size, 'events per watch')
    end
    "#{n} concurrent watches on one channel, each #{expected} events, all OK"
  end

  def tls(tls_address, ca_file, authority)
    tls = Channels.open(tls_address, tls_ca_file: ca_file, tls_authority: authority)
    stub = Channels.stub(V1::Workflows, tls)
    plan = stub.plan_workflow(V1::PlanWorkflowRequest.new(query: query(task('a', "#{@prefix}-tls"))), deadline: deadline)
    equal(1, plan.analysis.task_count, 'task_count over TLS')
    first = stub.watch_workflow(V1::WatchWorkflowRequest.new(workflow_id: idle), return_op: true, deadline: deadline)
    event = first.execute.first
    first.cancel
    equal(:EVENT_TYPE_WORKFLOW_SUBMITTED, event&.type, 'first event of a watch over TLS')
    stream, welcome = lease_stream('tls', "#{@prefix}-tls", channel: tls)
    closed_ok(stream, 'TLS lease stream')
    tls.close
    # The default roots (grpc's bundled roots.pem) do not know our test CA: the handshake fails.
    untrusted = GRPC::Core::Channel.new(tls_address, Channels.channel_args(tls_authority: authority.empty? ? 'localhost' : authority),
                                        GRPC::Core::ChannelCredentials.new)
    e = expect_status(GRPC::Unavailable) do
      Channels.stub(V1::Workflows, untrusted).plan_workflow(V1::PlanWorkflowRequest.new, deadline: deadline)
    end
    untrusted.close
    "unary, server streaming and Lease (welcome #{welcome.session_id}) over TLS; untrusted: #{e.class.name}"
  end

  def self.main(argv)
    options = { address: '127.0.0.1:50051', capability: "ruby-checks-#{SecureRandom.hex(4)}", tls_address: '',
                tls_ca_file: '', tls_authority: '', only: [] }
    OptionParser.new do |o|
      %i[address capability tls_address tls_ca_file tls_authority].each do |name|
        o.on("--#{name.to_s.tr('_', '-')} VALUE") { |v| options[name] = v }
      end
      o.on('--only A,B', Array) { |v| options[:only] = v }
    end.parse!(argv)
    checks = new(options[:address], options[:capability])
    names = %i[unary_plan unary_submit_get_traceparent bidi_lease_and_server_streaming_watch lease_cancel_requeues
               deadline_exceeded message_over_4mib gzip_requests large_response unimplemented status_details
               cancel_watch many_streams]
    names << :tls unless options[:tls_address].empty?
    names &= options[:only].map(&:to_sym) unless options[:only].empty?
    failed = names.count { |name| !checks.run(name, options) }
    checks.close
    puts "api-checks: ok=#{names.size - failed} failed=#{failed}"
    exit(failed.zero? ? 0 : 1)
  end

  # Runs one check and prints its line; returns whether it passed.
  def run(name, options)
    start = now_ms
    detail = name == :tls ? tls(options[:tls_address], options[:tls_ca_file], options[:tls_authority]) : public_send(name)
    puts "PASS #{name} (#{now_ms - start} ms): #{detail}"
    true
  rescue CheckFailed => e
    puts "FAIL #{name} (#{now_ms - start} ms): #{e.message}"
    false
  rescue StandardError => e
    puts "FAIL #{name} (#{now_ms - start} ms): #{e.class}: #{e.message}\n  #{e.backtrace.first(8).join("\n  ")}"
    false
  end
end

if $PROGRAM_NAME == __FILE__
  $stdout.sync = true
  ApiChecks.main(ARGV)
end
