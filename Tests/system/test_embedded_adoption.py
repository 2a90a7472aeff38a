"""Two orchestratord processes on one embedded data folder: the second adopts the first's
PostgreSQL and must leave it running when it stops.

Found by black-box testing: the second server logged "adopting the PostgreSQL server already
running", then "embedded PostgreSQL stopped" on SIGTERM, and the first server's database was gone
(`/readyz` 503 from then on, nothing restarted it)."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from procs import Process, binary, free_port


def readyz(admin: str) -> int:
    try:
        with urllib.request.urlopen(f"http://{admin}/readyz", timeout=10) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_server_that_adopted_the_embedded_database_leaves_it_running():
    folder = Path(tempfile.mkdtemp(prefix="orchestrator-adopt-", dir="/tmp"))
    os.chmod(folder, 0o777)
    data, pg_port = folder / "pgdata", free_port()
    servers = []
    try:
        for name in ("first", "second"):
            grpc_port, admin_port = free_port(), free_port()
            proc = Process([binary("orchestratord"), "--grpc-address", f"127.0.0.1:{grpc_port}",
                            "--admin-address", f"127.0.0.1:{admin_port}", "--data-dir", data,
                            "--embedded-port", pg_port], folder / f"{name}.log")
            servers.append((proc, f"127.0.0.1:{grpc_port}", f"127.0.0.1:{admin_port}"))
            proc.wait_for_log("orchestratord ready", 120)
        (first, first_address, first_admin), (second, _, _) = servers
        assert "adopting the PostgreSQL server already running" in second.log()
        second.stop(grace=30)
        assert "leaving the embedded PostgreSQL running" in second.log(), second.tail()
        assert "embedded PostgreSQL stopped" not in second.log()
        # The first server still has its database.
        assert readyz(first_admin) == 200
        with grpc.insecure_channel(first_address) as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status
            assert status == health_pb2.HealthCheckResponse.SERVING
        first.stop(grace=30)
        assert "embedded PostgreSQL stopped" in first.log(), first.tail()
    finally:
        for proc, _, _ in servers:
            proc.stop(grace=30)
        shutil.rmtree(folder, ignore_errors=True)
