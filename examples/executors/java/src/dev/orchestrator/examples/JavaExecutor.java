// Example orchestratord executor in Java (grpc-java 1.41 + Netty from Debian packages), following
// docs/EXECUTORS.md.
//
// One Lease stream: hello, then welcome; heartbeats at welcome.heartbeat_interval_ms (or every
// third of the shortest lease TTL held, when that is sooner: EXECUTORS.md step 2);
// each assignment gets one progress report (it moves the task to RUNNING), runs for --sleep-ms on
// a scheduler thread (at most --max-in-flight at once: the server never sends more), then is
// reported once with its lease token; revocations cancel the work; refused acks drop the result.
// When the stream breaks it reconnects with backoff and lists its in-flight leases in hello.resume.
package dev.orchestrator.examples;

import dev.orchestrator.v1.Assignment;
import dev.orchestrator.v1.DrainSignal;
import dev.orchestrator.v1.ExecutorHello;
import dev.orchestrator.v1.ExecutorsGrpc;
import dev.orchestrator.v1.HeartbeatSignal;
import dev.orchestrator.v1.LeaseRequest;
import dev.orchestrator.v1.LeaseResponse;
import dev.orchestrator.v1.LeaseToken;
import dev.orchestrator.v1.ReportAck;
import dev.orchestrator.v1.TaskCompletion;
import dev.orchestrator.v1.TaskFailure;
import dev.orchestrator.v1.TaskProgress;
import dev.orchestrator.v1.Welcome;
import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import java.nio.charset.StandardCharsets;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

public final class JavaExecutor {
  /** ReportAck.code of a report the server could not apply (database unreachable): send it again. */
  static final int CODE_UNAVAILABLE = 14;
  static final long RESEND_AFTER_MS = 1000;
  static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("HH:mm:ss");

  final Flags flags;
  final ScheduledExecutorService scheduler;

  // Guarded by `this`.
  final Map<String, Work> inFlight = new HashMap<>(); // task_id -> work; keyed with its token too
  final Map<String, LeaseRequest> unacked = new HashMap<>(); // task_id -> final report sent
  final Map<String, Integer> pendingProgressAcks = new HashMap<>(); // task_id -> progress acks due
  Session current; // the stream reports go to; null between streams
  int started;
  int completed;
  boolean stopping;
  final CompletableFuture<Void> done = new CompletableFuture<>();

  static final class Work {
    final LeaseToken lease;
    final long ttlMs; // what the lease was granted with (Assignment.lease_ttl_ms)
    ScheduledFuture<?> future;

    Work(LeaseToken lease, long ttlMs) {
      this.lease = lease;
      this.ttlMs = ttlMs;
    }
  }

  JavaExecutor(Flags flags) {
    this.flags = flags;
    this.scheduler = Executors.newScheduledThreadPool(Math.max(2, Math.min(flags.maxInFlight, 16)), r -> {
      Thread t = new Thread(r, "executor-work");
      t.setDaemon(true);
      return t;
    });
  }

  void log(String message) {
    // One write per line, flushed: tests and operators read the log as it grows.
    String line = LocalTime.now().format(TIME) + " [" + flags.id + "] " + message + "\n";
    synchronized (System.out) {
      System.out.print(line);
      System.out.flush();
    }
  }

  static String describe(LeaseToken lease) {
    return "task=" + lease.getTaskId() + " token=" + lease.getFencingToken();
  }

  /** One Lease stream. grpc-java's request StreamObserver is not thread-safe: every send goes
   * through send(), which serialises them. */
  final class Session implements StreamObserver<LeaseResponse> {
    final CompletableFuture<Throwable> ended = new CompletableFuture<>();
    StreamObserver<LeaseRequest> requests;
    ScheduledFuture<?> heartbeat;
    long lastHeartbeatNanos = System.nanoTime();
    boolean closed;

    synchronized void send(LeaseRequest request) {
      if (closed) return;
      try {
        requests.onNext(request);
      } catch (RuntimeException e) { // the call is already over: the stream is about to end anyway
        log("send failed: " + e);
      }
    }

    synchronized void halfClose() {
      if (closed) return;
      closed = true;
      requests.onCompleted();
    }

    @Override
    public void onNext(LeaseResponse response) {
      switch (response.getKindCase()) {
        case WELCOME:
          welcome(this, response.getWelcome());
          break;
        case ASSIGNMENT:
          assign(this, response.getAssignment());
          break;
        case REVOCATION:
          log("revoked " + describe(response.getRevocation().getLease()) + ": " + response.getRevocation().getReason());
          abandon(response.getRevocation().getLease().getTaskId(), "revoked");
          break;
        case ACK:
          ack(this, response.getAck());
          break;
        case HEARTBEAT_ACK:
          response.getHeartbeatAck().getLeasesList().stream().filter(s -> !s.getValid())
              .forEach(s -> log("heartbeat ack: lease no longer valid " + describe(s.getLease())));
          break;
        default: // a kind newer than this example: ignore it
          break;
      }
    }

    @Override
    public void onError(Throwable error) {
      end(error);
    }

    @Override
    public void onCompleted() {
      end(null);
    }

    private void end(Throwable error) {
      synchronized (this) {
        closed = true;
        if (heartbeat != null) heartbeat.cancel(false);
      }
      synchronized (JavaExecutor.this) {
        if (current == this) current = null;
      }
      ended.complete(error);
    }
  }

  /** Runs one Lease stream until it ends; returns its error (null: the server ended it with OK). */
  Throwable session(ExecutorsGrpc.ExecutorsStub stub) throws InterruptedException {
    Session session = new Session();
    List<LeaseToken> resume = new ArrayList<>();
    synchronized (this) {
      inFlight.values().forEach(w -> resume.add(w.lease));
    }
    ExecutorHello hello = ExecutorHello.newBuilder()
        .setExecutorId(flags.id).addAllCapabilities(flags.capabilities).setMaxInFlight(flags.maxInFlight)
        .addAllResume(resume).setVersion("examples/java 1").putLabels("language", "java").build();
    // No deadline (the stream lives for hours); wait-for-ready so that a reconnect while the channel
    // is backing off waits for the server instead of failing at once (EXECUTORS.md, Reconnecting).
    synchronized (session) {
      session.requests = stub.withWaitForReady().lease(session);
      session.requests.onNext(LeaseRequest.newBuilder().setHello(hello).build());
    }
    try {
      return session.ended.get();
    } catch (java.util.concurrent.ExecutionException e) {
      return e.getCause();
    }
  }

  void welcome(Session session, Welcome w) {
    log(String.format("welcome session=%s heartbeat=%dms ttl=%dms resumed=%d rejected=%d server=%s",
        w.getSessionId(), w.getHeartbeatIntervalMs(), w.getLeaseTtlMs(), w.getResumedCount(),
        w.getRejectedResumesCount(), w.getServerVersion()));
    for (LeaseToken lease : w.getRejectedResumesList()) abandon(lease.getTaskId(), "resume rejected");
    List<LeaseRequest> resend = new ArrayList<>();
    synchronized (this) {
      current = session;
      pendingProgressAcks.clear(); // the old stream's acks never come on this one
      for (LeaseToken lease : w.getResumedList()) {
        LeaseRequest report = unacked.get(lease.getTaskId());
        if (report != null) resend.add(report);
      }
    }
    resend.forEach(session::send);
    long interval = w.getHeartbeatIntervalMs() > 0 ? w.getHeartbeatIntervalMs() : 1000;
    LeaseRequest beat = LeaseRequest.newBuilder().setHeartbeat(HeartbeatSignal.getDefaultInstance()).build();
    // Checked every 50 ms (at most the interval): a heartbeat is due after the interval, or after a
    // third of the shortest TTL held when that is sooner (a task may be granted a TTL at or below
    // the interval, and would lapse between heartbeats).
    long tick = Math.min(interval, 50);
    synchronized (session) {
      if (!session.closed) {
        session.heartbeat = scheduler.scheduleAtFixedRate(() -> heartbeatIfDue(session, interval, beat), tick, tick,
            TimeUnit.MILLISECONDS);
      }
    }
  }

  void heartbeatIfDue(Session session, long interval, LeaseRequest beat) {
    long every = interval;
    synchronized (this) {
      for (Work work : inFlight.values()) {
        if (work.ttlMs > 0) every = Math.min(every, work.ttlMs / 3);
      }
    }
    long now = System.nanoTime();
    if (now - session.lastHeartbeatNanos >= Math.max(every, 50) * 1_000_000L) {
      session.lastHeartbeatNanos = now;
      session.send(beat);
    }
  }

  void assign(Session session, Assignment a) {
    LeaseToken lease = a.getLease();
    Work work = new Work(lease, a.getLeaseTtlMs());
    int number;
    synchronized (this) {
      inFlight.put(lease.getTaskId(), work);
      pendingProgressAcks.merge(lease.getTaskId(), 1, Integer::sum);
      number = ++started;
    }
    log(String.format("assigned %s key=%s attempt=%d/%d", describe(lease), a.getSpec().getKey(), a.getAttempt(),
        a.getMaxAttempts()));
    session.send(LeaseRequest.newBuilder().setProgress(TaskProgress.newBuilder().setLease(lease).setFraction(0)
        .setMessage("started by " + flags.id)).build());
    if (flags.dieAfter > 0 && number == flags.dieAfter) {
      scheduler.schedule(() -> {
        log("dying mid-task " + describe(lease));
        Runtime.getRuntime().halt(137); // no clean-up at all, like SIGKILL
      }, flags.sleepMs / 2, TimeUnit.MILLISECONDS);
      return;
    }
    synchronized (this) {
      work.future = scheduler.schedule(() -> finish(a), flags.sleepMs, TimeUnit.MILLISECONDS);
    }
  }

  void finish(Assignment a) {
    LeaseToken lease = a.getLease();
    LeaseRequest report;
    String outcome;
    if (ThreadLocalRandom.current().nextDouble() < flags.failProbability) {
      outcome = "failure";
      report = LeaseRequest.newBuilder().setFailure(TaskFailure.newBuilder().setLease(lease)
          .setMessage("simulated failure").setCode("SIMULATED").setRetryable(!flags.permanentFailures)).build();
    } else {
      outcome = "completion";
      String result = String.format("{\"executor\":\"%s\",\"key\":\"%s\",\"attempt\":%d,\"upstream\":%s}",
          json(flags.id), json(a.getSpec().getKey()), a.getAttempt(), jsonList(new TreeSet<>(a.getUpstreamResultsMap().keySet())));
      report = LeaseRequest.newBuilder().setCompletion(TaskCompletion.newBuilder().setLease(lease)
          .setResult(ByteString.copyFrom(result, StandardCharsets.UTF_8))).build();
    }
    Session session;
    synchronized (this) {
      Work work = inFlight.get(lease.getTaskId());
      if (work == null || work.lease.getFencingToken() != lease.getFencingToken()) return; // revoked meanwhile
      unacked.put(lease.getTaskId(), report);
      if (outcome.equals("completion")) completed++;
      session = current;
    }
    log("report " + outcome + " " + describe(lease));
    if (session != null) session.send(report); // otherwise resent after the reconnect's welcome
  }

  void ack(Session session, ReportAck ack) {
    LeaseToken lease = ack.getLease();
    String taskId = lease.getTaskId();
    boolean progressAck = false;
    synchronized (this) {
      // Reports of one lease are applied in order, so a task's first ack answers its progress.
      Integer due = pendingProgressAcks.get(taskId);
      if (due != null) {
        progressAck = true;
        if (due <= 1) pendingProgressAcks.remove(taskId);
        else pendingProgressAcks.put(taskId, due - 1);
      }
    }
    if (progressAck) {
      if (!ack.getAccepted()) log("progress ack " + describe(lease) + " refused code=" + ack.getCode() + ": " + ack.getMessage());
      return;
    }
    if (!ack.getAccepted() && ack.getCode() == CODE_UNAVAILABLE) {
      // Not applied: the lease is still ours; send the report again shortly (EXECUTORS.md, Fencing tokens).
      log("ack " + describe(lease) + " not applied (" + ack.getMessage() + "); sending it again in " + RESEND_AFTER_MS + "ms");
      scheduler.schedule(() -> {
        LeaseRequest report;
        Session target;
        synchronized (this) {
          report = unacked.get(taskId);
          target = current;
        }
        if (report != null && target != null && reportLease(report).getFencingToken() == lease.getFencingToken()) {
          target.send(report);
        }
      }, RESEND_AFTER_MS, TimeUnit.MILLISECONDS);
      return;
    }
    boolean finished;
    synchronized (this) {
      unacked.remove(taskId);
      inFlight.remove(taskId);
      finished = flags.tasks > 0 && completed >= flags.tasks && unacked.isEmpty() && !stopping;
      if (finished) stopping = true;
    }
    if (ack.getAccepted()) log("ack " + describe(lease) + " accepted");
    else log("ack " + describe(lease) + " REFUSED code=" + ack.getCode() + ": " + ack.getMessage());
    if (finished) {
      // Drain (no new assignment), then half-close: the server ends the stream with OK.
      session.send(LeaseRequest.newBuilder().setDrain(DrainSignal.getDefaultInstance()).build());
      session.halfClose();
      done.complete(null);
    }
  }

  static LeaseToken reportLease(LeaseRequest report) {
    switch (report.getKindCase()) {
      case COMPLETION:
        return report.getCompletion().getLease();
      case FAILURE:
        return report.getFailure().getLease();
      default:
        return LeaseToken.getDefaultInstance();
    }
  }

  void abandon(String taskId, String why) {
    Work work;
    synchronized (this) {
      work = inFlight.remove(taskId);
      unacked.remove(taskId);
      pendingProgressAcks.remove(taskId);
    }
    if (work != null) {
      if (work.future != null) work.future.cancel(false);
      log("abandoned task=" + taskId + " (" + why + ")");
    }
  }

  static String json(String s) {
    StringBuilder b = new StringBuilder();
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') b.append('\\').append(c);
      else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
      else b.append(c);
    }
    return b.toString();
  }

  static String jsonList(Iterable<String> items) {
    StringBuilder b = new StringBuilder("[");
    for (String item : items) {
      if (b.length() > 1) b.append(',');
      b.append('"').append(json(item)).append('"');
    }
    return b.append(']').toString();
  }

  void run() throws Exception {
    ManagedChannel channel = Channels.open(flags.address, flags.tlsCaFile, flags.tlsAuthority, flags.maxReceiveMessageSize);
    ExecutorsGrpc.ExecutorsStub stub = ExecutorsGrpc.newStub(channel);
    if (!flags.token.isEmpty()) {
      Metadata headers = new Metadata();
      headers.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + flags.token);
      stub = stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
    }
    log("connecting to " + flags.address + (flags.tlsCaFile.isEmpty() ? "" : " (TLS)") + " capabilities="
        + flags.capabilities + " max_in_flight=" + flags.maxInFlight);
    long backoffMs = 200;
    try {
      while (true) {
        Throwable error = session(stub);
        if (done.isDone()) {
          log("stopped after " + completed + " completions");
          return;
        }
        String why = error == null ? "stream ended by the server" : Status.fromThrowable(error).toString();
        log("stream failed: " + why + "; reconnecting in " + backoffMs + "ms");
        Thread.sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 5000);
      }
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      scheduler.shutdownNow();
    }
  }

  static final class Flags {
    String address = env("ORCHESTRATOR_ADDRESS", "127.0.0.1:50051");
    String id = "java-" + ProcessHandle.current().pid();
    List<String> capabilities = List.of("echo");
    int maxInFlight = 1;
    long sleepMs = 100;
    double failProbability = 0;
    boolean permanentFailures = false;
    int dieAfter = 0;
    int tasks = 0;
    String token = env("ORCHESTRATOR_TOKEN", "");
    String tlsCaFile = "";
    String tlsAuthority = "";
    int maxReceiveMessageSize = 4 << 20;

    static String env(String name, String fallback) {
      String value = System.getenv(name);
      return value == null || value.isEmpty() ? fallback : value;
    }

    static final String USAGE = String.join("\n",
        "usage: orchexecutor [flags]   (each flag as -name VALUE, --name VALUE or --name=VALUE)",
        "  --address HOST:PORT         orchestratord gRPC address (default $ORCHESTRATOR_ADDRESS or 127.0.0.1:50051)",
        "  --id ID                     executor id, stable across reconnects (default java-<pid>)",
        "  --capabilities A,B          comma-separated capabilities (default echo)",
        "  --max-in-flight N           tasks held at once (default 1)",
        "  --sleep-ms N                simulated work per task (default 100)",
        "  --fail-probability P        probability a task fails (default 0)",
        "  --permanent-failures        failures are not retryable",
        "  --die-after N               halt the JVM halfway through task N (like SIGKILL)",
        "  --tasks N                   exit after N accepted completions (0 = run forever)",
        "  --token JWT                 bearer token for --auth jwt servers (default $ORCHESTRATOR_TOKEN)",
        "  --tls-ca-file PEM           use TLS, trusting this CA (for --grpc-tls-address)",
        "  --tls-authority NAME        TLS server name to verify, when it differs from the address host",
        "  --max-receive-message-size N  largest assignment accepted, bytes (default 4194304, gRPC's default)");

    static Flags parse(String[] args) {
      Flags f = new Flags();
      for (int i = 0; i < args.length; i++) {
        String arg = args[i];
        if (!arg.startsWith("-")) throw new IllegalArgumentException("unexpected argument " + arg);
        String name = arg.replaceFirst("^--?", "");
        String value = null;
        int eq = name.indexOf('=');
        if (eq >= 0) {
          value = name.substring(eq + 1);
          name = name.substring(0, eq);
        }
        if (name.equals("help") || name.equals("h")) {
          System.out.println(USAGE);
          System.exit(0);
        }
        if (name.equals("permanent-failures")) {
          f.permanentFailures = value == null || Boolean.parseBoolean(value);
          continue;
        }
        if (value == null) {
          if (i + 1 >= args.length) throw new IllegalArgumentException(arg + " needs a value");
          value = args[++i];
        }
        switch (name) {
          case "address": f.address = value; break;
          case "id": f.id = value; break;
          case "capabilities": f.capabilities = Arrays.asList(value.split(",")); break;
          case "max-in-flight": f.maxInFlight = Integer.parseInt(value); break;
          case "sleep-ms": f.sleepMs = Long.parseLong(value); break;
          case "fail-probability": f.failProbability = Double.parseDouble(value); break;
          case "die-after": f.dieAfter = Integer.parseInt(value); break;
          case "tasks": f.tasks = Integer.parseInt(value); break;
          case "token": f.token = value; break;
          case "tls-ca-file": f.tlsCaFile = value; break;
          case "tls-authority": f.tlsAuthority = value; break;
          case "max-receive-message-size": f.maxReceiveMessageSize = Integer.parseInt(value); break;
          default: throw new IllegalArgumentException("unknown flag " + arg);
        }
      }
      return f;
    }
  }

  public static void main(String[] args) throws Exception {
    Flags flags;
    try {
      flags = Flags.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println(e.getMessage() + "\n" + Flags.USAGE);
      System.exit(2);
      return;
    }
    new JavaExecutor(flags).run();
  }
}
