"""grpc++ (Debian's 1.51) against orchestratord: the C++ example executor finishes workflows with
the Python one and alone over TLS, and a grpc++ client program (orchexecutor-api-checks, built
beside it) asserts unary, server-streaming and bidi calls, deadlines, metadata, message limits,
gzip, status details, UNIMPLEMENTED, cancellation, more streams than SETTINGS_MAX_CONCURRENT_STREAMS,
keepalive pings and TLS. Built offline by examples/executors/cpp/build.sh (skipped, loudly, when
apt-get cannot install the packages)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import assert_completed_once, run_to_success, succeeded_by_executor
from procs import FAN_OUT, ROOT, Process, beside_python_executor, fan_out_graph, psql
from test_java_executor import build_example, run_api_checks

CPP_EXECUTOR_DIR = ROOT / "examples" / "executors" / "cpp"
# ApiChecks.java's names, plus keepalive_pings; "tls" comes last when there is a certificate.
API_CHECKS = ["unary_plan", "unary_submit_get_traceparent", "bidi_lease_and_server_streaming_watch",
              "lease_cancel_requeues", "deadline_exceeded", "message_over_4mib", "gzip_requests", "large_response",
              "unimplemented", "status_details", "cancel_watch", "many_streams", "keepalive_pings"]


@pytest.fixture(scope="module")
def cpp_executor(tmp_path_factory) -> Path:
    """The executor; OUTPUT-api-checks beside it."""
    return build_example(CPP_EXECUTOR_DIR, tmp_path_factory.mktemp("cpp") / "orchexecutor", "grpc++")


@pytest.fixture(scope="module")
def server(tls_server):
    """This module's orchestratord: the usual one, plus a TLS listener when openssl made a certificate."""
    return tls_server


def test_cpp_and_python_executors_complete_a_workflow_together(api, server, database, capability, workdir, processes,
                                                              cpp_executor):
    cpp_id, py_id = "cpp-" + capability, "py-" + capability
    # Comma-separated capabilities; no task needs the second one.
    executor = Process([cpp_executor, "--address", server.address, "--id", cpp_id, "--capabilities", f"{capability},spare",
                        "--max-in-flight", "4", "--sleep-ms", "100"], workdir / "cpp.log")
    processes.append(executor)
    beside_python_executor(executor, processes, server.address, workdir, py_id, capability)
    tasks = fan_out_graph(api, capability)
    workflow_id, done = run_to_success(api, database, tasks)
    assert set(done) == {cpp_id, py_id} and sum(done.values()) == len(tasks), done
    # Each C++ task went RUNNING by its progress report, sent when the assignment arrived.
    [[running]] = psql(database, f"SELECT count(*) FROM workflow_events WHERE workflow_id = '{workflow_id}' "
                                 f"AND type = 'task_running' AND executor_id = '{cpp_id}'")
    assert int(running) == done[cpp_id]
    # The C++ results have the other examples' shape, {executor, key, attempt, upstream}; the join
    # saw every upstream result, whichever language produced it.
    rows = psql(database, f"SELECT key, convert_from(result, 'UTF8') FROM tasks WHERE workflow_id = '{workflow_id}'")
    results = {key: result for key, result in rows}
    assert all(key in results["join"] for key in FAN_OUT), results["join"]
    cpp_results = [json.loads(result) for result in results.values() if f'"executor":"{cpp_id}"' in result]
    assert len(cpp_results) == done[cpp_id]
    upstream = {"start": [], "join": FAN_OUT, **{key: ["start"] for key in FAN_OUT}}
    assert all(r == {"executor": cpp_id, "key": r["key"], "attempt": 1, "upstream": upstream[r["key"]]} for r in cpp_results)
    assert "stream failed" not in executor.log(), executor.tail()


def test_the_cpp_example_heartbeats_within_a_task_ttl_shorter_than_the_interval(database, capability, pb, tmp_path_factory,
                                                                                cpp_executor):
    """It heartbeated at the interval only: the task's lease lapsed while it worked."""
    from short_ttl import WORK_MS, assert_short_ttl_task_runs_once

    folder = tmp_path_factory.mktemp("cpp-short-ttl")
    assert_short_ttl_task_runs_once(database, folder, pb, capability, lambda address: Process(
        [cpp_executor, "--address", address, "--id", "cpp-ttl-" + capability, "--capabilities", capability,
         "--sleep-ms", WORK_MS], folder / "cpp.log"))


def test_cpp_executor_alone_over_tls_stops_after_its_tasks(api, server, database, capability, workdir, processes,
                                                           cpp_executor, tls_files):
    """--tasks N: drain after N accepted completions, half-close once nothing is in flight; the
    server ends the stream OK and the process exits 0."""
    cpp_id = "cpp-alone-" + capability
    args = ["--id", cpp_id, "--capabilities", capability, "--max-in-flight", "3", "--sleep-ms", "50", "--tasks", "12"]
    if tls_files:
        args += ["--address", server.tls_address, "--tls-ca-file", tls_files["ca.pem"], "--tls-authority", "localhost"]
    else:
        args += ["--address", server.address]
    executor = Process([cpp_executor, *args], workdir / "cpp-alone.log")
    processes.append(executor)
    executor.wait_for_log("welcome session=", 30)
    # Three chains of four: as many tasks ready at once as the executor has slots.
    tasks = [api.task(f"t{i:02}", capability, [f"t{i - 3:02}"] if i >= 3 else []) for i in range(12)]
    workflow_id = api.submit(tasks).workflow.workflow_id
    assert api.wait_finished(workflow_id, 60) == "WORKFLOW_STATE_SUCCEEDED"
    assert_completed_once(database, workflow_id, len(tasks))
    assert succeeded_by_executor(database, workflow_id) == {cpp_id: len(tasks)}
    assert executor.wait(30) == 0, executor.tail()
    log = executor.log()
    assert not tls_files or "(TLS)" in log, executor.tail()
    assert "stopped after 12 completions" in log and "stream failed" not in log, executor.tail()


def test_grpc_cpp_client_api_checks(server, capability, workdir, cpp_executor, tls_files):
    args = [f"{cpp_executor}-api-checks", "--address", server.address, "--capability", capability]
    expected = list(API_CHECKS)
    if tls_files:
        args += ["--tls-address", server.tls_address, "--tls-ca-file", tls_files["ca.pem"], "--tls-authority", "localhost"]
        expected.append("tls")
    run_api_checks(args, expected, server, workdir)
