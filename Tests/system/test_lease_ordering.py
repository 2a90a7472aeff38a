"""The order of a Lease stream's messages (docs/EXECUTORS.md, "Fencing tokens"): the ack of a
completion comes before the assignment of any task it made ready.

Found in CI: grpc-java's API checks complete `a` and wait for its ack; the server's claim, woken by
the completion's commit, could send `b` first. The window is narrow (the claim must beat the
report's own continuation): Tests/OrchestratorAppTests/AckBeforeUnblockedTaskTests.swift holds it
open; this test checks the promise end to end, over a real stream with many chains in flight."""

from __future__ import annotations

from security_support import LeaseStream


def test_a_completion_is_acknowledged_before_the_tasks_it_made_ready_are_assigned(api, pb, capability):
    workflows = 100
    chain = ["a", "b", "c"]
    for _ in range(workflows):
        api.submit([api.task(key, capability, [chain[i - 1]] if i else []) for i, key in enumerate(chain)])
    hello = pb.executors.ExecutorHello(executor_id="ordering-" + capability, capabilities=[capability], max_in_flight=8)
    stream = LeaseStream(api.executors, pb, [], hello, heartbeat_every=0.5)
    try:
        assert stream.next_of("welcome", 30) is not None
        task_of = {}  # (workflow_id, key) → task id
        acked = set()  # task ids whose completion was acknowledged
        out_of_order = []
        completed = 0
        while completed < workflows * len(chain):
            response = stream.next(30)
            assert response is not None and not isinstance(response, tuple), f"after {completed} completions: {response}"
            kind = response.WhichOneof("kind")
            if kind == "assignment":
                assignment = response.assignment
                task_of[(assignment.workflow_id, assignment.spec.key)] = assignment.lease.task_id
                for upstream in assignment.spec.depends_on:
                    if task_of.get((assignment.workflow_id, upstream)) not in acked:
                        out_of_order.append(f"{assignment.workflow_id} {assignment.spec.key} before the ack of {upstream}")
                stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(
                    lease=assignment.lease, result=assignment.spec.key.encode())))
            elif kind == "ack":
                assert response.ack.accepted, response.ack
                acked.add(response.ack.lease.task_id)
                completed += 1
        assert out_of_order == []
    finally:
        stream.close()
