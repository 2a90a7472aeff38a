"""orchestratord SIGKILLed mid-run and restarted on the same database: nothing lost, nothing twice."""

from __future__ import annotations

import re
import time

import pytest

from conftest import assert_completed_once
from procs import orchctl_executor, psql, python_executor


def test_server_sigkill_and_restart_loses_nothing(api, server, database, capability, workdir, processes):
    # Python example executors reconnect with backoff and resume their leases.
    executors = []
    for index in range(2):
        executors.append(python_executor(server.address, workdir, f"py{index}-{capability}", [capability],
                                         "--max-in-flight", "4", "--sleep-ms", "300"))
    processes.extend(executors)
    ids = []
    for index in range(12):
        tasks = [api.task(f"s{i}", capability, [f"s{i - 1}"] if i else []) for i in range(5)]
        ids.append(api.submit(tasks, request_id=f"restart-{capability}-{index}").workflow.workflow_id)
    id_list = ", ".join(f"'{i}'" for i in ids)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = int(psql(database, f"SELECT count(*) FROM tasks WHERE workflow_id IN ({id_list}) AND state = 'succeeded'")[0][0])
        if done >= 15:
            break
        time.sleep(0.1)
    server.kill()
    time.sleep(1)
    server.start()
    for workflow_id in ids:
        assert api.wait_finished(workflow_id, 90) == "WORKFLOW_STATE_SUCCEEDED"
    # Work in flight at the crash came back through hello.resume (leases kept across the restart).
    resumed = [int(n) for proc in executors for n in re.findall(r"resumed=(\d+)", proc.log())]
    assert sum(resumed) > 0, [proc.tail(5) for proc in executors]
    for workflow_id in ids:
        # A task in flight at the crash may run again (its lease lapsed), but it succeeds once.
        assert_completed_once(database, workflow_id, 5, max_attempt=3)


@pytest.mark.parametrize("work_ms", [7000, 2000], ids=["done-after-reconnect", "done-while-disconnected"])
def test_work_in_flight_survives_a_restart_longer_than_the_lease_ttl(api, server, database, capability, workdir, processes,
                                                                     work_ms):
    """The server stopped (SIGTERM) for longer than the lease TTL while an `orchctl executor` ran a
    task: its stream ended, it reconnected with backoff once the server was back and resumed the
    lease, and the task finished in its first attempt, its report sent on the new stream (also
    when the work ended while no server ran). Found by black-box testing: the restarted server's
    reaper took the leases back two seconds after it started, before their executors' reconnect
    backoff ran out, and the work ran twice; now it leaves them alone for one TTL."""
    executor = orchctl_executor(server.address, workdir, "resumer-" + capability, [capability], "--id", "resumer-" + capability,
                                "--sleep-ms", str(work_ms))
    processes.append(executor)
    workflow_id = api.submit([api.task("long", capability)]).workflow.workflow_id
    deadline = time.monotonic() + 30
    while psql(database, f"SELECT state FROM tasks WHERE workflow_id = '{workflow_id}'") != [["leased"]]:
        assert time.monotonic() < deadline, executor.tail(20)
        time.sleep(0.1)
    server.stop()
    time.sleep(server.lease_ttl + 1)  # the lease's expiry passes while no server runs
    server.start()
    assert api.wait_finished(workflow_id, 60) == "WORKFLOW_STATE_SUCCEEDED", executor.tail(30)
    attempts = psql(database, f"SELECT a.attempt, a.outcome FROM task_attempts a JOIN tasks t ON t.id = a.task_id "
                              f"WHERE t.workflow_id = '{workflow_id}' ORDER BY a.attempt")
    assert attempts == [["1", "succeeded"]], (attempts, executor.tail(30))
    events = api.workflows.ListEvents(api.pb.workflows.ListEventsRequest(workflow_id=workflow_id, page_size=1000), timeout=10).events
    assert "EVENT_TYPE_TASK_LEASE_RESUMED" in [api.pb.workflow.EventType.Name(e.type) for e in events]
    assert "reconnecting" in executor.log() and "connected: session" in executor.log()


def test_the_start_up_grace_spares_leases_but_not_retries(api, pb, database, capability, tmp_path):
    """The reaper of a starting server leaves leases alone for one TTL (20 s here), but a retry
    whose backoff ends right after the restart is handed out without waiting the grace out (the
    reaper still makes due retries ready, and so does every claim)."""
    from procs import Orchestratord

    patient = Orchestratord(database, tmp_path, lease_ttl=20, heartbeat=5).start()
    try:
        import grpc as grpc_module

        with grpc_module.insecure_channel(patient.address) as channel:
            executors = pb.executors_grpc.ExecutorsStub(channel)
            workflows = pb.workflows_grpc.WorkflowsStub(channel)
            retry = pb.dag.RetryPolicy(max_attempts=3, initial_backoff_ms=1500, max_backoff_ms=1500)
            workflow_id = workflows.SubmitQuery(pb.workflows.SubmitQueryRequest(query=pb.query.Query(graph=pb.dag.Dag(
                tasks=[api.task("again", capability, retry=retry)]))), timeout=30).workflow.workflow_id
            polled = executors.PollTasks(pb.executors.PollTasksRequest(
                executor_id="grace-" + capability, capabilities=[capability], max_tasks=1, wait_ms=10_000), timeout=20)
            executors.ReportStatus(pb.executors.ReportStatusRequest(executor_id="grace-" + capability, failure=pb.executors.TaskFailure(
                lease=polled.assignments[0].lease, message="once more", retryable=True)), timeout=20)
        patient.stop()
        patient.start()
        # Within 15 s, well inside the 20 s grace: the retry was made ready without waiting it out.
        with grpc_module.insecure_channel(patient.address) as channel:
            executors = pb.executors_grpc.ExecutorsStub(channel)
            polled = executors.PollTasks(pb.executors.PollTasksRequest(
                executor_id="grace-" + capability, capabilities=[capability], max_tasks=1, wait_ms=15_000), timeout=30)
        assert [a.attempt for a in polled.assignments] == [2], polled
        assert psql(database, f"SELECT state FROM tasks WHERE workflow_id = '{workflow_id}'") == [["leased"]]
    finally:
        patient.stop()
