"""Executors that die, report late with a stale token, or stop reading their stream."""

from __future__ import annotations

import queue
import re
import time

import grpc
import pytest

from conftest import assert_completed_once, task_rows
from procs import psql, python_executor, workflow_uuid
from security_support import LeaseStream


def lease_of(proc, key: str, timeout: float) -> tuple[str, int]:
    """(task_id, fencing token) of the assignment of `key` that the executor logged."""
    pattern = re.compile(rf"assigned task=(\S+) key={re.escape(key)} token=(\d+)")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = pattern.search(proc.log())
        if match:
            return match.group(1), int(match.group(2))
        time.sleep(0.05)
    raise AssertionError(f"no assignment of {key}:\n{proc.tail()}")


def timeline(database: str, workflow_id: str) -> list[list[str]]:
    return psql(database, f"SELECT to_char(at, 'HH24:MI:SS.MS'), type, coalesce(task_key, ''), coalesce(attempt, 0), "
                          f"coalesce(executor_id, ''), message FROM workflow_events WHERE workflow_id = '{workflow_id}' "
                          "ORDER BY seq")


def lost_leases(database: str, workflow_id: str, count: int, timeout: float, poll: float = 0.1) -> list[list[str]]:
    """(key, message, seconds from lease to loss) of the first attempts' task_lease_expired events,
    once there are `count` of them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = psql(database, f"""SELECT e.task_key, e.message, extract(epoch FROM e.at - l.at) FROM workflow_events e
            JOIN workflow_events l ON l.task_id = e.task_id AND l.type = 'task_leased' AND l.attempt = 1
            WHERE e.workflow_id = '{workflow_id}' AND e.type = 'task_lease_expired' AND e.attempt = 1""")
        if len(rows) == count:
            return rows
        time.sleep(poll)
    raise AssertionError(f"{count} leases were not lost: {timeline(database, workflow_id)}")


def test_sigkilled_executor_task_reassigned_and_stale_report_refused(api, server, database, capability, workdir,
                                                                     processes, pb):
    doomed = python_executor(server.address, workdir, "doomed-" + capability, [capability],
                             "--sleep-ms", "4000", "--die-after", "2")
    processes.append(doomed)
    tasks = [api.task("first", capability), api.task("second", capability, ["first"]),
             api.task("third", capability, ["second"])]
    workflow_id = api.submit(tasks).workflow.workflow_id
    # The executor SIGKILLs itself halfway through its second task ("second"), without a word.
    task_id, token = lease_of(doomed, "second", 30)
    assert doomed.wait(30) == -9
    killed_at = time.monotonic()
    rescuer = python_executor(server.address, workdir, "rescuer-" + capability, [capability], "--sleep-ms", "50")
    processes.append(rescuer)
    assert api.wait_finished(workflow_id, 60) == "WORKFLOW_STATE_SUCCEEDED"
    # Reassigned within the lease TTL (3 s) plus the retry backoff (default 1 s, jittered) and slack.
    assert time.monotonic() - killed_at < server.lease_ttl + 8
    tasks_after = assert_completed_once(database, workflow_id, 3, max_attempt=2)
    assert tasks_after["second"]["attempt"] == 2 and tasks_after["first"]["attempt"] == 1
    attempts = psql(database, f"SELECT attempt, executor_id, outcome FROM task_attempts WHERE task_id = '{task_id}' "
                              "ORDER BY attempt")
    assert [(a, e) for a, e, _ in attempts] == [("1", doomed.args[doomed.args.index("--id") + 1]),
                                              ("2", rescuer.args[rescuer.args.index("--id") + 1])]
    assert attempts[0][2] != "succeeded" and attempts[1][2] == "succeeded"

    # The dead executor's late report, with its old token, through the unary ReportStatus.
    snapshot_sql = (f"SELECT id, state, attempt, fencing_token, encode(result, 'hex'), lease_owner FROM tasks "
                    f"WHERE workflow_id = '{workflow_id}' ORDER BY key; "
                    f"SELECT a.task_id, a.attempt, a.outcome, a.executor_id FROM task_attempts a JOIN tasks t ON t.id = a.task_id "
                    f"WHERE t.workflow_id = '{workflow_id}' ORDER BY 1, 2")
    before = psql(database, snapshot_sql)
    stale = pb.executors.ReportStatusRequest(
        executor_id="doomed-" + capability,
        completion=pb.executors.TaskCompletion(lease=pb.executors.LeaseToken(task_id=task_id, fencing_token=token),
                                               result=b'{"late": true}'))
    try:
        api.executors.ReportStatus(stale, timeout=10)
        raise AssertionError("a stale fencing token was accepted")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
    assert psql(database, snapshot_sql) == before
    assert api.state(workflow_id) == "WORKFLOW_STATE_SUCCEEDED"


class FrozenExecutor:
    """A raw grpcio bidi call that says hello and is never iterated again: no heartbeats, no reads."""

    def __init__(self, api, pb, executor_id: str, capability: str, max_in_flight: int):
        self.requests: queue.Queue = queue.Queue()
        hello = pb.executors.LeaseRequest(hello=pb.executors.ExecutorHello(
            executor_id=executor_id, capabilities=[capability], max_in_flight=max_in_flight))

        def feed():
            yield hello
            while (item := self.requests.get()) is not None:
                yield item

        self.call = api.executors.Lease(feed())  # the responses pile up unread

    def close(self) -> None:
        self.requests.put(None)
        self.call.cancel()


def wait_leased_by(database: str, workflow_id: str, owner: str, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = psql(database, f"SELECT count(*) FROM tasks WHERE workflow_id = '{workflow_id}' AND lease_owner = '{owner}'")
        if rows[0][0] == str(count):
            return
        time.sleep(0.1)
    raise AssertionError(f"{owner} never held {count} leases of {workflow_id}")


def test_executor_that_stops_reading_loses_its_leases_within_the_ttl(api, server, database, capability, pb):
    owner = "frozen-" + capability
    frozen = FrozenExecutor(api, pb, owner, capability, max_in_flight=2)
    try:
        workflow_id = api.submit([api.task(f"t{i}", capability) for i in range(2)]).workflow.workflow_id
        wait_leased_by(database, workflow_id, owner, 2)
        rows = lost_leases(database, workflow_id, 2, server.lease_ttl * 3 + 5, poll=0.2)
        # The TTL, plus at most one more TTL for the reaper's sweep to notice, plus slack.
        for key, _, seconds in rows:
            assert server.lease_ttl - 0.1 <= float(seconds) <= 2 * server.lease_ttl + 1.5, (key, seconds)
        outcomes = psql(database, f"SELECT a.outcome FROM task_attempts a JOIN tasks t ON t.id = a.task_id "
                                  f"WHERE t.workflow_id = '{workflow_id}' AND a.attempt = 1")
        assert outcomes == [["lease_expired"]] * 2
        api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id), timeout=10)
    finally:
        frozen.close()


def test_leases_of_a_cancelled_stream_are_given_back_at_once(api, server, database, capability, pb):
    """An executor that goes away (cancels its stream, closes its connection, exits) gives back
    what it held at once: the server's handler for the stream is cancelled by then, and releasing
    the leases from it used to fail, leaving them to lapse a whole TTL later."""
    owner = "quitter-" + capability
    frozen = FrozenExecutor(api, pb, owner, capability, max_in_flight=2)
    try:
        workflow_id = api.submit([api.task(f"t{i}", capability) for i in range(2)]).workflow.workflow_id
        wait_leased_by(database, workflow_id, owner, 2)
        frozen.close()  # RST_STREAM(CANCEL)
        rows = lost_leases(database, workflow_id, 2, server.lease_ttl * 3 + 5)
        for key, message, seconds in rows:
            assert message.startswith("stream "), (key, message)  # the stream's end, not "lease expired"
            assert float(seconds) < server.lease_ttl, (key, seconds)
        outcomes = psql(database, f"SELECT a.outcome FROM task_attempts a JOIN tasks t ON t.id = a.task_id "
                                  f"WHERE t.workflow_id = '{workflow_id}' AND a.attempt = 1")
        assert len(outcomes) == 2 and all(outcome != ["running"] for outcome in outcomes), outcomes
        assert psql(database, f"SELECT count(*) FROM tasks WHERE workflow_id = '{workflow_id}' "
                              "AND lease_owner IS NOT NULL") == [["0"]]
        api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id), timeout=10)
    finally:
        frozen.close()


def test_frozen_executor_does_not_keep_the_work_from_a_live_one(api, server, database, capability, workdir,
                                                                processes, pb):
    """Once its leases lapsed, a frozen stream must not be handed the retries again (it would burn
    every attempt while a healthy executor waits): the live executor finishes the workflow."""
    owner = "frozen-" + capability
    frozen = FrozenExecutor(api, pb, owner, capability, max_in_flight=2)
    try:
        workflow_id = api.submit([api.task(f"t{i}", capability) for i in range(2)]).workflow.workflow_id
        wait_leased_by(database, workflow_id, owner, 2)
        processes.append(python_executor(server.address, workdir, "live-" + capability, [capability],
                                         "--sleep-ms", "20"))
        state = api.wait_finished(workflow_id, 60)
        assert state == "WORKFLOW_STATE_SUCCEEDED", (state, timeline(database, workflow_id))
        assert_completed_once(database, workflow_id, 2, max_attempt=2)
    finally:
        frozen.close()


def test_a_quiet_idle_stream_is_closed_and_handed_nothing(api, server, database, capability, workdir, processes, pb):
    """A stream that sends nothing (no heartbeat, no report) for a lease TTL is closed whether or
    not it holds leases, and gets no task meanwhile. Found by black-box testing: a wedged executor
    holding nothing stayed "idle", was handed each attempt of a new task in turn (direct dispatch,
    then claims), each lapsing a TTL later, and the task failed without a live executor seeing it."""
    wedged = [LeaseStream(api.executors, pb, [], pb.executors.ExecutorHello(
        executor_id=f"wedged{i}-" + capability, capabilities=[capability], max_in_flight=1)) for i in range(2)]
    try:
        for stream in wedged:
            assert stream.next_of("welcome", 30) is not None
        ends = [stream.next_of("assignment", server.lease_ttl * 3 + 5) for stream in wedged]
        # Closed, having been handed nothing.
        for end in ends:
            assert isinstance(end, tuple) and end[1] == grpc.StatusCode.UNAVAILABLE, end
            assert "stopped heartbeating" in end[2] and "even while idle" in end[2], end
        processes.append(python_executor(server.address, workdir, "live-" + capability, [capability]))
        tasks = [api.task("victim", capability, retry=pb.dag.RetryPolicy(max_attempts=3))]
        workflow_id = api.submit(tasks).workflow.workflow_id
        assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
        attempts = psql(database, f"SELECT a.attempt, a.executor_id FROM task_attempts a JOIN tasks t ON t.id = a.task_id "
                                  f"WHERE t.workflow_id = '{workflow_id}'")
        assert attempts == [["1", "live-" + capability]], attempts
    finally:
        for stream in wedged:
            stream.close()


def test_a_stream_that_stops_heartbeating_is_told_why_it_ended(api, server, database, capability, pb):
    """The session ends as UNAVAILABLE with the server's reason; it used to arrive as a generic
    'temporarily unavailable', the reason only in the server's log."""
    stream = LeaseStream(api.executors, pb, [], pb.executors.ExecutorHello(
        executor_id="silent-" + capability, capabilities=[capability], max_in_flight=1))
    workflow_id = None
    try:
        welcome = stream.next_of("welcome", 30)
        assert welcome is not None
        # The release `orchestratord --version` prints, for executor logs and bug reports.
        assert welcome.server_version.count(".") == 2, welcome
        workflow_id = api.submit([api.task("quiet", capability)]).workflow.workflow_id
        assignment = stream.next_of("assignment", 30)
        assert assignment is not None
        # Reads everything, never heartbeats: revoked, then ended.
        assert stream.next_of("revocation", server.lease_ttl * 3 + 5) is not None
        # A revocation is final: the lease is requeued before it is sent, so a report right after
        # it is refused (it used to be accepted until the reaper's next sweep).
        with pytest.raises(grpc.RpcError) as late:
            api.executors.ReportStatus(pb.executors.ReportStatusRequest(
                executor_id="silent-" + capability,
                completion=pb.executors.TaskCompletion(lease=assignment.lease, result=b"late")), timeout=10)
        assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION, late.value
        assert psql(database, f"SELECT state FROM tasks WHERE workflow_id = '{workflow_id}'") != [["succeeded"]]
        outcome = psql(database, f"SELECT a.outcome FROM task_attempts a JOIN tasks t ON t.id = a.task_id "
                                 f"WHERE t.workflow_id = '{workflow_id}' AND a.attempt = 1")
        assert outcome == [["lease_expired"]], outcome
        end = stream.next_of("never", server.lease_ttl * 3 + 5)
        assert isinstance(end, tuple) and end[1] == grpc.StatusCode.UNAVAILABLE, end
        assert "stopped heartbeating" in end[2] and "Reconnect and resume" in end[2], end
    finally:
        stream.close()
        if workflow_id:
            api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id), timeout=10)


def test_a_silent_stream_whose_last_attempt_lapses_is_told_it_went_silent(api, server, database, capability, pb):
    """The lapse that uses up a task's last attempt fails its fail_fast workflow, which revokes
    the workflow's leases; the lapsed lease was among them, revoked as a sibling before its silence
    was judged, and the silent stream stayed open holding nothing (found by black-box testing)."""
    stream = LeaseStream(api.executors, pb, [], pb.executors.ExecutorHello(
        executor_id="last-" + capability, capabilities=[capability], max_in_flight=1))
    try:
        assert stream.next_of("welcome", 30) is not None
        once = pb.dag.RetryPolicy(max_attempts=1)
        workflow_id = api.submit([api.task("only", capability, retry=once)]).workflow.workflow_id
        assert stream.next_of("assignment", 30) is not None
        end = stream.next_of("never", server.lease_ttl * 3 + 5)
        assert isinstance(end, tuple) and end[1] == grpc.StatusCode.UNAVAILABLE, end
        assert "stopped heartbeating" in end[2], end
        assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_FAILED"
    finally:
        stream.close()


def test_a_report_without_its_lease_is_refused_and_the_stream_goes_on(api, capability, pb):
    stream = LeaseStream(api.executors, pb, [], pb.executors.ExecutorHello(
        executor_id="sloppy-" + capability, capabilities=[capability], max_in_flight=1))
    try:
        assert stream.next_of("welcome", 30) is not None
        workflow_id = api.submit([api.task("only", capability)]).workflow.workflow_id
        assignment = stream.next_of("assignment", 30)
        assert assignment is not None
        # It used to end the whole stream with INVALID_ARGUMENT, giving back every lease on it.
        stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(result=b"whose?")))
        refused = stream.next_of("ack", 10)
        assert refused is not None and not refused.accepted and refused.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert "must carry its lease" in refused.message
        stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=assignment.lease, result=b"ok")))
        done = stream.next_of("ack", 10)
        assert done is not None and done.accepted
        assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
    finally:
        stream.close()


def test_a_report_from_another_executor_says_so(api, capability, pb):
    workflow_id = api.submit([api.task("mine", capability)]).workflow.workflow_id
    polled = api.executors.PollTasks(pb.executors.PollTasksRequest(
        executor_id="owner-" + capability, capabilities=[capability], max_tasks=1, wait_ms=5000), timeout=15)
    lease = polled.assignments[0].lease
    with pytest.raises(grpc.RpcError) as refused:
        api.executors.ReportStatus(pb.executors.ReportStatusRequest(
            executor_id="intruder-" + capability, completion=pb.executors.TaskCompletion(lease=lease)), timeout=10)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "held by another executor" in refused.value.details(), refused.value.details()
    assert api.state(workflow_id) == "WORKFLOW_STATE_RUNNING"
    api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id), timeout=10)


def watch_until(api, pb, workflow_id: str, count: int) -> list:
    """The first `count` events of a WatchWorkflow from the beginning."""
    events = []
    call = api.workflows.WatchWorkflow(pb.workflows.WatchWorkflowRequest(workflow_id=workflow_id), timeout=15)
    for event in call:
        events.append(event)
        if len(events) == count:
            call.cancel()
            break
    return events


def test_a_task_in_retry_backoff_is_counted_as_retry_wait_everywhere(api, server, capability, pb):
    """GetWorkflow with its tasks said retry_wait 1, without them and ListWorkflows said ready 1
    (found by black-box testing): every read now counts a task in backoff as RETRY_WAIT."""
    retry = pb.dag.RetryPolicy(max_attempts=3, initial_backoff_ms=600_000, max_backoff_ms=600_000)
    workflow_id = api.submit([api.task("r", capability, retry=retry)]).workflow.workflow_id
    polled = api.executors.PollTasks(pb.executors.PollTasksRequest(
        executor_id="rw-" + capability, capabilities=[capability], max_tasks=1, wait_ms=5000), timeout=15)
    api.executors.ReportStatus(pb.executors.ReportStatusRequest(executor_id="rw-" + capability, failure=pb.executors.TaskFailure(
        lease=polled.assignments[0].lease, message="boom", retryable=True)), timeout=15)
    with_tasks = api.get(workflow_id, tasks=True).counts
    without = api.get(workflow_id).counts
    listed = next(w for w in api.workflows.ListWorkflows(pb.workflows.ListWorkflowsRequest(page_size=1000), timeout=10).workflows
                  if w.workflow_id == workflow_id).counts
    for counts in (with_tasks, without, listed):
        assert (counts.total, counts.retry_wait, counts.ready) == (1, 1, 0), counts
    # Its event says so too: TASK_RETRY_SCHEDULED said READY while every read said RETRY_WAIT (found
    # by black-box testing), so a watcher building state from events disagreed for the whole backoff.
    listed_events = api.workflows.ListEvents(pb.workflows.ListEventsRequest(workflow_id=workflow_id, page_size=100), timeout=10).events
    for events in (listed_events, watch_until(api, pb, workflow_id, len(listed_events))):
        scheduled = [e for e in events if e.type == pb.workflow.EventType.Value("EVENT_TYPE_TASK_RETRY_SCHEDULED")]
        assert [pb.workflow.TaskState.Name(e.task_state) for e in scheduled] == ["TASK_STATE_RETRY_WAIT"], events


def test_task_events_number_the_attempts_as_workflow_proto_says(api, server, capability, pb):
    """TASK_READY counts the attempts already made (0 at first, n after attempt n was retried);
    the other task events name the attempt they are about (workflow.proto, WorkflowEvent.attempt)."""
    retry = pb.dag.RetryPolicy(max_attempts=2, initial_backoff_ms=1, max_backoff_ms=1)
    workflow_id = api.submit([api.task("r", capability, retry=retry)]).workflow.workflow_id
    executor = "numbered-" + capability
    for attempt, report in ((1, "failure"), (2, "completion")):
        polled = api.executors.PollTasks(pb.executors.PollTasksRequest(
            executor_id=executor, capabilities=[capability], max_tasks=1, wait_ms=10_000), timeout=20)
        assert len(polled.assignments) == 1 and polled.assignments[0].attempt == attempt, polled
        lease = polled.assignments[0].lease
        outcome = (dict(failure=pb.executors.TaskFailure(lease=lease, message="boom", retryable=True)) if report == "failure"
                   else dict(completion=pb.executors.TaskCompletion(lease=lease, result=b"ok")))
        api.executors.ReportStatus(pb.executors.ReportStatusRequest(executor_id=executor, **outcome), timeout=15)
    assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
    events = api.workflows.ListEvents(pb.workflows.ListEventsRequest(workflow_id=workflow_id, page_size=1000), timeout=10).events
    numbered = [(pb.workflow.EventType.Name(e.type), e.attempt) for e in events if e.task_key == "r"]
    assert numbered == [
        ("EVENT_TYPE_TASK_READY", 0), ("EVENT_TYPE_TASK_LEASED", 1), ("EVENT_TYPE_TASK_RETRY_SCHEDULED", 1),
        ("EVENT_TYPE_TASK_READY", 1), ("EVENT_TYPE_TASK_LEASED", 2), ("EVENT_TYPE_TASK_SUCCEEDED", 2),
    ], numbered


def test_a_timeout_that_fails_the_workflow_revokes_the_siblings_naming_the_task(api, server, capability, pb):
    """A task that used up its attempts on a start_to_close timeout fails a fail_fast workflow and
    cancels its siblings; their executors were told "lease no longer held" a keeper round later
    (found by black-box testing). Now the revocation names the task, as a failure report's does."""
    slow = api.task("slow", capability, timeouts=pb.dag.Timeouts(start_to_close_ms=1000))
    other = api.task("other", capability)
    workflow_id = api.submit([slow, other]).workflow.workflow_id
    stream = LeaseStream(api.executors, pb, [], pb.executors.ExecutorHello(
        executor_id="sibling-" + capability, capabilities=[capability], max_in_flight=2), heartbeat_every=0.5)
    try:
        leases = {}
        for _ in range(2):
            assignment = stream.next_of("assignment", 30)
            assert assignment is not None and not isinstance(assignment, tuple), assignment
            leases[assignment.spec.key] = assignment.lease.task_id
        reasons = {}
        while len(reasons) < 2:
            revocation = stream.next_of("revocation", 30)
            assert revocation is not None and not isinstance(revocation, tuple), (revocation, reasons)
            reasons[revocation.lease.task_id] = revocation.reason
        assert reasons[leases["slow"]] == "start_to_close timeout exceeded", reasons
        # By key and id, as a failure report's revocation (the id alone was found by black-box testing).
        assert f"after task slow ({leases['slow']}) failed" in reasons[leases["other"]], reasons
        assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_FAILED"
    finally:
        stream.close()


def test_a_fail_fast_workflows_error_says_why_its_task_failed(api, server, database, capability, pb):
    """The workflow's error said only "task up failed": for a last attempt lost with its executor's
    stream an operator had to open the task to learn why (found by black-box testing). It now
    carries the reason, for a failure report and for a lost lease alike."""
    reported = api.submit([api.task("report", capability, retry=pb.dag.RetryPolicy(max_attempts=1))]).workflow.workflow_id
    executor = "why-" + capability
    polled = api.executors.PollTasks(pb.executors.PollTasksRequest(
        executor_id=executor, capabilities=[capability], max_tasks=1, wait_ms=5000), timeout=15)
    api.executors.ReportStatus(pb.executors.ReportStatusRequest(executor_id=executor, failure=pb.executors.TaskFailure(
        lease=polled.assignments[0].lease, message="disk full", retryable=False)), timeout=15)
    assert api.wait_finished(reported, 30) == "WORKFLOW_STATE_FAILED"
    assert api.get(reported).error == "task report failed: disk full"

    lost = api.submit([api.task("lost", capability, retry=pb.dag.RetryPolicy(max_attempts=1))]).workflow.workflow_id
    frozen = FrozenExecutor(api, pb, "gone-" + capability, capability, max_in_flight=1)
    try:
        wait_leased_by(database, lost, "gone-" + capability, 1)
    finally:
        frozen.close()  # the stream ends: its lease is given back, the only attempt spent
    assert api.wait_finished(lost, 30) == "WORKFLOW_STATE_FAILED"
    error = api.get(lost).error
    assert error.startswith("task lost failed: stream ") and error.endswith("; attempts exhausted"), error


def test_a_continue_independent_workflows_error_says_a_lost_last_attempt_was_the_last(api, database, capability, pb):
    """Under CONTINUE_INDEPENDENT the workflow ends once every task has, and its error was built
    from the task's own last error — that attempt's, "stream ended", without the "; attempts
    exhausted" fail_fast's error has (found by black-box testing)."""
    lost = api.submit([api.task("lost", capability, retry=pb.dag.RetryPolicy(max_attempts=1))],
                      failure_policy=pb.query.FAILURE_POLICY_CONTINUE_INDEPENDENT).workflow.workflow_id
    frozen = FrozenExecutor(api, pb, "gone-ci-" + capability, capability, max_in_flight=1)
    try:
        wait_leased_by(database, lost, "gone-ci-" + capability, 1)
    finally:
        frozen.close()
    assert api.wait_finished(lost, 30) == "WORKFLOW_STATE_FAILED"
    error = api.get(lost).error
    assert error.startswith("task lost failed: stream ") and error.endswith("; attempts exhausted"), error
    # The task's own error is its last attempt's, which did not know it was the last.
    assert not api.get(lost, tasks=True).tasks[0].last_error.message.endswith("; attempts exhausted")


def test_failure_messages_name_the_task_and_keep_the_executors_reason(api, server, database, capability, pb):
    """Found by black-box testing: under fail_fast the siblings' revocation named the failed task
    by its id only, and a continue_independent workflow's error was "task x did not succeed",
    dropping the executor's message. A lease given back because its stream ended was recorded
    with source "cancelled", and a task cancelled mid-attempt kept no error at all."""
    stream = LeaseStream(api.executors, pb, [], pb.executors.ExecutorHello(
        executor_id="names-" + capability, capabilities=[capability], max_in_flight=2), heartbeat_every=0.5)
    try:
        no_retry = pb.dag.RetryPolicy(max_attempts=1)
        fail_fast = api.submit([api.task("a", capability, retry=no_retry), api.task("b", capability)]).workflow.workflow_id
        leases = {}
        for _ in range(2):
            assignment = stream.next_of("assignment", 30, keep_others=True)
            leases[assignment.spec.key] = assignment.lease
        stream.send(pb.executors.LeaseRequest(failure=pb.executors.TaskFailure(lease=leases["a"], message="disk full", retryable=False)))
        revocation = stream.next_of("revocation", 30, keep_others=True)
        assert revocation.lease.task_id == leases["b"].task_id
        assert f"after task a ({leases['a'].task_id}) failed" in revocation.reason, revocation.reason
        assert api.wait_finished(fail_fast, 30) == "WORKFLOW_STATE_FAILED"

        independent = api.submit([api.task("i1", capability, retry=no_retry), api.task("i2", capability)],
                                 failure_policy=pb.query.FAILURE_POLICY_CONTINUE_INDEPENDENT).workflow.workflow_id
        leases = {}
        for _ in range(2):
            assignment = stream.next_of("assignment", 30, keep_others=True)
            leases[assignment.spec.key] = assignment.lease
        stream.send(pb.executors.LeaseRequest(failure=pb.executors.TaskFailure(lease=leases["i1"], message="nope", retryable=False)))
        stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=leases["i2"], result=b"ok")))
        assert api.wait_finished(independent, 30) == "WORKFLOW_STATE_FAILED"
        assert api.get(independent).error == "task i1 failed: nope"

        cancelled = api.submit([api.task("c", capability)]).workflow.workflow_id
        assignment = stream.next_of("assignment", 30, keep_others=True)
        api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=cancelled, reason="not needed"), timeout=10)
        task = api.workflows.GetWorkflow(pb.workflows.GetWorkflowRequest(workflow_id=cancelled, include_tasks=True),
                                         timeout=10).workflow.tasks[0]
        assert (task.last_error.source, task.last_error.message, task.last_error.attempt) == ("cancelled", "not needed", 1), task

        released = api.submit([api.task("r", capability)]).workflow.workflow_id
        assert stream.next_of("assignment", 30, keep_others=True).spec.key == "r"
    finally:
        stream.close()
    deadline = time.monotonic() + 30
    while psql(database, f"SELECT last_error ->> 'source' FROM tasks WHERE workflow_id = '{workflow_uuid(released)}'") != [["released"]]:
        assert time.monotonic() < deadline, psql(database, f"SELECT state, last_error FROM tasks WHERE workflow_id = '{workflow_uuid(released)}'")
        time.sleep(0.1)
    api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=released), timeout=10)
