"""The Go example executor (grpc-go from Debian) and the Python one finish a workflow together."""

from __future__ import annotations

import subprocess

import pytest

from conftest import run_to_success
from procs import FAN_OUT, GO_EXECUTOR_DIR, Process, beside_python_executor, fan_out_graph, psql


@pytest.fixture(scope="module")
def go_executor_binary(tmp_path_factory):
    output = tmp_path_factory.mktemp("go") / "orchexecutor"
    result = subprocess.run([GO_EXECUTOR_DIR / "build.sh", output], capture_output=True, text=True, timeout=600)
    if result.returncode == 3:
        # build.sh could not install the Debian Go packages (no apt-get or no network): say so loudly.
        pytest.skip(f"Go toolchain packages unavailable and apt-get could not install them:\n{result.stderr[-2000:]}")
    assert result.returncode == 0, result.stdout + result.stderr
    return output


def test_go_and_python_executors_complete_a_workflow_together(api, server, database, capability, workdir, processes,
                                                             go_executor_binary):
    go_id, py_id = "go-" + capability, "py-" + capability
    go = Process([go_executor_binary, "-address", server.address, "-id", go_id, "-capabilities", capability,
                  "-max-in-flight", "4", "-sleep-ms", "100"], workdir / "go.log")
    processes.append(go)
    beside_python_executor(go, processes, server.address, workdir, py_id, capability)
    tasks = fan_out_graph(api, capability)
    workflow_id, by_executor = run_to_success(api, database, tasks)
    assert set(by_executor) == {go_id, py_id}, by_executor
    assert sum(by_executor.values()) == len(tasks)
    # The join saw every upstream result, whichever language produced it.
    result = psql(database, f"SELECT convert_from(result, 'UTF8') FROM tasks WHERE workflow_id = '{workflow_id}' AND key = 'join'")
    assert all(key in result[0][0] for key in FAN_OUT)


def test_the_go_example_heartbeats_within_a_task_ttl_shorter_than_the_interval(database, capability, pb, tmp_path_factory,
                                                                               go_executor_binary):
    """EXECUTORS.md step 2, as the Python example does it: a task granted 1 s under a 2 s heartbeat
    interval lapsed while the Go example worked on it (it heartbeated at the interval only)."""
    import grpc
    from conftest import Api
    from procs import Orchestratord

    folder = tmp_path_factory.mktemp("go-short-ttl")
    slow_heartbeats = Orchestratord(database, folder, lease_ttl=6, heartbeat=2).start()
    executor = Process([go_executor_binary, "-address", slow_heartbeats.address, "-id", "go-ttl-" + capability,
                        "-capabilities", capability, "-sleep-ms", "2500"], folder / "go.log")
    try:
        with grpc.insecure_channel(slow_heartbeats.address) as channel:
            client = Api(channel, pb, slow_heartbeats)
            short = client.task("short", capability, timeouts=pb.dag.Timeouts(lease_ttl_ms=1000))
            workflow_id = client.submit([short]).workflow.workflow_id
            assert client.wait_finished(workflow_id, 60) == "WORKFLOW_STATE_SUCCEEDED"
        assert psql(database, f"SELECT count(*) FROM task_attempts a JOIN tasks t ON t.id = a.task_id "
                              f"WHERE t.workflow_id = '{workflow_id}'") == [["1"]]
    finally:
        executor.stop()
        slow_heartbeats.stop()
