"""Cancellation, DAG updates, idempotent and synchronous submission, deadlines."""

from __future__ import annotations

import time
import uuid

import grpc
import pytest

from conftest import assert_completed_once, validation_problems
from procs import psql, python_executor


def wait_sql(database: str, sql: str, expected: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = psql(database, sql)[0][0]
        if value == expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"{sql} = {value}, expected {expected}")


def test_cancellation_mid_run_revokes_leases_and_nothing_completes_after(api, server, database, capability, workdir,
                                                                        processes, pb):
    worker = python_executor(server.address, workdir, "slow-" + capability, [capability],
                             "--max-in-flight", "3", "--sleep-ms", "4000")
    processes.append(worker)
    tasks = [api.task(f"p{i}", capability) for i in range(3)] + [api.task("after", capability, ["p0", "p1", "p2"])]
    workflow_id = api.submit(tasks).workflow.workflow_id
    wait_sql(database, f"SELECT count(*) FROM tasks WHERE workflow_id = '{workflow_id}' AND state IN ('leased', 'running')", "3")
    response = api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id, reason="test"),
                                            timeout=10)
    assert pb.workflow.WorkflowState.Name(response.workflow.state) == "WORKFLOW_STATE_CANCELLED"
    worker.wait_for_log("revoked task=", 10, count=3)
    # Past the executor's sleep: had it not stopped, it would have reported by now.
    time.sleep(5)
    assert api.state(workflow_id) == "WORKFLOW_STATE_CANCELLED"
    states = psql(database, f"SELECT state, count(*) FROM tasks WHERE workflow_id = '{workflow_id}' GROUP BY 1")
    assert dict(states) == {"cancelled": "4"}
    types_ = [r[0] for r in psql(database, f"SELECT type FROM workflow_events WHERE workflow_id = '{workflow_id}' ORDER BY seq")]
    assert "task_succeeded" not in types_
    assert types_.count("workflow_cancelled") == 1
    assert types_.index("workflow_cancelled") > max(i for i, t in enumerate(types_) if t == "task_leased")
    assert "report completion" not in worker.log()


def test_update_dag_on_running_workflow(api, server, database, capability, workdir, processes, pb):
    processes.append(python_executor(server.address, workdir, "ex-" + capability, [capability], "--sleep-ms", "2500"))
    workflow_id = api.submit([api.task("first", capability)]).workflow.workflow_id
    wait_sql(database, f"SELECT state FROM tasks WHERE workflow_id = '{workflow_id}' AND key = 'first'", "leased")
    update = pb.workflows.UpdateDagRequest(workflow_id=workflow_id, expected_version=1, reason="add a follow-up",
                                           add_tasks=[api.task("second", capability, ["first"])])
    response = api.workflows.UpdateDag(update, timeout=10)
    assert response.dag.version == 2
    dag = api.workflows.GetDag(pb.workflows.GetDagRequest(workflow_id=workflow_id), timeout=10)
    assert dag.dag.version == 2 and sorted(t.key for t in dag.dag.tasks) == ["first", "second"]
    assert [v.version for v in dag.versions] == [1, 2] and dag.versions[1].reason == "add a follow-up"
    first = api.workflows.GetDag(pb.workflows.GetDagRequest(workflow_id=workflow_id, version=1), timeout=10)
    assert [t.key for t in first.dag.tasks] == ["first"]

    # A second writer still based on version 1 loses, and writes nothing.
    snapshot = ("SELECT (SELECT count(*) FROM dag_versions WHERE workflow_id = '{w}'), "
                "(SELECT count(*) FROM tasks WHERE workflow_id = '{w}'), "
                "(SELECT count(*) FROM workflow_events WHERE workflow_id = '{w}' AND type = 'dag_updated')").format(w=workflow_id)
    before = psql(database, snapshot)
    stale = pb.workflows.UpdateDagRequest(workflow_id=workflow_id, expected_version=1, reason="stale",
                                          add_tasks=[api.task("third", capability, ["first"])])
    with pytest.raises(grpc.RpcError) as caught:
        api.workflows.UpdateDag(stale, timeout=10)
    assert caught.value.code() == grpc.StatusCode.ABORTED
    # dag_updated twice: version 2, and the task "second" it added.
    assert psql(database, snapshot) == before == [["2", "2", "2"]]

    assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
    tasks = assert_completed_once(database, workflow_id, 2)
    assert set(tasks) == {"first", "second"}


def test_idempotent_submit(api, database, capability):
    request_id = "idem-" + uuid.uuid4().hex
    first = api.submit([api.task("only", capability)], request_id=request_id)
    second = api.submit([api.task("only", capability)], request_id=request_id)
    assert first.created is True and second.created is False
    assert first.workflow.workflow_id == second.workflow.workflow_id
    # The replay answers with the same shape: the DAG and its analysis (the analysis was missing).
    assert second.dag == first.dag and second.HasField("analysis") and second.analysis == first.analysis
    rows = psql(database, f"SELECT count(*) FROM workflows WHERE request_id = '{request_id}'")
    assert rows == [["1"]]
    assert psql(database, f"SELECT count(*) FROM tasks WHERE workflow_id = '{first.workflow.workflow_id}'") == [["1"]]
    api.workflows.CancelWorkflow(api.pb.workflows.CancelWorkflowRequest(workflow_id=first.workflow.workflow_id), timeout=10)


def test_a_request_id_reused_for_another_query_is_refused(api, database, capability, pb):
    """A request id names one request: replaying it returns the first workflow, but reusing it for
    a different query answered with that first workflow as if the new query had been accepted
    (found by black-box testing), so the caller never learnt its query was not run. Every field of
    a rich query survives the round trip through the database (a replay still matches), and any
    change — text, a task field, the failure policy — is ALREADY_EXISTS, with nothing stored."""
    request_id = "reuse-" + uuid.uuid4().hex
    dag = pb.dag

    def rich(**changes):
        fields = dict(
            key="a", name="first", description="does a", required_capabilities=[capability], inputs=["seed"],
            outputs=["out"], estimated_cost=0.1, priority=7, rationale="why",
            resources=dag.Resources(cpu_cores=0.5, memory_mb=256, gpus=1, custom={"tokens": 2.5e4}),
            retry=dag.RetryPolicy(max_attempts=3, initial_backoff_ms=100, max_backoff_ms=900, backoff_multiplier=1.7, jitter=0.3),
            timeouts=dag.Timeouts(start_to_close_ms=60000, lease_ttl_ms=9000), labels={"team": "x", "tier": "1"},
            payload=b"\x00bytes")
        task_changes = changes.pop("task", {})
        fields.update(task_changes)
        tasks = [dag.TaskSpec(**fields), dag.TaskSpec(key="b", required_capabilities=[capability], depends_on=["a"])]
        query = dict(
            text="do the thing", inputs={"seed": "42", "url": "https://example.com/?q=ü"}, priority=3,
            labels={"env": "test"}, graph=dag.Dag(tasks=tasks), planner=pb.query.PLANNER_KIND_EXPLICIT,
            constraints=pb.query.Constraints(max_total_cost=12.5, max_tasks=10, allowed_capabilities=[capability, "other"],
                                             forbidden_capabilities=["gpu-x"]),
            failure_policy=pb.query.FAILURE_POLICY_CONTINUE_INDEPENDENT)
        query.update(changes)
        return pb.workflows.SubmitQueryRequest(request_id=request_id, query=pb.query.Query(**query))

    first = api.workflows.SubmitQuery(rich(), timeout=30)
    replay = api.workflows.SubmitQuery(rich(), timeout=30)
    assert first.created and not replay.created
    assert replay.workflow.workflow_id == first.workflow.workflow_id
    # A graph naming no planner is planned by the explicit one: leaving that default out (or
    # filling it in) is the same request (found by black-box testing: it was ALREADY_EXISTS).
    unnamed = api.workflows.SubmitQuery(rich(planner=pb.query.PLANNER_KIND_UNSPECIFIED), timeout=30)
    assert not unnamed.created and unnamed.workflow.workflow_id == first.workflow.workflow_id
    # Lists whose order means nothing, sent in another order or with repeats (a client rebuilding
    # its retry from a hash set): the same request (found by black-box testing: ALREADY_EXISTS).
    reordered = rich(task={"required_capabilities": [capability, capability], "inputs": ["seed", "seed"]})
    reordered.query.graph.tasks[1].depends_on.extend(["a"])
    reordered.query.graph.tasks.reverse()
    again = api.workflows.SubmitQuery(reordered, timeout=30)
    assert not again.created and again.workflow.workflow_id == first.workflow.workflow_id
    for changed in (rich(text="do another thing"), rich(task={"priority": 8}), rich(task={"estimated_cost": 0.2}),
                    rich(failure_policy=pb.query.FAILURE_POLICY_FAIL_FAST), rich(labels={"env": "prod"})):
        with pytest.raises(grpc.RpcError) as refused:
            api.workflows.SubmitQuery(changed, timeout=30)
        assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS, refused.value.details()
        assert request_id in refused.value.details() and first.workflow.workflow_id in refused.value.details()
    assert psql(database, f"SELECT count(*) FROM workflows WHERE request_id = '{request_id}'") == [["1"]]
    # The same rule on SubmitStream: a rejection with the code, the stream goes on.
    answers = list(api.workflows.SubmitStream(iter([
        pb.workflows.SubmitStreamRequest(request_id=request_id, query=rich(text="streamed").query),
        pb.workflows.SubmitStreamRequest(request_id=request_id, query=rich().query)]), timeout=30))
    assert answers[0].WhichOneof("kind") == "rejected", answers[0]
    assert answers[0].rejected.code == grpc.StatusCode.ALREADY_EXISTS.value[0], answers[0]
    assert answers[1].WhichOneof("kind") == "accepted" and not answers[1].accepted.created, answers[1]
    api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=first.workflow.workflow_id), timeout=10)


def test_submit_wait_returns_the_finished_workflow(api, server, database, capability, workdir, processes):
    processes.append(python_executor(server.address, workdir, "ex-" + capability, [capability], "--sleep-ms", "50"))
    tasks = [api.task("a", capability), api.task("b", capability, ["a"])]
    response = api.submit(tasks, wait=True, timeout=30)
    assert api.pb.workflow.WorkflowState.Name(response.workflow.state) == "WORKFLOW_STATE_SUCCEEDED"
    assert response.workflow.counts.succeeded == 2
    assert_completed_once(database, response.workflow.workflow_id, 2)


def test_submit_wait_deadline_exceeded_and_workflow_keeps_running(api, database, capability):
    request_id = "deadline-" + uuid.uuid4().hex
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        api.submit([api.task("nobody-runs-this", capability)], request_id=request_id, wait=True, timeout=1.5)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 5
    rows = psql(database, f"SELECT id, state FROM workflows WHERE request_id = '{request_id}'")
    assert len(rows) == 1 and rows[0][1] == "running"
    api.workflows.CancelWorkflow(api.pb.workflows.CancelWorkflowRequest(workflow_id=rows[0][0]), timeout=10)


def test_update_dag_reports_every_problem_at_once(api, capability, pb):
    """A reference to a task that is not there hid everything wrong with the rest of the update
    (found by black-box testing); and a key removed and added back in one update is refused,
    since the stored task would have kept its attempts, backoff and last error."""
    import grpc

    workflow_id = api.submit([api.task("g", "nobody-" + capability)]).workflow.workflow_id
    update = pb.workflows.UpdateDagRequest(workflow_id=workflow_id, expected_version=1, remove_tasks=["ghost"],
                                           add_tasks=[api.task("h", capability, ["nope"]), api.task("i", capability, ["h"])],
                                           add_edges=[pb.dag.Edge(upstream="i", downstream="h")])
    try:
        api.workflows.UpdateDag(update, timeout=10)
        raise AssertionError("accepted")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
        for fragment in ('remove_tasks names "ghost"', "unknown task `nope`", "cycle"):
            assert fragment in error.details(), error.details()
    replace = pb.workflows.UpdateDagRequest(workflow_id=workflow_id, expected_version=1, remove_tasks=["g"],
                                            add_tasks=[api.task("g", capability)])
    try:
        api.workflows.UpdateDag(replace, timeout=10)
        raise AssertionError("accepted")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and 'both name "g"' in error.details(), error
    # A malformed field of the update (a bad retry policy, a self-dependency) was reported alone,
    # hiding the rest: one answer lists every problem of the fields, the references and the graph.
    dag = pb.dag
    mixed = pb.workflows.UpdateDagRequest(
        workflow_id=workflow_id, expected_version=1, remove_tasks=["nope"], add_edges=[dag.Edge(upstream="q1", downstream="q2")],
        add_tasks=[dag.TaskSpec(key="bad", retry=dag.RetryPolicy(max_attempts=-1)), dag.TaskSpec(key="bad key"),
                   dag.TaskSpec(key="c", estimated_cost=-1), dag.TaskSpec(key="d", depends_on=["zz"]),
                   dag.TaskSpec(key="x", depends_on=["x"]), dag.TaskSpec(key="g")])
    with pytest.raises(grpc.RpcError) as refused:
        api.workflows.UpdateDag(mixed, timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    problems = validation_problems(refused.value, pb)
    named = {key for problem in problems for key in problem.task_keys}
    assert {"bad", "bad key", "c", "zz", "x", "nope", "q1", "g"} <= named, [(p.code, p.message, p.task_keys) for p in problems]
    assert "SELF_LOOP" in {p.code for p in problems} and "DUPLICATE_KEY" in {p.code for p in problems}, problems
    assert api.get(workflow_id).current_dag_version == 1


def test_update_dag_names_an_edge_already_there_and_drops_one_added_twice(api, capability, pb):
    """Adding an edge the graph already has was refused as "edge `a → b` is listed more than
    once", though the caller listed it once; an edge given twice in one update (a new task's
    repeated depends_on, or add_edges too) is dropped, as a submitted graph's repeats are."""
    dag = pb.dag
    workflow_id = api.submit([api.task("a", "nobody-" + capability), api.task("b", "nobody-" + capability, ["a"])]).workflow.workflow_id
    existing = pb.workflows.UpdateDagRequest(workflow_id=workflow_id, expected_version=1,
                                             add_edges=[dag.Edge(upstream="a", downstream="b")])
    with pytest.raises(grpc.RpcError) as refused:
        api.workflows.UpdateDag(existing, timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the update adds a → b, which is already in the current DAG" in refused.value.details(), refused.value.details()
    assert "more than once" not in refused.value.details()
    assert api.get(workflow_id).current_dag_version == 1
    twice = pb.workflows.UpdateDagRequest(workflow_id=workflow_id, expected_version=1,
                                          add_tasks=[api.task("c", "nobody-" + capability, ["b", "b"])],
                                          add_edges=[dag.Edge(upstream="b", downstream="c"), dag.Edge(upstream="a", downstream="c")])
    updated = api.workflows.UpdateDag(twice, timeout=10)
    assert updated.dag.version == 2
    assert sorted(next(t for t in updated.dag.tasks if t.key == "c").depends_on) == ["a", "b"]


def test_tasks_added_by_update_dag_inherit_the_query_and_obey_its_constraints(api, capability, pb):
    """UpdateDag stored tasks that broke the query's constraints (a forbidden capability, past
    max_tasks and the cost cap) and gave them priority 0 and no labels, unlike every planned task
    (found by black-box testing)."""
    dag = pb.dag
    constraints = pb.query.Constraints(forbidden_capabilities=["gpu"], max_total_cost=5, max_tasks=3)
    workflow_id = api.submit([api.task("a", "nobody-" + capability, estimated_cost=1)], priority=7,
                             labels={"team": "blue"}, constraints=constraints).workflow.workflow_id
    bad = pb.workflows.UpdateDagRequest(workflow_id=workflow_id, expected_version=1, add_tasks=[
        dag.TaskSpec(key="g", required_capabilities=["gpu"], estimated_cost=50),
        dag.TaskSpec(key="h", required_capabilities=["nobody-" + capability]),
        dag.TaskSpec(key="i", required_capabilities=["nobody-" + capability])])
    with pytest.raises(grpc.RpcError) as refused:
        api.workflows.UpdateDag(bad, timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for fragment in ("the plan needs 4 tasks; the query allows at most 3", "the plan costs 53; the query allows at most 5",
                     "task `g` requires `gpu`, which the query's constraints rule out"):
        assert fragment in refused.value.details(), refused.value.details()
    assert "CONSTRAINT_VIOLATED" in {p.code for p in validation_problems(refused.value, pb)}
    assert api.get(workflow_id).current_dag_version == 1
    good = pb.workflows.UpdateDagRequest(workflow_id=workflow_id, expected_version=1, add_tasks=[
        dag.TaskSpec(key="h", required_capabilities=["nobody-" + capability], labels={"team": "red"}),
        dag.TaskSpec(key="i", required_capabilities=["nobody-" + capability], priority=2)])
    tasks = {t.key: t for t in api.workflows.UpdateDag(good, timeout=10).dag.tasks}
    assert (tasks["h"].priority, dict(tasks["h"].labels)) == (7, {"team": "red"})
    assert (tasks["i"].priority, dict(tasks["i"].labels)) == (2, {"team": "blue"})


def test_update_dag_answers_a_malformed_request_alike_whatever_the_workflow(api, capability, pb):
    """The proto puts INVALID_ARGUMENT for the request's own fields first; a malformed update was
    NOT_FOUND for an unknown workflow, FAILED_PRECONDITION for a finished one and ABORTED for a
    stale version, and some of its problems never showed (found by black-box testing)."""
    dag = pb.dag
    finished = api.submit([api.task("a", "nobody-" + capability)]).workflow.workflow_id
    api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=finished), timeout=10)
    running = api.submit([api.task("a", "nobody-" + capability)]).workflow.workflow_id
    ok = dag.TaskSpec(key="n", required_capabilities=["nobody-" + capability])
    malformed = {
        "expected_version 0": dict(expected_version=0, add_tasks=[ok]),
        "no change": dict(),
        "added and removed": dict(add_tasks=[dag.TaskSpec(key="a")], remove_tasks=["a"]),
        "empty key removed": dict(remove_tasks=[""]),
        "bad key": dict(add_tasks=[dag.TaskSpec(key="a b")]),
        "added twice": dict(add_tasks=[ok, ok]),
    }
    for workflow_id, version in (("wf_" + "0" * 32, 1), (finished, 1), (running, 7)):
        for name, fields in malformed.items():
            fields = {"expected_version": version, **fields}
            with pytest.raises(grpc.RpcError) as refused:
                api.workflows.UpdateDag(pb.workflows.UpdateDagRequest(workflow_id=workflow_id, **fields), timeout=10)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (workflow_id, name, refused.value.details())
    assert api.get(running).current_dag_version == 1


def test_a_ready_task_sent_back_to_pending_by_an_update_has_an_event(api, capability, pb):
    """An edge added into a READY task sends it back to PENDING; no event said so, and watchers
    went on showing it ready (found by black-box testing). A dag_updated event names the task
    with state PENDING (no pending event type: older servers could not read a new one)."""
    dag = pb.dag
    workflow_id = api.submit([api.task("a", "nobody-" + capability), api.task("b", "nobody-" + capability)]).workflow.workflow_id
    api.workflows.UpdateDag(pb.workflows.UpdateDagRequest(workflow_id=workflow_id, expected_version=1,
                                                          add_edges=[dag.Edge(upstream="a", downstream="b")]), timeout=10)
    events = api.workflows.ListEvents(pb.workflows.ListEventsRequest(workflow_id=workflow_id), timeout=10).events
    back = [e for e in events if e.task_key == "b" and e.task_state == pb.workflow.TASK_STATE_PENDING]
    assert len(back) == 1 and back[0].type == pb.workflow.EVENT_TYPE_DAG_UPDATED and back[0].dag_version == 2, events
    tasks = {t.spec.key: t for t in api.get(workflow_id, tasks=True).tasks}
    assert tasks["b"].state == pb.workflow.TASK_STATE_PENDING


def test_an_update_names_the_tasks_it_removes_and_adds_and_workflow_events_carry_the_version(api, capability, pb):
    """Found by black-box testing: a task removed by UpdateDag had no event after its TASK_READY,
    so a client rebuilding task states from the stream showed it READY for ever; added tasks that
    had to wait had none either; and workflow events had dag_version 0 although the proto says it
    is set for them."""
    name = pb.workflow.EventType.Name
    nobody = "nobody-" + capability
    workflow_id = api.submit([api.task("a", nobody), api.task("b", nobody)]).workflow.workflow_id
    api.workflows.UpdateDag(pb.workflows.UpdateDagRequest(
        workflow_id=workflow_id, expected_version=1, remove_tasks=["b"],
        add_tasks=[api.task("c", nobody), api.task("d", nobody, ["a"])]), timeout=10)
    api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id, reason="done looking"), timeout=10)
    events = api.workflows.ListEvents(pb.workflows.ListEventsRequest(workflow_id=workflow_id), timeout=10).events
    rows = [(name(e.type).removeprefix("EVENT_TYPE_"), e.task_key, pb.workflow.TaskState.Name(e.task_state), e.dag_version, e.message)
            for e in events]
    update = next(i for i, r in enumerate(rows) if r[:4] == ("DAG_UPDATED", "", "TASK_STATE_UNSPECIFIED", 2))
    assert rows[update + 1:update + 5] == [
        ("DAG_UPDATED", "b", "TASK_STATE_UNSPECIFIED", 2, "removed by the update"),
        ("DAG_UPDATED", "c", "TASK_STATE_PENDING", 2, "added by the update"),
        ("DAG_UPDATED", "d", "TASK_STATE_PENDING", 2, "added by the update"),
        ("TASK_READY", "c", "TASK_STATE_READY", 0, ""),
    ], rows
    # Every task's last event is its state: b's says it is gone, and the cancel names a, c and d.
    cancelled = sorted(r[1] for r in rows if r[0] == "TASK_CANCELLED")
    assert cancelled == ["a", "c", "d"], rows
    workflow_events = [(r[0], r[3]) for r in rows if r[0].startswith("WORKFLOW_")]
    assert workflow_events == [("WORKFLOW_SUBMITTED", 1), ("WORKFLOW_PLANNED", 1), ("WORKFLOW_CANCELLED", 2)], rows


def test_submit_query_answers_with_the_dag_and_its_payloads(api, capability, pb):
    """SubmitQueryResponse.dag is the workflow's DAG as GetDag returns it, payloads included — on
    the first answer and on a replay of the same request id. It came back without them, so a
    client checking what it submitted saw empty inputs (found by black-box testing with a C++
    client). `Workflow.query.graph` leaves payloads out, as workflow.proto says."""
    tasks = [api.task("a", capability, payload=b"hello"), api.task("b", capability, ["a"], payload=b"\x00\xffbinary")]
    request_id = "payload-echo-" + capability
    for attempt in range(2):
        answer = api.submit(tasks, request_id=request_id)
        assert answer.created == (attempt == 0)
        assert {t.key: t.payload for t in answer.dag.tasks} == {"a": b"hello", "b": b"\x00\xffbinary"}, answer.dag
        assert all(t.payload == b"" for t in answer.workflow.query.graph.tasks)
    stored = api.workflows.GetDag(pb.workflows.GetDagRequest(workflow_id=answer.workflow.workflow_id), timeout=10)
    assert {t.key: t.payload for t in stored.dag.tasks} == {t.key: t.payload for t in answer.dag.tasks}
    api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=answer.workflow.workflow_id), timeout=10)


def test_a_cut_problem_list_says_how_many_problems_are_missing(api, capability, pb):
    """With more problems than the status details hold, the details ended without a word (50
    problems: 7 attached, the message naming 44; found by black-box testing). Now the last entry
    is MORE_PROBLEMS, counting what was left out."""
    tasks = [api.task(f"t{i}", capability, [f"missing-{i}"]) for i in range(150)]
    with pytest.raises(grpc.RpcError) as refused:
        api.submit(tasks)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details().startswith("invalid DAG: 150 problems: "), refused.value.details()
    problems = validation_problems(refused.value, pb)
    listed, marker = problems[:-1], problems[-1]
    assert listed and all(p.code == "UNKNOWN_DEPENDENCY" for p in listed), [p.code for p in problems]
    assert marker.code == "MORE_PROBLEMS" and not marker.task_keys, marker
    assert marker.message.startswith(f"{150 - len(listed)} more problems not attached (150 in all"), marker.message
