"""Edges of the Lease stream, driven frame by frame: a report sent right before the executor hangs
up is applied (EXECUTORS.md step 7); a request with no kind is refused alone; a stream's lease kept
alive by unary Heartbeats lives.

Found by black-box testing with grpc-go: an executor that sent its completion and then cancelled
the stream or closed the connection at once lost about half of them — the stream's end gave the
lease back before the report, which was then refused as stale, and the task ran again. Raw HTTP/2
frames make the race exact: the report's DATA frame and the RST_STREAM (or the connection's
close) leave in one write, so the server has received the report before it sees the stream end."""

from __future__ import annotations

import struct
import sys
import time
from pathlib import Path

import grpc
import pytest

from conftest import assert_completed_once, task_rows
from procs import psql

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))
import h2raw  # noqa: E402  (shared with the interop suite)

LEASE = "/orchestrator.v1.Executors/Lease"


def read_messages(conn: h2raw.RawConnection, stream: int, pb, until, timeout: float = 20.0):
    """LeaseResponses on `stream` until `until(response)` holds; returns that response."""
    buffer = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            frame = conn.read_frame(timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        if frame is None:
            break
        if frame.type == h2raw.DATA and frame.stream == stream:
            conn.send(h2raw.window_update(0, len(frame.payload)) + h2raw.window_update(stream, len(frame.payload)))
            buffer += frame.payload
            while len(buffer) >= 5:
                length = struct.unpack(">I", buffer[1:5])[0]
                if len(buffer) < 5 + length:
                    break
                response = pb.executors.LeaseResponse.FromString(buffer[5:5 + length])
                buffer = buffer[5 + length:]
                if until(response):
                    return response
        if frame.type in (h2raw.RST_STREAM, h2raw.GOAWAY) or (frame.type == h2raw.HEADERS and frame.header("grpc-status")):
            break
    raise AssertionError("no such LeaseResponse arrived")


def take_one(server, pb, executor_id: str, capability: str):
    """Opens a Lease stream on a raw connection and waits for one assignment."""
    conn = h2raw.RawConnection(server.port)
    conn.start()
    stream = conn.new_stream()
    hello = pb.executors.LeaseRequest(hello=pb.executors.ExecutorHello(
        executor_id=executor_id, capabilities=[capability], max_in_flight=1))
    conn.send(conn.headers_frame(stream, h2raw.grpc_request_headers(LEASE))
              + h2raw.frame(h2raw.DATA, 0, stream, h2raw.grpc_message(hello.SerializeToString())))
    assignment = read_messages(conn, stream, pb, lambda r: r.HasField("assignment")).assignment
    return conn, stream, assignment


@pytest.mark.parametrize("hangup", ["rst_stream", "close_connection"])
def test_a_completion_sent_right_before_hanging_up_is_applied(api, pb, server, database, capability, hangup):
    rounds = 8
    for round_ in range(rounds):
        workflow_id = api.submit([api.task("only", capability)]).workflow.workflow_id
        conn, stream, assignment = take_one(server, pb, f"hangup-{round_}", capability)
        completion = pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(
            lease=assignment.lease, result=b"done"))
        data = h2raw.frame(h2raw.DATA, 0, stream, h2raw.grpc_message(completion.SerializeToString()))
        if hangup == "rst_stream":
            conn.send(data + h2raw.rst_stream(stream, h2raw.CANCEL))
            time.sleep(0.05)
            conn.close()
        else:
            conn.send(data)
            conn.close()
        assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED", (round_, task_rows(database, workflow_id))
        # Applied as the first attempt's result: not refused, not released and run again.
        assert_completed_once(database, workflow_id, 1)
        assert task_rows(database, workflow_id)["only"]["attempts"] == 1


def test_a_request_with_no_kind_is_refused_with_an_ack_and_the_stream_goes_on(api, pb, server, database, capability):
    """An empty LeaseRequest (what a newer executor's new message kind looks like here) ended the
    stream and gave back every lease; now it is refused alone."""
    workflow_id = api.submit([api.task("only", capability)]).workflow.workflow_id
    conn, stream, assignment = take_one(server, pb, "empty-kind", capability)
    conn.send(h2raw.frame(h2raw.DATA, 0, stream, h2raw.grpc_message(b"")))
    ack = read_messages(conn, stream, pb, lambda r: r.HasField("ack")).ack
    assert ack.code == 3 and not ack.accepted and "must set one of" in ack.message
    completion = pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=assignment.lease, result=b"ok"))
    conn.send(h2raw.frame(h2raw.DATA, 0, stream, h2raw.grpc_message(completion.SerializeToString())))
    ack = read_messages(conn, stream, pb, lambda r: r.HasField("ack")).ack
    assert ack.accepted, ack
    conn.close()
    assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
    assert_completed_once(database, workflow_id, 1)


def test_a_stream_lease_kept_alive_by_unary_heartbeats_is_not_lapsed(api, pb, server, database, capability):
    """The unary Heartbeat answered valid with a new expiry for a lease held by the executor's
    stream, then the stream's silence check lapsed it a few seconds before that expiry (revocation,
    UNAVAILABLE, task requeued). Found by black-box testing with grpc-go."""
    workflow_id = api.submit([api.task("only", capability)]).workflow.workflow_id
    executor_id = "unary-hb-" + capability
    conn, stream, assignment = take_one(server, pb, executor_id, capability)
    # Three lease TTLs (3 s here) of unary heartbeats only; the stream stays silent.
    deadline = time.monotonic() + 9
    while time.monotonic() < deadline:
        reply = api.executors.Heartbeat(pb.executors.HeartbeatRequest(executor_id=executor_id, leases=[assignment.lease]),
                                        timeout=10)
        assert [lease.valid for lease in reply.leases] == [True], reply
        time.sleep(0.5)
    # No revocation and no end of the stream meanwhile.
    frames = conn.drain(timeout=0.5)
    assert not [f for f in frames if f.type == h2raw.RST_STREAM or (f.type == h2raw.HEADERS and f.header("grpc-status"))], frames
    done = api.executors.ReportStatus(pb.executors.ReportStatusRequest(
        executor_id=executor_id, completion=pb.executors.TaskCompletion(lease=assignment.lease, result=b"ok")), timeout=10)
    assert done.accepted, done
    conn.close()
    assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
    assert_completed_once(database, workflow_id, 1)


def test_fail_fast_revokes_the_other_leases_at_once_with_the_reason(api, pb, server, database, capability):
    """fail_fast cancelled the running siblings of a failed task in the database, but their
    executors heard nothing until the keeper's next round found the lease gone (a generic "lease
    no longer held"), and their heartbeats were answered valid meanwhile. Found by black-box
    testing with grpc-go."""
    workflow_id = api.submit([api.task("a", capability), api.task("b", capability)]).workflow.workflow_id
    conn, stream, held = take_one(server, pb, "sibling-" + capability, capability)
    polled = api.executors.PollTasks(pb.executors.PollTasksRequest(
        executor_id="failing-" + capability, capabilities=[capability], max_tasks=1, wait_ms=5000), timeout=15)
    assert len(polled.assignments) == 1
    failed = api.executors.ReportStatus(pb.executors.ReportStatusRequest(
        executor_id="failing-" + capability, failure=pb.executors.TaskFailure(
            lease=polled.assignments[0].lease, message="broken", code="E", retryable=False)), timeout=10)
    assert failed.accepted, failed
    revocation = read_messages(conn, stream, pb, lambda r: r.HasField("revocation")).revocation
    assert revocation.lease.task_id == held.lease.task_id
    failed_task = polled.assignments[0]
    assert f"after task {failed_task.spec.key} ({failed_task.lease.task_id}) failed" in revocation.reason, revocation.reason
    conn.close()
    assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_FAILED"


def test_a_lease_resumed_by_another_stream_of_the_same_executor_id_is_revoked_on_the_first(api, pb, server, database, capability):
    """Two processes configured with one executor id: the second resumed a lease the first still
    held and worked on, and the first learnt nothing until its report was refused as stale (found
    by black-box testing with a C++ executor). Now the first stream gets a revocation saying why.
    Its reports after that were still applied — both streams hold the same fencing token — so the
    process told to stop could store its result or spend the attempt under the new holder (found
    by black-box testing): they are refused, and only the holder's count."""
    from security_support import LeaseStream

    executor_id = "twin-" + capability
    hello = pb.executors.ExecutorHello(executor_id=executor_id, capabilities=[capability], max_in_flight=1)
    first = LeaseStream(api.executors, pb, [], hello, heartbeat_every=0.5)
    second = None
    try:
        assert first.next_of("welcome", 30) is not None
        workflow_id = api.submit([api.task("shared", capability)]).workflow.workflow_id
        assignment = first.next_of("assignment", 30)
        assert assignment is not None
        resuming = pb.executors.ExecutorHello(executor_id=executor_id, capabilities=[capability], max_in_flight=1,
                                              resume=[assignment.lease])
        second = LeaseStream(api.executors, pb, [], resuming, heartbeat_every=0.5)
        welcome = second.next_of("welcome", 30)
        assert welcome is not None and list(welcome.resumed) == [assignment.lease], welcome
        revocation = first.next_of("revocation", 15)
        assert revocation is not None and revocation.lease == assignment.lease, revocation
        assert "lease resumed by another stream of executor " + executor_id in revocation.reason, revocation.reason
        # The task id in capitals is the same task (the database compares UUIDs regardless of
        # case); it got past the lease table, which compared text, and stored the zombie's result
        # over the holder's (found by black-box testing).
        shouted = pb.executors.LeaseToken(task_id=assignment.lease.task_id.upper(), fencing_token=assignment.lease.fencing_token)
        for report in (pb.executors.LeaseRequest(progress=pb.executors.TaskProgress(lease=assignment.lease, fraction=0.5)),
                       pb.executors.LeaseRequest(failure=pb.executors.TaskFailure(
                           lease=assignment.lease, message="zombie", code="E", retryable=True)),
                       pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=assignment.lease, result=b"zombie")),
                       pb.executors.LeaseRequest(failure=pb.executors.TaskFailure(
                           lease=shouted, message="zombie", code="E", retryable=True)),
                       pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=shouted, result=b"zombie"))):
            first.send(report)
            refused = first.next_of("ack", 15)
            assert refused is not None and not refused.accepted, refused
            assert refused.code == grpc.StatusCode.FAILED_PRECONDITION.value[0], refused
            assert "lease taken over" in refused.message and "two processes share this executor id" in refused.message, refused
        rows = psql(database, "SELECT state, attempt, coalesce(encode(result, 'escape'), '') FROM tasks "
                              f"WHERE id = '{assignment.lease.task_id}'")
        assert rows == [["leased", "1", ""]], rows
        second.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=assignment.lease, result=b"ok")))
        ack = second.next_of("ack", 15)
        assert ack is not None and ack.accepted, ack
        assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
        assert_completed_once(database, workflow_id, 1)
        assert psql(database, f"SELECT encode(result, 'escape') FROM tasks WHERE id = '{assignment.lease.task_id}'") == [["ok"]]
    finally:
        first.close()
        if second is not None:
            second.close()


def _stream(api, pb, executor_id, capabilities, max_in_flight=1):
    """A Lease stream that has said hello and heartbeats every 0.5 s."""
    from security_support import LeaseStream

    stream = LeaseStream(api.executors, pb, [], pb.executors.ExecutorHello(
        executor_id=executor_id, capabilities=capabilities, max_in_flight=max_in_flight), heartbeat_every=0.5)
    assert stream.next_of("welcome", 30) is not None
    return stream


def test_a_report_on_a_sibling_streams_own_assignment_is_not_called_a_takeover(api, pb, server, database, capability):
    """Two streams of one executor id, no resume: a report from the second on the first's
    assignment was refused as "lease taken over: another stream … resumed the lease", a resume
    that never happened (found by black-box testing). It is refused as held by another stream."""
    executor_id = "sibling-" + capability
    holder = _stream(api, pb, executor_id, [capability])
    sibling = None
    try:
        workflow_id = api.submit([api.task("held", capability)]).workflow.workflow_id
        assignment = holder.next_of("assignment", 30)
        assert assignment is not None
        sibling = _stream(api, pb, executor_id, ["nothing-" + capability])
        sibling.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=assignment.lease, result=b"not mine")))
        refused = sibling.next_of("ack", 15)
        assert refused is not None and not refused.accepted, refused
        assert refused.code == grpc.StatusCode.FAILED_PRECONDITION.value[0], refused
        assert refused.message.startswith("lease held by another stream: ") and "resumed" not in refused.message, refused
        assert "two processes share this executor id" in refused.message, refused
        holder.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=assignment.lease, result=b"mine")))
        ack = holder.next_of("ack", 15)
        assert ack is not None and ack.accepted, ack
        assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
        assert psql(database, f"SELECT encode(result, 'escape') FROM tasks WHERE id = '{assignment.lease.task_id}'") == [["mine"]]
    finally:
        holder.close()
        if sibling is not None:
            sibling.close()


def test_a_task_id_in_capitals_is_the_same_lease_everywhere(api, pb, server, database, capability):
    """A completion with the task id in capitals was accepted by the database (UUIDs compare
    regardless of case) but not matched by the lease table: a second later the stream got a
    revocation ("lease no longer held") for the task it had just finished, and a heartbeat in
    capitals answered valid=false (found by black-box testing)."""
    stream = _stream(api, pb, "caps-" + capability, [capability])
    try:
        workflow_id = api.submit([api.task("caps", capability)]).workflow.workflow_id
        assignment = stream.next_of("assignment", 30)
        assert assignment is not None
        shouted = pb.executors.LeaseToken(task_id=assignment.lease.task_id.upper(), fencing_token=assignment.lease.fencing_token)
        assert shouted.task_id != assignment.lease.task_id
        status = api.executors.Heartbeat(pb.executors.HeartbeatRequest(
            executor_id="caps-" + capability, leases=[shouted]), timeout=10)
        assert [s.valid for s in status.leases] == [True], status
        stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=shouted, result=b"done")))
        ack = stream.next_of("ack", 15)
        assert ack is not None and ack.accepted, ack
        assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
        assert stream.next_of("revocation", 2) is None
    finally:
        stream.close()


def test_a_report_on_a_lease_of_another_executor_or_a_poll_is_not_called_a_takeover(api, pb, server, database, capability):
    """The takeover refusal ("lease taken over: another stream of this executor id resumed the
    lease") answered every report on a lease held through another stream or call — another
    executor id's lease, and an executor's own PollTasks lease reported on its stream (found by
    black-box testing). Another id's lease is "held by another executor"; an executor's own
    polled lease is its to report, on any stream or call."""
    from security_support import LeaseStream

    owner = LeaseStream(api.executors, pb, [], pb.executors.ExecutorHello(
        executor_id="owner-" + capability, capabilities=[capability], max_in_flight=1), heartbeat_every=0.5)
    foreign = LeaseStream(api.executors, pb, [], pb.executors.ExecutorHello(
        executor_id="foreign-" + capability, capabilities=["nothing-" + capability], max_in_flight=1), heartbeat_every=0.5)
    poller_id = "poller-" + capability
    poller = LeaseStream(api.executors, pb, [], pb.executors.ExecutorHello(
        executor_id=poller_id, capabilities=["nothing-" + capability], max_in_flight=1), heartbeat_every=0.5)
    try:
        for stream in (owner, foreign, poller):
            assert stream.next_of("welcome", 30) is not None
        workflow_id = api.submit([api.task("owned", capability)]).workflow.workflow_id
        owned = owner.next_of("assignment", 30)
        assert owned is not None
        foreign.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=owned.lease, result=b"not mine")))
        refused = foreign.next_of("ack", 15)
        assert refused is not None and not refused.accepted, refused
        assert refused.code == grpc.StatusCode.FAILED_PRECONDITION.value[0], refused
        assert "held by another executor" in refused.message and "taken over" not in refused.message, refused
        owner.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=owned.lease, result=b"mine")))
        ack = owner.next_of("ack", 15)
        assert ack is not None and ack.accepted, ack
        assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"

        polled_workflow = api.submit([api.task("polled", "poll-" + capability)]).workflow.workflow_id
        polled = api.executors.PollTasks(pb.executors.PollTasksRequest(
            executor_id=poller_id, capabilities=["poll-" + capability], max_tasks=1, wait_ms=5000), timeout=15)
        assert len(polled.assignments) == 1
        poller.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(
            lease=polled.assignments[0].lease, result=b"polled")))
        ack = poller.next_of("ack", 15)
        assert ack is not None and ack.accepted, ack
        assert api.wait_finished(polled_workflow, 30) == "WORKFLOW_STATE_SUCCEEDED"
    finally:
        for stream in (owner, foreign, poller):
            stream.close()


def test_completions_sent_before_a_failure_are_applied_before_it(api, pb, server, database, capability):
    """Completions wait for a group commit and a failure did not: sent right after them on the
    same stream, a fail_fast failure overtook them, cancelled their tasks and their results were
    refused as stale (found by black-box testing). A failure now waits for the reports sent
    before it."""
    from security_support import LeaseStream

    for round_ in range(3):
        stream = LeaseStream(api.executors, pb, [], pb.executors.ExecutorHello(
            executor_id=f"ordered-{round_}-" + capability, capabilities=[capability], max_in_flight=10), heartbeat_every=0.5)
        try:
            assert stream.next_of("welcome", 30) is not None
            workflow_id = api.submit([api.task(f"t{i:02}", capability) for i in range(10)]).workflow.workflow_id
            held = [stream.next_of("assignment", 30, keep_others=True) for _ in range(10)]
            assert all(a is not None for a in held)
            held.sort(key=lambda a: a.spec.key)
            for assignment in held[:9]:
                stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=assignment.lease, result=b"ok")))
            stream.send(pb.executors.LeaseRequest(failure=pb.executors.TaskFailure(
                lease=held[9].lease, message="broken", code="E", retryable=False)))
            acks = [stream.next_of("ack", 30, keep_others=True) for _ in range(10)]
            assert all(ack is not None and ack.accepted for ack in acks), [a for a in acks if a is None or not a.accepted]
            assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_FAILED"
            states = dict(psql(database, f"SELECT key, state FROM tasks WHERE workflow_id = '{workflow_id}'"))
            assert states == {**{f"t{i:02}": "succeeded" for i in range(9)}, "t09": "failed"}, states
        finally:
            stream.close()


def test_a_completion_sent_again_by_its_executor_is_acknowledged_and_changes_nothing(api, pb, server, database, capability):
    """An executor that resends its completion (its acknowledgement was lost) was refused "stale
    lease", the same answer as an executor whose lease had been taken over, so it could not tell
    whether its result was stored (found by black-box testing). The resent completion is now
    acknowledged as already stored; with another result, from anyone else, or with another token,
    it is still refused."""
    workflow_id = api.submit([api.task("once", capability)]).workflow.workflow_id
    executor_id = "resend-" + capability
    polled = api.executors.PollTasks(pb.executors.PollTasksRequest(
        executor_id=executor_id, capabilities=[capability], max_tasks=1, wait_ms=5000), timeout=15)
    lease = polled.assignments[0].lease

    def complete(executor, result=b"first"):
        return api.executors.ReportStatus(pb.executors.ReportStatusRequest(
            executor_id=executor, completion=pb.executors.TaskCompletion(lease=lease, result=result)), timeout=10)

    assert complete(executor_id).accepted
    again = complete(executor_id)
    assert again.accepted and "already completed" in again.message, again
    # Another result, or from anyone else: refused, so no ack ever suggests it was stored.
    for executor, result in ((executor_id, b"second"), ("someone-else-" + capability, b"first")):
        with pytest.raises(grpc.RpcError) as refused:
            complete(executor, result)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION, refused.value
    # A token never handed out is named as such, not as a lease "no longer held".
    with pytest.raises(grpc.RpcError) as unknown:
        api.executors.ReportStatus(pb.executors.ReportStatusRequest(executor_id=executor_id, completion=pb.executors.TaskCompletion(
            lease=pb.executors.LeaseToken(task_id=lease.task_id, fencing_token=7), result=b"x")), timeout=10)
    assert unknown.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "carries fencing token 7, which was never issued" in unknown.value.details(), unknown.value.details()
    assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
    assert_completed_once(database, workflow_id, 1)
    # The stored result is the first one.
    assert psql(database, f"SELECT convert_from(result, 'UTF8') FROM tasks WHERE workflow_id = '{workflow_id}'") == [["first"]]


def test_a_drained_stream_takes_no_new_work_and_keeps_what_it_holds(api, pb, server, database, capability):
    """`drain` (graceful shutdown): no assignment after it, the stream stays open for the reports of
    what it holds, and the tasks it never took stay ready for others with no attempt spent."""
    from security_support import LeaseStream

    stream = LeaseStream(api.executors, pb, [], pb.executors.ExecutorHello(
        executor_id="drainer-" + capability, capabilities=[capability], max_in_flight=2), heartbeat_every=0.5)
    try:
        assert stream.next_of("welcome", 30) is not None
        workflow_id = api.submit([api.task(f"d{i}", capability) for i in range(4)]).workflow.workflow_id
        held = [stream.next_of("assignment", 30, keep_others=True) for _ in range(2)]
        assert all(a is not None for a in held)
        stream.send(pb.executors.LeaseRequest(drain=pb.executors.DrainSignal()))
        for assignment in held:
            stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=assignment.lease, result=b"ok")))
        for _ in held:
            ack = stream.next_of("ack", 30, keep_others=True)
            assert ack is not None and ack.accepted, ack
        # Two slots are free and two tasks ready: nothing comes.
        assert stream.next_of("assignment", 4) is None
        ready = psql(database, f"SELECT key, state, attempt FROM tasks WHERE workflow_id = '{workflow_id}' AND state <> 'succeeded' "
                               "ORDER BY key")
        assert [row[1:] for row in ready] == [["ready", "0"], ["ready", "0"]], ready
    finally:
        stream.close()
    # A new stream takes work again.
    again = LeaseStream(api.executors, pb, [], pb.executors.ExecutorHello(
        executor_id="drainer-" + capability, capabilities=[capability], max_in_flight=2), heartbeat_every=0.5)
    try:
        for _ in range(2):
            assignment = again.next_of("assignment", 30, keep_others=True)
            assert assignment is not None and assignment.attempt == 1, assignment
            again.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=assignment.lease, result=b"ok")))
        assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
    finally:
        again.close()
    assert_completed_once(database, workflow_id, 4)


def test_a_completion_sent_behind_a_failure_that_ends_the_workflow_is_not_revoked(api, pb, server, database, capability):
    """EXECUTORS.md: a lease whose completion was already sent is not revoked for its workflow's
    end; its ack says whether it counted. A completion sent right behind a fail_fast failure (the
    failure is applied alone, the completion waits for it) got a revocation as well as its refused
    ack (found by black-box testing, 5 runs of 5)."""
    stream = _stream(api, pb, "behind-" + capability, [capability], max_in_flight=2)
    try:
        workflow_id = api.submit([api.task("c", capability), api.task("d", capability)]).workflow.workflow_id
        leases = {}
        for _ in range(2):
            assignment = stream.next_of("assignment", 30)
            assert assignment is not None
            leases[assignment.spec.key] = assignment.lease
        stream.send(pb.executors.LeaseRequest(failure=pb.executors.TaskFailure(
            lease=leases["c"], message="broken", code="E", retryable=False)))
        stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=leases["d"], result=b"late")))
        seen = []
        deadline = time.monotonic() + 3
        while (left := deadline - time.monotonic()) > 0:
            item = stream.next(left)
            if item is None or isinstance(item, tuple):
                break
            if item.WhichOneof("kind") in ("ack", "revocation"):
                message = getattr(item, item.WhichOneof("kind"))
                seen.append((item.WhichOneof("kind"), message.lease.task_id))
        assert ("revocation", leases["d"].task_id) not in seen, seen
        assert ("ack", leases["c"].task_id) in seen and ("ack", leases["d"].task_id) in seen, seen
        assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_FAILED"
    finally:
        stream.close()


def test_a_stream_that_never_says_hello_is_ended_after_a_lease_ttl(api, pb, server):
    """A Lease stream that never sent `hello` stayed open, answering nothing, for as long as the
    client liked (40 s watched; found by black-box testing): its author had nothing to go on. It
    ends after one lease TTL (3 s on this server) with FAILED_PRECONDITION saying why."""
    import threading

    release = threading.Event()

    def silent():
        release.wait(30)
        return
        yield  # a generator that sends nothing

    started = time.monotonic()
    call = api.executors.Lease(silent(), timeout=30)
    try:
        with pytest.raises(grpc.RpcError) as ended:
            next(call)
        waited = time.monotonic() - started
        assert ended.value.code() == grpc.StatusCode.FAILED_PRECONDITION, ended.value
        assert "no `hello` within 3000 ms" in ended.value.details(), ended.value.details()
        assert 2.5 < waited < 15, waited
    finally:
        release.set()
        call.cancel()
