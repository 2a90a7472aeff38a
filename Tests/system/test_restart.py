"""orchestratord SIGKILLed mid-run and restarted on the same database: nothing lost, nothing twice."""

from __future__ import annotations

import re
import time

from conftest import assert_completed_once
from procs import psql, python_executor


def test_server_sigkill_and_restart_loses_nothing(api, server, database, capability, workdir, processes):
    # Python example executors reconnect with backoff and resume their leases.
    executors = []
    for index in range(2):
        executors.append(python_executor(server.address, workdir, f"py{index}-{capability}", [capability],
                                         "--max-in-flight", "4", "--sleep-ms", "300"))
    processes.extend(executors)
    ids = []
    for index in range(12):
        tasks = [api.task(f"s{i}", capability, [f"s{i - 1}"] if i else []) for i in range(5)]
        ids.append(api.submit(tasks, request_id=f"restart-{capability}-{index}").workflow.workflow_id)
    id_list = ", ".join(f"'{i}'" for i in ids)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = int(psql(database, f"SELECT count(*) FROM tasks WHERE workflow_id IN ({id_list}) AND state = 'succeeded'")[0][0])
        if done >= 15:
            break
        time.sleep(0.1)
    server.kill()
    time.sleep(1)
    server.start()
    for workflow_id in ids:
        assert api.wait_finished(workflow_id, 90) == "WORKFLOW_STATE_SUCCEEDED"
    # Work in flight at the crash came back through hello.resume (leases kept across the restart).
    resumed = [int(n) for proc in executors for n in re.findall(r"resumed=(\d+)", proc.log())]
    assert sum(resumed) > 0, [proc.tail(5) for proc in executors]
    for workflow_id in ids:
        # A task in flight at the crash may run again (its lease lapsed), but it succeeds once.
        assert_completed_once(database, workflow_id, 5, max_attempt=3)
