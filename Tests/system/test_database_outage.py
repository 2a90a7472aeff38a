"""The database goes away for longer than the lease TTL while an executor works, then comes back.

Found by black-box testing: gRPC health said SERVING throughout the outage (only /readyz said
otherwise), and 0.7 s after the database came back the reaper expired the live executor's lease —
no keeper could extend it meanwhile — so the task ran a second time and the executor's result was
refused as stale. The outage here is a blackholing proxy between orchestratord and PostgreSQL
(tools/chaos.d/proxy.py), so the shared test cluster keeps running."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import assert_completed_once, task_rows
from procs import Orchestratord, python_executor

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "chaos.d"))
from proxy import ProxyHub  # noqa: E402  (the chaos suite's fault-injecting proxy)


def through_proxy(database_url: str, port: int) -> str:
    parts = urlsplit(database_url)
    host = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, f"{host}127.0.0.1:{port}", parts.path, parts.query, parts.fragment))


def wait_for_health(health, service: str, wanted, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
        if status == wanted:
            return
        time.sleep(0.2)
    raise AssertionError(f"health of {service!r} stayed {status}, wanted {wanted}")


def test_an_outage_longer_than_the_lease_ttl_runs_nothing_twice_and_shows_in_grpc_health(
        database, pb, capability, workdir, processes, tmp_path_factory):
    hub = ProxyHub()
    proxy = hub.add("postgres", urlsplit(database).port, postgres=True)
    # Lease TTL 3 s, heartbeats every second (the system tests' server).
    server = Orchestratord(through_proxy(database, proxy.port), tmp_path_factory.mktemp("outage")).start()
    try:
        channel = grpc.insecure_channel(server.address)
        health = health_pb2_grpc.HealthStub(channel)
        workflows = pb.workflows_grpc.WorkflowsStub(channel)
        wait_for_health(health, "", health_pb2.HealthCheckResponse.SERVING)

        # One task that takes 12 s; the database is away from second ~2 to ~9 (over twice the TTL).
        executor = python_executor(server.address, workdir, "outage-" + capability, [capability], "--sleep-ms", "12000")
        processes.append(executor)
        task = pb.dag.TaskSpec(key="long", required_capabilities=[capability])
        request = pb.workflows.SubmitQueryRequest(query=pb.query.Query(graph=pb.dag.Dag(tasks=[task])))
        workflow_id = workflows.SubmitQuery(request, timeout=30).workflow.workflow_id
        deadline = time.monotonic() + 30
        while task_rows(database, workflow_id)["long"]["state"] != "leased":
            assert time.monotonic() < deadline, task_rows(database, workflow_id)
            time.sleep(0.1)
        time.sleep(1)

        proxy.set_mode("blackhole")
        wait_for_health(health, "", health_pb2.HealthCheckResponse.NOT_SERVING)
        wait_for_health(health, "orchestrator.v1.Workflows", health_pb2.HealthCheckResponse.NOT_SERVING)
        time.sleep(5)
        proxy.set_mode("pass")
        wait_for_health(health, "", health_pb2.HealthCheckResponse.SERVING)
        wait_for_health(health, "orchestrator.v1.Executors", health_pb2.HealthCheckResponse.SERVING)

        deadline = time.monotonic() + 60
        while psql_state(database, workflow_id) != "succeeded":
            assert time.monotonic() < deadline, (task_rows(database, workflow_id), server.proc.tail(20))
            time.sleep(0.2)
        # Ran once: the lease that ran out in the database during the outage was spared, and the
        # executor's result was taken as the first attempt's.
        assert_completed_once(database, workflow_id, 1)
        assert task_rows(database, workflow_id)["long"]["attempts"] == 1, server.proc.tail(30)
        channel.close()
    finally:
        server.stop()
        hub.close()


def psql_state(database: str, workflow_id: str) -> str:
    from procs import psql, workflow_uuid
    return psql(database, f"SELECT state FROM workflows WHERE id = '{workflow_uuid(workflow_id)}'")[0][0]


def test_lease_streams_and_their_leases_outlast_a_database_that_refuses_connections(
        database, pb, capability, workdir, processes, tmp_path_factory):
    """PostgreSQL stopped for 20 s (connections refused, not blackholed): a lease stream's claim
    failed once the pool's connection retries gave up (15 s), which ended the stream and gave its
    leases back, and the reaper dated the outage from its own failing sweep, 14 s late, and reaped
    the leases that ran out in between — the work in flight ran twice either way (found by
    black-box testing). The stream now stays, and the task runs once."""
    hub = ProxyHub()
    proxy = hub.add("postgres", urlsplit(database).port, postgres=True)
    server = Orchestratord(through_proxy(database, proxy.port), tmp_path_factory.mktemp("refused")).start()
    try:
        channel = grpc.insecure_channel(server.address)
        health = health_pb2_grpc.HealthStub(channel)
        workflows = pb.workflows_grpc.WorkflowsStub(channel)
        wait_for_health(health, "", health_pb2.HealthCheckResponse.SERVING)
        executor = python_executor(server.address, workdir, "refused-" + capability, [capability], "--sleep-ms", "26000")
        processes.append(executor)
        task = pb.dag.TaskSpec(key="long", required_capabilities=[capability])
        request = pb.workflows.SubmitQueryRequest(query=pb.query.Query(graph=pb.dag.Dag(tasks=[task])))
        workflow_id = workflows.SubmitQuery(request, timeout=30).workflow.workflow_id
        deadline = time.monotonic() + 30
        while task_rows(database, workflow_id)["long"]["state"] != "leased":
            assert time.monotonic() < deadline, task_rows(database, workflow_id)
            time.sleep(0.1)
        time.sleep(1)

        proxy.set_mode("refuse")
        time.sleep(20)
        proxy.set_mode("pass")
        wait_for_health(health, "", health_pb2.HealthCheckResponse.SERVING)

        deadline = time.monotonic() + 60
        while psql_state(database, workflow_id) != "succeeded":
            assert time.monotonic() < deadline, (task_rows(database, workflow_id), server.proc.tail(20))
            time.sleep(0.2)
        assert_completed_once(database, workflow_id, 1)
        assert task_rows(database, workflow_id)["long"]["attempts"] == 1, server.proc.tail(30)
        assert "executor disconnected" not in server.proc.tail(200), server.proc.tail(40)
        channel.close()
    finally:
        server.stop()
        hub.close()
