"""grpc-ruby (Debian's ruby-grpc 1.51) against orchestratord: the Ruby example executor finishes
workflows with the Python one and alone over TLS, and a Ruby client program (api_checks.rb, beside
it) asserts unary, server-streaming and bidi calls, deadlines, metadata, message limits, gzip,
status details, UNIMPLEMENTED, cancellation, more streams than SETTINGS_MAX_CONCURRENT_STREAMS, and
TLS. Set up offline by examples/executors/ruby/build.sh (skipped, loudly, when apt-get cannot
install the packages)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import pytest

from conftest import run_to_success
from procs import FAN_OUT, ROOT, Process, beside_python_executor, fan_out_graph, psql
from test_java_executor import build_example, run_api_checks

RUBY_EXECUTOR_DIR = ROOT / "examples" / "executors" / "ruby"
# What api_checks.rb prints PASS for, in order (ApiChecks.java's names); "tls" last, with a TLS address.
API_CHECKS = ["unary_plan", "unary_submit_get_traceparent", "bidi_lease_and_server_streaming_watch", "lease_cancel_requeues",
              "deadline_exceeded", "message_over_4mib", "gzip_requests", "large_response", "unimplemented",
              "status_details", "cancel_watch", "many_streams", "tls"]


class RubyPrograms(NamedTuple):
    """The launchers build.sh writes: they run the sources in place, with the generated stubs on the load path."""

    executor: Path
    api_checks: Path


@pytest.fixture(scope="module")
def ruby(tmp_path_factory) -> RubyPrograms:
    executor = build_example(RUBY_EXECUTOR_DIR, tmp_path_factory.mktemp("ruby") / "orchexecutor", "ruby-grpc")
    return RubyPrograms(executor, executor.with_name(executor.name + "-api-checks"))


@pytest.fixture(scope="module")
def server(tls_server):
    """This module's orchestratord: the usual one, plus a TLS listener when openssl made a certificate."""
    return tls_server


def tls_flags(tls_files) -> list[str]:
    """Flags both Ruby programs take to reach the TLS listener by its certificate's name."""
    return ["--tls-ca-file", str(tls_files["ca.pem"]), "--tls-authority", "localhost"]


def test_ruby_and_python_executors_complete_a_workflow_together(api, server, database, capability, workdir, processes,
                                                               ruby):
    ruby_id, py_id = "ruby-" + capability, "py-" + capability
    # Comma-separated capabilities; no task needs the second one.
    executor = Process([ruby.executor, "--address", server.address, "--id", ruby_id, "--capabilities", f"{capability},spare",
                        "--max-in-flight", "4", "--sleep-ms", "100"], workdir / "ruby.log")
    processes.append(executor)
    beside_python_executor(executor, processes, server.address, workdir, py_id, capability)
    tasks = fan_out_graph(api, capability)
    workflow_id, done = run_to_success(api, database, tasks)
    assert set(done) == {ruby_id, py_id} and sum(done.values()) == len(tasks), done
    # Each Ruby task went RUNNING by its progress report, sent when the assignment arrived.
    [[running]] = psql(database, f"SELECT count(*) FROM workflow_events WHERE workflow_id = '{workflow_id}' "
                                 f"AND type = 'task_running' AND executor_id = '{ruby_id}'")
    assert int(running) == done[ruby_id]
    # Both languages write the same result, {executor, key, attempt, upstream}; the join saw every
    # upstream result, whichever language produced it.
    rows = psql(database, f"SELECT key, convert_from(result, 'UTF8') FROM tasks WHERE workflow_id = '{workflow_id}'")
    results = {key: json.loads(result) for key, result in rows}
    upstream = {"start": [], "join": FAN_OUT, **{key: ["start"] for key in FAN_OUT}}
    assert results == {key: {"executor": results[key]["executor"], "key": key, "attempt": 1, "upstream": upstream[key]}
                       for key in upstream}
    assert sum(result["executor"] == ruby_id for result in results.values()) == done[ruby_id]
    assert "stream failed" not in executor.log(), executor.tail()


def test_the_ruby_example_heartbeats_within_a_task_ttl_shorter_than_the_interval(database, capability, pb, tmp_path_factory,
                                                                                 ruby):
    """It heartbeated at the interval only: the task's lease lapsed while it worked."""
    from short_ttl import WORK_MS, assert_short_ttl_task_runs_once

    folder = tmp_path_factory.mktemp("ruby-short-ttl")
    assert_short_ttl_task_runs_once(database, folder, pb, capability, lambda address: Process(
        [ruby.executor, "--address", address, "--id", "ruby-ttl-" + capability, "--capabilities", capability,
         "--sleep-ms", WORK_MS], folder / "ruby.log"))


def test_ruby_executor_alone_over_tls_stops_after_its_tasks(api, server, database, capability, workdir, processes,
                                                            ruby, tls_files):
    """--tasks N: drain after N accepted completions, then half-close once nothing is in flight;
    the server ends the stream OK and the process exits 0."""
    ruby_id = "ruby-alone-" + capability
    where = ["--address", server.tls_address, *tls_flags(tls_files)] if tls_files else ["--address", server.address]
    executor = Process([ruby.executor, *where, "--id", ruby_id, "--capabilities", capability, "--max-in-flight", "3",
                        "--sleep-ms", "50", "--tasks", "12"], workdir / "ruby-alone.log")
    processes.append(executor)
    executor.wait_for_log("welcome session=", 30)
    # Three chains of four: as many tasks ready at once as the executor has slots.
    tasks = [api.task(f"t{i:02}", capability, [f"t{i - 3:02}"] if i >= 3 else []) for i in range(12)]
    assert run_to_success(api, database, tasks)[1] == {ruby_id: len(tasks)}
    assert executor.wait(30) == 0, executor.tail()
    log = executor.log()
    assert not tls_files or "(TLS)" in log, executor.tail()
    assert "stopped after 12 completions" in log and "stream failed" not in log, executor.tail()


def test_grpc_ruby_client_api_checks(server, capability, workdir, ruby, tls_files):
    args = [ruby.api_checks, "--address", server.address, "--capability", capability]
    if tls_files:
        args += ["--tls-address", server.tls_address, *tls_flags(tls_files)]
    run_api_checks(args, API_CHECKS if tls_files else API_CHECKS[:-1], server, workdir)
