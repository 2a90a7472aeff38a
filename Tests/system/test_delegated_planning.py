"""Delegated planning end to end over a real Lease stream: a planning executor receives the `plan`
task, answers with a graph, and the workflow runs it (docs/EXECUTORS.md, "Planning executors")."""

from __future__ import annotations

import time

import grpc
import pytest

from conftest import task_rows, workflow_uuid
from procs import psql
from security_support import LeaseStream


def test_a_planning_executor_answer_is_adopted_and_run(api, pb, database, capability):
    query = pb.query.Query(text="summarise the logs", planner=pb.query.PLANNER_KIND_DELEGATED, priority=5,
                           labels={"team": "blue"})
    workflow_id = api.workflows.SubmitQuery(pb.workflows.SubmitQueryRequest(query=query), timeout=30).workflow.workflow_id
    assert api.state(workflow_id) == "WORKFLOW_STATE_PLANNING"

    hello = pb.executors.ExecutorHello(executor_id="planner-" + capability, capabilities=["planner", capability],
                                       max_in_flight=4)
    stream = LeaseStream(api.executors, pb, [], hello, heartbeat_every=0.5)
    try:
        assert stream.next_of("welcome", 30) is not None
        plan = stream.next_of("assignment", 30, keep_others=True)
        assert plan is not None and plan.spec.key == "plan"
        graph = pb.dag.Dag(tasks=[api.task("fetch", capability), api.task("summarise", capability, ["fetch"])])
        stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(
            lease=plan.lease, result=graph.SerializeToString())))
        ack = stream.next_of("ack", 30, keep_others=True)
        assert ack is not None and ack.accepted
        for expected in ("fetch", "summarise"):
            assignment = stream.next_of("assignment", 30, keep_others=True)
            assert assignment is not None and assignment.spec.key == expected, assignment
            # The spec names the task's upstream tasks (depends_on was always empty).
            assert list(assignment.spec.depends_on) == {"fetch": ["plan"], "summarise": ["fetch"]}[expected], assignment.spec
            if expected == "fetch":
                # Proposed tasks without a proposed upstream run after `plan` and see its result.
                assert "plan" in assignment.upstream_results
            stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(
                lease=assignment.lease, result=expected.encode())))
            done = stream.next_of("ack", 30, keep_others=True)
            assert done is not None and done.accepted
        assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
    finally:
        stream.close()
    rows = task_rows(database, workflow_id)
    assert {key: row["state"] for key, row in rows.items()} == {"plan": "succeeded", "fetch": "succeeded",
                                                                "summarise": "succeeded"}
    assert psql(database, f"SELECT max(version) FROM dag_versions WHERE workflow_id = '{workflow_uuid(workflow_id)}'") == [["2"]]
    # The planned tasks inherit the query's priority and labels, as any planner's do (they got
    # priority 0 and no labels; found by black-box testing).
    dag = api.workflows.GetDag(pb.workflows.GetDagRequest(workflow_id=workflow_id), timeout=10).dag
    for task in dag.tasks:
        assert (task.priority, dict(task.labels).get("team")) == (5, "blue"), (task.key, task.priority, task.labels)


def test_an_invalid_answer_over_a_lease_stream_fails_the_plan(api, pb, database, capability):
    query = pb.query.Query(text="summarise the logs", planner=pb.query.PLANNER_KIND_DELEGATED)
    workflow_id = api.workflows.SubmitQuery(pb.workflows.SubmitQueryRequest(query=query), timeout=30).workflow.workflow_id
    hello = pb.executors.ExecutorHello(executor_id="bad-planner-" + capability, capabilities=["planner"], max_in_flight=1)
    stream = LeaseStream(api.executors, pb, [], hello, heartbeat_every=0.5)
    try:
        plan = stream.next_of("assignment", 30, keep_others=True)
        assert plan is not None and plan.spec.key == "plan"
        nonsense = pb.dag.Dag(tasks=[api.task("z", capability, ["nowhere"])])
        stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(
            lease=plan.lease, result=nonsense.SerializeToString())))
        ack = stream.next_of("ack", 30, keep_others=True)
        assert ack is not None and ack.accepted
        assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_FAILED"
    finally:
        stream.close()
    assert task_rows(database, workflow_id)["plan"]["state"] == "failed"
    error = psql(database, f"SELECT last_error::text FROM tasks WHERE workflow_id = '{workflow_uuid(workflow_id)}' AND key = 'plan'")
    assert "invalid_plan" in error[0][0] and "nowhere" in error[0][0], error


def test_proposed_tasks_may_depend_on_plan_itself(api, pb, database, capability):
    """Edges may start at existing tasks (docs/EXECUTORS.md): `depends_on: ["plan"]` was refused as
    an unknown task, since the answer was checked alone before it was merged."""
    query = pb.query.Query(text="summarise the logs", planner=pb.query.PLANNER_KIND_DELEGATED)
    workflow_id = api.workflows.SubmitQuery(pb.workflows.SubmitQueryRequest(query=query), timeout=30).workflow.workflow_id
    hello = pb.executors.ExecutorHello(executor_id="planner2-" + capability, capabilities=["planner", capability],
                                       max_in_flight=1)
    stream = LeaseStream(api.executors, pb, [], hello, heartbeat_every=0.5)
    try:
        plan = stream.next_of("assignment", 30, keep_others=True)
        assert plan is not None and plan.spec.key == "plan"
        graph = pb.dag.Dag(tasks=[api.task("x", capability, ["plan"]), api.task("y", capability, ["x"])])
        stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(
            lease=plan.lease, result=graph.SerializeToString())))
        assert stream.next_of("ack", 30, keep_others=True).accepted
        for expected in ("x", "y"):
            assignment = stream.next_of("assignment", 30, keep_others=True)
            assert assignment is not None and assignment.spec.key == expected, assignment
            if expected == "x":
                assert "plan" in assignment.upstream_results
            stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=assignment.lease)))
            assert stream.next_of("ack", 30, keep_others=True).accepted
        assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
    finally:
        stream.close()
    edges = psql(database, f"""SELECT u.key || '>' || d.key FROM edges e JOIN tasks u ON u.id = e.upstream_task_id
                                JOIN tasks d ON d.id = e.downstream_task_id
                               WHERE e.workflow_id = '{workflow_uuid(workflow_id)}' ORDER BY 1""")
    assert edges == [["plan>x"], ["x>y"]]


def test_a_delegated_answer_must_respect_the_querys_constraints(api, pb, database, capability):
    """The explicit and catalog planners check a query's constraints; a delegated planner's answer
    was adopted whatever it proposed — 5 tasks under max_tasks 3, a cost of 100 under a cap of 10,
    a forbidden capability (found by black-box testing). Each now fails the plan, saying which."""
    cases = [
        (pb.query.Constraints(max_tasks=3), [api.task(f"t{i}", capability) for i in range(5)],
         "the plan needs 5 tasks; the query allows at most 3"),
        (pb.query.Constraints(max_total_cost=10), [api.task("dear", capability, estimated_cost=100)],
         "the plan costs 100; the query allows at most 10"),
        (pb.query.Constraints(forbidden_capabilities=["danger"]), [api.task("risky", "danger")],
         "task `risky` requires `danger`, which the query's constraints rule out"),
        (pb.query.Constraints(allowed_capabilities=["planner", capability]), [api.task("elsewhere", "other-" + capability)],
         "which the query's constraints rule out"),
    ]
    hello = pb.executors.ExecutorHello(executor_id="bounded-planner-" + capability, capabilities=["planner"], max_in_flight=1)
    stream = LeaseStream(api.executors, pb, [], hello, heartbeat_every=0.5)
    try:
        assert stream.next_of("welcome", 30) is not None
        for constraints, tasks, expected in cases:
            query = pb.query.Query(text="do the thing", planner=pb.query.PLANNER_KIND_DELEGATED, constraints=constraints)
            workflow_id = api.workflows.SubmitQuery(pb.workflows.SubmitQueryRequest(query=query), timeout=30).workflow.workflow_id
            plan = stream.next_of("assignment", 30, keep_others=True)
            assert plan is not None and plan.spec.key == "plan"
            stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(
                lease=plan.lease, result=pb.dag.Dag(tasks=tasks).SerializeToString())))
            ack = stream.next_of("ack", 30, keep_others=True)
            assert ack is not None and ack.accepted
            assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_FAILED"
            error = api.get(workflow_id).error
            assert "the proposed graph breaks the query's constraints" in error and expected in error, error
            assert psql(database, f"SELECT max(version) FROM dag_versions WHERE workflow_id = '{workflow_uuid(workflow_id)}'") == [["1"]]
    finally:
        stream.close()


def test_a_plan_adopted_at_the_querys_bounds_can_still_be_updated(api, pb, database, capability):
    """The planning task counts toward neither max_tasks nor max_total_cost: adoption did not count
    it, UpdateDag did, so a plan adopted at the bounds refused every later update, even one that
    removed an edge ("the plan needs 3 tasks; the query allows at most 2"), and a cost cap under the
    planning task's own cost refused the query itself (found by black-box testing)."""
    constraints = pb.query.Constraints(max_tasks=2, max_total_cost=0.5)
    query = pb.query.Query(text="do the thing", planner=pb.query.PLANNER_KIND_DELEGATED, constraints=constraints)
    plan_only = api.workflows.PlanWorkflow(pb.workflows.PlanWorkflowRequest(query=query), timeout=30)
    assert [t.key for t in plan_only.dag.tasks] == ["plan"]
    workflow_id = api.workflows.SubmitQuery(pb.workflows.SubmitQueryRequest(query=query), timeout=30).workflow.workflow_id
    hello = pb.executors.ExecutorHello(executor_id="edge-planner-" + capability, capabilities=["planner"], max_in_flight=1)
    stream = LeaseStream(api.executors, pb, [], hello, heartbeat_every=0.5)
    try:
        assert stream.next_of("welcome", 30) is not None
        plan = stream.next_of("assignment", 30, keep_others=True)
        assert plan is not None and plan.spec.key == "plan"
        # 0.1 + 0.2 under a cap of 0.3 is within it, though the floating-point sum is 0.30000000000000004.
        graph = pb.dag.Dag(tasks=[api.task("a", capability, estimated_cost=0.1),
                                  api.task("b", capability, ["a"], estimated_cost=0.2)])
        stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(
            lease=plan.lease, result=graph.SerializeToString())))
        ack = stream.next_of("ack", 30, keep_others=True)
        assert ack is not None and ack.accepted
    finally:
        stream.close()
    deadline = time.monotonic() + 30
    while api.get(workflow_id).current_dag_version < 2:
        assert time.monotonic() < deadline, api.get(workflow_id)
        time.sleep(0.1)
    assert api.state(workflow_id) == "WORKFLOW_STATE_RUNNING"
    updated = api.workflows.UpdateDag(pb.workflows.UpdateDagRequest(
        workflow_id=workflow_id, expected_version=2, remove_edges=[pb.dag.Edge(upstream="a", downstream="b")]), timeout=10)
    assert updated.dag.version == 3
    # The bounds still hold for the planned tasks.
    with pytest.raises(grpc.RpcError) as refused:
        api.workflows.UpdateDag(pb.workflows.UpdateDagRequest(
            workflow_id=workflow_id, expected_version=3, add_tasks=[api.task("c", capability, estimated_cost=0.1)]), timeout=10)
    assert refused.value.code().name == "INVALID_ARGUMENT"
    assert "the plan needs 3 tasks; the query allows at most 2" in refused.value.details(), refused.value.details()
    api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id, reason="done"), timeout=10)


def test_a_query_too_large_for_the_planning_task_is_refused_in_the_callers_terms(api, pb, database):
    """Found by black-box testing (grpc-go): a text of exactly max-string-length bytes passed the
    field's own limit and was then refused as "task `plan` carries 65546 bytes of labels and
    metadata", naming a task and labels the caller never sent. The refusal now names what the
    query carries and what to do; nothing is stored."""
    import grpc
    import pytest

    text = "a" * 65536
    before = psql(database, "SELECT count(*) FROM workflows")
    for call in ("PlanWorkflow", "SubmitQuery"):
        request = (pb.workflows.PlanWorkflowRequest if call == "PlanWorkflow" else pb.workflows.SubmitQueryRequest)(
            query=pb.query.Query(text=text, planner=pb.query.PLANNER_KIND_DELEGATED))
        with pytest.raises(grpc.RpcError) as refused:
            getattr(api.workflows, call)(request, timeout=30)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value
        details = refused.value.details()
        assert "planning task `plan`" in details and "needs 65546 (text 65536)" in details, details
        assert "submit an explicit graph" in details, details
    assert psql(database, "SELECT count(*) FROM workflows") == before
    fits = api.workflows.PlanWorkflow(pb.workflows.PlanWorkflowRequest(
        query=pb.query.Query(text="a" * 65526, planner=pb.query.PLANNER_KIND_DELEGATED)), timeout=30)
    assert [task.key for task in fits.dag.tasks] == ["plan"]
