"""SIGTERM with long calls open: they end at once with UNAVAILABLE and what to do next.

Found by black-box testing: an open WatchWorkflow, an idle executor's PollTasks long poll and a
SubmitQuery with `wait` each held the shutdown for the whole grace period, and their clients then
got a transport error ("Socket closed") instead of a status. Lease streams already ended at once."""

from __future__ import annotations

import signal
import threading
import time

import grpc

from procs import Orchestratord


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
        threads = [threading.Thread(target=call, args=("watch", watch)),
                   threading.Thread(target=call, args=("poll", lambda: executors.PollTasks(poll, timeout=120))),
                   threading.Thread(target=call, args=("wait", lambda: workflows.SubmitQuery(wait, timeout=120)))]
        for thread in threads:
            thread.start()
        time.sleep(1.5)  # all three are parked on the server
        assert not outcomes, outcomes

        server.proc.process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=30)
        assert set(outcomes) == {"watch", "poll", "wait"}, outcomes
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
