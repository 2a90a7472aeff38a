"""Tracing end to end: an OTLP/HTTP receiver started by the test collects the spans that
orchestratord and the Python example executor export, and the test checks that they form one
trace with the right parent/child links across processes; then `orchctl trace` renders the
workflow's timeline from the event log."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest

from conftest import assert_completed_once
from procs import Process, binary, free_port, orchctl_executor, psql, python_executor
from security_support import LeaseStream


class OTLPReceiver:
    """A minimal OTLP/HTTP (JSON) trace receiver: POST /v1/traces, every span kept with its
    resource's service.name."""

    def __init__(self):
        self.spans: list[dict] = []
        self.requests = 0
        self.bad_requests: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    assert self.path == "/v1/traces", self.path
                    assert self.headers.get("Content-Type", "").startswith("application/json")
                    receiver.collect(json.loads(body))
                    self.send_response(200)
                except Exception as error:  # noqa: BLE001 - reported by the test
                    with receiver.lock:
                        receiver.bad_requests.append(repr(error))
                    self.send_response(400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def collect(self, request: dict) -> None:
        found = []
        for resource_spans in request["resourceSpans"]:
            attributes = {a["key"]: a["value"] for a in resource_spans["resource"]["attributes"]}
            service = attributes["service.name"]["stringValue"]
            for scope_spans in resource_spans["scopeSpans"]:
                for span in scope_spans["spans"]:
                    span["service"] = service
                    span["attrs"] = {a["key"]: next(iter(a["value"].values())) for a in span.get("attributes", [])}
                    found.append(span)
        with self.lock:
            self.requests += 1
            self.spans.extend(found)

    def trace(self, trace_id: str) -> list[dict]:
        with self.lock:
            return [s for s in self.spans if s["traceId"] == trace_id]

    def wait_for(self, predicate, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                snapshot = list(self.spans)
            if predicate(snapshot):
                return snapshot
            time.sleep(0.2)
        with self.lock:
            names = sorted({(s["service"], s["name"]) for s in self.spans})
        raise AssertionError(f"spans did not arrive in {timeout}s; received: {names}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver():
    instance = OTLPReceiver()
    yield instance
    instance.close()


@pytest.fixture(scope="module")
def traced_server(database, receiver, tmp_path_factory):
    folder = tmp_path_factory.mktemp("traced-server")
    port = free_port()
    proc = Process([binary("orchestratord"), "--grpc-address", f"127.0.0.1:{port}", "--database-url", database,
                    "--lease-ttl", "3", "--heartbeat-interval", "1", "--shutdown-grace", "2",
                    "--otlp-endpoint", receiver.endpoint, "--otlp-service-name", "orchestratord-under-test",
                    "--admin-address", ""],
                   folder / "orchestratord.log")
    proc.wait_for_log("orchestratord ready", 60)
    proc.address = f"127.0.0.1:{port}"
    yield proc
    proc.stop()


def traced_stub(pb, address):
    channel = grpc.insecure_channel(address)
    grpc.channel_ready_future(channel).result(timeout=30)
    return channel, pb.workflows_grpc.WorkflowsStub(channel)


def submit(pb, stub, capability, traceparent: str | None):
    tasks = [pb.dag.TaskSpec(key="fetch", required_capabilities=[capability]),
             pb.dag.TaskSpec(key="summarise", required_capabilities=[capability], depends_on=["fetch"])]
    request = pb.workflows.SubmitQueryRequest(query=pb.query.Query(graph=pb.dag.Dag(tasks=tasks)))
    metadata = [("traceparent", traceparent)] if traceparent else []
    return stub.SubmitQuery(request, metadata=metadata, timeout=30).workflow


def wait_finished(pb, stub, workflow_id, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workflow = stub.GetWorkflow(pb.workflows.GetWorkflowRequest(workflow_id=workflow_id, include_tasks=True), timeout=10).workflow
        if pb.workflow.WorkflowState.Name(workflow.state) == "WORKFLOW_STATE_SUCCEEDED":
            return workflow
        time.sleep(0.2)
    raise AssertionError(f"{workflow_id} did not finish")


def test_spans_form_one_trace_across_the_executor(traced_server, receiver, pb, database, capability, workdir, processes):
    trace_id = secrets.token_hex(16)
    client_span = secrets.token_hex(8)
    executor = python_executor(traced_server.address, workdir, "traced-" + capability[-6:], [capability],
                               "--sleep-ms", "150", "--otlp-endpoint", receiver.endpoint)
    processes.append(executor)
    # Idle when the workflow arrives: "fetch" is leased as the workflow is stored (direct
    # dispatch), "summarise" is claimed after it; both dispatches are traced the same way.
    executor.wait_for_log("welcome session=", 30)
    time.sleep(0.5)
    channel, stub = traced_stub(pb, traced_server.address)
    try:
        workflow = submit(pb, stub, capability, f"00-{trace_id}-{client_span}-01")
        workflow_id = workflow.workflow_id
        finished = wait_finished(pb, stub, workflow_id)
    finally:
        channel.close()

    # The workflow's trace id is the submitting call's, on the workflow, its tasks and its events.
    assert workflow.trace_id == trace_id
    assert {t.trace_id for t in finished.tasks} == {trace_id}
    assert psql(database, f"SELECT trace_id FROM workflows WHERE id = '{workflow_id}'") == [[trace_id]]
    event_traces = psql(database, f"SELECT DISTINCT trace_id FROM workflow_events WHERE workflow_id = '{workflow_id}'")
    assert event_traces == [[trace_id]]
    assert_completed_once(database, workflow_id, 2)

    def complete(spans):
        mine = [s for s in spans if s["traceId"] == trace_id]
        names = [s["name"] for s in mine]
        # Spans arrive in batches from two processes, in no particular order: wait for all of them.
        return (names.count("task.report") >= 2 and sum(n.startswith("execute ") for n in names) == 2
                and sum(n.startswith("dispatch ") for n in names) == 2 and names.count("db.claim_tasks") == 1
                and names.count("db.create_workflow") == 1
                and {"workflow.submit", "plan", "orchestrator.v1.Workflows/SubmitQuery"} <= set(names)
                and names.count("db.transaction") >= 3)

    receiver.wait_for(complete, timeout=30)
    spans = receiver.trace(trace_id)
    assert not receiver.bad_requests
    by_id = {s["spanId"]: s for s in spans}
    assert len(by_id) == len(spans), "span ids must be unique"

    def one(name, **attrs):
        found = [s for s in spans if s["name"] == name and all(s["attrs"].get(k) == v for k, v in attrs.items())]
        assert len(found) == 1, (name, attrs, [(s["name"], s["attrs"]) for s in spans])
        return found[0]

    # The RPC span continues the client's span.
    rpc = one("orchestrator.v1.Workflows/SubmitQuery")
    assert rpc["parentSpanId"] == client_span
    assert rpc["kind"] == 2 and rpc["service"] == "orchestratord-under-test"
    assert rpc["attrs"]["rpc.system"] == "grpc" and rpc["attrs"]["rpc.grpc.status_code"] == "0"

    # Planning and the workflow's submission are children of the RPC span; its database
    # transaction is a child of the submission.
    plan = one("plan")
    assert plan["parentSpanId"] == rpc["spanId"]
    assert plan["attrs"]["orchestrator.planner"] == "explicit" and plan["attrs"]["orchestrator.task_count"] == "2"
    submission = one("workflow.submit")
    assert submission["parentSpanId"] == rpc["spanId"]
    assert submission["attrs"]["orchestrator.workflow_id"] == workflow_id
    transactions = [s for s in spans if s["name"] == "db.transaction" and s["parentSpanId"] == submission["spanId"]]
    assert len(transactions) == 1 and transactions[0]["kind"] == 3
    assert transactions[0]["attrs"]["db.system"] == "postgresql"

    task_ids = {t.spec.key: t.task_id for t in finished.tasks}
    for key, database_work in (("fetch", "db.create_workflow"), ("summarise", "db.claim_tasks")):
        # Dispatch (the lease's database work -> assignment sent) hangs from the workflow's
        # submission span; the database work is the claim, or the creating transaction for a
        # task leased as the workflow was stored.
        dispatch = one(f"dispatch {key}")
        assert dispatch["parentSpanId"] == submission["spanId"]
        assert dispatch["kind"] == 4 and dispatch["attrs"]["orchestrator.task_id"] == task_ids[key]
        claim = [s for s in spans if s["name"] == database_work and s["parentSpanId"] == dispatch["spanId"]]
        assert len(claim) == 1, (key, [s["name"] for s in spans if s["parentSpanId"] == dispatch["spanId"]])
        # ... linked to the executor's lease stream, which lives in the executor's own trace.
        assert dispatch.get("links") and all(link["traceId"] != trace_id for link in dispatch["links"])
        # The executor's span (another process) is a child of our dispatch span.
        execute = one(f"execute {key}")
        assert execute["service"] == "python-executor"
        assert execute["parentSpanId"] == dispatch["spanId"]
        assert execute["kind"] == 5 and execute["status"]["code"] == 1
        assert execute["attrs"]["orchestrator.task_id"] == task_ids[key]
        # The report of the result is recorded under the dispatch too, with its transaction.
        report = one("task.report", **{"orchestrator.task_id": task_ids[key], "orchestrator.report": "completed"})
        assert report["parentSpanId"] == dispatch["spanId"]
        assert [s for s in spans if s["name"] == "db.transaction" and s["parentSpanId"] == report["spanId"]]
        # Times nest: dispatch starts before the executor's work, which ends before the report does.
        assert int(dispatch["startTimeUnixNano"]) <= int(execute["startTimeUnixNano"])
        assert int(execute["startTimeUnixNano"]) <= int(report["endTimeUnixNano"])

    # Every span of the trace has a parent inside the trace, except the RPC span (the client's).
    orphans = [s["name"] for s in spans if s.get("parentSpanId") not in by_id and s is not rpc]
    assert not orphans, orphans
    # summarise waited for fetch: its dispatch started after fetch's work ended.
    assert int(one("dispatch summarise")["startTimeUnixNano"]) >= int(one("execute fetch")["endTimeUnixNano"]) - 50_000_000

    # orchctl trace: the waterfall from the event log. The log shows an event once no older
    # transaction can still commit before it (the visibility horizon): on a shared cluster another
    # client's long transaction delays that, so wait until every stored event is listed.
    stored_events = int(psql(database, f"SELECT count(*) FROM workflow_events WHERE workflow_id = '{workflow_id}'")[0][0])
    deadline = time.monotonic() + 90
    while True:
        as_json = subprocess.run([str(binary("orchctl")), "trace", workflow_id, "--json", "--address", traced_server.address],
                                 capture_output=True, text=True, timeout=30)
        assert as_json.returncode == 0, as_json.stderr
        timeline = json.loads(as_json.stdout)
        if timeline["event_count"] == stored_events or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert timeline["event_count"] == stored_events
    result = subprocess.run([str(binary("orchctl")), "trace", workflow_id, "--address", traced_server.address, "--width", "120"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"workflow {workflow_id}  SUCCEEDED")
    assert lines[1] == f"trace_id {trace_id}"
    assert all(len(line) <= 120 for line in lines), max(map(len, lines))
    rows = {line.split()[0]: line for line in lines[3:]}
    executor_id = "traced-" + capability[-6:]
    for key in ("fetch", "summarise"):
        assert re.search(rf"^{key}\s+\+[\d.]+m?s\s+[\d.]+m?s\s+░*█+\s+succeeded  1 attempt  {re.escape(executor_id)}$", rows[key]), rows[key]
    assert "planner explicit" in rows["submit"]
    assert "finished" in rows and "succeeded" in rows["finished"]

    assert timeline["trace_id"] == trace_id and timeline["workflow_id"] == workflow_id and timeline["state"] == "SUCCEEDED"
    tasks = {row["name"]: row for row in timeline["rows"] if row["kind"] == "task"}
    assert set(tasks) == {"fetch", "summarise"}
    for key, row in tasks.items():
        assert row["task_id"] == task_ids[key] and row["state"] == "succeeded" and row["executors"] == [executor_id]
        [attempt] = row["attempts"]
        assert attempt["attempt"] == 1 and attempt["outcome"] == "succeeded" and attempt["executor_id"] == executor_id
        assert attempt["ready_ms"] <= attempt["leased_ms"] <= attempt["end_ms"] == row["end_ms"]
        assert row["duration_ms"] == row["end_ms"] - row["start_ms"] >= 150
    assert tasks["summarise"]["start_ms"] >= tasks["fetch"]["end_ms"]
    assert timeline["duration_ms"] >= tasks["summarise"]["end_ms"]


def test_unsampled_and_server_started_traces(traced_server, receiver, pb, capability):
    channel, stub = traced_stub(pb, traced_server.address)
    try:
        # A caller that decided not to sample: its trace id is kept, but nothing is exported.
        quiet_trace = secrets.token_hex(16)
        request = pb.workflows.PlanWorkflowRequest(query=pb.query.Query(graph=pb.dag.Dag(tasks=[
            pb.dag.TaskSpec(key="a", required_capabilities=[capability])])))
        stub.PlanWorkflow(request, metadata=[("traceparent", f"00-{quiet_trace}-{secrets.token_hex(8)}-00")], timeout=30)
        # No traceparent: the server starts a trace; its RPC span is a root and the workflow keeps its id.
        workflow = submit(pb, stub, capability, None)
    finally:
        channel.close()
    receiver.wait_for(lambda spans: {"workflow.submit", "orchestrator.v1.Workflows/SubmitQuery"}
                      <= {s["name"] for s in spans if s["traceId"] == workflow.trace_id})
    spans = receiver.trace(workflow.trace_id)
    [rpc] = [s for s in spans if s["name"] == "orchestrator.v1.Workflows/SubmitQuery"]
    assert "parentSpanId" not in rpc
    time.sleep(1.5)  # one more export period: an unsampled span would have arrived by now
    assert receiver.trace(quiet_trace) == []


def test_orchctl_executor_continues_the_assignment_trace(traced_server, receiver, pb, capability, workdir, processes):
    processes.append(orchctl_executor(traced_server.address, workdir, "orchctl-traced", [capability], "--sleep-ms", "50",
                                      "--otlp-endpoint", receiver.endpoint, "--tasks", "1"))
    channel, stub = traced_stub(pb, traced_server.address)
    try:
        tasks = [pb.dag.TaskSpec(key="only", required_capabilities=[capability])]
        workflow = stub.SubmitQuery(pb.workflows.SubmitQueryRequest(query=pb.query.Query(graph=pb.dag.Dag(tasks=tasks))),
                                    timeout=30).workflow
        wait_finished(pb, stub, workflow.workflow_id)
    finally:
        channel.close()
    receiver.wait_for(lambda spans: {"execute only", "dispatch only"} <= {s["name"] for s in spans if s["traceId"] == workflow.trace_id})
    spans = receiver.trace(workflow.trace_id)
    [dispatch] = [s for s in spans if s["name"] == "dispatch only"]
    [execute] = [s for s in spans if s["name"] == "execute only"]
    assert execute["service"] == "orchctl-executor" and execute["kind"] == 5 and execute["status"]["code"] == 1
    assert execute["parentSpanId"] == dispatch["spanId"]


def test_the_submitters_trace_context_reaches_the_executors(api, pb, capability):
    """A caller's W3C tracestate (vendor data riding with traceparent) was dropped, and its sampled
    flag replaced by the server's sampler: assignments carried the workflow's trace id with an empty
    tracestate, flagged sampled even for a trace the caller chose not to sample. Both are kept with
    the workflow now and handed out with each task, whether leased as the workflow was stored
    (direct dispatch) or claimed after its upstream task completed; a tracestate that is not valid
    is not passed on, and several tracestate fields are one list (found by black-box testing)."""
    hello = pb.executors.ExecutorHello(executor_id="tracestate-" + capability, capabilities=[capability], max_in_flight=1)
    stream = LeaseStream(api.executors, pb, [], hello, heartbeat_every=0.5)
    try:
        assert stream.next_of("welcome", 10) is not None
        time.sleep(0.5)  # past the stream's first (empty) claim: idle, so the root is leased directly
        # (flags, tracestate fields, expected tracestate). HTTP/2 forbids blanks at either end of a
        # header value; inside, around members, they are allowed.
        cases = [("01", ["congo=t61rcWkgMzE , rojo@tenant=00f067aa0ba902b7,,"], "congo=t61rcWkgMzE,rojo@tenant=00f067aa0ba902b7"),
                 ("00", ["a=1", "b=2"], "a=1,b=2"),
                 ("01", ["Not A Valid=member"], "")]
        for flags, fields, expected in cases:
            trace_id = secrets.token_hex(16)
            request = pb.workflows.SubmitQueryRequest(query=api.query(
                [api.task("root", capability), api.task("child", capability, ["root"])]))
            metadata = [("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-{flags}")] + [("tracestate", f) for f in fields]
            workflow = api.workflows.SubmitQuery(request, metadata=metadata, timeout=30).workflow
            assert workflow.trace_id == trace_id
            for key in ("root", "child"):
                assignment = stream.next_of("assignment", 10)
                assert assignment is not None and assignment.spec.key == key, assignment
                _, assigned_trace, _, assigned_flags = assignment.traceparent.split("-")
                assert (assigned_trace, assigned_flags) == (trace_id, flags), (key, assignment.traceparent)
                assert assignment.tracestate == expected, (key, assignment.tracestate)
                stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=assignment.lease, result=b"ok")))
            assert api.wait_finished(workflow.workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
    finally:
        stream.close()
