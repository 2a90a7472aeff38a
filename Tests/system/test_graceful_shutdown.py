"""SIGTERM with long calls open: they end at once with UNAVAILABLE and what to do next.

Found by black-box testing: an open WatchWorkflow, an idle executor's PollTasks long poll, a
SubmitQuery with `wait` and a SubmitStream following its workflows each held the shutdown for the
whole grace period, and their clients then got a transport error ("Socket closed") instead of a
status. Lease streams already ended at once."""

from __future__ import annotations

import contextlib
import os
import shutil
import json
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

import grpc

from procs import Orchestratord, Process, binary, free_port, psql, stop_postmaster


def test_watch_poll_and_wait_end_at_once_with_unavailable_on_sigterm(database, pb, capability, tmp_path_factory):
    # A long grace period: the calls must end well before it, on their own.
    server = Orchestratord(database, tmp_path_factory.mktemp("shutdown"), extra_args=["--shutdown-grace", "60"]).start()
    try:
        channel = grpc.insecure_channel(server.address)
        workflows = pb.workflows_grpc.WorkflowsStub(channel)
        executors = pb.executors_grpc.ExecutorsStub(channel)
        task = pb.dag.TaskSpec(key="never", required_capabilities=[capability + "-nobody"])
        query = pb.query.Query(graph=pb.dag.Dag(tasks=[task]))
        workflow_id = workflows.SubmitQuery(pb.workflows.SubmitQueryRequest(query=query), timeout=30).workflow.workflow_id

        outcomes: dict[str, tuple] = {}

        def call(name, fn):
            try:
                outcomes[name] = ("ok", fn())
            except grpc.RpcError as error:
                outcomes[name] = (error.code(), error.details())

        def watch():
            stream = workflows.WatchWorkflow(pb.workflows.WatchWorkflowRequest(workflow_id=workflow_id), timeout=120)
            return [event.sequence for event in stream]

        poll = pb.executors.PollTasksRequest(executor_id="poller", capabilities=[capability], max_tasks=1, wait_ms=60_000)
        wait = pb.workflows.SubmitQueryRequest(query=query, wait=True)
        stop_sending = threading.Event()
        streamed: list = []

        def submit_stream():
            # A SubmitStream following its workflow, its client still open (it held the shutdown
            # for the whole grace period and was then cut without a status; found by black-box
            # testing).
            def requests():
                yield pb.workflows.SubmitStreamRequest(request_id="streamed-" + capability, query=query, watch=True)
                stop_sending.wait(120)
            for response in workflows.SubmitStream(requests(), timeout=120):
                streamed.append(response)
            return streamed

        threads = [threading.Thread(target=call, args=("watch", watch)),
                   threading.Thread(target=call, args=("poll", lambda: executors.PollTasks(poll, timeout=120))),
                   threading.Thread(target=call, args=("wait", lambda: workflows.SubmitQuery(wait, timeout=120))),
                   threading.Thread(target=call, args=("stream", submit_stream))]
        for thread in threads:
            thread.start()
        time.sleep(1.5)  # all four are parked on the server
        assert not outcomes, outcomes
        assert streamed and streamed[0].WhichOneof("kind") == "accepted", streamed

        server.proc.process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=30)
        stop_sending.set()
        assert set(outcomes) == {"watch", "poll", "wait", "stream"}, outcomes
        code, details = outcomes["stream"]
        streamed_id = streamed[0].accepted.workflow_id
        assert code == grpc.StatusCode.UNAVAILABLE and f"{streamed_id} after_sequence = " in details, outcomes["stream"]
        last_sent = max((r.event.sequence for r in streamed if r.WhichOneof("kind") == "event"), default=0)
        assert f"{streamed_id} after_sequence = {last_sent}" in details, (details, last_sent)
        code, details = outcomes["watch"]
        assert code == grpc.StatusCode.UNAVAILABLE and "after_sequence = " in details, outcomes["watch"]
        assert outcomes["poll"][0] == "ok" and not outcomes["poll"][1].assignments, outcomes["poll"]
        code, details = outcomes["wait"]
        assert code == grpc.StatusCode.UNAVAILABLE and "is stored and goes on" in details, outcomes["wait"]
        # Nothing left to drain: the process exits without waiting out the 60 s grace period.
        assert server.proc.wait(timeout=30) == 0, server.proc.tail()
        channel.close()
    finally:
        server.stop()


@contextlib.contextmanager
def _server_holding_a_call(database, pb, tmp_path_factory):
    """A server with a 60 s grace period and an open SubmitStream whose client sends nothing: a
    call in flight that the drain waits for. Yields the server and the call's outcome (filled
    in when it ends)."""
    server = Orchestratord(database, tmp_path_factory.mktemp("shutdown"), extra_args=["--shutdown-grace", "60"]).start()
    channel = grpc.insecure_channel(server.address)
    workflows = pb.workflows_grpc.WorkflowsStub(channel)
    release = threading.Event()
    outcome: list = []

    def silent_requests():
        release.wait(120)
        return
        yield

    def call():
        try:
            outcome.append(("ok", list(workflows.SubmitStream(silent_requests(), timeout=120))))
        except grpc.RpcError as error:
            outcome.append((error.code(), error.details()))

    thread = threading.Thread(target=call)
    thread.start()
    try:
        time.sleep(1)
        assert not outcome, outcome
        yield server, outcome
    finally:
        release.set()
        thread.join(timeout=15)
        channel.close()
        server.stop()


def test_second_signal_cuts_the_grace_period_short(database, pb, tmp_path_factory):
    with _server_holding_a_call(database, pb, tmp_path_factory) as (server, outcome):
        process = server.proc.process
        process.send_signal(signal.SIGTERM)
        time.sleep(2)
        # The open stream holds the drain: the process waits for it.
        assert process.poll() is None, server.proc.tail()
        assert not outcome, outcome
        process.send_signal(signal.SIGINT)
        # Well before the 60 s grace period: the call is cancelled and the shutdown completes.
        assert server.proc.wait(timeout=15) == 0, server.proc.tail()
        deadline = time.monotonic() + 15
        while not outcome and time.monotonic() < deadline:
            time.sleep(0.05)
        assert outcome and outcome[0][0] != "ok", outcome
        log = server.proc.log()
        assert "second signal received" in log, server.proc.tail()
        assert "orchestratord stopped" in log, server.proc.tail()
        # The cancelled call has its log line: the process exited before its handler returned,
        # and left none (found by black-box testing).
        calls = [json.loads(line) for line in log.splitlines() if '"message":"rpc"' in line]
        assert any(call.get("method", "").endswith("/SubmitStream") for call in calls), server.proc.tail()


def test_third_signal_exits_at_once(database, pb, tmp_path_factory):
    with _server_holding_a_call(database, pb, tmp_path_factory) as (server, _):
        process = server.proc.process
        process.send_signal(signal.SIGTERM)
        time.sleep(1)
        # The second and third arrive together (two different signals, so the kernel cannot merge
        # them while the process is stopped): the third is handled before the orderly shutdown
        # the second sped up can finish.
        process.send_signal(signal.SIGSTOP)
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGCONT)
        code = server.proc.wait(timeout=15)
        assert code in (128 + signal.SIGINT, 128 + signal.SIGTERM), server.proc.tail()
        assert "third signal received: exiting at once" in server.proc.log(), server.proc.tail()
        assert "orchestratord stopped" not in server.proc.log(), server.proc.tail()


def test_reports_sent_right_before_sigterm_are_answered(database, pb, capability, tmp_path_factory):
    """Completions sent right before SIGTERM were stored but never acknowledged: the stream ended
    UNAVAILABLE at once, and on reconnect those leases came back among the rejected resumes, so
    the executor could not tell "stored" from "taken away" (found by black-box testing). Now every
    report the server applied is acknowledged before the stream ends."""
    from security_support import LeaseStream

    server = Orchestratord(database, tmp_path_factory.mktemp("shutdown"), extra_args=["--shutdown-grace", "30"]).start()
    channel = grpc.insecure_channel(server.address)
    try:
        workflows = pb.workflows_grpc.WorkflowsStub(channel)
        executors = pb.executors_grpc.ExecutorsStub(channel)
        tasks = [pb.dag.TaskSpec(key=f"t{i}", required_capabilities=[capability]) for i in range(3)]
        workflow_id = workflows.SubmitQuery(pb.workflows.SubmitQueryRequest(
            query=pb.query.Query(graph=pb.dag.Dag(tasks=tasks))), timeout=30).workflow.workflow_id
        stream = LeaseStream(executors, pb, [], pb.executors.ExecutorHello(
            executor_id="term-" + capability, capabilities=[capability], max_in_flight=3), heartbeat_every=0.5)
        assignments = [stream.next_of("assignment", 30) for _ in range(3)]
        assert all(a is not None and not isinstance(a, tuple) for a in assignments), assignments
        for assignment in assignments:
            stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=assignment.lease, result=b"ok")))
        server.proc.process.send_signal(signal.SIGTERM)
        acked = set()
        while (item := stream.next(30)) is not None and not isinstance(item, tuple):
            if item.WhichOneof("kind") == "ack":
                assert item.ack.accepted, item.ack
                acked.add(item.ack.lease.task_id)
        assert isinstance(item, tuple) and item[1] == grpc.StatusCode.UNAVAILABLE, item
        stream.close()
        assert server.proc.wait(timeout=30) == 0, server.proc.tail()
        stored = {row[0] for row in psql(database, f"SELECT t.id::text FROM tasks t JOIN workflows w ON w.id = t.workflow_id "
                                                   f"WHERE w.id = '{workflow_id}' AND t.state = 'succeeded'")}
        # Every completion the server stored was acknowledged on the stream, and only those.
        assert acked == stored, (acked, stored)
    finally:
        channel.close()
        server.stop()


def test_an_open_health_watch_does_not_hold_the_shutdown(database, tmp_path_factory):
    """grpc.health.v1 Watch turns NOT_SERVING on SIGTERM and then ends (UNAVAILABLE); it used to stay
    open and hold the drain for the whole grace period while the listener was already closed, so
    executors told to reconnect could not (found by black-box testing with grpc-java)."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    server = Orchestratord(database, tmp_path_factory.mktemp("shutdown"), extra_args=["--shutdown-grace", "60"]).start()
    channel = grpc.insecure_channel(server.address)
    try:
        # Its deadline is well inside the 60 s grace period: a watch that is not ended by the
        # shutdown ends DEADLINE_EXCEEDED instead.
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=20)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        server.proc.process.send_signal(signal.SIGTERM)
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        try:
            next(watch)
            raise AssertionError("the watch went on")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error
        assert server.proc.wait(timeout=20) == 0, server.proc.tail()
    finally:
        channel.close()
        server.stop()


def test_a_second_signal_while_the_embedded_database_stops_does_not_cut_it_off(tmp_path):
    """Found with tools/run: Ctrl-C signals the whole group (SIGINT) and the script then sends its
    own SIGTERM. The gRPC server had stopped and taken libevent's signal handlers with it, so the
    SIGTERM met the default disposition and killed orchestratord while it was stopping its
    embedded PostgreSQL — which then ran on with nobody to stop it."""
    folder = Path(tempfile.mkdtemp(prefix="orchestrator-late-signal-", dir="/tmp"))
    os.chmod(folder, 0o777)  # as root the embedded cluster runs as `postgres`
    data, pg_port = folder / "pgdata", free_port()
    proc = Process([binary("orchestratord"), "--grpc-address", f"127.0.0.1:{free_port()}", "--admin-address",
                    f"127.0.0.1:{free_port()}", "--data-dir", data, "--embedded-port", pg_port], tmp_path / "server.log")
    try:
        proc.wait_for_log("orchestratord ready", 120)
        proc.process.send_signal(signal.SIGINT)
        proc.wait_for_log("gRPC server stopped", 30)
        proc.process.send_signal(signal.SIGTERM)  # the second: counted, the shutdown goes on
        assert proc.wait(timeout=60) == 0, proc.tail()
        assert "embedded PostgreSQL stopped" in proc.log(), proc.tail()
        assert "orchestratord stopped" in proc.log(), proc.tail()
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", pg_port)) != 0, "the embedded PostgreSQL still listens"
    finally:
        proc.stop(grace=30)
        stop_postmaster(data)
        shutil.rmtree(folder, ignore_errors=True)

