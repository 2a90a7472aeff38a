"""orchctl, the command-line client, against a real server: every subcommand's output and exit code."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

from conftest import assert_completed_once
from hosts_file import skip_without_private_mounts, with_hosts_file
from procs import ROOT, Process, binary, free_port, orchctl_executor, psql


def orchctl(server, *args, check=True, timeout=60):
    result = subprocess.run([str(binary("orchctl")), *args, "--address", server.address], capture_output=True,
                            text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


def test_orchctl_commands(server, database, capability, workdir, processes):
    dag = workdir / "dag.json"
    dag.write_text(json.dumps({"tasks": [
        {"key": "fetch", "required_capabilities": [capability], "payload": {"url": "x"}},
        {"key": "parse", "depends_on": ["fetch"], "required_capabilities": [capability]},
        {"key": "index", "depends_on": ["fetch"], "required_capabilities": [capability]},
        {"key": "publish", "depends_on": ["parse", "index"], "required_capabilities": [capability]},
    ]}))

    planned = orchctl(server, "plan", "--dag", str(dag)).stdout
    assert "DAG v1 — 4 tasks" in planned and "publish ← parse, index" in planned
    assert re.search(r"levels: \[fetch\] \[(parse, index|index, parse)\] \[publish\]", planned)

    invalid = orchctl(server, "submit", "--dag", str(ROOT / "examples/dags/invalid.json"), check=False)
    assert invalid.returncode != 0
    assert "INVALID_ARGUMENT" in invalid.stderr and "cycle: a → b → c → a" in invalid.stderr and "missing" in invalid.stderr

    processes.append(orchctl_executor(server.address, workdir, "cli-" + capability, [capability], "--sleep-ms", "50"))
    submitted = orchctl(server, "submit", "--dag", str(dag), "--request-id", "cli-" + capability, "--watch").stdout
    workflow_id = re.search(r"submitted (wf_\w+)", submitted).group(1)
    assert "WORKFLOW_SUCCEEDED" in submitted.splitlines()[-1]
    assert_completed_once(database, workflow_id, 4)

    again = orchctl(server, "submit", "--dag", str(dag), "--request-id", "cli-" + capability).stdout
    assert f"already submitted {workflow_id}" in again

    got = orchctl(server, "get", workflow_id).stdout
    assert "SUCCEEDED" in got and got.count("succeeded  attempt 1/3") == 4
    assert workflow_id in orchctl(server, "list", "--state", "succeeded", "--limit", "100").stdout

    mermaid = orchctl(server, "dag", workflow_id, "--format", "mermaid").stdout
    assert "fetch" in mermaid and "-->" in mermaid
    dot = orchctl(server, "dag", workflow_id, "--format", "dot").stdout
    assert dot.lstrip().startswith("digraph") and '"parse" -> "publish"' in dot
    assert "states: fetch=succeeded" in orchctl(server, "dag", workflow_id).stdout

    events = orchctl(server, "watch", workflow_id, "--after", "3").stdout.splitlines()
    sequences = [int(line.split()[0][1:]) for line in events]
    assert sequences and sequences[0] > 3 and sequences == sorted(sequences)
    assert "WORKFLOW_SUCCEEDED" in events[-1]

    missing = orchctl(server, "get", "wf_does_not_exist", check=False)
    assert missing.returncode != 0 and "NOT_FOUND" in missing.stderr


def test_orchctl_cancel(server, database, capability, workdir, processes):
    dag = workdir / "slow.json"
    dag.write_text(json.dumps({"tasks": [{"key": "slow", "required_capabilities": [capability]}]}))
    processes.append(orchctl_executor(server.address, workdir, "slow-" + capability, [capability], "--sleep-ms", "20000"))
    workflow_id = re.search(r"submitted (wf_\w+)", orchctl(server, "submit", "--dag", str(dag)).stdout).group(1)
    cancelled = orchctl(server, "cancel", workflow_id, "--reason", "from the CLI").stdout
    assert cancelled.startswith(f"cancelled {workflow_id}") and "CANCELLED" in cancelled
    assert "CANCELLED" in orchctl(server, "get", workflow_id).stdout


def test_orchctl_executor_capabilities_may_be_comma_separated(server, capability, workdir, processes, api):
    """`--capabilities gpu,echo` advertised one capability named "gpu,echo" and gpu tasks never
    came (found by black-box testing; `token --tenants` takes commas). Both forms are lists now,
    and so is one quoted argument with spaces (`--capabilities "gpu echo"` was one capability)."""
    first, second, third = "a-" + capability, "b-" + capability, "c-" + capability
    processes.append(orchctl_executor(server.address, workdir, "commas-" + capability, [f"{first}, {second}  {third}"]))
    workflow_id = api.submit([api.task("one", first), api.task("two", second), api.task("three", third)]).workflow.workflow_id
    assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"


def test_orchctl_output_to_a_closed_pipe_or_a_full_disk(server, workdir):
    dag = workdir / "one.json"
    dag.write_text(json.dumps({"tasks": [{"key": "only"}]}))
    command = [str(binary("orchctl")), "plan", "--dag", str(dag), "--address", server.address]

    # `orchctl … | head -1` once head has exited: ended by SIGPIPE, as cat would be, without a crash report.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        closed = subprocess.run(command, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert closed.returncode == -signal.SIGPIPE, closed.stderr
    assert closed.stderr == ""

    with open("/dev/full", "w") as full:
        failed = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert failed.returncode == 74
    assert failed.stderr == "orchctl: cannot write to standard output: No space left on device\n"

    # What ArgumentParser prints itself went through stdio unchecked: `--version > /dev/full` exited 0.
    for printed in (["--version"], ["--help"], ["submit", "--help"]):
        with open("/dev/full", "w") as full:
            failed = subprocess.run([str(binary("orchctl")), *printed], stdout=full, stderr=subprocess.PIPE, text=True,
                                    timeout=60)
        assert failed.returncode == 74, (printed, failed.returncode)
        assert failed.stderr == "orchctl: cannot write to standard output: No space left on device\n", failed.stderr


def test_command_line_mistakes_exit_64(server):
    """docs/CLI.md: 64 for a bad command line. Found by black-box testing: these exited 1, as if a call had failed."""
    for args, message in [(["list", "--state", "bogus"], 'unknown state "bogus" (one of: planning, running, succeeded, failed, cancelled)'),
                          (["list", "--label", "novalue"], '--label "novalue" is not key=value'),
                          (["events", "--type", "bogus"], 'unknown event type "bogus"'),
                          (["events", "--since", "yesterday"], "is not an RFC 3339 instant"),
                          # Foundation's parser ignored trailing text and rolled Feb 30 over to March 2.
                          (["events", "--since", "2026-11-26T01:00:00Zjunk"], "is not an RFC 3339 instant"),
                          (["events", "--until", "2026-02-30T00:00:00Z"], "is not an RFC 3339 instant"),
                          (["submit"], "give query text, --goal or --dag"),
                          # Found by black-box testing: a negative number was "Missing value for '--limit <limit>'".
                          (["list", "--limit", "-1"], "--limit must be > 0"),
                          (["events", "--after", "-5"], "--after must be >= 0"),
                          (["watch", "--after", "-5", "wf_x"], "--after must be >= 0"),
                          # Found by black-box testing: these three were "Missing value for …", and
                          # an empty label key was accepted.
                          (["dag", "wf_x", "--version", "-1"], "--version must be a DAG version"),
                          (["trace", "wf_x", "--width", "-5"], "--width must be a number of columns above 0"),
                          (["list", "--timeout", "-1"], "--timeout must be a number of seconds above 0"),
                          (["list", "--label", "=v"], '--label "=v" has an empty key'),
                          # Found by black-box testing: these ran (1.5 as "always", 0 as "no limit"),
                          # and a negative --max-in-flight was "Missing value".
                          (["executor"], "--capabilities needs at least one capability"),
                          (["executor", "--capabilities", "x", "--fail-probability", "1.5"], "--fail-probability must be between 0 and 1"),
                          (["executor", "--capabilities", "x", "--fail-probability", "-1"], "--fail-probability must be between 0 and 1"),
                          (["executor", "--capabilities", "x", "--tasks", "0"], "--tasks must be 1 or more"),
                          (["executor", "--capabilities", "x", "--die-after", "0"], "--die-after must be 1 or more"),
                          (["executor", "--capabilities", "x", "--max-in-flight", "-1"], "--max-in-flight must be 1 or more"),
                          (["executor", "--capabilities", "x", "--sleep-ms", "-1"], "--sleep-ms must be 0 or more")]:
        result = orchctl(server, *args, check=False)
        assert result.returncode == 64 and message in result.stderr, (args, result.returncode, result.stderr)
    # Found by black-box testing: '"0s" is not a duration', while it is one, only too short.
    # And `--ttl -5` said "Missing value for '--ttl <ttl>'".
    for ttl, message in [("0s", '--ttl "0s" must be more than 0 and less than 100 years'), ("soon", '--ttl "soon" is not a duration'),
                         ("-5", '--ttl "-5" must be more than 0 and less than 100 years')]:
        result = subprocess.run([str(binary("orchctl")), "token", "--key-file", "/etc/hostname", "--role", "viewer", "--tenant", "t",
                                 "--ttl", ttl], capture_output=True, text=True, timeout=30)
        assert result.returncode == 64 and message in result.stderr, (ttl, result.returncode, result.stderr)
    bad_port = subprocess.run([str(binary("orchctl")), "list", "--address", "127.0.0.1:99999"], capture_output=True,
                              text=True, timeout=30)
    assert bad_port.returncode == 64 and "port 1-65535" in bad_port.stderr, bad_port.stderr
    unresolvable = subprocess.run([str(binary("orchctl")), "list", "--address", "nosuchhost.invalid:50051"],
                                  capture_output=True, text=True, timeout=30)
    assert unresolvable.returncode == 1 and "cannot resolve host nosuchhost.invalid" in unresolvable.stderr, unresolvable.stderr


def test_text_output_escapes_control_characters(api, server, capability, pb):
    """An executor's failure message with a newline and escape sequences printed raw forged a
    whole audit line in the operator's terminal (found by black-box testing): every event is one
    line, control characters shown escaped; `--json` keeps the message verbatim."""
    forged = "boom\n#1000 2026-11-27T00:00:00Z WORKFLOW_SUCCEEDED  by root (admin, tenant default)\x1b[2K\x1b[31m\u202e"
    workflow_id = api.submit([api.task("t", capability)]).workflow.workflow_id
    polled = api.executors.PollTasks(pb.executors.PollTasksRequest(
        executor_id="esc-" + capability, capabilities=[capability], max_tasks=1, wait_ms=5000), timeout=15)
    api.executors.ReportStatus(pb.executors.ReportStatusRequest(executor_id="esc-" + capability, failure=pb.executors.TaskFailure(
        lease=polled.assignments[0].lease, message=forged, retryable=False)), timeout=15)
    assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_FAILED"

    events = orchctl(server, "events", "--workflow", workflow_id).stdout
    lines = events.splitlines()
    assert len(lines) == 6, events  # submitted, planned, ready, leased, failed, workflow failed
    assert "\x1b" not in events and "\r" not in events
    assert "— boom\\n#1000 2026-11-27T00:00:00Z WORKFLOW_SUCCEEDED" in events and "\\u{1B}[2K\\u{1B}[31m\\u{202E}" in events
    shown = orchctl(server, "get", workflow_id).stdout
    assert "\x1b" not in shown and "(boom\\n#1000" in shown, shown
    as_json = [json.loads(line) for line in orchctl(server, "events", "--workflow", workflow_id, "--json").stdout.splitlines()]
    assert forged in [event["message"] for event in as_json]


def test_dag_and_trace_escape_control_characters_too(api, server, capability, pb):
    """`orchctl dag` printed a DAG update's reason raw and `orchctl trace` a cancellation's, so a
    newline or an escape sequence in them reached the terminal (found by black-box testing)."""
    forged = "why\x1b[31mRED\nsecond line\u202e"
    workflow_id = api.submit([api.task("a", "nobody-" + capability)]).workflow.workflow_id
    api.workflows.UpdateDag(pb.workflows.UpdateDagRequest(workflow_id=workflow_id, expected_version=1, reason=forged,
                                                          add_tasks=[api.task("b", "nobody-" + capability)]), timeout=10)
    api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id, reason="stop\x1b[31mRED\nx"),
                                 timeout=10)
    for args in (("dag", workflow_id), ("dag", workflow_id, "--version", "1"), ("trace", workflow_id)):
        shown = orchctl(server, *args).stdout
        assert "\x1b" not in shown and "\u202e" not in shown, (args, shown)
    dag = orchctl(server, "dag", workflow_id).stdout
    assert "(why\\u{1B}[31mRED\\nsecond line\\u{202E})" in dag, dag
    assert "stop\\u{1B}[31mRED\\nx" in orchctl(server, "trace", workflow_id).stdout


def test_trace_of_a_retry_after_a_stream_ended_draws_no_backoff_past_the_task(api, server, capability, pb):
    """A lease given back when its stream ended records the expiry, then the retry: the retry
    made an empty attempt whose backoff `·` ran from there to the workflow's end, past the
    task's success (found by black-box testing)."""
    import time

    from security_support import LeaseStream

    workflow_id = api.submit([api.task("fetch", capability)]).workflow.workflow_id
    first = LeaseStream(api.executors, pb, [], pb.executors.ExecutorHello(
        executor_id="dies-" + capability, capabilities=[capability], max_in_flight=1))
    assert first.next_of("assignment", 30) is not None
    first.close()
    time.sleep(1.0)
    poll = pb.executors.PollTasksRequest(executor_id="second-" + capability, capabilities=[capability], max_tasks=1, wait_ms=10000)
    second = api.executors.PollTasks(poll, timeout=15).assignments[0]
    assert second.attempt == 2
    api.executors.ReportStatus(pb.executors.ReportStatusRequest(executor_id="second-" + capability, completion=pb.executors.TaskCompletion(
        lease=second.lease, result=b"ok")), timeout=15)
    assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
    timeline = json.loads(orchctl(server, "trace", workflow_id, "--json").stdout)
    row = next(r for r in timeline["rows"] if r["name"] == "fetch")
    assert [(a["attempt"], a["outcome"]) for a in row["attempts"]] == [(1, "lease_expired"), (2, "succeeded")], row["attempts"]
    bar = next(line for line in orchctl(server, "trace", workflow_id).stdout.splitlines() if line.startswith("fetch"))
    assert "·" not in bar.split("█")[-1], bar


def test_trace_of_a_task_cancelled_while_it_waited_shows_the_wait(api, server, capability, pb):
    """A task cancelled before any executor took it was drawn as an instant `│`, its wait for an
    executor dropped (found by black-box testing)."""
    import time

    workflow_id = api.submit([api.task("waits", "nobody-" + capability)]).workflow.workflow_id
    time.sleep(1.0)
    api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id, reason="enough"), timeout=10)
    timeline = json.loads(orchctl(server, "trace", workflow_id, "--json").stdout)
    row = next(r for r in timeline["rows"] if r["name"] == "waits")
    (attempt,) = row["attempts"]
    assert attempt["outcome"] == "cancelled" and "leased_ms" not in attempt, attempt
    assert attempt["end_ms"] - attempt["ready_ms"] >= 900, attempt
    bar = next(line for line in orchctl(server, "trace", workflow_id, "--width", "100").stdout.splitlines()
               if line.startswith("waits"))
    assert bar.count("░") >= 10 and "│" not in bar and "1 attempt" not in bar, bar


def test_a_host_name_whose_first_address_refuses_is_tried_at_the_next(server, tmp_path):
    """On a standard Debian `localhost` resolves to ::1 first (/etc/hosts lists both), while
    orchestratord listens on 127.0.0.1 by default: orchctl (and every client on the Swift NGRPC
    channel) tried only the first address and failed "Connection refused" where grpcio connected
    (found by black-box testing). The resolver sees such a hosts file through a private mount."""
    skip_without_private_mounts()
    port = server.address.rsplit(":", 1)[1]
    command = with_hosts_file(tmp_path, f"getent ahosts localhost | head -1 && "
                                        f"exec '{binary('orchctl')}' list --limit 1 --address localhost:{port}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.stdout.startswith("::1"), result.stdout  # the hosts file is the one seen, ::1 first
    assert result.returncode == 0, result.stderr


def test_a_listener_named_by_host_name_listens_on_each_of_its_addresses(database, workdir, processes, tmp_path):
    """`--grpc-address localhost:PORT` bound only the first address of the name — ::1 on a
    standard Debian — so a client of 127.0.0.1:PORT was refused (found by black-box testing); so
    did `--admin-address localhost:PORT` for a scraper of 127.0.0.1."""
    import urllib.request

    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    skip_without_private_mounts()
    port, admin_port = free_port(), free_port()
    proc = Process(with_hosts_file(tmp_path, f"exec '{binary('orchestratord')}' --grpc-address localhost:{port} "
                                             f"--database-url '{database}' --admin-address localhost:{admin_port}"),
                   workdir / "localhost.log")
    processes.append(proc)
    proc.wait_for_log("orchestratord ready", 60)
    for target in (f"127.0.0.1:{port}", f"ipv6:[::1]:{port}"):
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, target
    for admin in (f"127.0.0.1:{admin_port}", f"[::1]:{admin_port}"):
        with urllib.request.urlopen(f"http://{admin}/healthz", timeout=10) as response:
            assert response.status == 200, admin


def test_an_ipv6_listener_is_named_and_reachable(database, workdir, processes):
    """`--grpc-address [::1]:PORT`: the ready line said "grpc":"::1:PORT", which reads as a host
    name of its own; it names the address as the flag takes it, and orchctl and grpcio reach it."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    port = free_port()
    proc = Process([binary("orchestratord"), "--grpc-address", f"[::1]:{port}", "--database-url", database,
                    "--admin-address", "none"], workdir / "ipv6.log")
    processes.append(proc)
    proc.wait_for_log("orchestratord ready", 60)
    ready = next(json.loads(line) for line in proc.log().splitlines() if "orchestratord ready" in line)
    assert ready["grpc"] == f"[::1]:{port}", ready
    listed = subprocess.run([str(binary("orchctl")), "list", "--limit", "1", "--address", f"[::1]:{port}"],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    with grpc.insecure_channel(f"ipv6:[::1]:{port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_a_dag_file_can_come_from_a_pipe(server, capability):
    """`--dag /dev/stdin` from a pipe and `--dag <(…)` failed with "You don't have permission"
    (found by black-box testing); `-` reads standard input too."""
    graph = json.dumps({"tasks": [{"key": "piped", "required_capabilities": [capability]}]})
    for path in ("-", "/dev/stdin"):
        result = subprocess.run([str(binary("orchctl")), "plan", "--dag", path, "--address", server.address], input=graph,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "piped" in result.stdout, (path, result.stderr)
    missing = orchctl(server, "plan", "--dag", "/nonexistent/dag.json", check=False)
    assert missing.returncode != 0 and "cannot read /nonexistent/dag.json: No such file or directory" in missing.stderr, missing.stderr


def test_list_limit_past_one_page_reads_as_many_pages_as_it_takes(api, server, capability, pb):
    """`orchctl list --limit 5000` failed with the server's page_size bound ("must be between 1
    and 1000"; found by black-box testing): --limit counts workflows, read a page at a time."""
    stream_requests = (pb.workflows.SubmitStreamRequest(request_id=f"list-{capability[-6:]}-{i}", query=api.query(
        [api.task("t", "nobody-" + capability)], labels={"run": capability})) for i in range(1003))
    accepted = sum(1 for reply in api.workflows.SubmitStream(stream_requests, timeout=120) if reply.HasField("accepted"))
    assert accepted == 1003
    some = orchctl(server, "list", "--label", f"run={capability}", "--limit", "1002")
    assert len(some.stdout.splitlines()) == 1002 and some.stderr.startswith("more: --page-token "), some.stderr
    every = orchctl(server, "list", "--label", f"run={capability}", "--limit", "5000")
    assert len(set(every.stdout.splitlines())) == 1003 and "more:" not in every.stderr, every.stderr


def test_get_shows_a_succeeded_tasks_last_error_as_an_earlier_attempts(api, server, capability, pb):
    """`orchctl get` printed a succeeded task's last error as if it were its outcome:
    "t  succeeded  attempt 2/3  (stream ended)" (found by black-box testing)."""
    retry = pb.dag.RetryPolicy(max_attempts=3, initial_backoff_ms=1)
    workflow_id = api.submit([api.task("t", capability, retry=retry)]).workflow.workflow_id
    executor = "earlier-" + capability
    poll = pb.executors.PollTasksRequest(executor_id=executor, capabilities=[capability], max_tasks=1, wait_ms=5000)
    first = api.executors.PollTasks(poll, timeout=15).assignments[0]
    api.executors.ReportStatus(pb.executors.ReportStatusRequest(executor_id=executor, failure=pb.executors.TaskFailure(
        lease=first.lease, message="flaky upstream", retryable=True)), timeout=15)
    second = api.executors.PollTasks(poll, timeout=15).assignments[0]
    assert second.attempt == 2
    api.executors.ReportStatus(pb.executors.ReportStatusRequest(executor_id=executor, completion=pb.executors.TaskCompletion(
        lease=second.lease, result=b"ok")), timeout=15)
    assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
    shown = orchctl(server, "get", workflow_id).stdout
    line = next(line for line in shown.splitlines() if line.strip().startswith("- t "))
    assert "succeeded" in line and "(attempt 1 failed: flaky upstream)" in line, shown


def test_list_keeps_the_next_page_hint_out_of_standard_output(api, server, capability):
    """`orchctl list --limit 1 | tail -1 | awk '{print $1}'` gave "more:", the next-page hint, as
    a workflow id (found by black-box testing): the hint goes to standard error."""
    for _ in range(2):
        api.submit([api.task("t", capability)])
    listed = orchctl(server, "list", "--limit", "1")
    assert len(listed.stdout.splitlines()) == 1 and "more:" not in listed.stdout, listed.stdout
    token = listed.stderr.strip().removeprefix("more: --page-token ")
    assert token and token != listed.stderr.strip(), listed.stderr
    second = orchctl(server, "list", "--limit", "1", "--page-token", token)
    assert len(second.stdout.splitlines()) == 1 and second.stdout != listed.stdout


def test_executor_with_tasks_n_takes_n_and_spends_no_other_tasks_attempt(api, pb, server, database, capability, workdir):
    """Found by black-box testing: `--tasks 1` exited with a second assignment just handed over,
    which came back as a spent attempt (with max_attempts 1 the workflow failed). It now drains
    after taking N tasks, finishes what it holds, and exits 0."""
    once = pb.dag.RetryPolicy(max_attempts=1)
    workflow_id = api.submit([api.task(f"n{i}", capability, retry=once) for i in range(3)]).workflow.workflow_id
    result = subprocess.run([str(binary("orchctl")), "executor", "--address", server.address, "--capabilities", capability,
                             "--sleep-ms", "300", "--tasks", "1", "--max-in-flight", "2"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "draining" in result.stdout and "reports accepted" in result.stdout, result.stdout
    rows = psql(database, f"SELECT state, attempt FROM tasks WHERE workflow_id = '{workflow_id}' ORDER BY key")
    done = [row for row in rows if row[0] == "succeeded"]
    assert 1 <= len(done) <= 2 and all(row == ["ready", "0"] for row in rows if row[0] != "succeeded"), rows
    assert api.state(workflow_id) == "WORKFLOW_STATE_RUNNING"


def test_watch_of_every_workflow_names_each_events_workflow(api, server, capability):
    """`orchctl watch` without a workflow printed events of several workflows that could not be
    told apart (found by black-box testing): each line ends with `workflow=ID`."""
    workflow_id = api.submit([api.task("t", "nobody-" + capability)]).workflow.workflow_id
    proc = subprocess.Popen([str(binary("orchctl")), "watch", "--after", "0", "--address", server.address],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    import threading

    stopper = threading.Timer(5, proc.kill)  # a watch of everything never ends by itself
    stopper.start()
    try:
        seen = proc.stdout.readlines()
    finally:
        stopper.cancel()
        proc.kill()
        proc.wait()
    assert seen and all(re.search(r"  workflow=wf_[0-9a-f]+$", line.rstrip("\n")) for line in seen), seen[:3]
    assert any(line.rstrip("\n").endswith("workflow=" + workflow_id) for line in seen)


def test_watch_honours_a_timeout_given_on_the_command_line(api, server, capability):
    """A watch follows without a deadline, but one given with --timeout was ignored (found by
    black-box testing: `watch --timeout 3` still ran at 20 s). It now ends the watch, exit 1."""
    workflow_id = api.submit([api.task("t", "nobody-" + capability)]).workflow.workflow_id
    started = time.monotonic()
    result = orchctl(server, "watch", workflow_id, "--timeout", "2", check=False, timeout=30)
    assert result.returncode == 1 and "DEADLINE_EXCEEDED" in result.stderr.upper(), (result.returncode, result.stderr)
    assert time.monotonic() - started < 15
    assert "WORKFLOW_SUBMITTED" in result.stdout, result.stdout


def test_executor_escapes_what_other_callers_wrote(api, server, capability, workdir, processes, pb):
    """`orchctl executor` printed a revocation's reason raw — a cancel's reason, written by
    another caller — so a newline or a bidi override in it forged lines in the operator's
    terminal (found by black-box testing); `get` and `events` escaped it already."""
    executor = orchctl_executor(server.address, workdir, "escaping", [capability], "--sleep-ms", "30000")
    processes.append(executor)
    workflow_id = api.submit([api.task("held", capability)]).workflow.workflow_id
    executor.wait_for_log("task held", 30)
    api.workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id, reason="stop \u202e evil\nline"),
                                 timeout=15)
    executor.wait_for_log("lease revoked", 30)
    revoked = [line for line in executor.log().splitlines() if "lease revoked" in line]
    assert revoked and "stop \\u{202E} evil\\nline" in revoked[0], revoked
    assert "\u202e" not in executor.log()


def test_submit_wait_and_watch_say_how_the_workflow_ended(api, server, capability, workdir, processes):
    """`submit --wait`/`--watch` exit 3 when the workflow ends other than SUCCEEDED (they exited 0
    for a FAILED one), and a `--wait` that runs out of time still names the workflow it stored
    (only DEADLINE_EXCEEDED was printed, the id was lost). Both found by black-box testing."""
    dag = workdir / "fails.json"
    dag.write_text(json.dumps({"tasks": [{"key": "f", "required_capabilities": [capability], "retry": {"max_attempts": 1}}]}))
    processes.append(orchctl_executor(server.address, workdir, "failing", [capability], "--fail-probability", "1",
                                      "--permanent-failures", "--sleep-ms", "10"))
    for mode in ("--wait", "--watch"):
        result = orchctl(server, "submit", "--dag", str(dag), mode, check=False)
        assert result.returncode == 3, (mode, result.returncode, result.stdout, result.stderr)
        workflow_id = re.search(r"wf_[0-9a-f]+", result.stdout).group(0)
        assert f"workflow {workflow_id} ended FAILED" in result.stderr, result.stderr
    succeeds = workdir / "succeeds.json"
    succeeds.write_text(json.dumps({"tasks": [{"key": "s", "required_capabilities": ["nobody-" + capability]}]}))
    timed_out = orchctl(server, "submit", "--dag", str(succeeds), "--wait", "--timeout", "2", check=False)
    assert timed_out.returncode == 1 and "DEADLINE_EXCEEDED" in timed_out.stderr, (timed_out.returncode, timed_out.stderr)
    stored = re.search(r"^submitted (wf_[0-9a-f]+)\s+RUNNING", timed_out.stdout, re.M)
    assert stored, timed_out.stdout
    assert api.state(stored.group(1)) == "WORKFLOW_STATE_RUNNING"


def test_connection_options_may_come_before_the_subcommand(api, server, capability):
    """`orchctl --address HOST:PORT get …` (the order kubectl and docker accept, and the one an
    alias gives) was refused: "Unknown option '--address'" (found by black-box testing)."""
    workflow_id = api.submit([api.task("t", "nobody-" + capability)]).workflow.workflow_id
    program = str(binary("orchctl"))
    for leading in (["--address", server.address], [f"--address={server.address}", "--timeout", "10"]):
        result = subprocess.run([program, *leading, "get", workflow_id], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and workflow_id in result.stdout, (leading, result.stderr)
    # Anything else before the subcommand is still a mistake, named as one (exit 64): the unknown
    # option, not the connection option before it ("Unknown option '--address'" until 0.4.0).
    wrong = subprocess.run([program, "--address", server.address, "--bogus", "get", workflow_id], capture_output=True,
                           text=True, timeout=60)
    assert wrong.returncode == 64 and "Unknown option '--bogus'" in wrong.stderr, wrong.stderr
    # Connection options and nothing (or no known subcommand) after them: what is missing is
    # named (it said "Unknown option '--address'" until 0.4.0).
    for args, message in ([["--address", server.address], "Missing subcommand after the connection options"],
                          [["--address"], "Missing value for '--address'"],
                          [["--address", server.address, "bogus"], "Unknown subcommand 'bogus'"],
                          [["--address", server.address, "token"], "'token' runs locally and takes no connection options"]):
        bare = subprocess.run([program, *args], capture_output=True, text=True, timeout=60)
        assert bare.returncode == 64 and message in bare.stderr and "Unknown option" not in bare.stderr, bare.stderr
