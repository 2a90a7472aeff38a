"""Values at the edges of their types, sent by an ordinary grpcio client: each used to crash the
server (a Swift trap converting an out-of-range number) or to be stored and break readers.
Each must get a clear status, change nothing, and leave the server up. Found by black-box
testing as a new user would."""

from __future__ import annotations

import base64
import math
import random
import string
import subprocess

import grpc
import pytest

from procs import binary, psql, workflow_uuid

FAR_FUTURE_MS = 10**16  # year 318857: past what a timestamp can hold
INT64_MAX = 2**63 - 1


def expect_status(call, code: grpc.StatusCode, *fragments: str):
    with pytest.raises(grpc.RpcError) as raised:
        call()
    assert raised.value.code() == code, raised.value
    for fragment in fragments:
        assert fragment in raised.value.details(), raised.value.details()
    return raised.value


def still_serving(api, server):
    assert server.proc.alive(), server.proc.tail()
    api.workflows.ListWorkflows(api.pb.workflows.ListWorkflowsRequest(page_size=1), timeout=10)


@pytest.mark.parametrize("field", ["initial_backoff_ms", "max_backoff_ms"])
@pytest.mark.parametrize("value", [10**16, INT64_MAX, 366 * 86_400_000 + 1])
def test_retry_backoffs_past_366_days_are_refused(api, server, database, capability, pb, field, value):
    retry = pb.dag.RetryPolicy(max_attempts=3, **{field: value})
    before = psql(database, "SELECT count(*) FROM workflows")
    expect_status(lambda: api.submit([api.task("a", capability, retry=retry)]), grpc.StatusCode.INVALID_ARGUMENT,
                  f"retry.{field} is {value}", "at most 366 days")
    assert psql(database, "SELECT count(*) FROM workflows") == before
    still_serving(api, server)


@pytest.mark.parametrize("value", [2**31, 30 * 86_400_000, 366 * 86_400_000])
def test_lease_ttls_past_24_days_are_refused_and_dispatch_goes_on(api, server, database, capability, pb, value):
    """Found by black-box testing: a lease TTL between 2^31 ms and 366 days was accepted, and then
    every claim that met the task failed ("integer out of range": the column is int4), so every
    executor offering its capabilities got INTERNAL and no work at all (and with an idle executor,
    direct dispatch made the submission itself fail INTERNAL)."""
    timeouts = pb.dag.Timeouts(lease_ttl_ms=value)
    before = psql(database, "SELECT count(*) FROM workflows")
    expect_status(lambda: api.submit([api.task("a", capability, timeouts=timeouts)]), grpc.StatusCode.INVALID_ARGUMENT,
                  f"timeouts.lease_ttl_ms is {value}", "at most 24 days")
    assert psql(database, "SELECT count(*) FROM workflows") == before
    longest = pb.dag.Timeouts(lease_ttl_ms=24 * 86_400_000)
    workflow_id = api.submit([api.task("a", capability, timeouts=longest)]).workflow.workflow_id
    polled = api.executors.PollTasks(pb.executors.PollTasksRequest(
        executor_id="ttl-" + capability, capabilities=[capability], max_tasks=1, wait_ms=5000), timeout=15)
    assert len(polled.assignments) == 1 and polled.assignments[0].lease_ttl_ms == 24 * 86_400_000, polled
    completed = api.executors.ReportStatus(pb.executors.ReportStatusRequest(
        executor_id="ttl-" + capability, completion=pb.executors.TaskCompletion(lease=polled.assignments[0].lease)), timeout=10)
    assert completed.accepted, completed
    assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"


def test_a_failure_with_the_longest_backoff_and_a_huge_multiplier_is_scheduled(api, server, database, capability, pb):
    """The largest accepted backoffs, grown by a multiplier of 1e308, used to overflow when the retry
    time was computed: the report crashed the server, and so did every restart (the reaper met
    the same lease)."""
    longest = 366 * 86_400_000
    retry = pb.dag.RetryPolicy(max_attempts=5, initial_backoff_ms=longest, max_backoff_ms=longest,
                               backoff_multiplier=1e308)
    workflow_id = api.submit([api.task("a", capability, retry=retry)]).workflow.workflow_id
    for attempt in (1, 2):
        if attempt == 2:
            # Not due for 366 days: move it back to ready as the promotion would, to fail it again.
            psql(database, f"UPDATE tasks SET state = 'ready', ready_at = now(), next_attempt_at = NULL "
                           f"WHERE workflow_id = '{workflow_id}'")
        polled = api.executors.PollTasks(pb.executors.PollTasksRequest(
            executor_id="backoff-" + capability, capabilities=[capability], max_tasks=1, wait_ms=5000), timeout=15)
        assert len(polled.assignments) == 1
        lease = polled.assignments[0].lease
        reply = api.executors.ReportStatus(pb.executors.ReportStatusRequest(
            executor_id="backoff-" + capability,
            failure=pb.executors.TaskFailure(lease=lease, message="try later", retryable=True)), timeout=10)
        assert reply.accepted, reply
        rows = psql(database, f"SELECT state, round(extract(epoch FROM next_attempt_at - now()) / 86400) "
                              f"FROM tasks WHERE workflow_id = '{workflow_id}'")
        assert rows[0][0] == "retry_wait"
        assert 360 <= float(rows[0][1]) <= 733, rows  # 366 days, spread by the default jitter
    still_serving(api, server)
    api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id), timeout=10)


@pytest.mark.parametrize("field", ["created_after_unix_ms", "created_before_unix_ms"])
@pytest.mark.parametrize("value", [FAR_FUTURE_MS, INT64_MAX, -1])
def test_list_workflows_time_filters_out_of_range(api, server, pb, field, value):
    expect_status(lambda: api.workflows.ListWorkflows(pb.workflows.ListWorkflowsRequest(**{field: value}), timeout=10),
                  grpc.StatusCode.INVALID_ARGUMENT, field, "9999-12-31")
    still_serving(api, server)


def test_list_workflows_reversed_window(api, server, pb):
    expect_status(lambda: api.workflows.ListWorkflows(pb.workflows.ListWorkflowsRequest(
        created_after_unix_ms=2_000_000_000_000, created_before_unix_ms=1_000_000_000_000), timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT, "created_before_unix_ms (1000000000000) must be after created_after_unix_ms")
    # The last representable instant is a valid bound.
    api.workflows.ListWorkflows(pb.workflows.ListWorkflowsRequest(created_before_unix_ms=253_402_300_799_999), timeout=10)


@pytest.mark.parametrize("field", ["since_unix_ms", "until_unix_ms"])
@pytest.mark.parametrize("value", [FAR_FUTURE_MS, INT64_MAX, -1])
def test_list_events_time_filters_out_of_range(api, server, pb, field, value):
    expect_status(lambda: api.workflows.ListEvents(pb.workflows.ListEventsRequest(**{field: value}), timeout=10),
                  grpc.StatusCode.INVALID_ARGUMENT, field)
    still_serving(api, server)


# "wf\x00x": a NUL reached PostgreSQL, which refuses it in text: INTERNAL (found by black-box testing).
@pytest.mark.parametrize("token", [f"{-2**63}|wf_x", f"{INT64_MAX}|wf_x", "-1|wf_x", "garbage", "12|", "12|wf\x00x",
                                   "12|wf_x'; --", "12|wf_\u00e9"])
def test_forged_list_workflows_page_tokens(api, server, pb, token):
    encoded = base64.urlsafe_b64encode(token.encode()).decode() if token != "garbage" else token
    expect_status(lambda: api.workflows.ListWorkflows(pb.workflows.ListWorkflowsRequest(page_token=encoded), timeout=10),
                  grpc.StatusCode.INVALID_ARGUMENT, "page_token is not a token this server issued")
    still_serving(api, server)


def test_a_real_page_token_still_pages(api, server, capability, pb):
    for index in range(3):
        api.submit([api.task(f"p{index}", capability)])
    first = api.workflows.ListWorkflows(pb.workflows.ListWorkflowsRequest(page_size=2), timeout=10)
    assert len(first.workflows) == 2 and first.next_page_token
    second = api.workflows.ListWorkflows(pb.workflows.ListWorkflowsRequest(page_size=2, page_token=first.next_page_token),
                                         timeout=10)
    assert second.workflows
    assert not {w.workflow_id for w in first.workflows} & {w.workflow_id for w in second.workflows}


def test_nan_progress_is_stored_as_zero(api, server, database, capability, pb):
    workflow_id = api.submit([api.task("a", capability)]).workflow.workflow_id
    polled = api.executors.PollTasks(pb.executors.PollTasksRequest(
        executor_id="nan-" + capability, capabilities=[capability], max_tasks=1, wait_ms=5000), timeout=15)
    lease = polled.assignments[0].lease
    for fraction in (math.nan, math.inf, -math.inf):
        reply = api.executors.ReportStatus(pb.executors.ReportStatusRequest(
            executor_id="nan-" + capability,
            progress=pb.executors.TaskProgress(lease=lease, fraction=fraction, message="odd")), timeout=10)
        assert reply.accepted, reply
    stored = psql(database, f"SELECT progress FROM workflow_events WHERE workflow_id = '{workflow_id}' "
                            "AND type = 'task_progress' ORDER BY seq")
    assert stored == [["0"], ["1"], ["0"]]
    api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id), timeout=10)


def test_costs_whose_sum_overflows_are_refused(api, server, database, capability, pb):
    tasks = [api.task("a", capability, estimated_cost=1e308), api.task("b", capability, estimated_cost=1e308)]
    before = psql(database, "SELECT count(*) FROM workflows")
    error = expect_status(lambda: api.submit(tasks), grpc.StatusCode.INVALID_ARGUMENT, "add up to more than")
    assert "internal" not in error.details().lower()
    expect_status(lambda: api.workflows.PlanWorkflow(pb.workflows.PlanWorkflowRequest(query=api.query(tasks)), timeout=10),
                  grpc.StatusCode.INVALID_ARGUMENT, "add up to more than")
    assert psql(database, "SELECT count(*) FROM workflows") == before
    still_serving(api, server)


def test_an_assignment_larger_than_clients_accept_fails_its_task_with_the_reason(api, server, database, capability, pb):
    """Two 3 MB results (each under the 4 MiB receive limit) make a 6 MB assignment for their child,
    which grpcio refuses by default: the lease lapsed again and again until the attempts ran out,
    reported as "lease expired". Now the child fails at once, not retryable, saying why."""
    tasks = [api.task("a", capability), api.task("b", capability), api.task("child", capability, ["a", "b"])]
    workflow_id = api.submit(tasks).workflow.workflow_id
    executor = "big-" + capability
    for _ in range(2):
        polled = api.executors.PollTasks(pb.executors.PollTasksRequest(
            executor_id=executor, capabilities=[capability], max_tasks=1, wait_ms=5000), timeout=15)
        assert len(polled.assignments) == 1 and polled.assignments[0].spec.key in ("a", "b")
        reply = api.executors.ReportStatus(pb.executors.ReportStatusRequest(
            executor_id=executor, completion=pb.executors.TaskCompletion(
                lease=polled.assignments[0].lease, result=b"x" * (3 * 1024 * 1024))), timeout=30)
        assert reply.accepted, reply
    # The child is claimed for this executor and failed instead of being sent.
    polled = api.executors.PollTasks(pb.executors.PollTasksRequest(
        executor_id=executor, capabilities=[capability], max_tasks=1, wait_ms=2000), timeout=15)
    assert list(polled.assignments) == []
    assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_FAILED"
    rows = psql(database, f"SELECT state, attempt, last_error ->> 'code', last_error ->> 'message', last_error ->> 'source' "
                          f"FROM tasks WHERE workflow_id = '{workflow_id}' AND key = 'child'")
    state, attempt, code, message, source = rows[0]
    # Failed by dispatch, not by an executor: none ever saw it.
    assert (state, attempt, code, source) == ("failed", "1", "assignment_too_large", "dispatch"), rows
    assert "over the 4194304 bytes sent to executors (max-assignment-size" in message, message
    # `orchctl get` shows it, as EXECUTORS.md says: the answer (6 MB of results) is over a generated
    # client's default 4 MiB, which orchctl used to keep (RESOURCE_EXHAUSTED; found by black-box testing).
    shown = subprocess.run([str(binary("orchctl")), "get", workflow_id, "--address", server.address],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "max-assignment-size" in shown.stdout, (shown.returncode, shown.stderr[-500:])
    still_serving(api, server)


def test_a_poll_sends_the_assignments_that_fit_and_returns_the_rest_unspent(api, server, database, capability, pb):
    """Each assignment fits in what a client accepts, but a poll for several could answer with more
    than that together: grpcio refused the 4.4 MB response (RESOURCE_EXHAUSTED) and both tasks stayed
    leased to nobody until their TTL, an attempt spent (found by black-box testing). Now the
    response carries those that fit; the others are ready again at once, their attempt not spent."""
    payload = b"p" * (2200 * 1024)
    ids = [api.submit([api.task("big", capability, payload=payload)]).workflow.workflow_id for _ in range(2)]
    executor = "poller-" + capability
    poll = pb.executors.PollTasksRequest(executor_id=executor, capabilities=[capability], max_tasks=2, wait_ms=5000)
    first = api.executors.PollTasks(poll, timeout=15)
    assert len(first.assignments) == 1 and first.assignments[0].spec.payload == payload
    assert (first.assignments[0].attempt, first.assignments[0].lease.fencing_token) == (1, 1)
    taken = first.assignments[0].workflow_id
    other = ids[1] if taken == ids[0] else ids[0]
    rows = psql(database, f"SELECT state, attempt, (SELECT count(*) FROM task_attempts a WHERE a.task_id = t.id) "
                          f"FROM tasks t WHERE workflow_id = '{other}'")
    assert rows == [["ready", "0", "0"]], rows
    events = psql(database, f"SELECT type, attempt, message FROM workflow_events WHERE workflow_id = '{other}' "
                            f"AND type IN ('task_ready', 'task_leased') ORDER BY seq")
    assert [row[0] for row in events] == ["task_ready", "task_leased", "task_ready"], events
    assert events[2][1] == "0" and "returned unsent: no room left in the PollTasks response" in events[2][2], events
    second = api.executors.PollTasks(poll, timeout=15)
    assert [a.workflow_id for a in second.assignments] == [other]
    assert (second.assignments[0].attempt, second.assignments[0].lease.fencing_token) == (1, 1)
    for assignment in (first.assignments[0], second.assignments[0]):
        reply = api.executors.ReportStatus(pb.executors.ReportStatusRequest(
            executor_id=executor, completion=pb.executors.TaskCompletion(lease=assignment.lease, result=b"ok")), timeout=30)
        assert reply.accepted, reply
    for workflow_id in ids:
        assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
    still_serving(api, server)


def test_tasks_whose_input_alone_cannot_be_assigned_are_refused_at_submission(database, pb, capability, tmp_path_factory):
    """A task's input plus the query's inputs travel in every assignment of it: over
    --max-assignment-size, the task could never be handed out. It used to be stored and then fail
    `assignment_too_large` at its first lease, blamed on upstream results it did not have (found
    by black-box testing); now the submission, or the DAG update adding it, is refused, naming the
    task and the sizes, and nothing is stored."""
    from procs import Orchestratord

    server = Orchestratord(database, tmp_path_factory.mktemp("budget"),
                           extra_args=["--max-assignment-size", str(1024 * 1024)]).start()
    try:
        channel = grpc.insecure_channel(server.address)
        workflows = pb.workflows_grpc.WorkflowsStub(channel)
        before = psql(database, "SELECT count(*) FROM workflows")

        def submit(tasks, **fields):
            query = pb.query.Query(graph=pb.dag.Dag(tasks=tasks), **fields)
            return workflows.SubmitQuery(pb.workflows.SubmitQueryRequest(query=query), timeout=30)

        def task(key, payload=b"", depends_on=()):
            return pb.dag.TaskSpec(key=key, required_capabilities=[capability], payload=payload, depends_on=list(depends_on))

        # String fields are limited to 64 KiB each (max-string-length), but not their sum.
        inputs = {f"part{i}": "d" * 60_000 for i in range(10)}
        expect_status(lambda: submit([task("small"), task("big", b"p" * (600 * 1024))], inputs=inputs),
                      grpc.StatusCode.INVALID_ARGUMENT, "task `big` (input 614400 bytes)",
                      "the query's inputs (600050 bytes)", "over the 1048576 bytes sent to executors (max-assignment-size")
        expect_status(lambda: submit([task("huge", b"p" * (1100 * 1024))]),
                      grpc.StatusCode.INVALID_ARGUMENT, "task `huge` (input 1126400 bytes)")
        assert psql(database, "SELECT count(*) FROM workflows") == before
        # Under the limit, each part alone and together, it is stored.
        created = submit([task("small"), task("medium", b"p" * (300 * 1024))], inputs=inputs)
        assert created.created
        # A DAG update adding such a task is refused the same way; the graph stays at version 1.
        update = pb.workflows.UpdateDagRequest(workflow_id=created.workflow.workflow_id, expected_version=1,
                                               add_tasks=[task("late", b"p" * (600 * 1024), ["small"])])
        expect_status(lambda: workflows.UpdateDag(update, timeout=30), grpc.StatusCode.INVALID_ARGUMENT, "task `late`")
        assert workflows.GetWorkflow(pb.workflows.GetWorkflowRequest(
            workflow_id=created.workflow.workflow_id), timeout=10).workflow.current_dag_version == 1
        channel.close()
    finally:
        server.stop()


def test_a_long_id_echoed_in_an_error_keeps_its_status(api, server, pb):
    """A 60,000-byte workflow id (under the 64 KiB string limit) echoed in "workflow … not found"
    made a trailer over grpcio's 8 KiB metadata limit: the client saw RESOURCE_EXHAUSTED instead
    of NOT_FOUND (found by black-box testing). Long messages are cut to fit."""
    error = expect_status(lambda: api.workflows.GetWorkflow(pb.workflows.GetWorkflowRequest(workflow_id="w" * 60_000), timeout=10),
                          grpc.StatusCode.NOT_FOUND, "(message truncated: ")
    assert len(error.details().encode()) <= 4096
    still_serving(api, server)


def test_a_repeated_dependency_is_never_a_problem(api, server, capability, pb):
    """A repeated depends_on entry is dropped (docs/DOMAIN.md); it was reported as a duplicate,
    but only when an unrelated task had an unknown dependency (found by black-box testing)."""
    tasks = [api.task("a", capability), api.task("b", capability, ["a", "a"]), api.task("c", capability, ["ghost"])]
    error = expect_status(lambda: api.workflows.PlanWorkflow(pb.workflows.PlanWorkflowRequest(query=api.query(tasks)), timeout=10),
                          grpc.StatusCode.INVALID_ARGUMENT, "ghost")
    assert "more than once" not in error.details(), error.details()
    planned = api.workflows.PlanWorkflow(pb.workflows.PlanWorkflowRequest(query=api.query(tasks[:2])), timeout=10)
    assert [list(t.depends_on) for t in planned.dag.tasks] == [[], ["a"]]


def test_messages_name_things_as_clients_know_them_and_escape_what_they_quote(api, server, pb):
    """Found by black-box testing: a NOT_FOUND message echoed an id's newline, control and
    right-to-left override characters as they were (into every client's logs and terminals); an
    unknown enum value was named by the server's Swift case (`unrecognized(42)`); a string that is
    not UTF-8 was "string field is not valid UTF-8", naming no field."""
    expect_status(lambda: api.workflows.GetWorkflow(pb.workflows.GetWorkflowRequest(workflow_id="wf_\n\x01x\u202ecba"), timeout=10),
                  grpc.StatusCode.NOT_FOUND, "workflow wf_\\u{A}\\u{1}x\\u{202E}cba not found")
    expect_status(lambda: api.workflows.ListWorkflows(pb.workflows.ListWorkflowsRequest(states=[42]), timeout=10),
                  grpc.StatusCode.INVALID_ARGUMENT, "states contains 42, which is not an orchestrator.v1.WorkflowState")
    # SubmitQueryRequest.request_id (field 1) holding 0xC3 0x28: grpcio cannot encode it, so the bytes go as they are.
    raw = api.channel.unary_unary("/orchestrator.v1.Workflows/SubmitQuery", request_serializer=lambda body: body,
                                  response_deserializer=lambda body: body)
    expect_status(lambda: raw(b"\x0a\x02\xc3\x28", timeout=10), grpc.StatusCode.INVALID_ARGUMENT,
                  "request message is not a valid orchestrator.v1.SubmitQueryRequest: "
                  "field orchestrator.v1.SubmitQueryRequest.request_id is not valid UTF-8")
    still_serving(api, server)


def test_query_labels_copied_onto_every_task_are_bounded_for_the_whole_graph(api, server, database, capability, pb):
    """Every task inherits the query's labels, a copy each: 30 KB of labels on 2,000 tasks (a 47 KB
    request) grew the database by 126 MB, and on 8,000 tasks a 131 KB request made the server build
    1.6 GB of rows for 25 s before PostgreSQL refused the graph's JSON, answered INTERNAL. Now the
    labels and metadata of a graph's tasks are bounded together (64 MiB), checked before anything
    is written, on submission and on UpdateDag (where added tasks inherit them too)."""
    rng = random.Random(7)
    # Random letters, so that PostgreSQL's compression does not hide the size.
    labels = {f"l{i:02}": "".join(rng.choices(string.ascii_letters, k=1_000)) for i in range(34)}  # 34,102 bytes
    before = psql(database, "SELECT count(*) FROM workflows")
    tasks = [api.task(f"t{i}", capability) for i in range(2_000)]
    expect_status(lambda: api.submit(tasks, labels=labels, timeout=120), grpc.StatusCode.INVALID_ARGUMENT,
                  "carry 68204000 bytes of labels and metadata in all", "the limit for a graph is 67108864",
                  "the query's inputs")
    assert psql(database, "SELECT count(*) FROM workflows") == before

    workflow_id = api.submit(tasks[:1_000], labels=labels, timeout=120).workflow.workflow_id
    update = pb.workflows.UpdateDagRequest(workflow_id=workflow_id, expected_version=1, add_tasks=tasks[1_000:])
    expect_status(lambda: api.workflows.UpdateDag(update, timeout=120), grpc.StatusCode.INVALID_ARGUMENT,
                  "carry 68204000 bytes of labels and metadata in all")
    assert api.get(workflow_id).current_dag_version == 1
    assert psql(database, f"SELECT count(*) FROM tasks WHERE workflow_id = '{workflow_uuid(workflow_id)}'") == [["1000"]]
    still_serving(api, server)
