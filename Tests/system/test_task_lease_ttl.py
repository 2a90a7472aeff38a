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
