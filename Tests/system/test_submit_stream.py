"""SubmitStream: many queries on one bidirectional stream, each accepted or rejected with every reason,
watched workflows streamed back with their events and outcome."""

from __future__ import annotations

import queue
import threading

from conftest import assert_completed_once
from procs import python_executor


def test_submit_stream_accepts_rejects_and_watches(api, server, database, capability, workdir, processes, pb):
    processes.append(python_executor(server.address, workdir, "stream-" + capability, [capability],
                                     "--max-in-flight", "4", "--sleep-ms", "50"))
    outgoing: queue.Queue = queue.Queue()

    def requests():
        while True:
            item = outgoing.get()
            if item is None:
                return
            yield item

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

    call = api.workflows.SubmitStream(requests(), timeout=90)
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
