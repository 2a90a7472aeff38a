// Checks that an unmodified grpc-java client (Debian's 1.41, Netty transport) gets what the gRPC
// contract promises from orchestratord: unary, server-streaming and bidi calls, deadlines,
// metadata, message limits both ways, compression, rich error details, UNIMPLEMENTED,
// cancellation, and TLS. Each check prints one line, "PASS name (N ms): detail" or
// "FAIL name: why"; the last line is "api-checks: ok=N failed=N"; exit status 1 when one failed.
//
//   java -cp orchexecutor.jar dev.orchestrator.examples.ApiChecks --address HOST:PORT \
//       [--capability PREFIX] [--tls-address HOST:PORT --tls-ca-file PEM [--tls-authority NAME]] [--only a,b]
//
// It needs a server of its own or, at least, capabilities of its own (PREFIX, default a random
// one): its Lease streams take every task that requires them.
package dev.orchestrator.examples;

import com.google.protobuf.ByteString;
import dev.orchestrator.v1.Assignment;
import dev.orchestrator.v1.CancelWorkflowRequest;
import dev.orchestrator.v1.Dag;
import dev.orchestrator.v1.DrainSignal;
import dev.orchestrator.v1.EventType;
import dev.orchestrator.v1.ExecutorHello;
import dev.orchestrator.v1.ExecutorsGrpc;
import dev.orchestrator.v1.GetWorkflowRequest;
import dev.orchestrator.v1.HeartbeatSignal;
import dev.orchestrator.v1.LeaseRequest;
import dev.orchestrator.v1.LeaseResponse;
import dev.orchestrator.v1.LeaseStatus;
import dev.orchestrator.v1.LeaseToken;
import dev.orchestrator.v1.PlanWorkflowRequest;
import dev.orchestrator.v1.PlanWorkflowResponse;
import dev.orchestrator.v1.Query;
import dev.orchestrator.v1.ReportAck;
import dev.orchestrator.v1.SubmitQueryRequest;
import dev.orchestrator.v1.SubmitQueryResponse;
import dev.orchestrator.v1.Task;
import dev.orchestrator.v1.TaskCompletion;
import dev.orchestrator.v1.TaskProgress;
import dev.orchestrator.v1.TaskSpec;
import dev.orchestrator.v1.ValidationProblem;
import dev.orchestrator.v1.WatchWorkflowRequest;
import dev.orchestrator.v1.Welcome;
import dev.orchestrator.v1.Workflow;
import dev.orchestrator.v1.WorkflowEvent;
import dev.orchestrator.v1.WorkflowState;
import dev.orchestrator.v1.WorkflowsGrpc;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

public final class ApiChecks {
  static final int MIB = 1 << 20;

  final String address;
  final String prefix;
  final ManagedChannel channel;
  final SecureRandom random = new SecureRandom();
  /** A workflow no executor serves (its capability has none): RUNNING for as long as the checks run. */
  String idleWorkflowId;

  ApiChecks(String address, String prefix) throws Exception {
    this.address = address;
    this.prefix = prefix;
    this.channel = Channels.open(address, "", "", 4 * MIB); // gRPC's default receive limit, said out loud
  }

  /** A fresh stub per call: a stub's deadline is fixed when it is made. */
  WorkflowsGrpc.WorkflowsBlockingStub wf() {
    return WorkflowsGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  static final class CheckFailed extends RuntimeException {
    CheckFailed(String message) {
      super(message);
    }
  }

  static void check(boolean condition, String message) {
    if (!condition) throw new CheckFailed(message);
  }

  static void equal(Object expected, Object actual, String what) {
    if (!expected.equals(actual)) throw new CheckFailed(what + ": expected " + expected + ", got " + actual);
  }

  interface Call {
    void run() throws Exception;
  }

  /** Runs a call that must fail with `code`; returns its exception. */
  static StatusRuntimeException expectStatus(Status.Code code, Call call) throws Exception {
    try {
      call.run();
    } catch (StatusRuntimeException e) {
      if (e.getStatus().getCode() != code) throw new CheckFailed("expected " + code + ", got " + e.getStatus());
      return e;
    }
    throw new CheckFailed("expected " + code + ", the call succeeded");
  }

  static TaskSpec task(String key, String capability, String... dependsOn) {
    return TaskSpec.newBuilder().setKey(key).addRequiredCapabilities(capability).addAllDependsOn(Arrays.asList(dependsOn)).build();
  }

  static Query query(TaskSpec... tasks) {
    return Query.newBuilder().setGraph(Dag.newBuilder().addAllTasks(Arrays.asList(tasks))).build();
  }

  String hex(int bytes) {
    byte[] b = new byte[bytes];
    random.nextBytes(b);
    StringBuilder s = new StringBuilder();
    for (byte x : b) s.append(String.format("%02x", x));
    return s.toString();
  }

  static <S extends io.grpc.stub.AbstractStub<S>> S withHeaders(S stub, Map<String, String> headers) {
    Metadata metadata = new Metadata();
    headers.forEach((k, v) -> metadata.put(Metadata.Key.of(k, Metadata.ASCII_STRING_MARSHALLER), v));
    return stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(metadata));
  }

  /** The idle workflow, submitted by unary_submit_get_traceparent or here when that check did not run. */
  String idle() {
    if (idleWorkflowId == null) {
      idleWorkflowId = wf().submitQuery(SubmitQueryRequest.newBuilder().setQuery(query(task("only", prefix + "-nobody"))).build())
          .getWorkflow().getWorkflowId();
    }
    return idleWorkflowId;
  }

  Workflow get(String workflowId, boolean tasks) {
    return wf().getWorkflow(GetWorkflowRequest.newBuilder().setWorkflowId(workflowId).setIncludeTasks(tasks).build()).getWorkflow();
  }

  // -- the checks --------------------------------------------------------------------------------

  String unaryPlan() {
    String cap = prefix + "-plan";
    PlanWorkflowResponse plan = wf().planWorkflow(PlanWorkflowRequest.newBuilder()
        .setQuery(query(task("a", cap), task("b", cap, "a"), task("c", cap, "a", "b"))).build());
    equal(List.of("a", "b", "c"), plan.getAnalysis().getTopologicalOrderList(), "topological order");
    equal(3, plan.getAnalysis().getTaskCount(), "task_count");
    equal(3, plan.getAnalysis().getEdgeCount(), "edge_count");
    equal("explicit", plan.getPlanning().getPlanner(), "planner");
    return "3 tasks planned by " + plan.getPlanning().getPlanner();
  }

  String unarySubmitGetTraceparent() {
    String traceId = hex(16);
    String requestId = "java-" + UUID.randomUUID();
    Map<String, String> headers = new LinkedHashMap<>();
    headers.put("traceparent", "00-" + traceId + "-" + hex(8) + "-01");
    headers.put("x-java-client", "grpc-java"); // plain custom metadata is accepted alongside
    WorkflowsGrpc.WorkflowsBlockingStub stub = withHeaders(wf(), headers);
    Metadata binary = new Metadata();
    binary.put(Metadata.Key.of("x-java-blob-bin", Metadata.BINARY_BYTE_MARSHALLER), new byte[] {0, 1, 2, (byte) 0xff});
    stub = stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(binary));
    SubmitQueryRequest request = SubmitQueryRequest.newBuilder().setRequestId(requestId)
        .setQuery(query(task("only", prefix + "-nobody"))).build();
    SubmitQueryResponse first = stub.submitQuery(request);
    check(first.getCreated(), "first submit: created=false");
    equal(traceId, first.getWorkflow().getTraceId(), "workflow trace_id (from the traceparent header)");
    SubmitQueryResponse again = wf().submitQuery(request);
    check(!again.getCreated(), "same request_id again: created=true");
    equal(first.getWorkflow().getWorkflowId(), again.getWorkflow().getWorkflowId(), "same request_id, workflow id");
    Workflow workflow = get(first.getWorkflow().getWorkflowId(), true);
    equal(WorkflowState.WORKFLOW_STATE_RUNNING, workflow.getState(), "state");
    equal(1, workflow.getTasksCount(), "tasks");
    idleWorkflowId = workflow.getWorkflowId();
    return workflow.getWorkflowId() + " trace_id=" + traceId + ", resubmit deduplicated";
  }

  /** A scripted Lease stream: the responses it receives, in order. */
  final class LeaseStream implements StreamObserver<LeaseResponse> {
    final BlockingQueue<LeaseResponse> responses = new LinkedBlockingQueue<>();
    final CompletableFuture<Status> ended = new CompletableFuture<>();
    final StreamObserver<LeaseRequest> requests;

    LeaseStream(String executorId, String capability, int maxInFlight) {
      requests = ExecutorsGrpc.newStub(channel).lease(this);
      requests.onNext(LeaseRequest.newBuilder().setHello(ExecutorHello.newBuilder().setExecutorId(executorId)
          .addCapabilities(capability).setMaxInFlight(maxInFlight).putLabels("language", "java")
          .setVersion("examples/java api-checks")).build());
    }

    @Override
    public void onNext(LeaseResponse value) {
      responses.add(value);
    }

    @Override
    public void onError(Throwable t) {
      ended.complete(Status.fromThrowable(t));
    }

    @Override
    public void onCompleted() {
      ended.complete(Status.OK);
    }

    synchronized void send(LeaseRequest request) {
      requests.onNext(request);
    }

    /** The next response matching `want`, skipping heartbeat acks that are not asked for. */
    LeaseResponse next(String what, Predicate<LeaseResponse> want) throws InterruptedException {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
      while (true) {
        LeaseResponse r = responses.poll(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        if (r == null) {
          throw new CheckFailed("no " + what + " within 15s" + (ended.isDone() ? "; stream ended " + ended.getNow(null) : ""));
        }
        if (want.test(r)) return r;
        if (r.getKindCase() == LeaseResponse.KindCase.HEARTBEAT_ACK) continue;
        throw new CheckFailed("waiting for " + what + ", got " + r.getKindCase() + ": " + r.toString().replace('\n', ' '));
      }
    }

    Welcome welcome() throws InterruptedException {
      return next("welcome", r -> r.hasWelcome()).getWelcome();
    }

    Assignment assignment() throws InterruptedException {
      return next("assignment", r -> r.hasAssignment()).getAssignment();
    }

    ReportAck ack(LeaseToken lease) throws InterruptedException {
      ReportAck ack = next("ack", r -> r.hasAck()).getAck();
      equal(lease, ack.getLease(), "ack lease");
      return ack;
    }

    void complete(LeaseToken lease, ByteString result) throws InterruptedException {
      send(LeaseRequest.newBuilder().setCompletion(TaskCompletion.newBuilder().setLease(lease).setResult(result)).build());
      ReportAck ack = ack(lease);
      check(ack.getAccepted(), "completion refused: " + ack);
    }

    Status close() throws Exception {
      send(LeaseRequest.newBuilder().setDrain(DrainSignal.getDefaultInstance()).build());
      synchronized (this) {
        requests.onCompleted();
      }
      return ended.get(15, TimeUnit.SECONDS);
    }
  }

  /** Collects a WatchWorkflow stream. */
  static final class Watch implements StreamObserver<WorkflowEvent> {
    final List<WorkflowEvent> events = new ArrayList<>();
    final CompletableFuture<Status> ended = new CompletableFuture<>();
    final CompletableFuture<Void> first = new CompletableFuture<>();

    @Override
    public synchronized void onNext(WorkflowEvent value) {
      events.add(value);
      first.complete(null);
    }

    @Override
    public void onError(Throwable t) {
      ended.complete(Status.fromThrowable(t));
    }

    @Override
    public void onCompleted() {
      ended.complete(Status.OK);
    }

    synchronized List<WorkflowEvent> events() {
      return new ArrayList<>(events);
    }
  }

  String leaseStreamAndWatch() throws Exception {
    String cap = prefix + "-lease";
    LeaseStream stream = new LeaseStream("java-checks-" + prefix, cap, 2);
    Welcome welcome = stream.welcome();
    check(welcome.getHeartbeatIntervalMs() > 0 && welcome.getLeaseTtlMs() > 0, "welcome without intervals: " + welcome);
    check(!welcome.getSessionId().isEmpty(), "welcome without session_id");

    String traceId = hex(16);
    TaskSpec c = task("c", cap, "a", "b").toBuilder().setPayload(ByteString.copyFromUtf8("payload of c")).build();
    SubmitQueryResponse submitted = withHeaders(wf(), Map.of("traceparent", "00-" + traceId + "-" + hex(8) + "-01"))
        .submitQuery(SubmitQueryRequest.newBuilder().setQuery(query(task("a", cap), task("b", cap, "a"), c)).build());
    String workflowId = submitted.getWorkflow().getWorkflowId();

    Watch watch = new Watch();
    WorkflowsGrpc.newStub(channel).watchWorkflow(
        WatchWorkflowRequest.newBuilder().setWorkflowId(workflowId).setStopWhenFinished(true).build(), watch);

    Map<String, ByteString> results = new HashMap<>();
    for (String key : List.of("a", "b", "c")) {
      Assignment a = stream.assignment();
      equal(key, a.getSpec().getKey(), "assignment order (a chain)");
      equal(workflowId, a.getWorkflowId(), "assignment workflow_id");
      equal(1, a.getAttempt(), "attempt");
      check(a.getTraceparent().contains(traceId), "assignment traceparent " + a.getTraceparent() + " lacks trace " + traceId);
      LeaseToken lease = a.getLease();
      check(lease.getFencingToken() >= 1, "fencing token " + lease.getFencingToken());

      stream.send(LeaseRequest.newBuilder().setProgress(TaskProgress.newBuilder().setLease(lease).setFraction(0.5)
          .setMessage("half way (java)")).build());
      check(stream.ack(lease).getAccepted(), "progress refused");

      stream.send(LeaseRequest.newBuilder().setHeartbeat(HeartbeatSignal.newBuilder().addLeases(lease)).build());
      LeaseResponse beat = stream.next("heartbeat ack", r -> r.hasHeartbeatAck() && r.getHeartbeatAck().getLeasesCount() == 1);
      LeaseStatus status = beat.getHeartbeatAck().getLeases(0);
      check(status.getValid() && status.getLease().equals(lease), "heartbeat ack: " + status);

      LeaseToken wrong = lease.toBuilder().setFencingToken(lease.getFencingToken() + 1).build();
      stream.send(LeaseRequest.newBuilder().setCompletion(TaskCompletion.newBuilder().setLease(wrong)
          .setResult(ByteString.copyFromUtf8("forged"))).build());
      ReportAck refused = stream.ack(wrong);
      check(!refused.getAccepted() && refused.getCode() == 9, "completion with a token never issued: " + refused);

      if (key.equals("c")) {
        equal(ByteString.copyFromUtf8("payload of c"), a.getSpec().getPayload(), "payload");
        equal(results, a.getUpstreamResultsMap(), "upstream results of c");
      }
      ByteString result = ByteString.copyFromUtf8("result of " + key + " from java");
      stream.complete(lease, result);
      results.put(key, result);
    }
    Status closed = stream.close();
    check(closed.isOk(), "Lease stream after drain + half-close ended " + closed);

    Status watchEnd = watch.ended.get(15, TimeUnit.SECONDS);
    check(watchEnd.isOk(), "watch ended " + watchEnd);
    List<WorkflowEvent> events = watch.events();
    for (int i = 1; i < events.size(); i++) {
      check(events.get(i).getSequence() > events.get(i - 1).getSequence(), "event sequences not increasing");
    }
    List<EventType> types = new ArrayList<>();
    events.forEach(e -> types.add(e.getType()));
    equal(EventType.EVENT_TYPE_WORKFLOW_SUBMITTED, types.get(0), "first event");
    equal(EventType.EVENT_TYPE_WORKFLOW_SUCCEEDED, types.get(types.size() - 1), "last event");
    equal(3L, types.stream().filter(t -> t == EventType.EVENT_TYPE_TASK_SUCCEEDED).count(), "task_succeeded events");
    equal(3L, types.stream().filter(t -> t == EventType.EVENT_TYPE_TASK_RUNNING).count(), "task_running events (progress)");
    equal(WorkflowState.WORKFLOW_STATE_SUCCEEDED, get(workflowId, false).getState(), "workflow state");
    return workflowId + ": 3 tasks leased, progressed, heartbeated, forged token refused (9), completed; watch got "
        + events.size() + " events and ended OK";
  }

  /** grpc-java cancels a Lease stream (RST_STREAM CANCEL) while it holds a lease: the server gives
   * the lease back at once, and the next stream gets the task with a higher fencing token. */
  String leaseCancelRequeues() throws Exception {
    String cap = prefix + "-cancel";
    Context.CancellableContext context = Context.current().withCancellation();
    LeaseStream first = context.call(() -> new LeaseStream("java-checks-first-" + prefix, cap, 1));
    first.welcome();
    String workflowId = wf().submitQuery(SubmitQueryRequest.newBuilder().setQuery(query(task("once", cap))).build())
        .getWorkflow().getWorkflowId();
    LeaseToken held = first.assignment().getLease();
    long cancelled = System.nanoTime();
    context.cancel(null);
    equal(Status.Code.CANCELLED, first.ended.get(10, TimeUnit.SECONDS).getCode(), "cancelled stream's status");
    LeaseStream second = new LeaseStream("java-checks-second-" + prefix, cap, 1);
    second.welcome();
    Assignment again = second.assignment();
    long requeueMs = (System.nanoTime() - cancelled) / 1_000_000;
    equal(held.getTaskId(), again.getLease().getTaskId(), "task handed to the next stream");
    check(again.getLease().getFencingToken() > held.getFencingToken(), "fencing token did not grow: " + again.getLease());
    second.complete(again.getLease(), ByteString.copyFromUtf8("done by the second stream"));
    check(second.close().isOk(), "second lease stream did not end OK");
    equal(WorkflowState.WORKFLOW_STATE_SUCCEEDED, get(workflowId, false).getState(), "workflow state");
    return "token " + held.getFencingToken() + " given back on RST_STREAM; token " + again.getLease().getFencingToken()
        + " to the next stream after " + requeueMs + " ms";
  }

  String deadlineExceeded() throws Exception {
    String requestId = "java-deadline-" + UUID.randomUUID();
    SubmitQueryRequest request = SubmitQueryRequest.newBuilder().setRequestId(requestId).setWait(true)
        .setQuery(query(task("never", prefix + "-nobody"))).build();
    long start = System.nanoTime();
    StatusRuntimeException e = expectStatus(Status.Code.DEADLINE_EXCEEDED,
        () -> WorkflowsGrpc.newBlockingStub(channel).withDeadlineAfter(800, TimeUnit.MILLISECONDS).submitQuery(request));
    long unaryMs = (System.nanoTime() - start) / 1_000_000;
    check(unaryMs >= 700 && unaryMs < 5000, "unary deadline after " + unaryMs + " ms");
    // The workflow was stored all the same: the same request id finds it; cancel it.
    String id = wf().submitQuery(request.toBuilder().setWait(false).build()).getWorkflow().getWorkflowId();
    wf().cancelWorkflow(CancelWorkflowRequest.newBuilder().setWorkflowId(id).setReason("api-checks").build());

    // Server streaming: a watch of a workflow that does not end, under a 600 ms deadline.
    Iterator<WorkflowEvent> events = WorkflowsGrpc.newBlockingStub(channel).withDeadlineAfter(600, TimeUnit.MILLISECONDS)
        .watchWorkflow(WatchWorkflowRequest.newBuilder().setWorkflowId(idle()).build());
    int seen = 0;
    start = System.nanoTime();
    try {
      while (events.hasNext()) {
        events.next();
        seen++;
      }
      throw new CheckFailed("watch under a deadline ended OK");
    } catch (StatusRuntimeException w) {
      equal(Status.Code.DEADLINE_EXCEEDED, w.getStatus().getCode(), "watch status");
    }
    long watchMs = (System.nanoTime() - start) / 1_000_000;
    check(seen >= 1, "watch delivered no event before its deadline");
    return "unary wait=true after " + unaryMs + " ms (" + e.getStatus().getDescription() + "); watch after " + watchMs
        + " ms, " + seen + " events";
  }

  String messageOver4MiB() throws Exception {
    byte[] big = new byte[5 * MIB];
    random.nextBytes(big); // incompressible
    SubmitQueryRequest request = SubmitQueryRequest.newBuilder()
        .setQuery(query(task("big", prefix + "-nobody").toBuilder().setPayload(ByteString.copyFrom(big)).build())).build();
    StatusRuntimeException e = expectStatus(Status.Code.RESOURCE_EXHAUSTED, () -> wf().submitQuery(request));
    // Same connection, next call fine.
    unaryPlan();
    // gzip: 5 MiB of zeros is 5 KiB on the wire, and inflates past the server's limit.
    SubmitQueryRequest zeros = SubmitQueryRequest.newBuilder()
        .setQuery(query(task("zeros", prefix + "-nobody").toBuilder().setPayload(ByteString.copyFrom(new byte[5 * MIB])).build())).build();
    StatusRuntimeException z = expectStatus(Status.Code.RESOURCE_EXHAUSTED, () -> wf().withCompression("gzip").submitQuery(zeros));
    return "5 MiB request: " + e.getStatus().getDescription() + "; gzip bomb: " + z.getStatus().getDescription();
  }

  String gzipRequests() {
    String cap = prefix + "-plan";
    PlanWorkflowResponse plan = wf().withCompression("gzip").planWorkflow(PlanWorkflowRequest.newBuilder()
        .setQuery(query(task("a", cap), task("b", cap, "a"))).build());
    equal(2, plan.getAnalysis().getTaskCount(), "task_count");
    return "PlanWorkflow with grpc-encoding gzip";
  }

  String largeResponse() throws Exception {
    String cap = prefix + "-big";
    LeaseStream stream = new LeaseStream("java-checks-big-" + prefix, cap, 2);
    stream.welcome();
    String workflowId = wf().submitQuery(SubmitQueryRequest.newBuilder().setQuery(query(task("x", cap), task("y", cap))).build())
        .getWorkflow().getWorkflowId();
    Map<String, byte[]> sent = new HashMap<>();
    List<Assignment> assignments = List.of(stream.assignment(), stream.assignment());
    for (Assignment a : assignments) {
      byte[] result = new byte[5 * MIB / 2];
      random.nextBytes(result);
      sent.put(a.getSpec().getKey(), result);
      stream.complete(a.getLease(), ByteString.copyFrom(result)); // a 2.5 MiB message to the server
    }
    check(stream.close().isOk(), "lease stream did not end OK");
    // Two 2.5 MiB results: a GetWorkflow(include_tasks) response over the 4 MiB this channel takes.
    StatusRuntimeException e = expectStatus(Status.Code.RESOURCE_EXHAUSTED, () -> get(workflowId, true));
    Workflow workflow = wf().withMaxInboundMessageSize(16 * MIB)
        .getWorkflow(GetWorkflowRequest.newBuilder().setWorkflowId(workflowId).setIncludeTasks(true).build()).getWorkflow();
    equal(WorkflowState.WORKFLOW_STATE_SUCCEEDED, workflow.getState(), "state");
    for (Task t : workflow.getTasksList()) {
      check(Arrays.equals(sent.get(t.getSpec().getKey()), t.getResult().toByteArray()), "result of " + t.getSpec().getKey() + " differs");
    }
    unaryPlan();
    return "client limit: " + e.getStatus().getDescription() + "; with 16 MiB: " + workflow.getSerializedSize() + " bytes, results intact";
  }

  String unimplemented() throws Exception {
    MethodDescriptor<PlanWorkflowRequest, PlanWorkflowResponse> unknownMethod = WorkflowsGrpc.getPlanWorkflowMethod().toBuilder()
        .setFullMethodName("orchestrator.v1.Workflows/NoSuchMethod").build();
    MethodDescriptor<PlanWorkflowRequest, PlanWorkflowResponse> unknownService = unknownMethod.toBuilder()
        .setFullMethodName("orchestrator.v1.NoSuchService/Plan").build();
    StringBuilder detail = new StringBuilder();
    for (MethodDescriptor<PlanWorkflowRequest, PlanWorkflowResponse> method : List.of(unknownMethod, unknownService)) {
      StatusRuntimeException e = expectStatus(Status.Code.UNIMPLEMENTED, () -> ClientCalls.blockingUnaryCall(channel, method,
          CallOptions.DEFAULT.withDeadlineAfter(10, TimeUnit.SECONDS), PlanWorkflowRequest.getDefaultInstance()));
      check(String.valueOf(e.getStatus().getDescription()).contains(method.getFullMethodName()),
          "description does not name the method: " + e.getStatus());
      detail.append(detail.length() > 0 ? "; " : "").append(e.getStatus().getDescription());
    }
    return detail.toString();
  }

  String statusDetails() throws Exception {
    String cap = prefix + "-plan";
    StatusRuntimeException e = expectStatus(Status.Code.INVALID_ARGUMENT, () -> wf().planWorkflow(PlanWorkflowRequest.newBuilder()
        .setQuery(query(task("p", cap, "q"), task("q", cap, "p"))).build()));
    com.google.rpc.Status status = StatusProto.fromThrowable(e);
    check(status != null, "no grpc-status-details-bin");
    equal(Status.Code.INVALID_ARGUMENT.value(), status.getCode(), "details code");
    check(status.getDetailsCount() >= 1, "no details");
    ValidationProblem problem = status.getDetails(0).unpack(ValidationProblem.class);
    equal("CYCLE", problem.getCode(), "problem code");
    return "google.rpc.Status with " + status.getDetailsCount() + " ValidationProblem: " + problem.getMessage();
  }

  String cancelWatch() throws Exception {
    int rounds = 30;
    for (int i = 0; i < rounds; i++) {
      Watch watch = new Watch();
      Context.CancellableContext context = Context.current().withCancellation();
      context.run(() -> WorkflowsGrpc.newStub(channel).watchWorkflow(
          WatchWorkflowRequest.newBuilder().setWorkflowId(idle()).build(), watch));
      watch.first.get(10, TimeUnit.SECONDS);
      check(!watch.ended.isDone(), "watch of a running workflow ended by itself: " + watch.ended.getNow(null));
      context.cancel(null);
      Status status = watch.ended.get(10, TimeUnit.SECONDS);
      equal(Status.Code.CANCELLED, status.getCode(), "status after cancel");
    }
    // A ClientCall cancelled with a message, the other grpc-java way.
    ClientCall<WatchWorkflowRequest, WorkflowEvent> call = channel.newCall(WorkflowsGrpc.getWatchWorkflowMethod(), CallOptions.DEFAULT);
    Watch watch = new Watch();
    ClientCalls.asyncServerStreamingCall(call, WatchWorkflowRequest.newBuilder().setWorkflowId(idle()).build(), watch);
    watch.first.get(10, TimeUnit.SECONDS);
    call.cancel("api-checks cancels", null);
    equal(Status.Code.CANCELLED, watch.ended.get(10, TimeUnit.SECONDS).getCode(), "status after ClientCall.cancel");
    equal(WorkflowState.WORKFLOW_STATE_RUNNING, get(idle(), false).getState(), "idle workflow state");
    return rounds + 1 + " watches cancelled after their first event; the channel still serves";
  }

  /** More concurrent streams than the server's SETTINGS_MAX_CONCURRENT_STREAMS (100) on one channel:
   * grpc-java queues the excess until streams end; every watch replays a finished workflow. */
  String manyStreams() throws Exception {
    String cap = prefix + "-many";
    LeaseStream stream = new LeaseStream("java-checks-many-" + prefix, cap, 1);
    stream.welcome();
    String workflowId = wf().submitQuery(SubmitQueryRequest.newBuilder().setQuery(query(task("m", cap))).build())
        .getWorkflow().getWorkflowId();
    stream.complete(stream.assignment().getLease(), ByteString.copyFromUtf8("m"));
    check(stream.close().isOk(), "lease stream did not end OK");
    int expected = -1;
    for (int round = 0; round < 20 && expected < 0; round++) {
      Workflow w = get(workflowId, false);
      if (w.getState() == WorkflowState.WORKFLOW_STATE_SUCCEEDED) {
        expected = (int) wf().listEvents(dev.orchestrator.v1.ListEventsRequest.newBuilder().setWorkflowId(workflowId)
            .setPageSize(1000).build()).getEventsCount();
      } else {
        Thread.sleep(100);
      }
    }
    check(expected > 0, "workflow did not succeed");
    int n = 250;
    List<Watch> watches = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      Watch watch = new Watch();
      WorkflowsGrpc.newStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS).watchWorkflow(
          WatchWorkflowRequest.newBuilder().setWorkflowId(workflowId).setStopWhenFinished(true).build(), watch);
      watches.add(watch);
    }
    for (Watch watch : watches) {
      Status status = watch.ended.get(60, TimeUnit.SECONDS);
      check(status.isOk(), "a watch ended " + status);
      equal(expected, watch.events().size(), "events per watch");
    }
    return n + " concurrent watches on one channel, each " + expected + " events, all OK";
  }

  String tls(String tlsAddress, String caFile, String authority) throws Exception {
    ManagedChannel tls = Channels.open(tlsAddress, caFile, authority, 4 * MIB);
    try {
      PlanWorkflowResponse plan = WorkflowsGrpc.newBlockingStub(tls).withDeadlineAfter(30, TimeUnit.SECONDS)
          .planWorkflow(PlanWorkflowRequest.newBuilder().setQuery(query(task("a", prefix + "-tls"))).build());
      equal(1, plan.getAnalysis().getTaskCount(), "task_count over TLS");
      Iterator<WorkflowEvent> events = WorkflowsGrpc.newBlockingStub(tls).withDeadlineAfter(30, TimeUnit.SECONDS)
          .watchWorkflow(WatchWorkflowRequest.newBuilder().setWorkflowId(idle()).build());
      check(events.hasNext() && events.next().getType() == EventType.EVENT_TYPE_WORKFLOW_SUBMITTED, "watch over TLS");
      LeaseStreamOver over = new LeaseStreamOver(tls);
      Welcome w = over.welcome.get(15, TimeUnit.SECONDS);
      over.requests.onCompleted();
      check(over.ended.get(15, TimeUnit.SECONDS).isOk(), "TLS lease stream did not end OK");
      tls.shutdownNow();
      // The JDK's default trust store does not know our test CA: the handshake fails.
      ManagedChannel untrusted = io.grpc.Grpc.newChannelBuilder(tlsAddress, io.grpc.TlsChannelCredentials.create())
          .overrideAuthority(authority.isEmpty() ? "localhost" : authority).build();
      try {
        StatusRuntimeException e = expectStatus(Status.Code.UNAVAILABLE, () -> WorkflowsGrpc.newBlockingStub(untrusted)
            .withDeadlineAfter(30, TimeUnit.SECONDS).planWorkflow(PlanWorkflowRequest.getDefaultInstance()));
        return "unary, server streaming and Lease (welcome " + w.getSessionId() + ") over TLS; untrusted: "
            + e.getStatus().getCode();
      } finally {
        untrusted.shutdownNow();
      }
    } finally {
      tls.shutdownNow();
    }
  }

  final class LeaseStreamOver implements StreamObserver<LeaseResponse> {
    final CompletableFuture<Welcome> welcome = new CompletableFuture<>();
    final CompletableFuture<Status> ended = new CompletableFuture<>();
    final StreamObserver<LeaseRequest> requests;

    LeaseStreamOver(ManagedChannel over) {
      requests = ExecutorsGrpc.newStub(over).lease(this);
      requests.onNext(LeaseRequest.newBuilder().setHello(ExecutorHello.newBuilder().setExecutorId("java-tls-" + prefix)
          .addCapabilities(prefix + "-tls")).build());
    }

    @Override
    public void onNext(LeaseResponse value) {
      if (value.hasWelcome()) welcome.complete(value.getWelcome());
    }

    @Override
    public void onError(Throwable t) {
      ended.complete(Status.fromThrowable(t));
      welcome.completeExceptionally(t);
    }

    @Override
    public void onCompleted() {
      ended.complete(Status.OK);
    }
  }

  public static void main(String[] args) throws Exception {
    String address = "127.0.0.1:50051", prefix = "java-checks-" + UUID.randomUUID().toString().substring(0, 8);
    String tlsAddress = "", caFile = "", authority = "", only = "";
    for (int i = 0; i + 1 < args.length; i += 2) {
      switch (args[i].replaceFirst("^--?", "")) {
        case "address": address = args[i + 1]; break;
        case "capability": prefix = args[i + 1]; break;
        case "tls-address": tlsAddress = args[i + 1]; break;
        case "tls-ca-file": caFile = args[i + 1]; break;
        case "tls-authority": authority = args[i + 1]; break;
        case "only": only = args[i + 1]; break;
        default:
          System.err.println("unknown flag " + args[i]);
          System.exit(2);
      }
    }
    ApiChecks checks = new ApiChecks(address, prefix);
    Map<String, Call> all = new LinkedHashMap<>();
    String[] detail = new String[1];
    all.put("unary_plan", () -> detail[0] = checks.unaryPlan());
    all.put("unary_submit_get_traceparent", () -> detail[0] = checks.unarySubmitGetTraceparent());
    all.put("bidi_lease_and_server_streaming_watch", () -> detail[0] = checks.leaseStreamAndWatch());
    all.put("lease_cancel_requeues", () -> detail[0] = checks.leaseCancelRequeues());
    all.put("deadline_exceeded", () -> detail[0] = checks.deadlineExceeded());
    all.put("message_over_4mib", () -> detail[0] = checks.messageOver4MiB());
    all.put("gzip_requests", () -> detail[0] = checks.gzipRequests());
    all.put("large_response", () -> detail[0] = checks.largeResponse());
    all.put("unimplemented", () -> detail[0] = checks.unimplemented());
    all.put("status_details", () -> detail[0] = checks.statusDetails());
    all.put("cancel_watch", () -> detail[0] = checks.cancelWatch());
    all.put("many_streams", () -> detail[0] = checks.manyStreams());
    if (!tlsAddress.isEmpty()) {
      String t = tlsAddress, c = caFile, a = authority;
      all.put("tls", () -> detail[0] = checks.tls(t, c, a));
    }
    List<String> selected = only.isEmpty() ? null : Arrays.asList(only.split(","));
    int ok = 0, failed = 0;
    for (Map.Entry<String, Call> entry : all.entrySet()) {
      if (selected != null && !selected.contains(entry.getKey())) continue;
      long start = System.nanoTime();
      try {
        detail[0] = "";
        entry.getValue().run();
        ok++;
        System.out.printf("PASS %s (%d ms): %s%n", entry.getKey(), (System.nanoTime() - start) / 1_000_000, detail[0]);
      } catch (Throwable e) {
        failed++;
        String why = e instanceof CheckFailed ? e.getMessage() : e.toString();
        System.out.printf("FAIL %s (%d ms): %s%n", entry.getKey(), (System.nanoTime() - start) / 1_000_000, why);
        if (!(e instanceof CheckFailed)) e.printStackTrace(System.out);
      }
      System.out.flush();
    }
    if (checks.idleWorkflowId != null) {
      try {
        checks.wf().cancelWorkflow(CancelWorkflowRequest.newBuilder().setWorkflowId(checks.idleWorkflowId).setReason("api-checks done").build());
      } catch (StatusRuntimeException ignored) {
        // best effort
      }
    }
    checks.channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    System.out.printf("api-checks: ok=%d failed=%d%n", ok, failed);
    System.exit(failed == 0 ? 0 : 1);
  }
}
