"""Observability end to end: after a known workload, /metrics (parsed with prometheus_client's own
parser) shows exactly the counts the workload implies; /healthz and /readyz answer, /readyz says 503
while the database is down and 200 again once it is back; the log level changes at runtime; and every
line orchestratord writes is a JSON object, the lines about workflows, tasks and leases carrying
workflow_id, task_id, executor_id and trace_id."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from procs import Orchestratord, free_port, psql

N_WORKFLOWS = 3
TASKS_PER_WORKFLOW = 4
FAILING_KEY = "b"  # fails once (retryable) in the first workflow, then succeeds
EXECUTOR_ID = "obs-executor"
SUBMIT = "orchestrator.v1.Workflows/SubmitQuery"
REPORT = "orchestrator.v1.Executors/ReportStatus"
POLL = "orchestrator.v1.Executors/PollTasks"


# -- admin HTTP ------------------------------------------------------------------------------------


def http(address: str, path: str, method: str = "GET", body: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://{address}{path}", method=method,
                                     data=body.encode() if body is not None else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def scrape(address: str) -> dict[tuple[str, tuple], float]:
    """Every sample as {(name, sorted label pairs): value}."""
    status, text = http(address, "/metrics")
    assert status == 200
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"no sample {name}{labels}; have: {sorted(k for k in samples if k[0] == name)}"
    return samples[key]


def total(samples, name: str, **labels) -> float:
    """Sum over every sample of `name` whose labels include `labels`."""
    return sum(v for (n, pairs), v in samples.items() if n == name and set(labels.items()) <= set(pairs))


# -- the workload ----------------------------------------------------------------------------------


def diamond(api, capability: str):
    retry = api.pb.dag.RetryPolicy(max_attempts=3, initial_backoff_ms=20, max_backoff_ms=50)
    return [api.task("a", capability, retry=retry),
            api.task("b", capability, ["a"], retry=retry),
            api.task("c", capability, ["a"], retry=retry),
            api.task("d", capability, ["b", "c"], retry=retry)]


def run_executor(api, capability: str, failing_workflow: str, expected_reports: int, timeout: float = 60) -> int:
    """Polls and reports until `expected_reports` reports were accepted; fails FAILING_KEY of
    `failing_workflow` once. Returns the number of PollTasks calls."""
    pb = api.pb
    failed = False
    reports = polls = 0
    deadline = time.monotonic() + timeout
    while reports < expected_reports:
        assert time.monotonic() < deadline, f"only {reports} of {expected_reports} reports after {timeout}s"
        response = api.executors.PollTasks(pb.executors.PollTasksRequest(
            executor_id=EXECUTOR_ID, capabilities=[capability], max_tasks=8, wait_ms=300), timeout=10)
        polls += 1
        for assignment in response.assignments:
            lease = assignment.lease
            if assignment.workflow_id == failing_workflow and assignment.spec.key == FAILING_KEY and not failed:
                failed = True
                report = pb.executors.ReportStatusRequest(executor_id=EXECUTOR_ID, failure=pb.executors.TaskFailure(
                    lease=lease, message="injected failure", code="obs_test", retryable=True))
            else:
                report = pb.executors.ReportStatusRequest(executor_id=EXECUTOR_ID, completion=pb.executors.TaskCompletion(
                    lease=lease, result=b'{"ok": true}'))
            answer = api.executors.ReportStatus(report, timeout=10)
            assert answer.accepted, answer.message
            reports += 1
    return polls


@pytest.fixture(scope="module")
def observed(database, tmp_path_factory):
    instance = Orchestratord(database, tmp_path_factory.mktemp("observed")).start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def workload(observed, pb, tmp_path_factory):
    """Runs the known workload once; returns what the tests compare against."""
    from conftest import Api  # the suite's API helper, bound to this module's own server

    channel = grpc.insecure_channel(observed.address)
    grpc.channel_ready_future(channel).result(timeout=30)
    api = Api(channel, pb, observed)
    admin = observed.admin_address()
    capability = "cap-obs-" + secrets.token_hex(4)

    # Debug lines (one per lease) are on from here: the level changes while the server runs.
    assert http(admin, "/loglevel", "PUT", "debug") == (200, "debug\n")
    assert http(admin, "/loglevel") == (200, "debug\n")

    traces = {}
    for _ in range(N_WORKFLOWS):
        trace_id = secrets.token_hex(16)
        response = api.workflows.SubmitQuery(
            pb.workflows.SubmitQueryRequest(query=api.query(diamond(api, capability))),
            metadata=[("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01")], timeout=30)
        traces[response.workflow.workflow_id] = trace_id
    # Two refused submissions, each INVALID_ARGUMENT and a planning failure: a cycle, found by the
    # planner, and a retry jitter out of range, found decoding the request (not counted before;
    # found by black-box testing).
    with pytest.raises(grpc.RpcError) as refused:
        api.submit([api.task("x", capability, ["y"]), api.task("y", capability, ["x"])])
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as refused:
        api.submit([api.task("x", capability, retry=pb.dag.RetryPolicy(max_attempts=2, jitter=7))])
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    workflows = list(traces)
    polls = run_executor(api, capability, workflows[0], N_WORKFLOWS * TASKS_PER_WORKFLOW + 1)
    for workflow_id in workflows:
        assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"
    assert http(admin, "/loglevel", "PUT", "info") == (200, "info\n")
    channel.close()
    time.sleep(0.3)  # the channel's connection closes on the server's loop
    return {"api": api, "admin": admin, "traces": traces, "polls": polls, "capability": capability}


# -- tests -----------------------------------------------------------------------------------------


def test_metrics_show_the_workload_exactly(workload):
    samples = scrape(workload["admin"])
    tasks = N_WORKFLOWS * TASKS_PER_WORKFLOW

    # RPCs by method and code, counted and timed alike.
    assert value(samples, "orchestrator_rpc_requests_total", method=SUBMIT, code="OK") == N_WORKFLOWS
    assert value(samples, "orchestrator_rpc_requests_total", method=SUBMIT, code="INVALID_ARGUMENT") == 2
    assert value(samples, "orchestrator_rpc_duration_seconds_count", method=SUBMIT, code="OK") == N_WORKFLOWS
    assert value(samples, "orchestrator_rpc_duration_seconds_bucket", method=SUBMIT, code="OK", le="+Inf") == N_WORKFLOWS
    assert value(samples, "orchestrator_rpc_requests_total", method=REPORT, code="OK") == tasks + 1
    assert value(samples, "orchestrator_rpc_requests_total", method=POLL, code="OK") == workload["polls"]
    assert total(samples, "orchestrator_rpc_active") == 0

    # Dispatch: every attempt leased once, one failure retried on a second attempt.
    assert value(samples, "orchestrator_tasks_leased_total") == tasks + 1
    assert value(samples, "orchestrator_task_reassignments_total") == 1
    assert value(samples, "orchestrator_task_retries_total", cause="failure") == 1
    assert total(samples, "orchestrator_task_retries_total") == 1
    assert value(samples, "orchestrator_task_reports_total", outcome="completed", result="accepted") == tasks
    assert value(samples, "orchestrator_task_reports_total", outcome="failed", result="accepted") == 1
    assert total(samples, "orchestrator_task_reports_total", result="stale") == 0
    assert value(samples, "orchestrator_task_ready_to_leased_seconds_count") == tasks + 1
    assert value(samples, "orchestrator_task_leased_to_done_seconds_count", outcome="succeeded") == tasks
    assert value(samples, "orchestrator_task_leased_to_done_seconds_count", outcome="retried") == 1
    assert total(samples, "orchestrator_lease_expirations_total") == 0
    # Known series exist from the start, at 0 (they appeared only with their first event: rate()
    # and absence alerts had nothing to work on; found by black-box testing).
    assert value(samples, "orchestrator_lease_expirations_total", cause="lease_expired") == 0
    assert value(samples, "orchestrator_lease_expirations_total", cause="timeout") == 0
    assert value(samples, "orchestrator_task_retries_total", cause="released") == 0
    assert value(samples, "orchestrator_task_reports_total", outcome="progress", result="stale") == 0
    assert value(samples, "orchestrator_task_reports_total", outcome="completed", result="held_by_another_stream") == 0
    assert value(samples, "orchestrator_leases_released_total") == 0
    assert value(samples, "orchestrator_leases_held") == 0

    # Planning: by planner and DAG size; the cycle and the bad jitter are planning failures.
    assert value(samples, "orchestrator_planning_duration_seconds_count", planner="explicit", dag_size="1-10") == N_WORKFLOWS
    assert value(samples, "orchestrator_planned_dag_tasks_count", planner="explicit") == N_WORKFLOWS
    assert value(samples, "orchestrator_planned_dag_tasks_sum", planner="explicit") == tasks
    assert value(samples, "orchestrator_planning_failures_total") == 2

    # Database-wide gauges: every workflow succeeded, nothing queued or leased.
    assert value(samples, "orchestrator_workflows", state="succeeded") == N_WORKFLOWS
    assert total(samples, "orchestrator_workflows") == N_WORKFLOWS
    assert total(samples, "orchestrator_ready_tasks") == 0
    assert value(samples, "orchestrator_tasks_leased") == 0
    assert value(samples, "orchestrator_tasks_retry_waiting") == 0

    # Connections and streams: every call that reached a handler is one stream, all closed now.
    handled = total(samples, "orchestrator_rpc_requests_total")
    assert value(samples, "orchestrator_grpc_streams_started_total") == handled
    assert value(samples, "orchestrator_grpc_streams_active") == 0
    # Receive budgets: nothing is part-way in, nothing was refused.
    assert value(samples, "orchestrator_grpc_partial_request_bytes") == 0
    assert value(samples, "orchestrator_grpc_partial_requests_refused_total") == 0
    assert value(samples, "orchestrator_grpc_connections_accepted_total") >= 1

    # The pool: queries were timed, nothing waits, connections are accounted for.
    assert value(samples, "orchestrator_db_query_duration_seconds_count", outcome="ok") > 0
    assert value(samples, "orchestrator_db_pool_acquire_seconds_count") > 0
    assert value(samples, "orchestrator_db_connect_attempts_total", outcome="ok") >= 1
    assert value(samples, "orchestrator_db_connect_attempts_total", outcome="error") == 0
    assert value(samples, "orchestrator_db_pool_waiting") == 0
    in_use = value(samples, "orchestrator_db_pool_connections", state="in_use")
    idle = value(samples, "orchestrator_db_pool_connections", state="idle")
    assert 0 <= in_use and 1 <= in_use + idle <= value(samples, "orchestrator_db_pool_max_connections")

    # The process: memory, descriptors and threads from /proc.
    assert value(samples, "process_resident_memory_bytes") > 1_000_000
    assert value(samples, "process_open_fds") >= 3
    assert value(samples, "process_threads") >= 3  # at least the gRPC loop, the admin loop and main


def test_ready_queue_depth_by_capability(workload):
    """Tasks nobody can run wait in the ready queue, counted under each capability they need."""
    api = workload["api"]
    channel = grpc.insecure_channel(api.server.address)
    stub = api.pb.workflows_grpc.WorkflowsStub(channel)
    lonely = "cap-lonely-" + secrets.token_hex(3)
    tasks = [api.task("p", lonely), api.task("q", lonely), api.pb.dag.TaskSpec(key="r", required_capabilities=[lonely, "gpu"])]
    response = stub.SubmitQuery(api.pb.workflows.SubmitQueryRequest(query=api.query(tasks)), timeout=30)
    try:
        deadline = time.monotonic() + 10
        while True:
            samples = scrape(workload["admin"])
            depth = total(samples, "orchestrator_ready_tasks", capability=lonely)
            if depth == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.3)  # the gauges are cached for a second
        assert depth == 3
        assert value(samples, "orchestrator_ready_tasks", capability="gpu") == 1
        assert value(samples, "orchestrator_workflows", state="running") == 1
    finally:
        stub.CancelWorkflow(api.pb.workflows.CancelWorkflowRequest(workflow_id=response.workflow.workflow_id), timeout=30)
        channel.close()


def test_health_readiness_and_log_level_endpoints(workload):
    admin = workload["admin"]
    assert http(admin, "/healthz") == (200, "ok\n")
    status, body = http(admin, "/readyz")
    assert status == 200, body
    assert "database: ok" in body and "grpc: ok" in body
    assert http(admin, "/loglevel") == (200, "info\n")
    status, body = http(admin, "/loglevel", "PUT", "chatty")
    assert status == 400 and "not one of" in body
    assert http(admin, "/loglevel") == (200, "info\n")
    assert http(admin, "/nowhere")[0] == 404
    assert http(admin, "/metrics", "PUT", "x")[0] == 405


def test_every_log_line_is_json_and_carries_the_ids(workload, observed):
    lines = [line for line in observed.proc.log().splitlines() if line.strip()]
    records = []
    for line in lines:
        record = json.loads(line)  # every line, from start-up on
        assert isinstance(record, dict), line
        assert {"time", "level", "label", "message"} <= record.keys(), line
        assert record["time"].endswith("Z") and len(record["time"]) == 24, line
        records.append(record)
    traces = workload["traces"]

    def about(message):
        return [r for r in records if r["message"] == message and r.get("workflow_id") in traces]

    tasks = N_WORKFLOWS * TASKS_PER_WORKFLOW
    expected = {"task leased": tasks + 1, "task completed": tasks, "task failed; retry scheduled": 1,
                "workflow finished": N_WORKFLOWS}
    for message, count in expected.items():
        found = about(message)
        assert len(found) == count, (message, len(found))
        for record in found:
            assert record["task_id"] and record["executor_id"] == EXECUTOR_ID, record
            # The trace started by the submitter's traceparent follows the workflow into dispatch.
            assert record["trace_id"] == traces[record["workflow_id"]], record
    submitted = about("workflow submitted")
    assert len(submitted) == N_WORKFLOWS
    assert all(r["trace_id"] == traces[r["workflow_id"]] for r in submitted)
    # Debug lines stopped when the level went back to info: the last one precedes the PUT.
    changes = [i for i, r in enumerate(records) if r["message"] == "log level changed"]
    assert [records[i]["to"] for i in changes] == ["debug", "info"]
    assert not [r for r in records[changes[1] + 1:] if r["level"] == "debug"]
    assert [r for r in records[changes[0] + 1:changes[1]] if r["level"] == "debug"]


def test_a_second_server_on_the_migrated_database_logs_only_json(workload, database, tmp_path):
    """Its migrator meets an existing schema, and PostgreSQL's notices about that (libpq prints
    them to stderr by default) arrive as JSON lines too; its admin port is its own."""
    os.chmod(tmp_path, 0o777)
    second = Orchestratord(database, tmp_path).start()
    try:
        admin = second.admin_address()
        assert admin != workload["admin"]
        assert http(admin, "/healthz") == (200, "ok\n")
    finally:
        second.stop()
    records = [json.loads(line) for line in second.proc.log().splitlines() if line.strip()]
    assert records and all(isinstance(r, dict) for r in records)
    assert [r for r in records if r["label"] == "postgres.notice" and r["sqlstate"] == "42P07"] == []  # debug, not shown at info
    assert any(r["message"] == "orchestratord stopped" for r in records)


def test_an_expired_lease_is_counted_retried_and_logged(workload, observed, pb):
    """A lease nobody heartbeats or reports expires (lease TTL 3 s here): the reaper counts it,
    the task goes back for a second attempt, and the line says whose lease it was."""
    from conftest import Api

    channel = grpc.insecure_channel(observed.address)
    api = Api(channel, pb, observed)
    admin = workload["admin"]
    before = scrape(admin)
    capability = "cap-expiry-" + secrets.token_hex(3)
    trace_id = secrets.token_hex(16)
    retry = pb.dag.RetryPolicy(max_attempts=2, initial_backoff_ms=20, max_backoff_ms=50)
    workflow_id = api.workflows.SubmitQuery(
        pb.workflows.SubmitQueryRequest(query=api.query([api.task("only", capability, retry=retry)])),
        metadata=[("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01")], timeout=30).workflow.workflow_id
    try:
        poll = pb.executors.PollTasksRequest(executor_id="obs-silent", capabilities=[capability], max_tasks=1, wait_ms=2000)
        first = api.executors.PollTasks(poll, timeout=10).assignments
        assert len(first) == 1 and first[0].attempt == 1
        # Silence: no heartbeat, no report. The second attempt arrives once the reaper took the lease back.
        deadline = time.monotonic() + 30
        second = []
        while not second:
            assert time.monotonic() < deadline, "the lease never expired"
            second = api.executors.PollTasks(poll, timeout=10).assignments
        assert second[0].attempt == 2
        api.executors.ReportStatus(pb.executors.ReportStatusRequest(executor_id="obs-silent", completion=pb.executors.TaskCompletion(
            lease=second[0].lease, result=b"{}")), timeout=10)
        assert api.wait_finished(workflow_id, 30) == "WORKFLOW_STATE_SUCCEEDED"

        after = scrape(admin)

        def delta(name, **labels):
            return total(after, name, **labels) - total(before, name, **labels)

        assert delta("orchestrator_lease_expirations_total", cause="lease_expired") == 1
        assert delta("orchestrator_task_retries_total", cause="lease_expired") == 1
        assert delta("orchestrator_task_reassignments_total") == 1
        assert delta("orchestrator_tasks_leased_total") == 2
        assert delta("orchestrator_task_leased_to_done_seconds_count", outcome="succeeded") == 1

        records = [json.loads(line) for line in observed.proc.log().splitlines() if line.strip()]
        expired = [r for r in records if r["message"] == "lease expired" and r.get("workflow_id") == workflow_id]
        assert len(expired) == 1, expired
        line = expired[0]
        assert line["executor_id"] == "obs-silent" and line["trace_id"] == trace_id and line["task_id"] == first[0].lease.task_id
        assert line["task_state"] == "ready" and line["attempt"] == "1" and line["cause"] == "lease_expired"
    finally:
        channel.close()


# -- readiness against a database that goes away ---------------------------------------------------


class ThrowawayPostgres:
    """A PostgreSQL 15 cluster of this test's own (tools/lib/pg.sh in Python), safe to stop."""

    BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="obs-pg-", dir="/tmp"))
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.run(self.BIN / "initdb", "-D", self.dir / "data", "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                 "--locale=C", "--no-sync")

    def run(self, *command):
        args = [str(c) for c in command]
        if os.geteuid() == 0:
            args = ["runuser", "-u", "postgres", "--", *args]
        result = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr

    def start(self):
        self.run(self.BIN / "pg_ctl", "-D", self.dir / "data", "-l", self.dir / "server.log", "-w", "-t", "60", "-o",
                 f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self):
        self.run(self.BIN / "pg_ctl", "-D", self.dir / "data", "-m", "fast", "-w", "-t", "30", "stop")

    def destroy(self):
        if (self.dir / "data" / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_for_status(address: str, path: str, status: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = http(address, path)
        if last[0] == status:
            return last[1]
        time.sleep(0.2)
    raise AssertionError(f"{path} did not answer {status} within {timeout}s; last: {last}")


@contextlib.contextmanager
def server_on_its_own_cluster(tmp_path):
    """orchestratord on a throwaway PostgreSQL of its own, ready; yields (postgres, admin address)."""
    os.chmod(tmp_path, 0o777)
    postgres = ThrowawayPostgres()
    server = None
    try:
        postgres.start()
        server = Orchestratord(postgres.url, tmp_path).start()
        admin = server.admin_address()
        wait_for_status(admin, "/readyz", 200, 10)
        yield postgres, admin, server
    finally:
        if server:
            server.stop()
        postgres.destroy()


def test_readyz_is_503_while_the_database_is_down(tmp_path):
    with server_on_its_own_cluster(tmp_path) as (postgres, admin, _):
        postgres.stop()
        body = wait_for_status(admin, "/readyz", 503, 20)
        assert body.startswith("not ready\n") and "database: " in body, body
        assert "grpc: " not in body, body  # the listeners are still fine
        assert http(admin, "/healthz") == (200, "ok\n")  # alive, just not ready
        status, _ = http(admin, "/metrics")  # scrapes keep working on stale database gauges
        assert status == 200

        postgres.start()
        wait_for_status(admin, "/readyz", 200, 30)


def test_readyz_is_503_when_a_newer_server_migrated_the_database(tmp_path):
    """OBSERVABILITY.md: the database check passes when the schema is the newest this binary ships.
    A schema migrated further by a newer server (a rolling upgrade) read as ready, so a load
    balancer kept sending traffic to the outdated server (found by black-box testing)."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    def wait_for_health(server, wanted: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(server.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while True:
                status = health_pb2.HealthCheckResponse.ServingStatus.Name(
                    health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status)
                if status == wanted:
                    return
                assert time.monotonic() < deadline, status
                time.sleep(0.2)

    with server_on_its_own_cluster(tmp_path) as (postgres, admin, server):
        psql(postgres.url, "INSERT INTO schema_migrations (version, name, checksum) VALUES (999, '0999_future.sql', 'x')")
        body = wait_for_status(admin, "/readyz", 503, 10)
        assert "database: schema newer than this server (database at migration 999" in body, body
        # gRPC health agrees: it said SERVING throughout (found by black-box testing).
        wait_for_health(server, "NOT_SERVING", 10)
        server.proc.wait_for_log("a newer server migrated the database; gRPC health NOT_SERVING", 5)
        psql(postgres.url, "DELETE FROM schema_migrations WHERE version = 999")
        wait_for_status(admin, "/readyz", 200, 10)
        wait_for_health(server, "SERVING", 10)
