"""A task's own lease TTL (Timeouts.lease_ttl_ms) applies to its leases: on the claim path
(PollTasks), on direct dispatch (Lease stream), and when its lease lapses. The server fixture's
default TTL is 3 s. It used to be validated and echoed back, and then ignored."""

from __future__ import annotations

import time

from procs import psql
from security_support import LeaseStream


def ttl_task(api, pb, key, capability, ttl_ms):
    return api.task(key, capability, timeouts=pb.dag.Timeouts(lease_ttl_ms=ttl_ms))


def stored_ttls(database, workflow_id):
    rows = psql(database, f"""SELECT t.key, t.lease_ttl_ms, round(extract(epoch FROM t.lease_expires_at - a.leased_at) * 1000)
                                FROM tasks t JOIN task_attempts a ON a.task_id = t.id AND a.attempt = t.attempt
                               WHERE t.workflow_id = '{workflow_id}' ORDER BY t.key""")
    return {key: (int(ttl), float(span)) for key, ttl, span in rows}


def test_claimed_leases_take_the_task_ttl(api, server, database, capability, pb):
    tasks = [ttl_task(api, pb, "short", capability, 1000), ttl_task(api, pb, "long", capability, 6500),
             api.task("plain", capability)]
    workflow_id = api.submit(tasks).workflow.workflow_id
    polled = api.executors.PollTasks(pb.executors.PollTasksRequest(
        executor_id="ttl-" + capability, capabilities=[capability], max_tasks=3, wait_ms=5000), timeout=15)
    assert {a.spec.key: a.lease_ttl_ms for a in polled.assignments} == {
        "short": 1000, "long": 7000, "plain": server.lease_ttl * 1000}  # whole seconds, rounded up
    ttls = stored_ttls(database, workflow_id)
    assert {key: ttl for key, (ttl, _) in ttls.items()} == {"short": 1000, "long": 7000, "plain": server.lease_ttl * 1000}
    for key, (ttl, span) in ttls.items():
        assert abs(span - ttl) < 500, (key, ttl, span)
    api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id), timeout=10)


def test_a_short_task_ttl_lapses_before_the_server_default(api, server, database, capability, pb):
    workflow_id = api.submit([ttl_task(api, pb, "short", capability, 1000)]).workflow.workflow_id
    polled = api.executors.PollTasks(pb.executors.PollTasksRequest(
        executor_id="lapse-" + capability, capabilities=[capability], max_tasks=1, wait_ms=5000), timeout=15)
    assert len(polled.assignments) == 1  # and never heartbeated
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = psql(database, f"""SELECT extract(epoch FROM e.at - l.at) FROM workflow_events e
            JOIN workflow_events l ON l.task_id = e.task_id AND l.type = 'task_leased' AND l.attempt = 1
            WHERE e.workflow_id = '{workflow_id}' AND e.type = 'task_lease_expired' AND e.attempt = 1""")
        if rows:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the lease never lapsed")
    # One second, plus at most one reaper sweep; the server default would be 3 s.
    assert 0.9 <= float(rows[0][0]) < server.lease_ttl, rows
    api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id), timeout=10)


def test_direct_dispatch_takes_the_task_ttl(api, server, database, capability, pb):
    stream = LeaseStream(api.executors, pb, [], pb.executors.ExecutorHello(
        executor_id="direct-" + capability, capabilities=[capability], max_in_flight=2))
    try:
        assert stream.next_of("welcome", 30) is not None
        time.sleep(1)  # let the session's first claim find nothing: an idle stream takes direct dispatch
        workflow_id = api.submit([ttl_task(api, pb, "own", capability, 2000), api.task("plain", capability)]).workflow.workflow_id
        assigned = {}
        while len(assigned) < 2:
            assignment = stream.next_of("assignment", 30)
            assert assignment is not None
            assigned[assignment.spec.key] = assignment.lease_ttl_ms
        assert assigned == {"own": 2000, "plain": server.lease_ttl * 1000}
        assert {key: ttl for key, (ttl, _) in stored_ttls(database, workflow_id).items()} == assigned
        # Leased in the workflow's own transaction (direct dispatch), not by a later claim.
        instants = psql(database, f"SELECT DISTINCT at FROM workflow_events WHERE workflow_id = '{workflow_id}' "
                                  "AND type IN ('workflow_submitted', 'task_leased')")
        assert len(instants) == 1, instants
    finally:
        stream.close()
    api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id), timeout=10)


def lease_events(database, workflow_id, kind):
    return psql(database, f"SELECT count(*) FROM workflow_events WHERE workflow_id = '{workflow_id}' AND type = '{kind}'")[0][0]


def test_a_one_second_task_ttl_lives_while_its_stream_heartbeats_every_third_of_it(api, server, database, capability, pb):
    """Only the lease keeper extends a lease's expiry in the database, once a second; with a task
    TTL of 1–2 s the reaper met the old expiry first, and the lease was lost every attempt although
    the executor heartbeated every 300 ms and each heartbeat ack promised a later expiry (found by
    black-box testing with a C++ executor)."""
    stream = LeaseStream(api.executors, pb, [], pb.executors.ExecutorHello(
        executor_id="short-hb-" + capability, capabilities=[capability], max_in_flight=3), heartbeat_every=0.3)
    try:
        assert stream.next_of("welcome", 30) is not None
        time.sleep(1)
        workflow_id = api.submit([ttl_task(api, pb, f"short{i}", capability, 1000) for i in range(3)]).workflow.workflow_id
        assignments = [stream.next_of("assignment", 30) for _ in range(3)]
        assert all(a is not None and a.lease_ttl_ms == 1000 for a in assignments), assignments
        # Six TTLs of work, heartbeating every 300 ms: no revocation may come.
        deadline = time.monotonic() + 6
        while (left := deadline - time.monotonic()) > 0:
            item = stream.next(left)
            assert item is None or (not isinstance(item, tuple) and item.WhichOneof("kind") == "heartbeat_ack"), item
        for assignment in assignments:
            stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=assignment.lease, result=b"ok")))
            ack = stream.next_of("ack", 15)
            assert ack is not None and ack.accepted, ack
        assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
        assert lease_events(database, workflow_id, "task_lease_expired") == "0"
    finally:
        stream.close()


def test_a_lease_left_out_of_named_heartbeats_lapses_alone_and_the_stream_goes_on(api, server, database, capability, pb):
    """An executor heartbeating its leases by name lets go of the ones it leaves out: that lease
    lapses and is revoked. The stream used to be closed as "stopped heartbeating" although it kept
    heartbeating, giving back the lease it did name, its attempt spent (found by black-box testing)."""
    stream = LeaseStream(api.executors, pb, [], pb.executors.ExecutorHello(
        executor_id="named-hb-" + capability, capabilities=[capability], max_in_flight=2))
    try:
        assert stream.next_of("welcome", 30) is not None
        time.sleep(1)
        # The dropped task fails for good when it lapses: it must not come back to this stream.
        dropped = api.task("dropped", capability, retry=pb.dag.RetryPolicy(max_attempts=1))
        workflow_id = api.submit([dropped, api.task("kept", capability)],
                                 failure_policy=pb.query.FAILURE_POLICY_CONTINUE_INDEPENDENT).workflow.workflow_id
        assigned = {}
        while len(assigned) < 2:
            assignment = stream.next_of("assignment", 30)
            assert assignment is not None
            assigned[assignment.spec.key] = assignment
        kept = assigned["kept"].lease
        revoked = None
        deadline = time.monotonic() + 3 * server.lease_ttl
        while time.monotonic() < deadline and revoked is None:
            stream.send(pb.executors.LeaseRequest(heartbeat=pb.executors.HeartbeatSignal(leases=[kept])))
            item = stream.next(0.5)
            assert not isinstance(item, tuple), item  # the stream must not end
            if item is not None and item.WhichOneof("kind") == "revocation":
                revoked = item.revocation
        assert revoked is not None and revoked.lease.task_id == assigned["dropped"].lease.task_id, revoked
        # Well past the TTL again: the stream is open and the named lease still held.
        end = time.monotonic() + server.lease_ttl + 1
        while time.monotonic() < end:
            stream.send(pb.executors.LeaseRequest(heartbeat=pb.executors.HeartbeatSignal(leases=[kept])))
            item = stream.next(0.5)
            assert not isinstance(item, tuple), item
            assert item is None or item.WhichOneof("kind") != "revocation", item
        stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=kept, result=b"ok")))
        ack = stream.next_of("ack", 15)
        assert ack is not None and ack.accepted, ack
        rows = psql(database, f"SELECT key, state, attempt FROM tasks WHERE workflow_id = '{workflow_id}' ORDER BY key")
        assert rows == [["dropped", "failed", "1"], ["kept", "succeeded", "1"]], rows
    finally:
        stream.close()


def test_the_python_example_heartbeats_within_a_task_ttl_shorter_than_the_interval(database, capability, pb, tmp_path_factory):
    """EXECUTORS.md step 2: heartbeat every third of a task TTL shorter than welcome's interval.
    The Python example heartbeated only at the interval, so a task granted 1 s under a 2 s
    interval lapsed while it worked (found by black-box testing; it held only at TTL = interval)."""
    from procs import python_executor
    from short_ttl import WORK_MS, assert_short_ttl_task_runs_once

    folder = tmp_path_factory.mktemp("short-ttl")
    assert_short_ttl_task_runs_once(database, folder, pb, capability, lambda address: python_executor(
        address, folder, "ttl-example-" + capability, [capability], "--sleep-ms", WORK_MS))
