#!/usr/bin/env python3
"""Example orchestratord executor in Python (grpcio), following docs/EXECUTORS.md.

One Lease stream: hello -> welcome -> assignments pushed by the server. Heartbeats go out on a
timer at welcome.heartbeat_interval_ms (every third of a shorter lease TTL a task was granted,
while it is held); every task is reported once (completion or failure) with
its lease token; revocations stop the task's work; a refused ack (stale token) drops the result.
When the stream breaks, the executor reconnects with backoff and lists its in-flight leases in
hello.resume; the ones the server rejects are abandoned.

Behaviour flags make it a test double too: --sleep-ms (work time), --fail-probability,
--permanent-failures, --die-after N (SIGKILL itself halfway through its Nth task), --tasks N
(exit after N accepted completions).

Tracing: with --otlp-endpoint (or OTEL_EXPORTER_OTLP_ENDPOINT) each task's work is a span that
continues the assignment's `traceparent`, exported as OTLP/JSON (see otlp_tracing.py), so it joins
the workflow's trace as a child of the orchestrator's dispatch span.

Stubs are generated from protos/ with grpc_tools.protoc into ./_generated (gitignored) on first
run, or explicitly with `python executor.py --generate-only`.
"""

from __future__ import annotations

import argparse
import fcntl
import importlib
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from otlp_tracing import Tracer

HERE = Path(__file__).resolve().parent
DEFAULT_PROTOS = HERE.parents[2] / "protos"
PROTO_FILES = ["orchestrator/v1/dag.proto", "orchestrator/v1/executors.proto"]


LOG_LOCK = threading.Lock()


def log(executor_id: str, message: str) -> None:
    # One line per event, flushed: tests and operators read these as they happen. One write under
    # a lock: print() writes the text and the newline separately, and lines of the worker threads
    # interleaved ("… token=108:56:56 [echo2] assigned …", found by black-box testing).
    line = f"{time.strftime('%H:%M:%S')} [{executor_id}] {message}\n"
    with LOG_LOCK:
        sys.stdout.write(line)
        sys.stdout.flush()


def load_stubs(protos: Path, out: Path):
    """Generates the Python stubs into `out` when missing or older than the protos, then imports them."""
    marker = out / "orchestrator" / "v1" / "executors_pb2_grpc.py"
    newest = max((protos / name).stat().st_mtime for name in PROTO_FILES)
    out.mkdir(parents=True, exist_ok=True)
    # Executors started together with one stub folder: without the lock, one found the marker
    # written while protoc was still writing the other files, and failed importing them.
    with open(out / ".generate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists() or marker.stat().st_mtime < newest:
            command = [sys.executable, "-m", "grpc_tools.protoc", f"-I{protos}", f"--python_out={out}",
                       f"--grpc_python_out={out}", *[str(protos / name) for name in PROTO_FILES]]
            subprocess.run(command, check=True, timeout=120)
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    pb2 = importlib.import_module("orchestrator.v1.executors_pb2")
    pb2_grpc = importlib.import_module("orchestrator.v1.executors_pb2_grpc")
    return pb2, pb2_grpc


class Session:
    """One Lease stream: an outbound queue feeding grpcio's request iterator."""

    def __init__(self) -> None:
        self.outbox: queue.Queue = queue.Queue()
        self.closed = threading.Event()

    def send(self, message) -> None:
        if not self.closed.is_set():
            self.outbox.put(message)

    def requests(self, hello):
        yield hello
        while True:
            item = self.outbox.get()
            if item is None:  # half-close
                return
            yield item

    def close(self) -> None:
        self.closed.set()
        self.outbox.put(None)


class Executor:
    def __init__(self, args, pb2, pb2_grpc) -> None:
        import grpc  # imported here so --help works without grpcio

        self.grpc = grpc
        self.args = args
        self.pb2 = pb2
        self.pb2_grpc = pb2_grpc
        self.lock = threading.Lock()
        # task_id -> (LeaseToken, cancel Event) for every task being worked on.
        self.in_flight: dict[str, tuple[object, threading.Event]] = {}
        # task_id -> LeaseRequest of a report sent but not yet acknowledged (resent after a reconnect).
        self.unacked: dict[str, object] = {}
        # task_id -> the TTL its lease was granted with (ms): heartbeats come every third of the
        # shortest one held, when that is sooner than welcome's interval (EXECUTORS.md, step 2).
        self.lease_ttl_ms: dict[str, int] = {}
        self.lease_ttl_changed = threading.Event()
        self.session: Session | None = None
        self.heartbeat_interval = 1.0
        self.workers = ThreadPoolExecutor(max_workers=max(1, args.max_in_flight))
        self.started_tasks = 0
        self.completed = 0
        self.stopping = threading.Event()
        self.done = threading.Event()
        self.tracer = Tracer(args.otlp_endpoint, args.otlp_service_name)

    # -- the stream -------------------------------------------------------------------------

    def run(self) -> int:
        channel = self.grpc.insecure_channel(self.args.address)
        stub = self.pb2_grpc.ExecutorsStub(channel)
        backoff = 0.2
        failures = 0
        call = None
        while not self.stopping.is_set():
            session = Session()
            with self.lock:
                resume = [lease for lease, _ in self.in_flight.values()]
            hello = self.pb2.LeaseRequest(hello=self.pb2.ExecutorHello(
                executor_id=self.args.id, capabilities=self.args.capabilities,
                max_in_flight=self.args.max_in_flight, resume=resume, version="examples/python 1",
                labels={"language": "python"}))
            # With `orchestratord --auth jwt`, a bearer token (role executor) names the tenants served.
            # A stream whose token expires ends (UNAUTHENTICATED) once its tasks are done, so a
            # token file is read again for every stream: whatever refreshes it rotates the token.
            token = self.current_token()
            metadata = [("authorization", f"Bearer {token}")] if token else None
            call = stub.Lease(session.requests(hello), metadata=metadata)
            try:
                for response in call:
                    kind = response.WhichOneof("kind")
                    if kind == "welcome":
                        self.on_welcome(session, response.welcome)
                        backoff, failures = 0.2, 0
                    elif kind == "assignment":
                        self.on_assignment(response.assignment)
                    elif kind == "revocation":
                        self.on_revocation(response.revocation)
                    elif kind == "ack":
                        self.on_ack(response.ack)
                if self.stopping.is_set():
                    break
                log(self.args.id, "stream ended by the server; reconnecting")
            except self.grpc.RpcError as error:
                if self.stopping.is_set():
                    break
                failures += 1
                log(self.args.id, f"stream failed: {error.code().name} {error.details()}; reconnecting in {backoff:.1f}s")
                if self.args.max_reconnects >= 0 and failures > self.args.max_reconnects:
                    log(self.args.id, "giving up")
                    return 2
            finally:
                session.close()
                with self.lock:
                    if self.session is session:
                        self.session = None
            self.stopping.wait(backoff)
            backoff = min(backoff * 2, 5.0)
        if call is not None:
            call.cancel()
        channel.close()
        return 0

    def current_token(self) -> str | None:
        if not self.args.token_file:
            return self.args.token
        try:
            return self.args.token_file.read_text().strip() or None
        except OSError as error:
            log(self.args.id, f"cannot read --token-file {self.args.token_file}: {error.strerror}")
            return None

    def on_welcome(self, session: Session, welcome) -> None:
        self.heartbeat_interval = max(0.05, welcome.heartbeat_interval_ms / 1000.0)
        log(self.args.id, f"welcome session={welcome.session_id} heartbeat={welcome.heartbeat_interval_ms}ms "
                          f"ttl={welcome.lease_ttl_ms}ms resumed={len(welcome.resumed)} "
                          f"rejected={len(welcome.rejected_resumes)}")
        for lease in welcome.rejected_resumes:
            self.abandon(lease, "resume rejected")
        with self.lock:
            self.session = session
            resend = [report for task_id, report in self.unacked.items()
                      if any(lease.task_id == task_id for lease in welcome.resumed)]
        for report in resend:
            session.send(report)
        threading.Thread(target=self.heartbeats, args=(session,), daemon=True).start()

    def heartbeats(self, session: Session) -> None:
        # Empty heartbeat = every lease on this stream; sent for as long as the stream lives. An
        # assignment with a short TTL wakes the loop (`lease_ttl_changed`) to shorten the wait.
        last = time.monotonic()
        while not session.closed.is_set():
            due = last + self.next_heartbeat_in()
            self.lease_ttl_changed.wait(max(0.0, due - time.monotonic()))
            if session.closed.is_set():
                return  # the wake-up, if it was one, is the next stream's
            self.lease_ttl_changed.clear()
            if time.monotonic() >= last + self.next_heartbeat_in():
                session.send(self.pb2.LeaseRequest(heartbeat=self.pb2.HeartbeatSignal()))
                last = time.monotonic()

    def next_heartbeat_in(self) -> float:
        """welcome's interval, or a third of the shortest lease TTL held when that is sooner (a
        task may ask for a TTL at or below the interval: it would lapse between heartbeats)."""
        with self.lock:
            shortest = min(self.lease_ttl_ms.values(), default=0)
        if shortest > 0:
            return max(0.05, min(self.heartbeat_interval, shortest / 3000.0))
        return self.heartbeat_interval

    def on_assignment(self, assignment) -> None:
        lease = assignment.lease
        cancel = threading.Event()
        with self.lock:
            self.in_flight[lease.task_id] = (lease, cancel)
            self.lease_ttl_ms[lease.task_id] = assignment.lease_ttl_ms
            self.started_tasks += 1
            number = self.started_tasks
        self.lease_ttl_changed.set()
        log(self.args.id, f"assigned task={lease.task_id} key={assignment.spec.key} token={lease.fencing_token} "
                          f"attempt={assignment.attempt}/{assignment.max_attempts}")
        self.workers.submit(self.work, assignment, cancel, number)

    def on_revocation(self, revocation) -> None:
        log(self.args.id, f"revoked task={revocation.lease.task_id} token={revocation.lease.fencing_token}: "
                          f"{revocation.reason}")
        self.abandon(revocation.lease, "revoked")

    # ReportAck.code of a report the server could not apply (its database unreachable): the lease
    # is still ours, and the report must be sent again (EXECUTORS.md, "Fencing tokens").
    UNAVAILABLE = 14
    RESEND_AFTER = 1.0

    def on_ack(self, ack) -> None:
        if not ack.accepted and ack.code == self.UNAVAILABLE:
            log(self.args.id, f"ack task={ack.lease.task_id} token={ack.lease.fencing_token} not applied "
                              f"({ack.message}); sending it again in {self.RESEND_AFTER:.0f}s")
            threading.Timer(self.RESEND_AFTER, self.resend, args=(ack.lease,)).start()
            return
        with self.lock:
            # Only the attempt this ack is about: the task may have been handed back to this
            # executor under a newer token meanwhile (revoked, then reassigned), and an ack for
            # the old token must not make it forget the new attempt (it would never report it,
            # while its heartbeats kept the lease alive forever).
            self._forget(ack.lease)
        if ack.accepted:
            log(self.args.id, f"ack task={ack.lease.task_id} token={ack.lease.fencing_token} accepted")
        else:
            # Refused: someone else holds the task now (or it was cancelled); drop the result.
            log(self.args.id, f"ack task={ack.lease.task_id} token={ack.lease.fencing_token} REFUSED "
                              f"code={ack.code}: {ack.message}")

    def resend(self, lease) -> None:
        """Sends the unacknowledged report of this exact lease again, on the current stream (after
        a reconnect, the welcome resends it instead)."""
        with self.lock:
            report = self.unacked.get(lease.task_id)
            session = self.session
        if report is None or getattr(report, report.WhichOneof("kind")).lease.fencing_token != lease.fencing_token:
            return
        if session is not None:
            session.send(report)

    def _forget(self, lease):
        """Drops the task's in-flight entry and unacked report if they belong to this exact lease
        (same fencing token); returns the in-flight entry dropped. Call with the lock held."""
        entry = self.in_flight.get(lease.task_id)
        if entry is None or entry[0].fencing_token != lease.fencing_token:
            return None
        self.in_flight.pop(lease.task_id)
        self.lease_ttl_ms.pop(lease.task_id, None)
        report = self.unacked.get(lease.task_id)
        if report is not None and getattr(report, report.WhichOneof("kind")).lease.fencing_token == lease.fencing_token:
            self.unacked.pop(lease.task_id)
        return entry

    def abandon(self, lease, why: str) -> None:
        with self.lock:
            entry = self._forget(lease)
        if entry:
            entry[1].set()
            log(self.args.id, f"abandoned task={lease.task_id} token={lease.fencing_token} ({why})")

    # -- the work ---------------------------------------------------------------------------

    def work(self, assignment, cancel: threading.Event, number: int) -> None:
        # The work is a child of the orchestrator's dispatch span (the assignment's traceparent).
        span = self.tracer.start_span(
            f"execute {assignment.spec.key}", assignment.traceparent,
            attributes={"orchestrator.workflow_id": assignment.workflow_id, "orchestrator.task_id": assignment.lease.task_id,
                        "orchestrator.task_key": assignment.spec.key, "orchestrator.attempt": assignment.attempt,
                        "orchestrator.executor_id": self.args.id})
        try:
            outcome = self.perform(assignment, cancel, number)
            span.set_status(outcome == "completion", "" if outcome == "completion" else f"task {outcome}")
        finally:
            span.end()

    def perform(self, assignment, cancel: threading.Event, number: int) -> str:
        """Works on the task and reports it; returns "completion", "failure" or "abandoned"."""
        lease = assignment.lease
        seconds = self.args.sleep_ms / 1000.0
        if self.args.die_after and number == self.args.die_after:
            # Crash halfway through this task without reporting: the server must reassign it.
            cancel.wait(seconds / 2)
            log(self.args.id, f"dying mid-task task={lease.task_id}")
            os.kill(os.getpid(), signal.SIGKILL)
        if cancel.wait(seconds):
            return "abandoned"
        if random.random() < self.args.fail_probability:
            report = self.pb2.LeaseRequest(failure=self.pb2.TaskFailure(
                lease=lease, message="simulated failure", code="SIMULATED",
                retryable=not self.args.permanent_failures))
            outcome = "failure"
        else:
            upstream = sorted(assignment.upstream_results.keys())
            result = json.dumps({"executor": self.args.id, "key": assignment.spec.key,
                                 "attempt": assignment.attempt, "upstream": upstream}).encode()
            report = self.pb2.LeaseRequest(completion=self.pb2.TaskCompletion(lease=lease, result=result))
            outcome = "completion"
        with self.lock:
            held = self.in_flight.get(lease.task_id)
            if held is None or held[0].fencing_token != lease.fencing_token:
                return "abandoned"  # revoked while working (perhaps reassigned here under a newer token)
            self.unacked[lease.task_id] = report
            session = self.session
        log(self.args.id, f"report {outcome} task={lease.task_id} token={lease.fencing_token}")
        if session is not None:
            session.send(report)  # otherwise resent after the reconnect's welcome
        if outcome == "completion":
            with self.lock:
                self.completed += 1
                finished = self.args.tasks and self.completed >= self.args.tasks
            if finished:
                threading.Thread(target=self.stop, daemon=True).start()
        return outcome

    def stop(self) -> None:
        """Waits (briefly) for outstanding acks, then half-closes the stream."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self.lock:
                if not self.unacked:
                    break
            time.sleep(0.05)
        self.stopping.set()
        with self.lock:
            session = self.session
        if session:
            session.close()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", default=os.environ.get("ORCHESTRATOR_ADDRESS", "127.0.0.1:50051"))
    parser.add_argument("--id", default=f"py-{os.getpid()}", help="executor id (stable across reconnects)")
    parser.add_argument("--token", default=os.environ.get("ORCHESTRATOR_TOKEN"),
                        help="bearer JWT for a server with --auth jwt (env ORCHESTRATOR_TOKEN; see `orchctl token`)")
    parser.add_argument("--token-file", type=Path, default=os.environ.get("ORCHESTRATOR_TOKEN_FILE"),
                        help="read the bearer JWT from this file for every stream it opens, so a token "
                             "refreshed there is used at the next reconnect (env ORCHESTRATOR_TOKEN_FILE)")
    parser.add_argument("--capabilities", nargs="+", default=["echo"])
    parser.add_argument("--max-in-flight", type=int, default=1)
    parser.add_argument("--sleep-ms", type=int, default=100, help="simulated work per task")
    parser.add_argument("--fail-probability", type=float, default=0.0)
    parser.add_argument("--permanent-failures", action="store_true", help="failures are not retryable")
    parser.add_argument("--die-after", type=int, default=0, help="SIGKILL itself halfway through task N")
    parser.add_argument("--tasks", type=int, default=0, help="exit after N accepted completions (0 = run forever)")
    parser.add_argument("--max-reconnects", type=int, default=-1, help="give up after N failed streams in a row")
    parser.add_argument("--otlp-endpoint", default=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
                        help="OTLP/HTTP collector base URL, e.g. http://127.0.0.1:4318 (default: no tracing)")
    parser.add_argument("--otlp-service-name", default=os.environ.get("OTEL_SERVICE_NAME", "python-executor"))
    parser.add_argument("--protos", type=Path, default=DEFAULT_PROTOS)
    parser.add_argument("--stubs-dir", type=Path, default=HERE / "_generated")
    parser.add_argument("--generate-only", action="store_true", help="generate the stubs and exit")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    pb2, pb2_grpc = load_stubs(args.protos, args.stubs_dir)
    if args.generate_only:
        print(f"stubs in {args.stubs_dir}")
        return 0
    executor = Executor(args, pb2, pb2_grpc)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=executor.stop, daemon=True).start())
    signal.signal(signal.SIGINT, lambda *_: threading.Thread(target=executor.stop, daemon=True).start())
    log(args.id, f"connecting to {args.address} capabilities={args.capabilities} max_in_flight={args.max_in_flight}")
    status = executor.run()
    log(args.id, f"stopped after {executor.completed} completions")
    executor.workers.shutdown(wait=False, cancel_futures=True)
    executor.tracer.shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
