"""Two orchestratord processes on one database: claims, reports and the lease reaper stay correct
when they share the tables (SKIP LOCKED claims, fencing tokens, reaper sweeps on both)."""

from __future__ import annotations

from conftest import assert_completed_once
from procs import Orchestratord, python_executor


def test_two_servers_share_one_database(api, server, database, capability, workdir, processes, pb):
    second = Orchestratord(server.database_url, workdir).start()
    try:
        for index, address in enumerate([server.address, server.address, second.address, second.address]):
            processes.append(python_executor(address, workdir, f"two-{index}-{capability}", [capability],
                                             "--max-in-flight", "3", "--sleep-ms", "150"))
        # One executor on the second server dies halfway through its second task; its lease lapses
        # and whichever server's reaper sweeps first requeues the task.
        processes.append(python_executor(second.address, workdir, f"two-dying-{capability}", [capability],
                                         "--sleep-ms", "400", "--die-after", "2", "--max-reconnects", "0"))
        workflow_ids = [api.submit([api.task(f"t{i}", capability) for i in range(6)]).workflow.workflow_id
                        for _ in range(15)]
        for workflow_id in workflow_ids:
            assert api.wait_finished(workflow_id, 90) == "WORKFLOW_STATE_SUCCEEDED"
        for workflow_id in workflow_ids:
            # At most two attempts: only the dying executor's task needed a second one.
            assert_completed_once(database, workflow_id, 6, max_attempt=2)
    finally:
        second.stop()
