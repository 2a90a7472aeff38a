"""Graph shapes end to end: real orchestratord, real executor processes, checked in the database."""

from __future__ import annotations

import grpc
import pytest

from conftest import assert_completed_once, workflow_events
from procs import orchctl_executor, psql, python_executor


@pytest.fixture
def executors(server, workdir, capability, processes):
    """Two Python example executors and one `orchctl executor`, all with the test's capability."""
    for index in range(2):
        processes.append(python_executor(server.address, workdir, f"py-{index}-{capability}", [capability],
                                         "--max-in-flight", "16", "--sleep-ms", "5"))
    processes.append(orchctl_executor(server.address, workdir, "orchctl", [capability], "--max-in-flight", "16",
                                      "--sleep-ms", "5", "--quiet"))
    return processes


def run(api, database, tasks, timeout: float = 60):
    workflow = api.submit(tasks).workflow
    assert api.wait_finished(workflow.workflow_id, timeout) == "WORKFLOW_STATE_SUCCEEDED"
    return workflow.workflow_id, assert_completed_once(database, workflow.workflow_id, len(tasks))


def finish_order(database: str, workflow_id: str) -> list[str]:
    return [key for _, kind, key in workflow_events(database, workflow_id) if kind == "task_succeeded"]


def test_linear_chain(api, database, capability, executors):
    keys = [f"s{i}" for i in range(8)]
    tasks = [api.task(key, capability, [keys[i - 1]] if i else []) for i, key in enumerate(keys)]
    workflow_id, _ = run(api, database, tasks)
    assert finish_order(database, workflow_id) == keys


def test_branches_and_joins(api, database, capability, executors):
    edges = {"a": [], "b": ["a"], "c": ["a"], "d": ["a"], "e": ["b", "c"], "f": ["d"], "g": ["e", "f"], "h": ["g", "a"]}
    tasks = [api.task(key, capability, deps) for key, deps in edges.items()]
    workflow_id, _ = run(api, database, tasks)
    order = finish_order(database, workflow_id)
    # A task finishes only after every one of its upstream tasks.
    for key, deps in edges.items():
        assert all(order.index(dep) < order.index(key) for dep in deps), (key, order)


def test_fan_out_1_to_1000(api, database, capability, executors):
    tasks = [api.task("root", capability)] + [api.task(f"leaf{i:04}", capability, ["root"]) for i in range(1000)]
    workflow_id, _ = run(api, database, tasks, timeout=120)
    assert finish_order(database, workflow_id)[0] == "root"


def test_fan_in_1000_to_1(api, database, capability, executors):
    tasks = [api.task(f"src{i:04}", capability) for i in range(1000)]
    tasks.append(api.task("sink", capability, [f"src{i:04}" for i in range(1000)]))
    workflow_id, _ = run(api, database, tasks, timeout=120)
    assert finish_order(database, workflow_id)[-1] == "sink"


def test_isolated_tasks(api, database, capability, executors):
    tasks = [api.task(f"alone{i}", capability) for i in range(20)]
    run(api, database, tasks)


def test_invalid_query_rejected_with_every_reason_and_nothing_stored(api, database, capability):
    before = psql(database, "SELECT (SELECT count(*) FROM workflows), (SELECT count(*) FROM tasks), "
                            "(SELECT count(*) FROM workflow_events)")
    tasks = [
        api.task("a", capability, ["c"]), api.task("b", capability, ["a"]), api.task("c", capability, ["b"]),
        api.task("d", capability, ["ghost"]),
        api.task("dup", capability), api.task("dup", capability),
    ]
    with pytest.raises(grpc.RpcError) as caught:
        api.submit(tasks, request_id="invalid-" + capability)
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    message = error.details()
    # The cycle names its path, the unknown dependency is named, the duplicate key too: all at once.
    assert any(path in message for path in ("a → b → c → a", "a -> b -> c -> a", "b → c → a → b", "b -> c -> a -> b",
                                            "c → a → b → c", "c -> a -> b -> c")), message
    assert "ghost" in message, message
    assert "dup" in message, message
    after = psql(database, "SELECT (SELECT count(*) FROM workflows), (SELECT count(*) FROM tasks), "
                           "(SELECT count(*) FROM workflow_events)")
    assert after == before
