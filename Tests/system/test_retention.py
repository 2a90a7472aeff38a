"""Retention (`--retention`): a finished workflow is deleted with everything it owns once it is older
than the retention; a running one never is, and the rest of the event log keeps serving."""

from __future__ import annotations

import re
import threading
import time
import urllib.request

import grpc
import pytest

from procs import Orchestratord, psql, python_executor

RETENTION_S = 3


@pytest.fixture(scope="module")
def server(database, tmp_path_factory):
    instance = Orchestratord(database, tmp_path_factory.mktemp("server"),
                             extra_args=["--retention", f"{RETENTION_S}s", "--admin-address", "127.0.0.1:0"]).start()
    yield instance
    instance.stop()


def wait_not_found(api, workflow_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            api.get(workflow_id)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND, error
            return
        time.sleep(0.2)
    raise AssertionError(f"{workflow_id} still there {timeout}s after it finished (retention {RETENTION_S}s)")


def all_events(api, pb) -> list:
    events, page_token = [], ""
    while True:
        page = api.workflows.ListEvents(pb.workflows.ListEventsRequest(page_size=1000, page_token=page_token), timeout=20)
        events += page.events
        if not page.next_page_token:
            return events
        page_token = page.next_page_token


def test_finished_workflows_go_after_the_retention_running_ones_stay(api, server, database, capability, workdir,
                                                                     processes, pb):
    processes.append(python_executor(server.address, workdir, "ex-" + capability, [capability]))
    graph = [api.task("a", capability), api.task("b", capability, ["a"])]
    request_id = "retained-" + capability[-6:]
    done_id = api.submit(graph, request_id=request_id).workflow.workflow_id
    assert api.wait_finished(done_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
    # Kept while younger than the retention (the pruner runs every second here).
    assert api.state(done_id) == "WORKFLOW_STATE_SUCCEEDED"
    # A watch left open on it (nothing ends it: no stop_when_finished) ends NOT_FOUND once the
    # workflow is deleted; it stayed open for ever.
    watched: dict = {"events": [], "code": None}

    def watch() -> None:
        try:
            for event in api.workflows.WatchWorkflow(pb.workflows.WatchWorkflowRequest(workflow_id=done_id), timeout=60):
                watched["events"].append(pb.workflow.EventType.Name(event.type))
        except grpc.RpcError as error:
            watched["code"], watched["details"] = error.code(), error.details()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    task_ids = [row[0] for row in psql(database, f"SELECT id FROM tasks WHERE workflow_id = '{done_id}'")]
    assert len(task_ids) == 2

    nobody = "nobody-" + capability
    cancelled_id = api.submit([api.task("x", nobody)]).workflow.workflow_id
    api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=cancelled_id, reason="test"), timeout=10)
    waiting_id = api.submit([api.task("w", nobody)]).workflow.workflow_id

    wait_not_found(api, done_id, RETENTION_S + 20)
    wait_not_found(api, cancelled_id, RETENTION_S + 20)
    with pytest.raises(grpc.RpcError) as new_watch:
        next(iter(api.workflows.WatchWorkflow(pb.workflows.WatchWorkflowRequest(workflow_id=done_id), timeout=10)))
    assert new_watch.value.code() == grpc.StatusCode.NOT_FOUND

    watcher.join(timeout=30)
    assert not watcher.is_alive(), "the watch of the deleted workflow is still open"
    assert watched["code"] == grpc.StatusCode.NOT_FOUND, watched
    assert "deleted (retention) while it was watched" in watched["details"], watched
    assert watched["events"][-1] == "EVENT_TYPE_WORKFLOW_SUCCEEDED", watched

    # Nothing of them is left in any table.
    for gone in (done_id, cancelled_id):
        for table, column in [("workflows", "id"), ("queries", "workflow_id"), ("dag_versions", "workflow_id"),
                              ("tasks", "workflow_id"), ("edges", "workflow_id"), ("workflow_events", "workflow_id")]:
            assert psql(database, f"SELECT count(*) FROM {table} WHERE {column} = '{gone}'") == [["0"]], (table, gone)
    ids = ",".join(f"'{task_id}'" for task_id in task_ids)
    assert psql(database, f"SELECT count(*) FROM task_attempts WHERE task_id IN ({ids})") == [["0"]]

    # The running workflow, older than the retention by now, stays whole, and the log still serves.
    assert api.state(waiting_id) == "WORKFLOW_STATE_RUNNING"
    by_workflow: dict[str, list] = {}
    for event in all_events(api, pb):
        by_workflow.setdefault(event.workflow_id, []).append(event)
    assert done_id not in by_workflow and cancelled_id not in by_workflow
    assert [pb.workflow.EventType.Name(e.type) for e in by_workflow[waiting_id]][:1] == ["EVENT_TYPE_WORKFLOW_SUBMITTED"]

    # Its request id is free again: a retry now makes a new workflow.
    again = api.submit(graph, request_id=request_id)
    assert again.created and again.workflow.workflow_id != done_id

    with urllib.request.urlopen(f"http://{server.admin_address()}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    pruned = {kind: float(value) for kind, value in
              re.findall(r'^orchestrator_retention_pruned_total\{kind="(\w+)"\} (\S+)$', metrics, re.MULTILINE)}
    assert pruned["workflows"] >= 2 and pruned["tasks"] >= 3 and pruned["events"] > 0, pruned
    assert "pruned finished workflows past their retention" in server.proc.log()
