"""Which executors are connected, and why a task waits: `GET /executors` on the admin port lists the
lease streams open on the server, and `orchestrator_executor_sessions_by_capability` counts them by
capability beside `orchestrator_ready_tasks` (docs/OBSERVABILITY.md, "Executors")."""

from __future__ import annotations

import json
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from security_support import LeaseStream


def get(address: str, path: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(f"http://{address}{path}", timeout=10) as response:
        return response.status, response.headers.get("content-type"), response.read().decode()


def by_capability(admin: str, name: str) -> dict[str, float]:
    _, _, text = get(admin, "/metrics")
    return {sample.labels["capability"]: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == name}


def wait_for(predicate, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_connected_executors_and_a_capability_nobody_serves_are_visible(api, pb, server, capability):
    admin = server.admin_address()
    busy = LeaseStream(api.executors, pb, [], pb.executors.ExecutorHello(
        executor_id="busy-" + capability, capabilities=[capability, "gpu-" + capability], max_in_flight=3,
        labels={"zone": "a"}, version="agent 1.2"), heartbeat_every=0.5)
    idle = LeaseStream(api.executors, pb, [], pb.executors.ExecutorHello(
        executor_id="idle-" + capability, capabilities=[capability], max_in_flight=1), heartbeat_every=0.5)
    try:
        assert busy.next_of("welcome", 30) is not None and idle.next_of("welcome", 30) is not None
        # Two tasks the streams can take (both go to `busy` or one each), one nobody can.
        workflow_id = api.submit([api.task("mine", capability), api.task("also-mine", capability),
                                  api.task("orphan", "nobody-" + capability)]).workflow.workflow_id
        status, content_type, body = get(admin, "/executors")
        assert status == 200 and content_type == "application/json"

        def page_with_two_leases():
            page = json.loads(get(admin, "/executors")[2])
            mine = [e for e in page["executors"] if e["executor_id"].endswith(capability)]
            return page if sum(e["leases_held"] for e in mine) == 2 else None
        page = wait_for(page_with_two_leases)
        mine = {e["executor_id"]: e for e in page["executors"] if e["executor_id"].endswith(capability)}
        assert set(mine) == {"busy-" + capability, "idle-" + capability}
        entry = mine["busy-" + capability]
        assert entry["capabilities"] == sorted([capability, "gpu-" + capability])
        assert entry["labels"] == {"zone": "a"} and entry["version"] == "agent 1.2" and entry["max_in_flight"] == 3
        assert entry["session_id"].startswith("ses") and entry["connected_at"].endswith("Z")
        assert 0 <= entry["last_heard_ms_ago"] < 5000, entry
        assert not entry["draining"] and not mine["idle-" + capability]["draining"]
        assert page["sessions_by_capability"][capability] == 2 and page["sessions_by_capability"]["gpu-" + capability] == 1

        sessions = by_capability(admin, "orchestrator_executor_sessions_by_capability")
        assert sessions[capability] == 2 and sessions["gpu-" + capability] == 1
        assert "nobody-" + capability not in sessions
        # The stuck task shows as ready under a capability no stream advertises.
        ready = wait_for(lambda: (r := by_capability(admin, "orchestrator_ready_tasks")).get("nobody-" + capability) and r)
        assert ready["nobody-" + capability] == 1

        # A stream that asked for no more work says so, and no longer counts as one that could
        # take a task (it hid a task nobody would take from the alert on these two metrics).
        idle.send(pb.executors.LeaseRequest(drain=pb.executors.DrainSignal()))
        drained = wait_for(lambda: (p := json.loads(get(admin, "/executors")[2]))
                           and any(e["executor_id"] == "idle-" + capability and e["draining"] for e in p["executors"]) and p)
        assert drained["sessions_by_capability"][capability] == 1, drained["sessions_by_capability"]
        assert by_capability(admin, "orchestrator_executor_sessions_by_capability")[capability] == 1
        api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id), timeout=10)
    finally:
        busy.close()
        idle.close()
    gone = wait_for(lambda: not any(e["executor_id"].endswith(capability)
                                    for e in json.loads(get(admin, "/executors")[2])["executors"]) or None)
    assert gone
    assert capability not in by_capability(admin, "orchestrator_executor_sessions_by_capability")
