"""Direct dispatch: a new workflow's tasks without upstream tasks go straight to idle executor
streams as the workflow is stored (no claim), with the rows, attempts and events a claim leaves;
busy executors, missing capabilities and --direct-dispatch off fall back to the ready queue."""

from __future__ import annotations

import time

import grpc
import pytest

from conftest import Api, assert_completed_once
from procs import Orchestratord, psql, python_executor
from security_support import LeaseStream
from test_observability import scrape, value

LEASED_DIRECTLY = "orchestrator_tasks_leased_directly_total"
LEASED = "orchestrator_tasks_leased_total"


def wait_idle(executor, timeout: float = 30) -> None:
    """Until the executor's stream is open and its first (empty) claim is behind it."""
    executor.wait_for_log("welcome session=", timeout)
    time.sleep(0.5)


def lease_timing(database: str, workflow_id: str) -> dict[str, tuple[str, str]]:
    """Per task key: (task_ready at, first task_leased at), to the microsecond."""
    rows = psql(database, "SELECT task_key, "
                          "max(at) FILTER (WHERE type = 'task_ready'), min(at) FILTER (WHERE type = 'task_leased') "
                          f"FROM workflow_events WHERE workflow_id = '{workflow_id}' AND task_key IS NOT NULL GROUP BY task_key")
    return {key: (ready, leased) for key, ready, leased in rows}


def test_idle_executor_gets_new_roots_in_the_creating_transaction(api, server, database, capability, workdir, processes):
    executor = python_executor(server.address, workdir, "idle-" + capability, [capability],
                               "--max-in-flight", "2", "--sleep-ms", "300")
    processes.append(executor)
    wait_idle(executor)
    admin = server.admin_address()
    before = scrape(admin)
    tasks = [api.task(key, capability) for key in ("a", "b", "c")] + [api.task("d", capability, ["a"])]
    workflow_id = api.submit(tasks).workflow.workflow_id
    # Two slots: two roots leased as the workflow was stored, the third and the child claimed later.
    created = {row[0]: row[1:] for row in psql(database, "SELECT key, state, attempt, lease_owner FROM tasks "
                                                        f"WHERE workflow_id = '{workflow_id}'")}
    leased_at_creation = sorted(key for key, (state, _, _) in created.items() if state == "leased")
    assert len(leased_at_creation) == 2 and set(leased_at_creation) < {"a", "b", "c"}, created
    assert all(created[key][1:] == ["1", "idle-" + capability] for key in leased_at_creation)
    assert created["d"][0] == "pending"

    assert api.wait_finished(workflow_id, 60) == "WORKFLOW_STATE_SUCCEEDED"
    rows = assert_completed_once(database, workflow_id, 4)
    assert all(row["attempt"] == 1 for row in rows.values())
    timing = lease_timing(database, workflow_id)
    for key in leased_at_creation:
        ready, leased = timing[key]
        assert ready == leased, (key, timing)  # one instant: stored leased
    # task_ready before task_leased for every task, whichever way it was leased.
    order = psql(database, f"SELECT task_key, type FROM workflow_events WHERE workflow_id = '{workflow_id}' "
                           "AND type IN ('task_ready', 'task_leased') ORDER BY seq")
    for key in "abcd":
        kinds = [kind for task_key, kind in order if task_key == key]
        assert kinds == ["task_ready", "task_leased"], (key, order)
    attempts = psql(database, "SELECT t.key, a.attempt, a.executor_id, a.outcome FROM task_attempts a JOIN tasks t ON t.id = a.task_id "
                              f"WHERE t.workflow_id = '{workflow_id}' ORDER BY 1")
    assert [row[1:] for row in attempts] == [["1", "idle-" + capability, "succeeded"]] * 4

    after = scrape(admin)
    assert value(after, LEASED_DIRECTLY) - value(before, LEASED_DIRECTLY) >= 2
    assert value(after, LEASED) - value(before, LEASED) >= 4


def test_tasks_go_only_to_executors_that_can_run_them(api, server, database, capability, workdir, processes):
    plain = python_executor(server.address, workdir, "plain-" + capability, [capability], "--max-in-flight", "4")
    special = python_executor(server.address, workdir, "special-" + capability, [capability, capability + "-gpu"],
                              "--max-in-flight", "4")
    processes += [plain, special]
    wait_idle(plain)
    wait_idle(special)
    tasks = [api.task(f"gpu{i}", capability + "-gpu") for i in range(3)] + [api.task(f"cpu{i}", capability) for i in range(3)]
    workflow_id = api.submit(tasks).workflow.workflow_id
    assert api.wait_finished(workflow_id, 60) == "WORKFLOW_STATE_SUCCEEDED"
    owners = dict(psql(database, "SELECT t.key, a.executor_id FROM task_attempts a JOIN tasks t ON t.id = a.task_id "
                                 f"WHERE t.workflow_id = '{workflow_id}'"))
    assert all(owners[f"gpu{i}"] == "special-" + capability for i in range(3)), owners
    assert_completed_once(database, workflow_id, 6)


def test_an_executor_that_disconnects_loses_nothing(api, server, database, capability, workdir, processes):
    """Streams come and go while workflows are submitted: every task still completes exactly once."""
    survivors = python_executor(server.address, workdir, "steady-" + capability, [capability],
                                "--max-in-flight", "8", "--sleep-ms", "20")
    processes.append(survivors)
    wait_idle(survivors)
    workflow_ids = []
    for round_number in range(6):
        flaky = python_executor(server.address, workdir, f"flaky{round_number}-" + capability, [capability],
                                "--max-in-flight", "8", "--sleep-ms", "2000")
        processes.append(flaky)
        flaky.wait_for_log("welcome session=", 30)
        workflow_ids.append(api.submit([api.task(f"t{i}", capability) for i in range(10)]).workflow.workflow_id)
        flaky.kill()  # with whatever it was handed
    for workflow_id in workflow_ids:
        assert api.wait_finished(workflow_id, 90) == "WORKFLOW_STATE_SUCCEEDED"
        assert_completed_once(database, workflow_id, 10, max_attempt=3)


@pytest.fixture(scope="module")
def claiming_server(database, tmp_path_factory):
    instance = Orchestratord(database, tmp_path_factory.mktemp("claiming"), extra_args=["--direct-dispatch", "off"]).start()
    yield instance
    instance.stop()


def test_direct_dispatch_off_stores_every_task_ready(claiming_server, database, capability, workdir, processes, pb):
    channel = grpc.insecure_channel(claiming_server.address)
    api = Api(channel, pb, claiming_server)
    executor = python_executor(claiming_server.address, workdir, "claimer-" + capability, [capability], "--max-in-flight", "4")
    processes.append(executor)
    wait_idle(executor)
    workflow_id = api.submit([api.task(key, capability) for key in ("a", "b")]).workflow.workflow_id
    assert api.wait_finished(workflow_id, 60) == "WORKFLOW_STATE_SUCCEEDED"
    assert_completed_once(database, workflow_id, 2)
    samples = scrape(claiming_server.admin_address())
    assert value(samples, LEASED_DIRECTLY) == 0 and value(samples, LEASED) >= 2
    channel.close()


def test_direct_dispatch_setting_is_validated(database, tmp_path):
    server = Orchestratord(database, tmp_path, extra_args=["--direct-dispatch", "sometimes"])
    with pytest.raises(AssertionError, match="direct-dispatch"):
        server.start(timeout=20)
    server.stop()


def idle_stream(api, pb, executor_id: str, capability: str) -> LeaseStream:
    """A Lease stream with one slot, welcomed and past its first (empty) claim."""
    hello = pb.executors.ExecutorHello(executor_id=executor_id, capabilities=[capability], max_in_flight=1)
    stream = LeaseStream(api.executors, pb, [], hello, heartbeat_every=0.5)
    assert stream.next_of("welcome", 10) is not None
    time.sleep(0.5)
    return stream


def test_a_new_workflows_roots_reach_an_idle_executor_by_priority(api, pb, capability):
    """With fewer free slots than roots, the tasks listed first got them whatever their priority
    (found by black-box testing): the slot goes to the highest priority, as a claim would."""
    stream = idle_stream(api, pb, "prio-" + capability, capability)
    try:
        tasks = [api.task("a_p0", capability), api.task("b_p0", capability), api.task("z_p50", capability, priority=50),
                 api.task("m_p10", capability, priority=10)]
        api.submit(tasks)
        seen = []
        for _ in tasks:
            assignment = stream.next_of("assignment", 10, keep_others=True)
            assert assignment is not None, seen
            seen.append(assignment.spec.key)
            stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=assignment.lease, result=b"ok")))
        assert seen[:2] == ["z_p50", "m_p10"], seen
    finally:
        stream.close()


def test_a_slot_freed_by_a_revocation_is_refilled_from_the_queue_first(api, pb, capability):
    """A lease revoked by a cancellation left its slot empty until the stream's next idle recheck
    (about 4 s), and meanwhile direct dispatch counted the stream idle: a workflow submitted just
    after got the slot ahead of an older, higher-priority task waiting in the queue (found by
    black-box testing)."""
    stream = idle_stream(api, pb, "refill-" + capability, capability)
    try:
        holding = api.submit([api.task("hold", capability)]).workflow.workflow_id
        assert stream.next_of("assignment", 10).spec.key == "hold"
        waiting = api.submit([api.task("high", capability, priority=100)]).workflow.workflow_id
        api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=holding), timeout=10)
        time.sleep(0.05)
        late = api.submit([api.task("low", capability, priority=-100)]).workflow.workflow_id
        assert stream.next_of("revocation", 10, keep_others=True) is not None
        assignment = stream.next_of("assignment", 10, keep_others=True)
        assert assignment is not None and assignment.spec.key == "high", assignment
        for workflow_id in (waiting, late):
            api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id), timeout=10)
    finally:
        stream.close()
