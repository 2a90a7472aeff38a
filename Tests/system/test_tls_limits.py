"""orchestratord's TLS and limit settings end to end: DAG and string limits, NUL characters (INVALID_ARGUMENT, nothing
stored), per-caller rate limits (RESOURCE_EXHAUSTED with a retry hint, health checks exempt), mutual
TLS with orchctl, and certificate reload on SIGHUP."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
import uuid

import grpc
import pytest

from conftest import Api
from procs import ROOT, Process, binary, free_port, psql

sys.path.insert(0, str(ROOT / "Tests" / "interop"))
import pki  # noqa: E402  (shared with the interop suite)


def start(database: str, folder, *extra) -> tuple[Process, str]:
    address = f"127.0.0.1:{free_port()}"
    args = [binary("orchestratord"), "--grpc-address", address, "--database-url", database,
            "--shutdown-grace", "2", *extra]
    proc = Process(args, folder / f"orchestratord.{uuid.uuid4().hex[:6]}.log")
    proc.wait_for_log("orchestratord ready", 60)
    return proc, address


def stored(database: str, request_ids: list[str]) -> int:
    quoted = ",".join(f"'{r}'" for r in request_ids)
    return int(psql(database, f"SELECT count(*) FROM workflows WHERE request_id IN ({quoted})")[0][0])


def rejected(api: Api, tasks, request_id: str) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        api.submit(tasks, request_id=request_id, timeout=30)
    return error.value


def test_dag_over_limits_is_invalid_argument_and_nothing_is_stored(database, workdir, pb, processes, capability):
    proc, address = start(database, workdir, "--max-dag-tasks", "5", "--max-dag-depth", "3",
                          "--max-string-length", "256")
    processes.append(proc)
    with grpc.insecure_channel(address) as channel:
        api = Api(channel, pb, None)
        run = uuid.uuid4().hex[:8]
        ids = [f"{run}-tasks", f"{run}-depth", f"{run}-string", f"{run}-label", f"{run}-nul-key", f"{run}-nul-label"]

        too_many = [api.task(f"t{i}", capability) for i in range(6)]
        error = rejected(api, too_many, ids[0])
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "the graph has 6 tasks; the limit is 5" in error.details()

        chain = [api.task("a", capability), api.task("b", capability, ["a"]), api.task("c", capability, ["b"]),
                 api.task("d", capability, ["c"])]
        error = rejected(api, chain, ids[1])
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "the longest dependency chain has 4 tasks (ending at `d`); the depth limit is 3" in error.details()

        long_description = [api.task("a", capability, description="x" * 257)]
        error = rejected(api, long_description, ids[2])
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == ("field orchestrator.v1.TaskSpec.description is 257 bytes long; "
                                   "the limit (max-string-length) is 256 bytes")

        long_label = [api.task("a", capability, labels={"team": "y" * 300})]
        error = rejected(api, long_label, ids[3])
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "orchestrator.v1.TaskSpec.LabelsEntry.value is 300 bytes" in error.details()

        # U+0000 is valid in a protobuf string but cannot be stored as sent (it used to be
        # truncated silently: key "a\0b" became "a").
        error = rejected(api, [api.task("a\x00b", capability)], ids[4])
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == ("field orchestrator.v1.TaskSpec.key contains the character U+0000 (NUL), "
                                   "which strings here cannot hold; remove it")
        error = rejected(api, [api.task("a", capability, labels={"team": "x\x00"})], ids[5])
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "LabelsEntry.value contains the character U+0000" in error.details()

        assert stored(database, ids) == 0
        # Within the limits the same server accepts the graph.
        within = chain[:3]
        response = api.submit(within, request_id=f"{run}-ok", timeout=30)
        assert response.created
        assert stored(database, [f"{run}-ok"]) == 1


def test_rate_limit_gives_resource_exhausted_with_pushback_and_recovers(database, workdir, pb, processes):
    proc, address = start(database, workdir, "--rate-limit-rps", "2", "--rate-limit-burst", "2")
    processes.append(proc)
    with grpc.insecure_channel(address) as channel:
        workflows = pb.workflows_grpc.WorkflowsStub(channel)
        request = pb.workflows.ListWorkflowsRequest(page_size=1)
        workflows.ListWorkflows(request, timeout=10)
        workflows.ListWorkflows(request, timeout=10)
        with pytest.raises(grpc.RpcError) as error:
            workflows.ListWorkflows(request, timeout=10)
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        pushback = int(dict(error.value.trailing_metadata())["grpc-retry-pushback-ms"])
        assert 1 <= pushback <= 500
        assert error.value.details() == f"rate limit exceeded; retry after {pushback} ms"

        # Health checks are not rate limited (load balancers poll them).
        health = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda b: b,
                                     response_deserializer=lambda b: b)
        for _ in range(5):
            assert health(b"", timeout=10) == b"\x08\x01"  # SERVING

        time.sleep(pushback / 1000 + 0.05)
        workflows.ListWorkflows(request, timeout=10)


def orchctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary("orchctl")), *args], capture_output=True, text=True, timeout=60)


def test_mutual_tls_with_orchctl_and_certificate_reload_on_sighup(database, workdir, processes):
    ca = pki.make_ca(workdir, "ca")
    server_a = pki.issue(workdir, "server-a", ca, 0x0A, "/CN=localhost", "DNS:localhost,IP:127.0.0.1")
    server_b = pki.issue(workdir, "server-b", ca, 0x0B, "/CN=localhost", "DNS:localhost,IP:127.0.0.1")
    client = pki.issue(workdir, "executor", ca, 0x0C, "/CN=executor-1", "DNS:executor-1", client=True)
    live_cert, live_key = workdir / "live.pem", workdir / "live.key"
    shutil.copy(server_a[0], live_cert)
    shutil.copy(server_a[1], live_key)
    tls_port = free_port()
    proc, _ = start(database, workdir, "--grpc-tls-address", f"127.0.0.1:{tls_port}", "--tls-cert-file", str(live_cert),
                    "--tls-key-file", str(live_key), "--tls-client-ca-file", str(ca[0]), "--tls-client-auth", "require")
    processes.append(proc)
    target = ["--address", f"127.0.0.1:{tls_port}", "--tls-ca-file", str(ca[0])]

    with_certificate = orchctl("list", *target, "--tls-cert-file", str(client[0]), "--tls-key-file", str(client[1]))
    assert with_certificate.returncode == 0, with_certificate.stderr
    without = orchctl("list", *target, "--timeout", "10")
    assert without.returncode != 0
    assert "UNAVAILABLE" in without.stderr, without.stderr

    assert pki.server_certificate_serial(tls_port, ca[0]) == 0x0A
    shutil.copy(server_b[0], live_cert)
    shutil.copy(server_b[1], live_key)
    proc.process.send_signal(signal.SIGHUP)
    proc.wait_for_log("TLS certificates reloaded", 10)
    assert pki.server_certificate_serial(tls_port, ca[0]) == 0x0B
    again = orchctl("list", *target, "--tls-cert-file", str(client[0]), "--tls-key-file", str(client[1]))
    assert again.returncode == 0, again.stderr

    live_cert.write_text("broken\n")
    proc.process.send_signal(signal.SIGHUP)
    proc.wait_for_log("TLS reload failed", 10)
    assert pki.server_certificate_serial(tls_port, ca[0]) == 0x0B
    assert proc.alive()


def test_orchctl_names_why_a_tls_handshake_failed(database, workdir, processes):
    """Found by black-box testing: an unknown server CA, the wrong CA file and TLS sent to the
    cleartext port all printed "UNAVAILABLE: connection failed: Success" (the connection's OpenSSL
    errors are kept on its bufferevent, and errno had nothing to say)."""
    ca = pki.make_ca(workdir, "names-ca")
    other_ca = pki.make_ca(workdir, "names-other-ca")
    server = pki.issue(workdir, "names-server", ca, 0x21, "/CN=localhost", "DNS:localhost,IP:127.0.0.1")
    tls_port = free_port()
    proc, cleartext = start(database, workdir, "--grpc-tls-address", f"127.0.0.1:{tls_port}", "--tls-cert-file", str(server[0]),
                            "--tls-key-file", str(server[1]))
    processes.append(proc)
    for args, reason in [
        (["--address", f"127.0.0.1:{tls_port}", "--tls-ca-file", str(other_ca[0])],
         "certificate verify failed: unable to get local issuer certificate"),
        (["--address", cleartext, "--tls-ca-file", str(ca[0])], "wrong version number"),
    ]:
        result = orchctl("list", *args, "--timeout", "10")
        assert result.returncode != 0, args
        assert "UNAVAILABLE: TLS handshake with" in result.stderr and reason in result.stderr, (args, result.stderr)
        assert "Success" not in result.stderr, result.stderr
    assert orchctl("list", "--address", f"127.0.0.1:{tls_port}", "--tls-ca-file", str(ca[0])).returncode == 0


def expired_certificate(folder) -> tuple:
    """A self-signed certificate for 127.0.0.1 valid only in January 2020, and its key."""
    import datetime
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(7).not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc))
                   .not_valid_after(datetime.datetime(2020, 2, 1, tzinfo=datetime.timezone.utc))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "expired.pem", folder / "expired.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_an_expired_certificate_is_served_but_logged_at_start_and_reload(database, workdir, processes):
    """Found by black-box testing: an expired certificate started silently, and a SIGHUP that
    loaded one said only "TLS certificates reloaded"; every verifying client then failed."""
    cert, key = expired_certificate(workdir)
    proc, _ = start(database, workdir, "--grpc-tls-address", f"127.0.0.1:{free_port()}", "--tls-cert-file", str(cert),
                    "--tls-key-file", str(key))
    processes.append(proc)
    assert proc.log().count("TLS certificate not valid now") == 1, proc.tail(20)
    assert "the certificate expired on Feb  1 00:00:00 2020 GMT" in proc.log(), proc.tail(20)
    proc.process.send_signal(signal.SIGHUP)
    proc.wait_for_log("TLS certificates reloaded", 10)
    proc.wait_for_log("TLS certificate not valid now", 10, count=2)
    assert proc.alive()


def test_rate_limit_is_per_authenticated_caller(database, workdir, pb, processes):
    """With JWT authentication the bucket belongs to the caller (subject and tenant), not the IP:
    alice running out leaves bob, on the same address, untouched."""
    secret = workdir / "hs.secret"
    secret.write_bytes(uuid.uuid4().hex.encode() * 2)
    proc, address = start(database, workdir, "--auth", "jwt", "--jwt-key-file", str(secret),
                          "--rate-limit-rps", "0.5", "--rate-limit-burst", "2")
    processes.append(proc)

    def token(subject: str, tenant: str = "acme", *extra: str) -> str:
        role = ("--role", "viewer") if not extra else ()
        minted = orchctl("token", "--key-file", str(secret), *role, "--tenant", tenant, "--subject", subject, *extra)
        assert minted.returncode == 0, minted.stderr
        return minted.stdout.strip()

    alice, bob = token("alice"), token("bob")
    with grpc.insecure_channel(address) as channel:
        workflows = pb.workflows_grpc.WorkflowsStub(channel)
        request = pb.workflows.ListWorkflowsRequest(page_size=1)

        def call(bearer: str):
            return workflows.ListWorkflows(request, metadata=[("authorization", f"Bearer {bearer}")], timeout=10)

        call(alice)
        call(alice)
        with pytest.raises(grpc.RpcError) as error:
            call(alice)
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert 1 <= int(dict(error.value.trailing_metadata())["grpc-retry-pushback-ms"]) <= 2000
        call(bob)
        call(bob)
        # Identities are told apart as executor ids spell them: "tenant/subject" made tenant "a/b"
        # with subject "c" and tenant "a" with subject "b/c" one bucket, and a token serving
        # several tenants shared its first tenant's with that tenant's tokens of the same subject
        # (found by black-box testing).
        slash_tenant, slash_subject = token("c", "a/b"), token("b/c", "a")
        call(slash_tenant)
        call(slash_tenant)
        call(slash_subject)
        call(slash_subject)
        executors = pb.executors_grpc.ExecutorsStub(channel)
        shared = token("alice", "acme", "--role", "executor", "--tenants", "beta")
        for _ in range(2):
            executors.Heartbeat(pb.executors.HeartbeatRequest(executor_id="w1"),
                                metadata=[("authorization", f"Bearer {shared}")], timeout=10)
        # Authentication runs first: a caller without a token is UNAUTHENTICATED, not rate limited.
        with pytest.raises(grpc.RpcError) as error:
            workflows.ListWorkflows(request, timeout=10)
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_metadata_size_and_connections_per_client_settings(database, workdir, pb, processes):
    proc, address = start(database, workdir, "--max-metadata-size", "2048", "--max-connections-per-client", "2")
    processes.append(proc)
    # grpcio shares one connection between channels to the same target unless told not to.
    own_connection = [("grpc.use_local_subchannel_pool", 1)]
    first = grpc.insecure_channel(address, options=own_connection)
    workflows = pb.workflows_grpc.WorkflowsStub(first)
    request = pb.workflows.ListWorkflowsRequest(page_size=1)
    workflows.ListWorkflows(request, metadata=[("x-note", "n" * 1000)], timeout=10)
    with pytest.raises(grpc.RpcError) as error:
        workflows.ListWorkflows(request, metadata=[("x-note", "n" * 3000)], timeout=10)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    # Two connections are admitted; a third from the same address is closed at accept.
    second = grpc.insecure_channel(address, options=own_connection)
    pb.workflows_grpc.WorkflowsStub(second).ListWorkflows(request, timeout=10)
    third = grpc.insecure_channel(address, options=own_connection)
    with pytest.raises(grpc.RpcError) as error:
        pb.workflows_grpc.WorkflowsStub(third).ListWorkflows(request, timeout=5)
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    proc.wait_for_log("too many connections from one client", 5)
    third.close()
    second.close()
    first.close()


def test_sighup_without_tls_is_logged_not_fatal(database, workdir, pb, processes):
    proc, address = start(database, workdir)
    processes.append(proc)
    proc.process.send_signal(signal.SIGHUP)
    proc.wait_for_log("SIGHUP received; no TLS listener, nothing to reload", 10)
    assert proc.alive()
    with grpc.insecure_channel(address) as channel:
        pb.workflows_grpc.WorkflowsStub(channel).ListWorkflows(pb.workflows.ListWorkflowsRequest(page_size=1), timeout=10)


def test_user_signals_are_logged_not_fatal(database, workdir, pb, processes):
    """SIGUSR1 and SIGUSR2 (log rotation and other tooling send them to daemons) killed the server
    at once, without draining (found by black-box testing). They now leave a line."""
    proc, address = start(database, workdir)
    processes.append(proc)
    for sent, count in ((signal.SIGUSR1, 1), (signal.SIGUSR2, 2)):
        proc.process.send_signal(sent)
        proc.wait_for_log("signal received; it does nothing here", 10, count=count)
    assert proc.alive()
    assert '"signal":"SIGUSR1"' in proc.log() and '"signal":"SIGUSR2"' in proc.log()
    with grpc.insecure_channel(address) as channel:
        pb.workflows_grpc.WorkflowsStub(channel).ListWorkflows(pb.workflows.ListWorkflowsRequest(page_size=1), timeout=10)
