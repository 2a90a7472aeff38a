"""EXECUTORS.md step 2 for the example executors: heartbeat within the shortest lease TTL held.
A task granted 1 s under a 2 s heartbeat interval, worked on for 2.5 s, must finish in one
attempt; an example that heartbeats at the interval only lets its lease lapse meanwhile."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import grpc

from conftest import Api
from procs import Orchestratord, Process, psql

# What the example is told to spend on each task, in ms: longer than the TTL and the interval.
WORK_MS = "2500"


def assert_short_ttl_task_runs_once(database: str, folder: Path, pb, capability: str,
                                    start_executor: Callable[[str], Process]) -> None:
    """`start_executor(address)` starts the example against a server with a 2 s heartbeat
    interval, told to spend `WORK_MS` on a task."""
    slow_heartbeats = Orchestratord(database, folder, lease_ttl=6, heartbeat=2).start()
    executor = None
    try:
        executor = start_executor(slow_heartbeats.address)
        with grpc.insecure_channel(slow_heartbeats.address) as channel:
            client = Api(channel, pb, slow_heartbeats)
            short = client.task("short", capability, timeouts=pb.dag.Timeouts(lease_ttl_ms=1000))
            workflow_id = client.submit([short]).workflow.workflow_id
            assert client.wait_finished(workflow_id, 90) == "WORKFLOW_STATE_SUCCEEDED"
        assert psql(database, f"SELECT count(*) FROM task_attempts a JOIN tasks t ON t.id = a.task_id "
                              f"WHERE t.workflow_id = '{workflow_id}'") == [["1"]]
    finally:
        if executor is not None:
            executor.stop()
        slow_heartbeats.stop()
