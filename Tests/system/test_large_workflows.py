"""Large workflows within what a gRPC client accepts by default (4 MiB): ListTasks pages a
workflow's tasks in key order; answers that repeat payloads or graphs leave them out and say so
(`payloads_omitted`, `graph_omitted`, `query_graph_omitted`). Found by black-box testing with
grpc-go and grpcio: a workflow whose results passed 4 MiB could not be read at all, and large
submissions were stored but answered RESOURCE_EXHAUSTED."""

from __future__ import annotations

import uuid

import grpc
import pytest

from procs import Orchestratord, psql


def list_all(api, pb, workflow_id: str, **fields):
    """Every page of ListTasks; returns (tasks, page sizes)."""
    tasks, sizes, token = [], [], ""
    while True:
        page = api.workflows.ListTasks(pb.workflows.ListTasksRequest(workflow_id=workflow_id, page_token=token, **fields),
                                       timeout=30)
        tasks += page.tasks
        sizes.append(len(page.tasks))
        token = page.next_page_token
        if not token:
            return tasks, sizes


def test_pages_hold_every_task_once_in_key_order_with_its_upstream_keys(api, pb, capability):
    diamond = [api.task("a", capability), api.task("b", capability, ["a"]), api.task("c", capability, ["a"]),
               api.task("d", capability, ["c", "b"])]
    others = [api.task(f"t{i:03}", capability) for i in range(246)]
    workflow_id = api.submit(diamond + others).workflow.workflow_id
    tasks, sizes = list_all(api, pb, workflow_id, page_size=100)
    assert sizes == [100, 100, 50]
    keys = [task.spec.key for task in tasks]
    assert keys == sorted(["a", "b", "c", "d"] + [f"t{i:03}" for i in range(246)])
    by_key = {task.spec.key: task for task in tasks}
    assert list(by_key["d"].spec.depends_on) == ["b", "c"] and list(by_key["b"].spec.depends_on) == ["a"]
    assert list(by_key["a"].spec.depends_on) == [] and by_key["a"].workflow_id == workflow_id
    # The same view as GetWorkflow's (whose depends_on keep the graph's order; here key order).
    whole = {task.spec.key: task for task in api.get(workflow_id, tasks=True).tasks}
    assert {key: (t.task_id, t.state, sorted(t.spec.depends_on)) for key, t in by_key.items()} == \
        {key: (t.task_id, t.state, sorted(t.spec.depends_on)) for key, t in whole.items()}

    # States as Task.state shows them; the default page size is 100.
    pending, _ = list_all(api, pb, workflow_id, states=[pb.workflow.TASK_STATE_PENDING])
    assert [task.spec.key for task in pending] == ["b", "c", "d"]
    ready, sizes = list_all(api, pb, workflow_id, states=[pb.workflow.TASK_STATE_READY, pb.workflow.TASK_STATE_FAILED])
    assert len(ready) == 247 and sizes == [100, 100, 47]
    assert list_all(api, pb, workflow_id, states=[pb.workflow.TASK_STATE_RETRY_WAIT])[0] == []


def test_a_task_in_retry_backoff_is_listed_as_retry_wait_not_ready(api, pb, capability):
    retry = pb.dag.RetryPolicy(max_attempts=3, initial_backoff_ms=600_000, max_backoff_ms=600_000)
    workflow_id = api.submit([api.task("r", capability, retry=retry), api.task("s", capability)]).workflow.workflow_id
    executor = "lt-" + capability
    polled = api.executors.PollTasks(pb.executors.PollTasksRequest(
        executor_id=executor, capabilities=[capability], max_tasks=2, wait_ms=5000), timeout=15)
    lease = next(a.lease for a in polled.assignments if a.spec.key == "r")
    api.executors.ReportStatus(pb.executors.ReportStatusRequest(executor_id=executor, failure=pb.executors.TaskFailure(
        lease=lease, message="boom", retryable=True)), timeout=15)
    waiting, _ = list_all(api, pb, workflow_id, states=[pb.workflow.TASK_STATE_RETRY_WAIT])
    assert [task.spec.key for task in waiting] == ["r"]
    assert list_all(api, pb, workflow_id, states=[pb.workflow.TASK_STATE_READY])[0] == []
    leased, _ = list_all(api, pb, workflow_id, states=[pb.workflow.TASK_STATE_LEASED])
    assert [task.spec.key for task in leased] == ["s"]


def test_large_results_are_paged_within_a_default_clients_limit(api, pb, server, capability):
    """Five results of 900 KB: GetWorkflow with its tasks is past what a default client accepts;
    ListTasks ends each page at 1 MiB, so every page arrives, and omit_results leaves them out."""
    workflow_id = api.submit([api.task(f"big{i}", capability) for i in range(5)]).workflow.workflow_id
    executor = "big-" + capability
    polled = api.executors.PollTasks(pb.executors.PollTasksRequest(
        executor_id=executor, capabilities=[capability], max_tasks=5, wait_ms=5000), timeout=15)
    assert len(polled.assignments) == 5
    for assignment in polled.assignments:
        result = assignment.spec.key.encode() * (900_000 // len(assignment.spec.key))
        api.executors.ReportStatus(pb.executors.ReportStatusRequest(executor_id=executor, completion=pb.executors.TaskCompletion(
            lease=assignment.lease, result=result)), timeout=30)
    assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"

    with grpc.insecure_channel(server.address) as channel:  # grpcio's default: 4 MiB received at most
        stub = pb.workflows_grpc.WorkflowsStub(channel)
        with pytest.raises(grpc.RpcError) as too_large:
            stub.GetWorkflow(pb.workflows.GetWorkflowRequest(workflow_id=workflow_id, include_tasks=True), timeout=30)
        assert too_large.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, too_large.value
        tasks, token, sizes = [], "", []
        while True:
            page = stub.ListTasks(pb.workflows.ListTasksRequest(workflow_id=workflow_id, page_token=token), timeout=30)
            tasks += page.tasks
            sizes.append(len(page.tasks))
            token = page.next_page_token
            if not token:
                break
        assert sizes == [1, 1, 1, 1, 1]
        assert [t.spec.key for t in tasks] == [f"big{i}" for i in range(5)]
        assert all(len(t.result) >= 899_000 and t.result.startswith(t.spec.key.encode()) for t in tasks)
        light = stub.ListTasks(pb.workflows.ListTasksRequest(workflow_id=workflow_id, omit_results=True), timeout=30)
        assert [t.spec.key for t in light.tasks] == [f"big{i}" for i in range(5)] and not light.next_page_token
        assert all(t.result == b"" and t.state == pb.workflow.TASK_STATE_SUCCEEDED for t in light.tasks)


def test_bad_requests_are_refused_and_change_nothing(api, pb, database, capability):
    workflow_id = api.submit([api.task("x", capability)]).workflow.workflow_id
    before = psql(database, "SELECT count(*), max(seq) FROM workflow_events")
    cases = [
        (pb.workflows.ListTasksRequest(workflow_id="wf_nope"), grpc.StatusCode.NOT_FOUND, "wf_nope"),
        (pb.workflows.ListTasksRequest(workflow_id=workflow_id, page_size=1001), grpc.StatusCode.INVALID_ARGUMENT,
         "page_size must be between 1 and 1000"),
        (pb.workflows.ListTasksRequest(workflow_id=workflow_id, page_size=-1), grpc.StatusCode.INVALID_ARGUMENT, "page_size"),
        (pb.workflows.ListTasksRequest(workflow_id=workflow_id, page_token="garbage!"), grpc.StatusCode.INVALID_ARGUMENT,
         "page_token is not a token this server issued"),
        (pb.workflows.ListTasksRequest(workflow_id=workflow_id, page_token="AGs="), grpc.StatusCode.INVALID_ARGUMENT,
         "page_token is not a token this server issued"),
        (pb.workflows.ListTasksRequest(workflow_id=workflow_id, states=[42]), grpc.StatusCode.INVALID_ARGUMENT,
         "states contains 42, which is not an orchestrator.v1.TaskState this server lists"),
    ]
    for request, code, fragment in cases:
        with pytest.raises(grpc.RpcError) as refused:
            api.workflows.ListTasks(request, timeout=10)
        assert refused.value.code() == code and fragment in refused.value.details(), (request, refused.value)
    assert psql(database, "SELECT count(*), max(seq) FROM workflow_events") == before
    # Another workflow's token (found by black-box testing: it listed nothing, silently).
    other = api.submit([api.task(f"o{i}", capability) for i in range(3)]).workflow.workflow_id
    token = api.workflows.ListTasks(pb.workflows.ListTasksRequest(workflow_id=other, page_size=1), timeout=10).next_page_token
    assert token
    with pytest.raises(grpc.RpcError) as mixed:
        api.workflows.ListTasks(pb.workflows.ListTasksRequest(workflow_id=workflow_id, page_token=token), timeout=10)
    assert mixed.value.code() == grpc.StatusCode.INVALID_ARGUMENT, mixed.value
    assert f"page_token was issued for the tasks of workflow {other}" in mixed.value.details(), mixed.value.details()
    one = api.workflows.ListTasks(pb.workflows.ListTasksRequest(workflow_id=workflow_id, page_size=1), timeout=10)
    assert [t.spec.key for t in one.tasks] == ["x"] and one.next_page_token == ""


def test_orchctl_get_shows_every_task_of_a_workflow_larger_than_one_page(api, pb, server, capability):
    """`orchctl get` reads the tasks with ListTasks (1,000 a page, results left out)."""
    import subprocess

    from procs import binary

    workflow_id = api.submit([api.task(f"k{i:04}", capability) for i in range(1200)]).workflow.workflow_id
    shown = subprocess.run([str(binary("orchctl")), "get", workflow_id, "--address", server.address],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    task_lines = [line.split()[1] for line in shown.stdout.splitlines() if line.startswith("  - ")]
    assert task_lines == [f"k{i:04}" for i in range(1200)], (len(task_lines), shown.stdout[-500:])


def test_answers_that_would_pass_a_default_clients_limit_leave_the_payloads_out(api, pb, server, capability):
    """Found by black-box testing: 3,000 tasks with 1.2 KB payloads (3.8 MB, under the server's
    4 MiB receive limit) were stored, but SubmitQuery's answer repeated the payloads (4.2 MB) and a
    default client got RESOURCE_EXHAUSTED, on every retry with its request id too; GetDag's answer
    (8 MB) could not be read at all. Such answers now leave the payloads out and say so."""
    tasks = [api.task(f"p{i:04}", capability, payload=bytes([65 + i % 26]) * 1200) for i in range(3000)]
    query = pb.query.Query(graph=pb.dag.Dag(tasks=tasks))
    with grpc.insecure_channel(server.address) as channel:  # grpcio's defaults: 4 MiB each way
        stub = pb.workflows_grpc.WorkflowsStub(channel)
        # Each answer arrives, with its payloads when they fit (PlanWorkflow's, without a workflow
        # record, just does), or without them and saying so.
        planned = stub.PlanWorkflow(pb.workflows.PlanWorkflowRequest(query=query), timeout=60)
        assert len(planned.dag.tasks) == 3000
        assert [t.payload for t in planned.dag.tasks] == ([b""] * 3000 if planned.payloads_omitted else [t.payload for t in tasks])
        request = pb.workflows.SubmitQueryRequest(request_id="big-" + capability, query=query)
        submitted = stub.SubmitQuery(request, timeout=60)
        assert submitted.created and submitted.payloads_omitted and len(submitted.dag.tasks) == 3000
        again = stub.SubmitQuery(request, timeout=60)
        assert not again.created and again.payloads_omitted and again.workflow.workflow_id == submitted.workflow.workflow_id
        workflow_id = submitted.workflow.workflow_id
        dag = stub.GetDag(pb.workflows.GetDagRequest(workflow_id=workflow_id), timeout=60)
        assert dag.payloads_omitted and len(dag.tasks) == 3000
        assert all(t.payload == b"" for t in dag.dag.tasks) and all(t.spec.payload == b"" for t in dag.tasks)
        # The payloads are stored, and ListTasks pages them out.
        listed, token = [], ""
        while True:
            page = stub.ListTasks(pb.workflows.ListTasksRequest(workflow_id=workflow_id, page_token=token), timeout=60)
            listed += page.tasks
            token = page.next_page_token
            if not token:
                break
        assert [t.spec.payload for t in listed] == [bytes([65 + i % 26]) * 1200 for i in range(3000)]
        # A small answer keeps its payloads.
        small = stub.PlanWorkflow(pb.workflows.PlanWorkflowRequest(query=pb.query.Query(graph=pb.dag.Dag(tasks=tasks[:10]))),
                                  timeout=60)
        assert not small.payloads_omitted and small.dag.tasks[3].payload == b"D" * 1200
    api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id), timeout=30)


def test_a_stored_graph_too_large_to_answer_whole_is_answered_without_it(api, pb, server, capability):
    """Found by black-box testing: 30,000 tasks without payloads (a 1 MB request) made a 6 MB answer
    (the analysis, the specs filled in): stored, but its submitter got RESOURCE_EXHAUSTED. A call
    that stored something now answers without the graph, saying so; PlanWorkflow stores nothing
    and answers whole, for a client that raised its limit."""
    tasks = [api.task(f"k{i:05}-{'x' * 12}", capability) for i in range(30000)]
    query = pb.query.Query(graph=pb.dag.Dag(tasks=tasks))
    with grpc.insecure_channel(server.address) as channel:
        stub = pb.workflows_grpc.WorkflowsStub(channel)
        submitted = stub.SubmitQuery(pb.workflows.SubmitQueryRequest(query=query), timeout=120)
        assert submitted.created and submitted.graph_omitted and not submitted.payloads_omitted  # it had none
        assert not submitted.HasField("dag") and not submitted.HasField("analysis")
        assert not submitted.workflow.query.HasField("graph")
        assert submitted.workflow.workflow_id and submitted.workflow.counts.total == 30000
        with pytest.raises(grpc.RpcError) as too_large:
            stub.PlanWorkflow(pb.workflows.PlanWorkflowRequest(query=query), timeout=120)
        assert too_large.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with grpc.insecure_channel(server.address, options=[("grpc.max_receive_message_length", 64 << 20)]) as channel:
        planned = pb.workflows_grpc.WorkflowsStub(channel).PlanWorkflow(pb.workflows.PlanWorkflowRequest(query=query), timeout=120)
        assert len(planned.dag.tasks) == 30000 and not planned.payloads_omitted
    api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=submitted.workflow.workflow_id), timeout=60)


def test_pages_count_the_specs_too(api, pb, server, capability):
    """Found by black-box testing: tasks with 60 KB names and descriptions made 10 MB pages; the
    page budget counted payloads and results only."""
    long = "d" * 60_000
    tasks = [api.task(f"s{i:02}", capability, name="n" * 60_000, description=long) for i in range(30)]
    workflow_id = api.submit(tasks).workflow.workflow_id
    with grpc.insecure_channel(server.address) as channel:
        stub = pb.workflows_grpc.WorkflowsStub(channel)
        listed, sizes, token = [], [], ""
        while True:
            page = stub.ListTasks(pb.workflows.ListTasksRequest(workflow_id=workflow_id, page_token=token), timeout=30)
            listed += page.tasks
            sizes.append(page.ByteSize())
            token = page.next_page_token
            if not token:
                break
    assert [t.spec.key for t in listed] == [f"s{i:02}" for i in range(30)]
    assert max(sizes) < 1.5 * (1 << 20) and len(sizes) >= 3, sizes
    api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id), timeout=30)


def test_workflow_reads_of_large_graphs_fit_a_default_client(api, pb, database, capability, tmp_path):
    """Found while checking the answers' sizes: every workflow in a ListWorkflows page carried its
    query's whole graph, so five 1,000-task workflows (and one with long task descriptions) made a
    3.8 MB page, and a page of 100 such workflows could not be read by a default client. Lists now
    carry each query without its graph (`query_graph_omitted`); GetWorkflow keeps it unless it
    would not fit. A second server that accepts 16 MiB requests takes the 4.8 MB submission."""
    from procs import Orchestratord

    roomy = Orchestratord(database, tmp_path, extra_args=("--max-receive-message-size", str(16 << 20))).start()
    try:
        small = api.submit([api.task("only", capability)]).workflow.workflow_id
        wide = api.submit([api.task(f"w{i:04}", capability) for i in range(1000)]).workflow.workflow_id
        huge_graph = pb.dag.Dag(tasks=[api.task(f"h{i:02}", capability, description="d" * 60_000) for i in range(80)])
        with grpc.insecure_channel(roomy.address, options=[("grpc.max_receive_message_length", 64 << 20)]) as channel:
            huge = pb.workflows_grpc.WorkflowsStub(channel).SubmitQuery(pb.workflows.SubmitQueryRequest(
                query=pb.query.Query(graph=huge_graph)), timeout=120).workflow.workflow_id
        with grpc.insecure_channel(roomy.address) as channel:  # grpcio's default: 4 MiB received at most
            stub = pb.workflows_grpc.WorkflowsStub(channel)
            listed = {w.workflow_id: w for w in stub.ListWorkflows(pb.workflows.ListWorkflowsRequest(page_size=1000),
                                                                   timeout=60).workflows}
            for workflow_id in (small, wide, huge):
                assert listed[workflow_id].query_graph_omitted and not listed[workflow_id].query.HasField("graph")
            one = stub.GetWorkflow(pb.workflows.GetWorkflowRequest(workflow_id=wide), timeout=60).workflow
            assert not one.query_graph_omitted and len(one.query.graph.tasks) == 1000
            big = stub.GetWorkflow(pb.workflows.GetWorkflowRequest(workflow_id=huge), timeout=60).workflow
            assert big.query_graph_omitted and not big.query.HasField("graph") and big.counts.total == 80
            cancelled = stub.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=huge), timeout=60).workflow
            assert cancelled.query_graph_omitted
        for workflow_id in (small, wide):
            api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id), timeout=30)
    finally:
        roomy.stop()


def test_a_query_graph_over_ten_thousand_tasks_is_left_out_of_workflow_answers(api, pb, capability):
    """Reads decoded the query's whole graph to leave it out (a ListWorkflows page of three
    100,000-task workflows took 7 s, every ListTasks page seconds). Every Workflow answer now
    leaves out a graph of more than 10,000 tasks — GetWorkflow and CancelWorkflow without reading
    it, SubmitQuery and its replays (which read it whole) too (found by black-box testing: those
    two still carried it); UpdateDag still inherits the query's labels and priority, which the
    graph-free read keeps."""
    sizes = {10_000: None, 10_001: None}
    for count in sizes:
        tasks = [api.task(f"g{i:05}", capability) for i in range(count)]
        submitted = api.submit(tasks, request_id=f"big-{count}-{capability}", timeout=120, labels={"team": "big"}, priority=7)
        assert submitted.workflow.query_graph_omitted == (count > 10_000)
        replayed = api.submit(tasks, request_id=f"big-{count}-{capability}", timeout=120, labels={"team": "big"}, priority=7)
        assert not replayed.created and replayed.workflow.query_graph_omitted == (count > 10_000)
        sizes[count] = submitted.workflow.workflow_id
    kept = api.get(sizes[10_000])
    assert not kept.query_graph_omitted and len(kept.query.graph.tasks) == 10_000
    left = api.get(sizes[10_001])
    assert left.query_graph_omitted and not left.query.HasField("graph")
    assert left.counts.total == 10_001 and dict(left.query.labels) == {"team": "big"} and left.query.priority == 7
    listed = api.workflows.ListWorkflows(pb.workflows.ListWorkflowsRequest(labels={"team": "big"}), timeout=30).workflows
    assert {w.workflow_id: w.query_graph_omitted for w in listed} == {sizes[10_000]: True, sizes[10_001]: True}
    updated = api.workflows.UpdateDag(pb.workflows.UpdateDagRequest(
        workflow_id=sizes[10_001], expected_version=1, reason="one more", add_tasks=[api.task("extra", capability)]),
        timeout=60)
    # The answer names the version it made, with or without its graph.
    assert updated.dag_version == 2 and (updated.graph_omitted or updated.dag.version == 2)
    assert api.get(sizes[10_001]).current_dag_version == 2
    extra = [t for t in api.workflows.ListTasks(pb.workflows.ListTasksRequest(workflow_id=sizes[10_001], page_size=1000,
                                                                              states=[pb.workflow.TASK_STATE_READY]),
                                                timeout=30).tasks if t.spec.key == "extra"]
    assert len(extra) == 1 and dict(extra[0].spec.labels) == {"team": "big"} and extra[0].spec.priority == 7
    for workflow_id in sizes.values():
        cancelled = api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id), timeout=60)
        assert cancelled.workflow.query_graph_omitted == (workflow_id == sizes[10_001])
    # A finished workflow's replay is read whole, and answered without the graph all the same.
    again = api.submit([api.task(f"g{i:05}", capability) for i in range(10_001)], request_id=f"big-10001-{capability}",
                       timeout=120, labels={"team": "big"}, priority=7, wait=True)
    assert again.workflow.state == pb.workflow.WORKFLOW_STATE_CANCELLED and again.workflow.query_graph_omitted


def test_list_pages_stay_within_a_default_clients_limit(api, pb, capability):
    """Found by black-box testing: two workflows whose queries carry 3 MB of inputs each made a
    6 MB ListWorkflows page no default client could read; pages now end before the workflow that
    would take them past 1 MiB (one workflow at least)."""
    label = {"bulky": capability}
    inputs = {f"doc{i:02}": "d" * 60_000 for i in range(50)}  # 3 MB, in strings under max-string-length
    ids = [api.submit([api.task("only", capability)], inputs=inputs, labels=label).workflow.workflow_id for _ in range(2)]
    seen, token, pages = [], "", 0
    while True:
        page = api.workflows.ListWorkflows(pb.workflows.ListWorkflowsRequest(labels=label, page_token=token), timeout=30)
        seen += [w.workflow_id for w in page.workflows]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(ids) and pages == 2
    for workflow_id in ids:
        api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id), timeout=30)


def test_get_workflow_refuses_tasks_past_the_send_limit_before_reading_them(cluster, tmp_path, pb):
    """Found by black-box testing: GetWorkflow(include_tasks) on 100 results of 1 MB built a
    95 MB answer, 250 MB of the server's memory for one call, and a few callers could take the
    rest. A workflow whose tasks hold more than max-send-message-size is refused, naming
    ListTasks; below it the answer is whole for a client that takes it."""
    database = cluster.create_database("sys_send_limit_" + uuid.uuid4().hex[:8])
    server = Orchestratord(database, tmp_path, extra_args=["--max-send-message-size", 8 << 20]).start()
    try:
        with grpc.insecure_channel(server.address, options=[("grpc.max_receive_message_length", -1)]) as channel:
            workflows = pb.workflows_grpc.WorkflowsStub(channel)
            executors = pb.executors_grpc.ExecutorsStub(channel)

            def finished_with_results(count: int) -> str:
                tasks = [pb.dag.TaskSpec(key=f"r{i}", required_capabilities=["send-limit"]) for i in range(count)]
                workflow_id = workflows.SubmitQuery(pb.workflows.SubmitQueryRequest(
                    request_id=uuid.uuid4().hex, query=pb.query.Query(text="results", graph=pb.dag.Dag(tasks=tasks))),
                    timeout=30).workflow.workflow_id
                polled = executors.PollTasks(pb.executors.PollTasksRequest(
                    executor_id="send-limit", capabilities=["send-limit"], max_tasks=count, wait_ms=5000), timeout=15)
                assert len(polled.assignments) == count
                for assignment in polled.assignments:
                    executors.ReportStatus(pb.executors.ReportStatusRequest(executor_id="send-limit", completion=pb.executors.TaskCompletion(
                        lease=assignment.lease, result=b"x" * 3_000_000)), timeout=30)
                return workflow_id

            small, large = finished_with_results(2), finished_with_results(3)
            whole = workflows.GetWorkflow(pb.workflows.GetWorkflowRequest(workflow_id=small, include_tasks=True), timeout=30)
            assert sorted(len(t.result) for t in whole.workflow.tasks) == [3_000_000, 3_000_000]
            with pytest.raises(grpc.RpcError) as refused:
                workflows.GetWorkflow(pb.workflows.GetWorkflowRequest(workflow_id=large, include_tasks=True), timeout=30)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused.value
            assert "max-send-message-size" in refused.value.details() and "ListTasks" in refused.value.details(), refused.value.details()
            # Nothing else about the workflow is refused.
            assert workflows.GetWorkflow(pb.workflows.GetWorkflowRequest(workflow_id=large), timeout=30).workflow.state == \
                pb.workflow.WORKFLOW_STATE_SUCCEEDED
            pages = 0
            token = ""
            while True:
                page = workflows.ListTasks(pb.workflows.ListTasksRequest(workflow_id=large, page_token=token), timeout=30)
                pages += 1
                token = page.next_page_token
                if not token:
                    break
            assert pages == 3
    finally:
        server.stop()
