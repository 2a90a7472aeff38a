"""Two orchestratord processes on one database: claims, reports and the lease reaper stay correct
when they share the tables (SKIP LOCKED claims, fencing tokens, reaper sweeps on both)."""

from __future__ import annotations

import json
import time

import grpc
import pytest

from conftest import assert_completed_once
from procs import Orchestratord, psql, python_executor


def test_two_servers_share_one_database(api, server, database, capability, workdir, processes, pb):
    second = Orchestratord(server.database_url, workdir).start()
    try:
        for index, address in enumerate([server.address, server.address, second.address, second.address]):
            processes.append(python_executor(address, workdir, f"two-{index}-{capability}", [capability],
                                             "--max-in-flight", "3", "--sleep-ms", "150"))
        # One executor on the second server dies halfway through its second task; its lease lapses
        # and whichever server's reaper sweeps first requeues the task.
        processes.append(python_executor(second.address, workdir, f"two-dying-{capability}", [capability],
                                         "--sleep-ms", "400", "--die-after", "2", "--max-reconnects", "0"))
        workflow_ids = [api.submit([api.task(f"t{i}", capability) for i in range(6)]).workflow.workflow_id
                        for _ in range(15)]
        for workflow_id in workflow_ids:
            assert api.wait_finished(workflow_id, 90) == "WORKFLOW_STATE_SUCCEEDED"
        for workflow_id in workflow_ids:
            # At most two attempts: only the dying executor's task needed a second one.
            assert_completed_once(database, workflow_id, 6, max_attempt=2)
    finally:
        second.stop()


@pytest.mark.parametrize("first_stream", ["ends", "falls_silent"])
def test_a_lease_resumed_through_another_server_stays_with_it(api, server, database, capability, workdir, pb, first_stream):
    """An executor whose stream to one server broke from its side resumes its lease through
    another server. The first server's stream then ends (or falls silent, and lapses one TTL
    later), and that server gave the lease back: the task was requeued and ran again while the
    executor finished it, and its report through the second server was refused as stale (found by
    black-box testing). A stream gives back only what no other stream resumed since."""
    from security_support import LeaseStream

    second = Orchestratord(server.database_url, workdir).start()
    channel = grpc.insecure_channel(second.address)
    first = resumed = None
    try:
        executor_id = "roaming-" + capability
        hello = pb.executors.ExecutorHello(executor_id=executor_id, capabilities=[capability], max_in_flight=1)
        first = LeaseStream(api.executors, pb, [], hello, heartbeat_every=0.5 if first_stream == "ends" else None)
        assert first.next_of("welcome", 30) is not None
        workflow_id = api.submit([api.task("roams", capability)]).workflow.workflow_id
        assignment = first.next_of("assignment", 30)
        assert assignment is not None
        resuming = pb.executors.ExecutorHello(executor_id=executor_id, capabilities=[capability], max_in_flight=1,
                                              resume=[assignment.lease])
        resumed = LeaseStream(pb.executors_grpc.ExecutorsStub(channel), pb, [], resuming, heartbeat_every=0.5)
        welcome = resumed.next_of("welcome", 30)
        assert welcome is not None and list(welcome.resumed) == [assignment.lease], welcome
        if first_stream == "ends":
            first.close()
            time.sleep(2)  # the first server has given back what its stream held by now
        else:
            # Silent for two TTLs (3 s): its server lapses the stream's leases and closes it.
            ended = first.next_of("no such kind", 20)
            assert isinstance(ended, tuple), ended
        rows = psql(database, f"SELECT state, attempt FROM tasks WHERE id = '{assignment.lease.task_id}'")
        assert rows == [["leased", "1"]], rows
        resumed.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=assignment.lease, result=b"ok")))
        ack = resumed.next_of("ack", 15)
        assert ack is not None and ack.accepted, ack
        assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
        assert_completed_once(database, workflow_id, 1)
        # The second server's log line names the workflow and its trace, as for a lease granted
        # there: it had no workflow_id and the Lease stream's trace id (found by black-box testing).
        second.proc.wait_for_log("workflow finished", 10)
        finished = [json.loads(line) for line in second.proc.log().splitlines() if '"message":"workflow finished"' in line]
        trace_id = api.get(workflow_id).trace_id
        assert [(line.get("workflow_id"), line.get("trace_id")) for line in finished] == [(workflow_id, trace_id)], finished
    finally:
        for stream in (first, resumed):
            if stream is not None:
                stream.close()
        channel.close()
        second.stop()


def test_unary_heartbeats_through_another_server_keep_a_lease_alive(api, server, database, capability, workdir, pb):
    """Behind a load balancer an executor's unary calls reach any server: it polled a task through
    one and heartbeated it through another, which extended the database expiry and answered valid
    each time — and one TTL later the first server's keeper, never having heard a heartbeat
    itself, lapsed the lease: the task ran again and the completion was refused as stale (found
    by black-box testing). A lease whose database expiry is still ahead is alive."""
    second = Orchestratord(server.database_url, workdir).start()  # lease TTL 3 s, like the first
    channel = grpc.insecure_channel(second.address)
    try:
        other = pb.executors_grpc.ExecutorsStub(channel)
        executor_id = "balanced-" + capability
        workflow_id = api.submit([api.task("polled", capability)]).workflow.workflow_id
        polled = api.executors.PollTasks(pb.executors.PollTasksRequest(
            executor_id=executor_id, capabilities=[capability], max_tasks=1, wait_ms=5000), timeout=15)
        assert len(polled.assignments) == 1
        lease = polled.assignments[0].lease
        deadline = time.monotonic() + 9  # three TTLs
        while time.monotonic() < deadline:
            beat = other.Heartbeat(pb.executors.HeartbeatRequest(executor_id=executor_id, leases=[lease]), timeout=10)
            assert [state.valid for state in beat.leases] == [True], beat
            time.sleep(0.8)
        rows = psql(database, f"SELECT state, attempt FROM tasks WHERE id = '{lease.task_id}'")
        assert rows == [["leased", "1"]], rows
        other.ReportStatus(pb.executors.ReportStatusRequest(executor_id=executor_id, completion=pb.executors.TaskCompletion(
            lease=lease, result=b"ok")), timeout=15)
        assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
        assert_completed_once(database, workflow_id, 1)
    finally:
        channel.close()
        second.stop()


def test_a_unary_heartbeat_that_finds_a_stream_lease_gone_tells_the_stream(api, server, database, capability, workdir, pb):
    """A workflow cancelled through another server: a unary Heartbeat through this one answered
    the stream's lease not valid and dropped it from the server's lease table without a word to
    the stream, whose executor worked on and whose slot was refilled (found by black-box testing).
    The stream gets the revocation."""
    from security_support import LeaseStream

    second = Orchestratord(server.database_url, workdir).start()
    channel = grpc.insecure_channel(second.address)
    stream = None
    try:
        executor_id = "mixed-" + capability
        stream = LeaseStream(api.executors, pb, [], pb.executors.ExecutorHello(
            executor_id=executor_id, capabilities=[capability], max_in_flight=1), heartbeat_every=0.5)
        assert stream.next_of("welcome", 30) is not None
        workflow_id = api.submit([api.task("cancelled", capability)]).workflow.workflow_id
        assignment = stream.next_of("assignment", 30)
        assert assignment is not None
        pb.workflows_grpc.WorkflowsStub(channel).CancelWorkflow(
            pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id, reason="elsewhere"), timeout=15)
        beat = api.executors.Heartbeat(pb.executors.HeartbeatRequest(executor_id=executor_id, leases=[assignment.lease]),
                                       timeout=10)
        assert [state.valid for state in beat.leases] == [False], beat
        revocation = stream.next_of("revocation", 10)
        assert revocation is not None and revocation.lease == assignment.lease, revocation
    finally:
        if stream is not None:
            stream.close()
        channel.close()
        second.stop()
