"""The audit trail end to end: every mutating call, made by real clients with JWTs and W3C trace
contexts, appears in the event log with who (subject, role, tenant), what, when and the call's
trace id — read back through ListEvents (grpcio) and `orchctl events` (the CLI)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import uuid
from datetime import datetime, timezone

import grpc
import pytest

from procs import binary, psql
from security_support import LeaseStream, SecureOrchestratord, bearer, claims, mint, random_secret, write_secret


@pytest.fixture(scope="module")
def secret(tmp_path_factory):
    return write_secret(tmp_path_factory.mktemp("audit-keys") / "hs.secret", random_secret())


@pytest.fixture(scope="module")
def audited(database, secret, tmp_path_factory):
    server = SecureOrchestratord(database, tmp_path_factory.mktemp("audit"), ["--jwt-key-file", secret],
                                 lease_ttl=600, heartbeat=60).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stubs(audited, pb):
    channel = grpc.insecure_channel(audited.address)
    grpc.channel_ready_future(channel).result(timeout=30)
    yield pb.workflows_grpc.WorkflowsStub(channel), pb.executors_grpc.ExecutorsStub(channel)
    channel.close()


def token(secret, sub: str, role: str, tenant: str) -> str:
    return mint(claims(sub, role, tenant, iss=None, aud=None), secret.read_bytes())


def traced(token_: str) -> tuple[list, str]:
    """Call metadata with a fresh W3C traceparent; returns it with its trace id."""
    trace_id = secrets.token_hex(16)
    return bearer(token_) + [("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01")], trace_id


def all_events(workflows, pb, viewer: str, **filters) -> list:
    events, page_token = [], ""
    while True:
        page = workflows.ListEvents(pb.workflows.ListEventsRequest(page_size=3, page_token=page_token, **filters),
                                    metadata=bearer(viewer), timeout=20)
        events += page.events
        if not page.next_page_token:
            return events
        page_token = page.next_page_token


def wait_state(workflows, pb, viewer: str, workflow_id: str, state: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workflow = workflows.GetWorkflow(pb.workflows.GetWorkflowRequest(workflow_id=workflow_id), metadata=bearer(viewer),
                                         timeout=10).workflow
        if pb.workflow.WorkflowState.Name(workflow.state) == state:
            return
        time.sleep(0.1)
    raise AssertionError(f"{workflow_id} not {state} after {timeout}s")


@pytest.fixture(scope="module")
def history(stubs, pb, secret, database):
    """Every kind of mutating call, each with its own trace id; returns what was done by whom."""
    workflows, executors = stubs
    cap = "cap-audit-" + uuid.uuid4().hex[:6]
    alice = token(secret, "alice@t1", "submitter", "t1")
    root = token(secret, "root", "admin", "*")
    worker = token(secret, "worker@t1", "executor", "t1")
    started = int(time.time() * 1000)
    traces = {}

    def spec(key, *deps):
        return pb.dag.TaskSpec(key=key, required_capabilities=[cap], depends_on=list(deps))

    # SubmitQuery, then UpdateDag by an administrator of every tenant.
    metadata, traces["submit"] = traced(alice)
    main = workflows.SubmitQuery(pb.workflows.SubmitQueryRequest(query=pb.query.Query(graph=pb.dag.Dag(tasks=[
        spec("a"), spec("b", "a")]))), metadata=metadata, timeout=20).workflow.workflow_id
    metadata, traces["update"] = traced(root)
    workflows.UpdateDag(pb.workflows.UpdateDagRequest(workflow_id=main, expected_version=1, add_tasks=[spec("c", "b")],
                                                      reason="audit: add c"), metadata=metadata, timeout=20)
    # SubmitStream.
    metadata, traces["stream"] = traced(alice)
    answers = list(workflows.SubmitStream(iter([pb.workflows.SubmitStreamRequest(request_id="s-" + cap, query=pb.query.Query(
        graph=pb.dag.Dag(tasks=[pb.dag.TaskSpec(key="x", required_capabilities=[cap + "-poll"])])))]), metadata=metadata,
        timeout=20))
    streamed = answers[0].accepted.workflow_id
    # A third workflow whose lease is polled, then resumed on a stream, then cancelled.
    cancelled = workflows.SubmitQuery(pb.workflows.SubmitQueryRequest(query=pb.query.Query(graph=pb.dag.Dag(tasks=[
        pb.dag.TaskSpec(key="r", required_capabilities=[cap + "-resume"])]))), metadata=bearer(alice), timeout=20).workflow.workflow_id

    # Lease stream: grants, progress and completions of a, b, c.
    metadata, traces["lease"] = traced(worker)
    stream = LeaseStream(executors, pb, metadata, pb.executors.ExecutorHello(executor_id="w1", capabilities=[cap],
                                                                             max_in_flight=1))
    try:
        assert stream.next_of("welcome", 20)
        for _ in range(3):
            assignment = stream.next_of("assignment", 20)
            assert assignment is not None and not isinstance(assignment, tuple), assignment
            stream.send(pb.executors.LeaseRequest(progress=pb.executors.TaskProgress(lease=assignment.lease, fraction=0.5,
                                                                                     message="half")))
            stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=assignment.lease, result=b"ok")))
            assert stream.next_of("ack", 20).accepted  # the progress
            assert stream.next_of("ack", 20).accepted  # the completion
    finally:
        stream.close()
    wait_state(workflows, pb, alice, main, "WORKFLOW_STATE_SUCCEEDED")

    # Unary PollTasks and a failing ReportStatus.
    metadata, traces["poll"] = traced(worker)
    lease = executors.PollTasks(pb.executors.PollTasksRequest(executor_id="p1", capabilities=[cap + "-poll"], wait_ms=5000),
                                metadata=metadata, timeout=20).assignments[0].lease
    metadata, traces["report"] = traced(worker)
    executors.ReportStatus(pb.executors.ReportStatusRequest(executor_id="p1", failure=pb.executors.TaskFailure(
        lease=lease, message="broken", code="E_AUDIT", retryable=False)), metadata=metadata, timeout=20)

    # A lease polled, resumed on a new stream (hello.resume), then its workflow cancelled.
    metadata, traces["poll-resume"] = traced(worker)
    held = executors.PollTasks(pb.executors.PollTasksRequest(executor_id="r1", capabilities=[cap + "-resume"], wait_ms=5000),
                               metadata=metadata, timeout=20).assignments[0].lease
    metadata, traces["resume"] = traced(worker)
    stream = LeaseStream(executors, pb, metadata, pb.executors.ExecutorHello(executor_id="r1", capabilities=[cap + "-resume"],
                                                                             resume=[held]))
    try:
        welcome = stream.next_of("welcome", 20)
        assert [t.task_id for t in welcome.resumed] == [held.task_id]
        metadata, traces["cancel"] = traced(alice)
        workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=cancelled, reason="audit: stop"),
                                 metadata=metadata, timeout=20)
        assert stream.next_of("revocation", 20)
    finally:
        stream.close()
    return {"main": main, "streamed": streamed, "cancelled": cancelled, "traces": traces, "started": started,
            "ended": int(time.time() * 1000), "alice": alice, "root": root, "viewer": token(secret, "vic@t1", "viewer", "t1")}


ALICE = ("alice@t1", "submitter", "t1")
# An administrator of every tenant acts in its home tenant "default" (where its own submissions go).
ROOT = ("root", "admin", "default")
WORKER = ("worker@t1", "executor", "t1")


def who(event) -> tuple | None:
    return (event.actor.subject, event.actor.role, event.actor.tenant) if event.HasField("actor") else None


def test_every_mutating_call_is_recorded_with_who_when_and_trace(stubs, pb, history, database):
    workflows, _ = stubs
    traces = history["traces"]
    name = pb.workflow.EventType.Name

    def rows(workflow_id):
        return [(name(e.type).removeprefix("EVENT_TYPE_"), e.task_key, who(e), e.request_trace_id, e.at_unix_ms)
                for e in all_events(workflows, pb, history["viewer"], workflow_id=workflow_id)]

    main = rows(history["main"])
    for kind, key, actor, trace, at in main:
        assert history["started"] - 1000 <= at <= history["ended"] + 1000, (kind, at)
    expected_main = [
        ("WORKFLOW_SUBMITTED", "", ALICE, traces["submit"]), ("WORKFLOW_PLANNED", "", ALICE, traces["submit"]),
        ("TASK_READY", "a", ALICE, traces["submit"]), ("DAG_UPDATED", "", ROOT, traces["update"]),
        # The task the update added, named (found by black-box testing: the stream did not say).
        ("DAG_UPDATED", "c", ROOT, traces["update"]),
    ]
    for task in ("a", "b", "c"):
        expected_main += [(kind, task, WORKER, traces["lease"]) for kind in ("TASK_LEASED", "TASK_RUNNING", "TASK_PROGRESS",
                                                                              "TASK_SUCCEEDED")]
        if task != "c":
            expected_main.append(("TASK_READY", {"a": "b", "b": "c"}[task], WORKER, traces["lease"]))
    expected_main.append(("WORKFLOW_SUCCEEDED", "", WORKER, traces["lease"]))
    assert [r[:4] for r in main] == expected_main

    streamed = [r[:4] for r in rows(history["streamed"])]
    assert streamed == [
        ("WORKFLOW_SUBMITTED", "", ALICE, traces["stream"]), ("WORKFLOW_PLANNED", "", ALICE, traces["stream"]),
        ("TASK_READY", "x", ALICE, traces["stream"]), ("TASK_LEASED", "x", WORKER, traces["poll"]),
        ("TASK_FAILED", "x", WORKER, traces["report"]), ("WORKFLOW_FAILED", "", WORKER, traces["report"])]

    cancelled = [r[:4] for r in rows(history["cancelled"])]
    assert cancelled[3:] == [
        ("TASK_LEASED", "r", WORKER, traces["poll-resume"]), ("TASK_LEASE_RESUMED", "r", WORKER, traces["resume"]),
        ("TASK_CANCELLED", "r", ALICE, traces["cancel"]), ("WORKFLOW_CANCELLED", "", ALICE, traces["cancel"])]

    # The executor's events name it as the server recorded it: tenant- and subject-qualified (auth on).
    events = all_events(workflows, pb, history["viewer"], workflow_id=history["main"])
    assert {e.executor_id for e in events if e.executor_id} == {"t1/worker@t1/w1"}
    # In the database: no event of these workflows lacks its actor or its call's trace id.
    ids = "', '".join([history["main"], history["streamed"], history["cancelled"]])
    missing = psql(database, f"SELECT count(*) FROM workflow_events WHERE workflow_id IN ('{ids}') "
                             f"AND (actor IS NULL OR request_trace_id IS NULL)")
    assert missing == [["0"]]


def test_list_events_filters_and_tenant_scope(stubs, pb, history, secret):
    workflows, _ = stubs
    viewer = history["viewer"]
    by_root = all_events(workflows, pb, viewer, actor_subject="root")
    # The new version, and the task it added.
    assert [(pb.workflow.EventType.Name(e.type), e.task_key) for e in by_root] == [("EVENT_TYPE_DAG_UPDATED", ""),
                                                                                  ("EVENT_TYPE_DAG_UPDATED", "c")]
    succeeded = all_events(workflows, pb, viewer, workflow_id=history["main"],
                           types=[pb.workflow.EventType.Value("EVENT_TYPE_TASK_SUCCEEDED")])
    assert [e.task_key for e in succeeded] == ["a", "b", "c"]
    everything = all_events(workflows, pb, viewer, workflow_id=history["main"])
    middle = everything[len(everything) // 2]
    since = all_events(workflows, pb, viewer, workflow_id=history["main"], since_unix_ms=middle.at_unix_ms)
    assert since == [e for e in everything if e.at_unix_ms >= middle.at_unix_ms]
    until = all_events(workflows, pb, viewer, workflow_id=history["main"], until_unix_ms=middle.at_unix_ms)
    assert until == [e for e in everything if e.at_unix_ms < middle.at_unix_ms]
    after = all_events(workflows, pb, viewer, workflow_id=history["main"], after_sequence=middle.sequence)
    assert after == [e for e in everything if e.sequence > middle.sequence]

    # Another tenant sees none of it, and may not ask for it.
    outsider = token(secret, "eve@t2", "viewer", "t2")
    assert not [e for e in all_events(workflows, pb, outsider) if e.workflow_id in
                (history["main"], history["streamed"], history["cancelled"])]
    for request, code in [(pb.workflows.ListEventsRequest(workflow_id=history["main"]), grpc.StatusCode.NOT_FOUND),
                          (pb.workflows.ListEventsRequest(tenant="t1"), grpc.StatusCode.PERMISSION_DENIED),
                          (pb.workflows.ListEventsRequest(page_token="ev1.x"), grpc.StatusCode.INVALID_ARGUMENT),
                          (pb.workflows.ListEventsRequest(page_size=1001), grpc.StatusCode.INVALID_ARGUMENT),
                          (pb.workflows.ListEventsRequest(since_unix_ms=10, until_unix_ms=5), grpc.StatusCode.INVALID_ARGUMENT)]:
        with pytest.raises(grpc.RpcError) as caught:
            workflows.ListEvents(request, metadata=bearer(outsider), timeout=10)
        assert caught.value.code() == code, (request, caught.value.details())
    # The administrator of every tenant sees them and may narrow to one tenant.
    root_view = all_events(workflows, pb, history["root"], tenant="t1", workflow_id=history["cancelled"])
    assert [e.sequence for e in root_view] == [e.sequence for e in all_events(workflows, pb, viewer,
                                                                                  workflow_id=history["cancelled"])]


def orchctl(audited, tok: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary("orchctl")), "events", "--address", audited.address, "--token", tok, *args],
                          capture_output=True, text=True, timeout=60)


def test_orchctl_events(audited, stubs, pb, history):
    workflows, _ = stubs
    viewer = history["viewer"]
    api = all_events(workflows, pb, viewer, workflow_id=history["main"])
    result = orchctl(audited, viewer, "--workflow", history["main"], "--json", "--limit", "1000")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(l["sequence"], l["type"], l.get("task_key", ""), l["request_trace_id"]) for l in lines] == \
        [(e.sequence, pb.workflow.EventType.Name(e.type).removeprefix("EVENT_TYPE_"), e.task_key, e.request_trace_id) for e in api]
    assert lines[0]["actor"] == {"subject": "alice@t1", "role": "submitter", "tenant": "t1"}
    assert lines[0]["at"].endswith("Z") and lines[0]["at_unix_ms"] == api[0].at_unix_ms

    # Filters: actor, type (any spelling), since (RFC 3339), limit across pages.
    by_root = orchctl(audited, viewer, "--actor", "root", "--json")
    assert [json.loads(l)["type"] for l in by_root.stdout.splitlines()] == ["DAG_UPDATED", "DAG_UPDATED"]
    typed = orchctl(audited, viewer, "--workflow", history["main"], "--type", "task_succeeded", "--type", "WORKFLOW_SUCCEEDED",
                    "--json")
    assert [json.loads(l)["type"] for l in typed.stdout.splitlines()] == ["TASK_SUCCEEDED"] * 3 + ["WORKFLOW_SUCCEEDED"]
    since = datetime.fromtimestamp(api[-1].at_unix_ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")
    recent = orchctl(audited, viewer, "--workflow", history["main"], "--since", since.replace("+00:00", "Z"), "--json")
    assert json.loads(recent.stdout.splitlines()[-1])["sequence"] == api[-1].sequence
    limited = orchctl(audited, viewer, "--limit", "2", "--json")
    assert len(limited.stdout.splitlines()) == 2
    text = orchctl(audited, viewer, "--workflow", history["main"], "--limit", "1")
    assert "WORKFLOW_SUBMITTED" in text.stdout and "by alice@t1 (submitter, tenant t1)" in text.stdout \
        and f"trace={history['traces']['submit']}" in text.stdout

    # Errors are one line and a non-zero exit.
    bad = orchctl(audited, viewer, "--type", "bogus")
    assert bad.returncode != 0 and "unknown event type" in bad.stderr
    denied = orchctl(audited, viewer, "--tenant", "t2")
    assert denied.returncode != 0 and "PERMISSION_DENIED" in denied.stderr
