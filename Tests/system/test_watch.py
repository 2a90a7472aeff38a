"""A watcher that disconnects and resumes from its last sequence number loses nothing and sees
nothing twice."""

from __future__ import annotations

from conftest import workflow_events
from procs import python_executor


def test_watcher_resumes_from_last_sequence(api, server, database, capability, workdir, processes, pb):
    processes.append(python_executor(server.address, workdir, "ex-" + capability, [capability], "--sleep-ms", "150"))
    tasks = [api.task(f"s{i}", capability, [f"s{i - 1}"] if i else []) for i in range(10)]
    workflow_id = api.submit(tasks).workflow.workflow_id
    seen = []
    # First connection: read a few live events, then drop the stream mid-run.
    first = api.workflows.WatchWorkflow(pb.workflows.WatchWorkflowRequest(workflow_id=workflow_id), timeout=60)
    for event in first:
        seen.append(event)
        if len(seen) == 8:
            break
    first.cancel()
    # Reconnects (several times, with tiny reads) from the last sequence seen, until the end.
    while True:
        call = api.workflows.WatchWorkflow(pb.workflows.WatchWorkflowRequest(
            workflow_id=workflow_id, after_sequence=seen[-1].sequence, stop_when_finished=True), timeout=60)
        batch = 0
        for event in call:
            seen.append(event)
            batch += 1
            if batch == 5:
                break
        call.cancel()
        if batch < 5:
            break
    assert api.state(workflow_id) == "WORKFLOW_STATE_SUCCEEDED"
    sequences = [e.sequence for e in seen]
    assert sequences == sorted(set(sequences)), "events repeated or out of order"
    stored = workflow_events(database, workflow_id)
    assert sequences == [seq for seq, _, _ in stored]
    assert [pb.workflow.EventType.Name(e.type) for e in seen] == ["EVENT_TYPE_" + t.upper() for _, t, _ in stored]
    assert pb.workflow.EventType.Name(seen[-1].type) == "EVENT_TYPE_WORKFLOW_SUCCEEDED"


def test_resume_after_the_final_event_of_a_finished_workflow_ends_at_once(api, server, capability, workdir,
                                                                          processes, pb):
    processes.append(python_executor(server.address, workdir, "ex-" + capability, [capability], "--sleep-ms", "10"))
    workflow_id = api.submit([api.task("only", capability)]).workflow.workflow_id
    assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
    events = list(api.workflows.WatchWorkflow(pb.workflows.WatchWorkflowRequest(
        workflow_id=workflow_id, stop_when_finished=True), timeout=10))
    assert pb.workflow.EventType.Name(events[-1].type) == "EVENT_TYPE_WORKFLOW_SUCCEEDED"
    # Nothing after the cursor and nothing will ever come: the stream must end, not wait.
    rest = list(api.workflows.WatchWorkflow(pb.workflows.WatchWorkflowRequest(
        workflow_id=workflow_id, after_sequence=events[-1].sequence, stop_when_finished=True), timeout=10))
    assert rest == []


def test_stop_when_finished_without_a_workflow_is_refused(api, pb):
    """A watch of every workflow has no final event: stop_when_finished was silently ignored and
    the stream never ended (found by black-box testing)."""
    import grpc
    import pytest

    with pytest.raises(grpc.RpcError) as refused:
        list(api.workflows.WatchWorkflow(pb.workflows.WatchWorkflowRequest(stop_when_finished=True), timeout=10))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "stop_when_finished needs a workflow_id" in refused.value.details()


def test_a_resume_point_past_a_running_workflows_events_ends_when_it_finishes(api, server, capability, workdir, processes, pb):
    """Found by black-box testing: with after_sequence past every event of a running workflow,
    stop_when_finished waited for a final event it was already past, until the client's deadline."""
    import time

    processes.append(python_executor(server.address, workdir, "ex-" + capability, [capability], "--sleep-ms", "1500"))
    workflow_id = api.submit([api.task("only", capability)]).workflow.workflow_id
    started = time.monotonic()
    rest = list(api.workflows.WatchWorkflow(pb.workflows.WatchWorkflowRequest(
        workflow_id=workflow_id, after_sequence=10**15, stop_when_finished=True), timeout=30))
    assert rest == []
    assert api.state(workflow_id) == "WORKFLOW_STATE_SUCCEEDED"
    assert time.monotonic() - started < 20


def test_an_event_type_written_by_a_newer_server_is_delivered_as_unspecified(api, database, capability, pb):
    """In a rolling upgrade a newer server may append event types this one does not know. Watches
    and listings deliver such an event as EVENT_TYPE_UNSPECIFIED with its other fields, and go
    on; reading it used to fail the call with INTERNAL ("unknown event type")."""
    from procs import psql, workflow_uuid

    workflow_id = api.submit([api.task("only", capability)]).workflow.workflow_id
    psql(database, f"""INSERT INTO workflow_events (workflow_id, type, at, task_key, message)
                       VALUES ('{workflow_uuid(workflow_id)}', 'task_lease_released', now(), 'only', 'from a newer server')""")
    psql(database, f"""INSERT INTO workflow_events (workflow_id, type, at, task_key, message)
                       VALUES ('{workflow_uuid(workflow_id)}', 'task_progress', now(), 'only', 'after it')""")
    listed = api.workflows.ListEvents(pb.workflows.ListEventsRequest(workflow_id=workflow_id), timeout=10).events
    watched = []
    for event in api.workflows.WatchWorkflow(pb.workflows.WatchWorkflowRequest(workflow_id=workflow_id), timeout=10):
        watched.append(event)
        if event.message == "after it":
            break
    for events in (listed, watched):
        names = [pb.workflow.EventType.Name(e.type) for e in events]
        assert names[-2:] == ["EVENT_TYPE_UNSPECIFIED", "EVENT_TYPE_TASK_PROGRESS"], names
        assert (events[-2].task_key, events[-2].message) == ("only", "from a newer server")
