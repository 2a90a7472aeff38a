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
    """It heartbeated at the interval only: the task's lease lapsed while it worked."""
    from short_ttl import WORK_MS, assert_short_ttl_task_runs_once

    folder = tmp_path_factory.mktemp("go-short-ttl")
    assert_short_ttl_task_runs_once(database, folder, pb, capability, lambda address: Process(
        [go_executor_binary, "-address", address, "-id", "go-ttl-" + capability, "-capabilities", capability,
         "-sleep-ms", WORK_MS], folder / "go.log"))
