"""SubmitStream: many queries on one bidirectional stream, each accepted or rejected with every reason,
watched workflows streamed back with their events and outcome."""

from __future__ import annotations

import queue
import threading

from conftest import assert_completed_once
from procs import python_executor


def queued(outgoing: queue.Queue):
    """The requests put on `outgoing`, until None (the half-close)."""
    while True:
        item = outgoing.get()
        if item is None:
            return
        yield item


def test_submit_stream_accepts_rejects_and_watches(api, server, database, capability, workdir, processes, pb):
    processes.append(python_executor(server.address, workdir, "stream-" + capability, [capability],
                                     "--max-in-flight", "4", "--sleep-ms", "50"))
    outgoing: queue.Queue = queue.Queue()


    good = [api.task("a", capability), api.task("b", capability, ["a"])]
    cyclic = [api.task("x", capability, ["y"]), api.task("y", capability, ["x"])]
    for i in range(5):
        outgoing.put(pb.workflows.SubmitStreamRequest(request_id=f"s-{capability}-{i}", query=api.query(good), watch=True))
    outgoing.put(pb.workflows.SubmitStreamRequest(request_id=f"s-{capability}-bad", query=api.query(cyclic)))

    accepted: dict[str, str] = {}
    rejected: dict[str, object] = {}
    events: dict[str, list[int]] = {}
    outcomes: dict[str, str] = {}
    done = threading.Event()

    call = api.workflows.SubmitStream(queued(outgoing), timeout=90)
    for response in call:
        kind = response.WhichOneof("kind")
        if kind == "accepted":
            accepted[response.request_id] = response.accepted.workflow_id
        elif kind == "rejected":
            rejected[response.request_id] = response.rejected
        elif kind == "event":
            events.setdefault(response.request_id, []).append(response.event.sequence)
        elif kind == "outcome":
            outcomes[response.request_id] = pb.workflow.WorkflowState.Name(response.outcome.state)
            if len(outcomes) == 5 and not done.is_set():
                done.set()
                outgoing.put(None)  # half-close: the server ends the stream when its watches are done

    assert sorted(accepted) == sorted(f"s-{capability}-{i}" for i in range(5))
    assert len(set(accepted.values())) == 5
    bad = rejected[f"s-{capability}-bad"]
    assert bad.code == 3  # INVALID_ARGUMENT, as the unary call would answer
    assert any(problem.code == "CYCLE" for problem in bad.problems)
    assert "x → y → x" in bad.message or "y → x → y" in bad.message
    assert outcomes == {request_id: "WORKFLOW_STATE_SUCCEEDED" for request_id in accepted}
    for request_id, workflow_id in accepted.items():
        sequences = events[request_id]
        assert sequences == sorted(sequences) and len(sequences) == len(set(sequences))
        assert_completed_once(database, workflow_id, 2)


def test_submit_stream_query_joins_its_own_trace(api, capability, pb):
    """A query with its own traceparent makes a workflow in that trace; without one, the stream's
    trace; a malformed one rejects just that query with INVALID_ARGUMENT."""
    stream_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    own_trace = "0af7651916cd43dd8448eb211c80319c"
    dag = [api.task("a", capability)]
    requests = [
        pb.workflows.SubmitStreamRequest(request_id=f"t-{capability}-own", query=api.query(dag),
                                         traceparent=f"00-{own_trace}-b7ad6b7169203331-01"),
        pb.workflows.SubmitStreamRequest(request_id=f"t-{capability}-stream", query=api.query(dag)),
        pb.workflows.SubmitStreamRequest(request_id=f"t-{capability}-bad", query=api.query(dag), traceparent="00-not-a-trace"),
    ]
    metadata = [("traceparent", f"00-{stream_trace}-00f067aa0ba902b7-01")]
    answers = {r.request_id: r for r in api.workflows.SubmitStream(iter(requests), timeout=60, metadata=metadata)}

    def trace_of(request_id):
        workflow_id = answers[request_id].accepted.workflow_id
        return api.workflows.GetWorkflow(pb.workflows.GetWorkflowRequest(workflow_id=workflow_id), timeout=10).workflow.trace_id

    assert trace_of(f"t-{capability}-own") == own_trace
    assert trace_of(f"t-{capability}-stream") == stream_trace
    bad = answers[f"t-{capability}-bad"]
    assert bad.WhichOneof("kind") == "rejected" and bad.rejected.code == 3
    assert "traceparent" in bad.rejected.message


def test_resent_query_on_a_stream_is_watched_once(api, server, capability, workdir, processes, pb):
    """A query sent twice with one request id (a client resending what it saw no answer to) is
    accepted twice, the second time as the same workflow, but its events come back once."""
    processes.append(python_executor(server.address, workdir, "resend-" + capability, [capability],
                                     "--max-in-flight", "4", "--sleep-ms", "300"))
    outgoing: queue.Queue = queue.Queue()


    request_id = f"resend-{capability}"
    dag = [api.task("a", capability), api.task("b", capability, ["a"])]
    for _ in range(2):
        outgoing.put(pb.workflows.SubmitStreamRequest(request_id=request_id, query=api.query(dag), watch=True))
    accepted: list = []
    sequences: list[int] = []
    outcomes = 0
    for response in api.workflows.SubmitStream(queued(outgoing), timeout=90):
        kind = response.WhichOneof("kind")
        assert response.request_id == request_id
        if kind == "accepted":
            accepted.append((response.accepted.workflow_id, response.accepted.created))
        elif kind == "event":
            sequences.append(response.event.sequence)
        elif kind == "outcome":
            outcomes += 1
            assert pb.workflow.WorkflowState.Name(response.outcome.state) == "WORKFLOW_STATE_SUCCEEDED"
            outgoing.put(None)
        else:
            raise AssertionError(response)
    assert [created for _, created in accepted] == [True, False], accepted
    assert accepted[0][0] == accepted[1][0]
    assert outcomes == 1
    assert sequences and len(sequences) == len(set(sequences)), sequences
