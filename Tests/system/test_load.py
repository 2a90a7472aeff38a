"""200 workflows submitted at once from 20 client threads."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from procs import orchctl_executor, psql, python_executor


def test_200_workflows_from_20_threads_all_complete_exactly_once(api, server, database, capability, workdir, processes):
    for index in range(2):
        processes.append(python_executor(server.address, workdir, f"py{index}-{capability}", [capability],
                                         "--max-in-flight", "32", "--sleep-ms", "5"))
    processes.append(orchctl_executor(server.address, workdir, "orchctl", [capability], "--max-in-flight", "32",
                                      "--sleep-ms", "5", "--quiet"))
    batch = uuid.uuid4().hex[:8]

    def submit(index: int) -> str:
        tasks = [api.task("a", capability), api.task("b", capability, ["a"]), api.task("c", capability, ["a"]),
                 api.task("d", capability, ["b", "c"])]
        return api.submit(tasks, request_id=f"load-{batch}-{index}", timeout=60).workflow.workflow_id

    with ThreadPoolExecutor(max_workers=20) as pool:
        ids = list(pool.map(submit, range(200)))
    assert len(set(ids)) == 200
    id_list = ", ".join(f"'{i}'" for i in ids)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = dict(psql(database, f"SELECT state, count(*) FROM workflows WHERE id IN ({id_list}) GROUP BY 1"))
        if states.get("succeeded") == "200":
            break
        assert "failed" not in states and "cancelled" not in states, states
        time.sleep(1)
    else:
        raise AssertionError(f"not all workflows finished: {states}")
    # Every one of the 800 tasks completed exactly once: one succeeded attempt, one event.
    rows = psql(database, f"""
        SELECT count(*),
               count(*) FILTER (WHERE t.state = 'succeeded' AND t.attempt = 1),
               count(*) FILTER (WHERE (SELECT count(*) FROM task_attempts a WHERE a.task_id = t.id AND a.outcome = 'succeeded') = 1),
               count(*) FILTER (WHERE (SELECT count(*) FROM workflow_events e WHERE e.task_id = t.id AND e.type = 'task_succeeded') = 1)
        FROM tasks t WHERE t.workflow_id IN ({id_list})""")
    assert rows == [["800", "800", "800", "800"]]
    finals = psql(database, f"SELECT count(*) FROM workflow_events WHERE workflow_id IN ({id_list}) AND type = 'workflow_succeeded'")
    assert finals == [["200"]]
