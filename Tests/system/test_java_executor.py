"""grpc-java (Debian's 1.41, Netty transport) against orchestratord: the Java example executor
finishes workflows with the Python one and alone, and a Java client program (ApiChecks, in the same
jar) asserts unary, server-streaming and bidi calls, deadlines, metadata, message limits, gzip,
status details, UNIMPLEMENTED, cancellation, more streams than SETTINGS_MAX_CONCURRENT_STREAMS, and
TLS. Built offline by examples/executors/java/build.sh (skipped, loudly, when apt-get cannot
install the packages)."""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import assert_completed_once, run_to_success, succeeded_by_executor
from procs import FAN_OUT, ROOT, Process, beside_python_executor, fan_out_graph, psql

JAVA_EXECUTOR_DIR = ROOT / "examples" / "executors" / "java"
API_CHECKS = ["unary_plan", "unary_submit_get_traceparent", "bidi_lease_and_server_streaming_watch",
              "lease_cancel_requeues", "deadline_exceeded",
              "message_over_4mib", "gzip_requests", "large_response", "unimplemented", "status_details", "cancel_watch",
              "many_streams"]


def build_example(folder: Path, output: Path, packages: str) -> Path:
    """Runs an example's build.sh into `output`; skips the module, loudly, when build.sh could not
    install the Debian `packages` it needs (exit status 3: no apt-get or no network)."""
    result = subprocess.run([folder / "build.sh", output], capture_output=True, text=True, timeout=900)
    if result.returncode == 3:
        pytest.skip(f"{packages} packages unavailable and apt-get could not install them:\n{result.stderr[-2000:]}")
    assert result.returncode == 0, result.stdout + result.stderr
    return output


@pytest.fixture(scope="module")
def java_executor(tmp_path_factory) -> Path:
    return build_example(JAVA_EXECUTOR_DIR, tmp_path_factory.mktemp("java") / "orchexecutor", "grpc-java")


@pytest.fixture(scope="module")
def server(tls_server):
    """This module's orchestratord: the usual one, plus a TLS listener when openssl made a certificate."""
    return tls_server


def java(binary: Path, args: list, log: Path) -> Process:
    return Process([binary, *args], log)


def test_java_and_python_executors_complete_a_workflow_together(api, server, database, capability, workdir, processes,
                                                               java_executor):
    java_id, py_id = "java-" + capability, "py-" + capability
    executor = java(java_executor, ["--address", server.address, "--id", java_id, "--capabilities", capability,
                                    "--max-in-flight", "4", "--sleep-ms", "100"], workdir / "java.log")
    processes.append(executor)
    beside_python_executor(executor, processes, server.address, workdir, py_id, capability, timeout=60)
    tasks = fan_out_graph(api, capability)
    workflow_id, by_executor = run_to_success(api, database, tasks)
    assert set(by_executor) == {java_id, py_id}, by_executor
    assert sum(by_executor.values()) == len(tasks)
    # The Java executor reports progress first: each of its tasks went RUNNING, by its report.
    running = psql(database, f"SELECT count(*) FROM workflow_events WHERE workflow_id = '{workflow_id}' "
                             f"AND type = 'task_running' AND executor_id = '{java_id}'")
    assert int(running[0][0]) == by_executor[java_id]
    # The join saw every upstream result, whichever language produced it.
    result = psql(database, f"SELECT convert_from(result, 'UTF8') FROM tasks WHERE workflow_id = '{workflow_id}' AND key = 'join'")
    assert all(key in result[0][0] for key in FAN_OUT)
    assert "stream failed" not in executor.log(), executor.tail()


def test_the_java_example_heartbeats_within_a_task_ttl_shorter_than_the_interval(database, capability, pb, tmp_path_factory,
                                                                                 java_executor):
    """It heartbeated at the interval only: the task's lease lapsed while it worked."""
    from short_ttl import WORK_MS, assert_short_ttl_task_runs_once

    folder = tmp_path_factory.mktemp("java-short-ttl")
    assert_short_ttl_task_runs_once(database, folder, pb, capability, lambda address: java(
        java_executor, ["--address", address, "--id", "java-ttl-" + capability, "--capabilities", capability,
                        "--sleep-ms", WORK_MS], folder / "java.log"))


def test_java_executor_alone_over_tls_stops_after_its_tasks(api, server, database, capability, workdir, processes,
                                                            java_executor, tls_files):
    """Alone, over TLS when there is a certificate: --tasks N ends the process after N accepted
    completions (drain, half-close, the server ends the stream OK)."""
    java_id = "java-alone-" + capability
    args = ["--id", java_id, "--capabilities", capability, "--max-in-flight", "3", "--sleep-ms", "50", "--tasks", "12"]
    if tls_files:
        args += ["--address", server.tls_address, "--tls-ca-file", tls_files["ca.pem"], "--tls-authority", "localhost"]
    else:
        args += ["--address", server.address]
    executor = java(java_executor, args, workdir / "java-alone.log")
    processes.append(executor)
    executor.wait_for_log("welcome session=", 60)
    tasks = [api.task(f"t{i:02}", capability, [f"t{i - 3:02}"] if i >= 3 else []) for i in range(12)]
    workflow_id = api.submit(tasks).workflow.workflow_id
    assert api.wait_finished(workflow_id, 60) == "WORKFLOW_STATE_SUCCEEDED"
    assert_completed_once(database, workflow_id, len(tasks))
    assert succeeded_by_executor(database, workflow_id) == {java_id: len(tasks)}
    assert executor.wait(30) == 0, executor.tail()
    assert "stopped after 12 completions" in executor.log(), executor.tail()
    assert "stream failed" not in executor.log(), executor.tail()


def streams_active(admin: str) -> float:
    with urllib.request.urlopen(f"http://{admin}/metrics", timeout=10) as response:
        text = response.read().decode()
    match = re.search(r"^orchestrator_grpc_streams_active (\S+)$", text, re.M)
    assert match, "no orchestrator_grpc_streams_active in /metrics"
    return float(match.group(1))


def test_grpc_java_client_api_checks(server, capability, workdir, java_executor, tls_files):
    args = ["java", "-cp", f"{java_executor}.jar", "dev.orchestrator.examples.ApiChecks", "--address", server.address,
            "--capability", capability]
    expected = list(API_CHECKS)
    if tls_files:
        args += ["--tls-address", server.tls_address, "--tls-ca-file", tls_files["ca.pem"], "--tls-authority", "localhost"]
        expected.append("tls")
    run_api_checks(args, expected, server, workdir)


def run_api_checks(args: list, expected: list[str], server, workdir: Path) -> None:
    """Runs a client check program: it passes exactly the checks `expected`, in order, and leaves the
    server clean (assert_server_clean)."""
    log_size = server.proc.log_path.stat().st_size
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    (workdir / "api-checks.log").write_text(result.stdout + result.stderr)
    passed = re.findall(r"^PASS (\S+)", result.stdout, re.M)
    failed = re.findall(r"^FAIL .*$", result.stdout, re.M)
    assert result.returncode == 0 and not failed, "\n".join(failed) + "\n" + result.stdout[-4000:] + result.stderr[-4000:]
    assert passed == expected, result.stdout
    assert_server_clean(server, log_size)


def assert_server_clean(server, log_size: int) -> None:
    """Every stream a client program opened, reset, cancelled or timed out is gone from the server,
    which logged no internal error for any of it (in its log past `log_size`)."""
    admin = server.admin_address()
    deadline = time.monotonic() + 10
    while streams_active(admin) != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert streams_active(admin) == 0
    with open(server.proc.log_path, errors="replace") as log:
        log.seek(log_size)
        lines = log.read().splitlines()
    bad = [line for line in lines if re.search(r'"level":"(error|critical)"|"status":"(INTERNAL|UNKNOWN)"', line)]
    assert not bad, "\n".join(bad[:20])
