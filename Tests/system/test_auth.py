"""Authentication and tenant isolation against a real orchestratord started with --auth jwt:
tokens minted by `orchctl token` and by PyJWT, UNAUTHENTICATED vs PERMISSION_DENIED, tenants that
never see each other's workflows, and executors that only ever lease tasks of their own tenants."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import time
import uuid

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from procs import GO_EXECUTOR_DIR, Orchestratord, Process, binary, free_port, orchctl_executor, psql, python_executor

AUTH_ENV = ("ORCHESTRATOR_AUTH", "ORCHESTRATOR_JWT_KEY_FILE")


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "jwt-secret"
    path.write_text(secrets.token_hex(32) + "\n")  # the trailing newline is not part of the secret
    return path


@pytest.fixture(scope="module")
def auth_server(database, secret_file, tmp_path_factory):
    """orchestratord with auth configured through the environment (ORCHESTRATOR_AUTH, ...)."""
    folder = tmp_path_factory.mktemp("auth-server")
    saved = {name: os.environ.get(name) for name in AUTH_ENV}
    os.environ.update(ORCHESTRATOR_AUTH="jwt", ORCHESTRATOR_JWT_KEY_FILE=str(secret_file))
    try:
        instance = Orchestratord(database, folder).start()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    assert "authentication: JWT bearer tokens" in instance.proc.log()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def channel(auth_server):
    ch = grpc.insecure_channel(auth_server.address)
    grpc.channel_ready_future(ch).result(timeout=30)
    yield ch
    ch.close()


@pytest.fixture(scope="module")
def stubs(channel, pb):
    return pb.workflows_grpc.WorkflowsStub(channel), pb.executors_grpc.ExecutorsStub(channel)


def orchctl(*args, env=None, check=True):
    result = subprocess.run([str(binary("orchctl")), *map(str, args)], capture_output=True, text=True, timeout=60,
                            env={**os.environ, **(env or {})})
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


def mint(secret_file, role: str, tenant: str, *extra) -> str:
    """A token from `orchctl token`, which must print the token and nothing else."""
    out = orchctl("token", "--key-file", secret_file, "--role", role, "--tenant", tenant, "--ttl", "10m", *extra).stdout
    token = out.strip()
    assert out == token + "\n" and token.count(".") == 2, out
    return token


def pyjwt_token(secret_file, **claims) -> str:
    """A token minted by PyJWT from the same secret file (trailing newline dropped, as the server does)."""
    now = int(time.time())
    body = {"sub": "py", "iat": now, "exp": now + 600, **claims}
    return jwt.encode(body, secret_file.read_bytes().rstrip(b"\r\n"), algorithm="HS256")


def bearer(token: str):
    return [("authorization", f"Bearer {token}")]


def code_of(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


def submit(pb, workflows, token, capability, key="only", request_id=""):
    query = pb.query.Query(graph=pb.dag.Dag(tasks=[pb.dag.TaskSpec(key=key, required_capabilities=[capability])]))
    response = workflows.SubmitQuery(pb.workflows.SubmitQueryRequest(query=query, request_id=request_id),
                                     metadata=bearer(token), timeout=30)
    return response.workflow.workflow_id


# -- tests ---------------------------------------------------------------------------------------


def test_orchctl_token_is_accepted(auth_server, secret_file, pb, stubs, capability):
    workflows, _ = stubs
    token = mint(secret_file, "submitter", "acme", "--subject", "alice")
    workflow_id = submit(pb, workflows, token, capability)
    got = workflows.GetWorkflow(pb.workflows.GetWorkflowRequest(workflow_id=workflow_id), metadata=bearer(token), timeout=30)
    assert got.workflow.tenant == "acme"
    # Every orchctl command sends ORCHESTRATOR_TOKEN (or --token) as a bearer token.
    listed = orchctl("list", "--address", auth_server.address, env={"ORCHESTRATOR_TOKEN": token}).stdout
    assert workflow_id in listed
    shown = orchctl("get", workflow_id, "--address", auth_server.address, "--token", token).stdout
    assert workflow_id in shown
    refused = orchctl("list", "--address", auth_server.address, env={"ORCHESTRATOR_TOKEN": ""}, check=False)
    assert refused.returncode != 0 and "UNAUTHENTICATED" in refused.stderr
    # A PyJWT token from the same secret works too.
    py = pyjwt_token(secret_file, role="viewer", tenant="acme")
    workflows.GetWorkflow(pb.workflows.GetWorkflowRequest(workflow_id=workflow_id), metadata=bearer(py), timeout=30)


def test_missing_or_invalid_credentials_are_unauthenticated(secret_file, pb, stubs, channel):
    workflows, executors = stubs
    request = pb.workflows.ListWorkflowsRequest()
    code, details = code_of(lambda: workflows.ListWorkflows(request, timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "missing bearer token" in details
    code, _ = code_of(lambda: executors.PollTasks(pb.executors.PollTasksRequest(executor_id="x"), timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    cases = {
        "Basic dXNlcjpwYXNz": "must be `Bearer <JWT>`",
        "Bearer not-a-jwt": "invalid token",
        "Bearer " + pyjwt_token(secret_file, role="admin", tenant="*", exp=int(time.time()) - 3600): "expired",
        "Bearer " + jwt.encode({"sub": "x", "role": "admin", "tenant": "*", "exp": int(time.time()) + 60},
                               "a-different-secret-of-32-bytes-or-more!", algorithm="HS256"): "signature does not verify",
        "Bearer " + unsigned_token({"sub": "x", "role": "admin", "tenant": "*", "exp": int(time.time()) + 60}): "unsigned",
        "Bearer " + pyjwt_token(secret_file, role="root", tenant="acme"): "role \"root\"",
    }
    for header, expected in cases.items():
        code, details = code_of(lambda: workflows.ListWorkflows(request, metadata=[("authorization", header)], timeout=10))
        assert code == grpc.StatusCode.UNAUTHENTICATED, (header, details)
        assert expected in details, (header, details)
    # Health stays open for probes.
    health = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda _: b"",
                                 response_deserializer=lambda raw: raw)
    assert health(None, timeout=10) == b"\x08\x01"  # status: SERVING


def unsigned_token(claims: dict) -> str:
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return part({"alg": "none", "typ": "JWT"}) + "." + part(claims) + "."


def test_wrong_role_is_permission_denied(secret_file, pb, stubs, capability):
    workflows, executors = stubs
    viewer = mint(secret_file, "viewer", "acme")
    executor = mint(secret_file, "executor", "acme")
    submitter = mint(secret_file, "submitter", "acme")
    query = pb.query.Query(graph=pb.dag.Dag(tasks=[pb.dag.TaskSpec(key="a", required_capabilities=[capability])]))
    code, details = code_of(lambda: workflows.SubmitQuery(pb.workflows.SubmitQueryRequest(query=query),
                                                          metadata=bearer(viewer), timeout=10))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert details == "role viewer may not call /orchestrator.v1.Workflows/SubmitQuery (allowed: admin, submitter)"
    code, _ = code_of(lambda: workflows.ListWorkflows(pb.workflows.ListWorkflowsRequest(), metadata=bearer(executor), timeout=10))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _ = code_of(lambda: executors.PollTasks(pb.executors.PollTasksRequest(executor_id="x", capabilities=[capability]),
                                                  metadata=bearer(submitter), timeout=10))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    # The viewer may read.
    workflows.ListWorkflows(pb.workflows.ListWorkflowsRequest(), metadata=bearer(viewer), timeout=10)


def test_tenants_never_see_each_other(secret_file, pb, stubs, capability):
    workflows, _ = stubs
    alice = mint(secret_file, "submitter", "tenant-a", "--subject", "alice")
    bob = mint(secret_file, "submitter", "tenant-b", "--subject", "bob")
    bob_admin = mint(secret_file, "admin", "tenant-b", "--subject", "bob-admin")
    root = mint(secret_file, "admin", "*", "--subject", "root")
    request_id = "same-" + uuid.uuid4().hex[:8]
    workflow_id = submit(pb, workflows, alice, capability, request_id=request_id)
    not_found = f"workflow {workflow_id} not found"

    for token in (bob, bob_admin):
        calls = {
            "get": lambda: workflows.GetWorkflow(pb.workflows.GetWorkflowRequest(workflow_id=workflow_id), metadata=bearer(token), timeout=10),
            "dag": lambda: workflows.GetDag(pb.workflows.GetDagRequest(workflow_id=workflow_id), metadata=bearer(token), timeout=10),
            "cancel": lambda: workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id, reason="x"),
                                                       metadata=bearer(token), timeout=10),
            "update": lambda: workflows.UpdateDag(pb.workflows.UpdateDagRequest(
                workflow_id=workflow_id, expected_version=1, reason="x",
                add_tasks=[pb.dag.TaskSpec(key="extra", required_capabilities=[capability])]), metadata=bearer(token), timeout=10),
            "watch": lambda: list(workflows.WatchWorkflow(pb.workflows.WatchWorkflowRequest(workflow_id=workflow_id),
                                                          metadata=bearer(token), timeout=10)),
            "events": lambda: workflows.ListEvents(pb.workflows.ListEventsRequest(workflow_id=workflow_id), metadata=bearer(token), timeout=10),
        }
        for name, call in calls.items():
            code, details = code_of(call)
            assert (code, details) == (grpc.StatusCode.NOT_FOUND, not_found), name
        listed = workflows.ListWorkflows(pb.workflows.ListWorkflowsRequest(page_size=1000), metadata=bearer(token), timeout=10)
        assert workflow_id not in {w.workflow_id for w in listed.workflows}
        assert {w.tenant for w in listed.workflows} <= {"tenant-b"}
        events = workflows.ListEvents(pb.workflows.ListEventsRequest(page_size=1000), metadata=bearer(token), timeout=10)
        assert workflow_id not in {e.workflow_id for e in events.events}
        # A watch of every workflow the caller may see carries nothing of tenant-a.
        stream = workflows.WatchWorkflow(pb.workflows.WatchWorkflowRequest(), metadata=bearer(token), timeout=1.5)
        seen = []
        with pytest.raises(grpc.RpcError) as ended:
            for event in stream:
                seen.append(event.workflow_id)
        assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert workflow_id not in seen

    # Bob's own resubmission with the same request id makes his own workflow, not Alice's.
    assert submit(pb, workflows, bob, capability, request_id=request_id) != workflow_id
    # Alice still sees it; the cross-tenant admin sees and may cancel it.
    workflows.GetWorkflow(pb.workflows.GetWorkflowRequest(workflow_id=workflow_id), metadata=bearer(alice), timeout=10)
    listed = workflows.ListWorkflows(pb.workflows.ListWorkflowsRequest(page_size=1000), metadata=bearer(root), timeout=10)
    assert workflow_id in {w.workflow_id for w in listed.workflows}
    cancelled = workflows.CancelWorkflow(pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id, reason="admin"),
                                         metadata=bearer(root), timeout=10)
    assert cancelled.workflow.tenant == "tenant-a"


def test_executors_lease_only_their_tenants(auth_server, database, secret_file, pb, stubs, capability, workdir, processes):
    workflows, executors = stubs
    a_flow = submit(pb, workflows, mint(secret_file, "submitter", "ten-a"), capability, key="a-task")
    b_flow = submit(pb, workflows, mint(secret_file, "submitter", "ten-b"), capability, key="b-task")
    executor_a = mint(secret_file, "executor", "ten-a", "--subject", "exec-a")

    def poll(token, executor_id, wait_ms=1500):
        request = pb.executors.PollTasksRequest(executor_id=executor_id, capabilities=[capability], max_tasks=10, wait_ms=wait_ms)
        return list(executors.PollTasks(request, metadata=bearer(token), timeout=30).assignments)

    got = poll(executor_a, "poller")
    assert [a.workflow_id for a in got] == [a_flow]
    # Nothing else for tenant a, even though tenant b's task is ready and matches.
    assert poll(executor_a, "poller") == []
    # The lease is recorded under the token's tenant and subject: ten-a/exec-a/poller.
    owners = psql(database, f"SELECT executor_id FROM workflow_events WHERE workflow_id = '{a_flow}' AND type = 'task_leased'")
    assert owners == [["ten-a/exec-a/poller"]]
    # Another identity using the same executor id cannot report on that lease.
    lease = got[0].lease
    spoofer = mint(secret_file, "executor", "ten-b", "--subject", "exec-b")
    report = pb.executors.ReportStatusRequest(executor_id="poller", completion=pb.executors.TaskCompletion(lease=lease, result=b"{}"))
    code, _ = code_of(lambda: executors.ReportStatus(report, metadata=bearer(spoofer), timeout=10))
    # Another tenant's task: as if it did not exist.
    assert code == grpc.StatusCode.NOT_FOUND
    assert executors.ReportStatus(report, metadata=bearer(executor_a), timeout=10).accepted

    # An executor serving both tenants (claim `tenants`), on the Lease stream via `orchctl executor`,
    # takes tenant b's task; the python example with a tenant-b token would too.
    both = mint(secret_file, "executor", "ten-a", "--tenants", "ten-b", "--subject", "exec-ab")
    proc = orchctl_executor(auth_server.address, workdir, "exec-ab", [capability], "--id", "stream", "--sleep-ms", "10",
                            "--token", both)
    processes.append(proc)
    deadline = time.monotonic() + 60
    root = mint(secret_file, "admin", "*")
    while time.monotonic() < deadline:
        state = workflows.GetWorkflow(pb.workflows.GetWorkflowRequest(workflow_id=b_flow), metadata=bearer(root), timeout=10)
        if state.workflow.state == pb.workflow.WORKFLOW_STATE_SUCCEEDED:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"tenant-b workflow did not finish:\n{proc.tail()}")
    owners = psql(database, f"SELECT executor_id FROM workflow_events WHERE workflow_id = '{b_flow}' AND type = 'task_leased'")
    # The identity names every tenant the token serves (SECURITY.md), not its first one alone.
    assert owners == [["ten-a,ten-b/exec-ab/stream"]]


def test_example_executors_send_their_token(auth_server, database, secret_file, pb, stubs, capability, workdir, processes,
                                            tmp_path_factory):
    """The Python and Go examples pass ORCHESTRATOR_TOKEN (or --token); each serves its own tenant only."""
    output = tmp_path_factory.mktemp("go") / "orchexecutor"
    built = subprocess.run([GO_EXECUTOR_DIR / "build.sh", output], capture_output=True, text=True, timeout=600)
    if built.returncode == 3:
        pytest.skip(f"Go toolchain packages unavailable:\n{built.stderr[-2000:]}")
    assert built.returncode == 0, built.stderr[-4000:]
    workflows, _ = stubs
    flows = {}
    for tenant in ("py-tenant", "go-tenant"):
        flows[tenant] = submit(pb, workflows, mint(secret_file, "submitter", tenant), capability, key=tenant)
    processes.append(python_executor(auth_server.address, workdir, "py-1", [capability], "--token",
                                     mint(secret_file, "executor", "py-tenant", "--subject", "py-exec")))
    processes.append(Process([output, "-address", auth_server.address, "-id", "go-1", "-capabilities", capability],
                             workdir / "go-1.log",
                             env={"ORCHESTRATOR_TOKEN": mint(secret_file, "executor", "go-tenant", "--subject", "go-exec")}))
    root = mint(secret_file, "admin", "*")
    deadline = time.monotonic() + 90
    pending = set(flows.values())
    while pending and time.monotonic() < deadline:
        for workflow_id in list(pending):
            got = workflows.GetWorkflow(pb.workflows.GetWorkflowRequest(workflow_id=workflow_id), metadata=bearer(root), timeout=10)
            if got.workflow.state == pb.workflow.WORKFLOW_STATE_SUCCEEDED:
                pending.discard(workflow_id)
        time.sleep(0.2)
    assert not pending, "\n".join(p.tail() for p in processes[-2:])
    for tenant, owner in (("py-tenant", "py-tenant/py-exec/py-1"), ("go-tenant", "go-tenant/go-exec/go-1")):
        rows = psql(database, f"SELECT executor_id FROM workflow_events WHERE workflow_id = '{flows[tenant]}' AND type = 'task_leased'")
        assert rows == [[owner]], (tenant, rows)


# -- key files, JWKS and start-up -----------------------------------------------------------------


def start_failure(database, folder, *args) -> str:
    proc = Process([binary("orchestratord"), "--grpc-address", f"127.0.0.1:{free_port()}", "--database-url", database, *args],
                   folder / f"fail-{uuid.uuid4().hex[:6]}.log")
    assert proc.wait(timeout=60) != 0
    proc.stop()
    return proc.log()


def test_bad_key_configuration_stops_startup(database, secret_file, tmp_path):
    private = tmp_path / "private.pem"
    private.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    short = tmp_path / "short"
    short.write_text("too-short\n")
    assert "cannot read /nonexistent/key" in start_failure(database, tmp_path, "--auth", "jwt", "--jwt-key-file", "/nonexistent/key")
    assert "holds a private key" in start_failure(database, tmp_path, "--auth", "jwt", "--jwt-key-file", private)
    assert "at least 32 bytes" in start_failure(database, tmp_path, "--auth", "jwt", "--jwt-key-file", short)
    assert "auth jwt needs jwt-key-file" in start_failure(database, tmp_path, "--auth", "jwt")
    assert "is not none or jwt" in start_failure(database, tmp_path, "--auth", "ldap")


def test_jwks_rotation_rs256_es256_and_confusion(database, tmp_path, pb):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_pem = tmp_path / "rsa.pem"
    rsa_pem.write_bytes(rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    jwks = {"keys": [json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())) | {"kid": "old", "use": "sig"},
                     json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())) | {"kid": "new", "alg": "ES256"}]}
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    address = f"127.0.0.1:{free_port()}"
    proc = Process([binary("orchestratord"), "--grpc-address", address, "--database-url", database, "--auth", "jwt",
                    "--jwks-file", jwks_file, "--jwt-issuer", "https://issuer.test", "--jwt-audience", "orchestrator"],
                   tmp_path / "jwks-server.log")
    try:
        proc.wait_for_log("orchestratord ready", 60)
        channel = grpc.insecure_channel(address)
        workflows = pb.workflows_grpc.WorkflowsStub(channel)
        now = int(time.time())
        claims = {"sub": "svc", "role": "viewer", "tenant": "acme", "iss": "https://issuer.test", "aud": ["x", "orchestrator"],
                  "iat": now, "exp": now + 300}

        def list_with(token):
            return workflows.ListWorkflows(pb.workflows.ListWorkflowsRequest(), metadata=bearer(token), timeout=10)

        # Both rotation keys work, picked by kid.
        list_with(jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "new"}))
        list_with(jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "old"}))
        list_with(orchctl("token", "--key-file", rsa_pem, "--role", "viewer", "--tenant", "acme", "--kid", "old",
                          "--issuer", "https://issuer.test", "--audience", "orchestrator").stdout.strip())
        refused = {
            "unknown kid": jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "gone"}),
            "wrong key for kid": jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "old"}),
            "wrong issuer": jwt.encode(claims | {"iss": "evil"}, ec_key, algorithm="ES256", headers={"kid": "new"}),
            "wrong audience": jwt.encode(claims | {"aud": "other"}, ec_key, algorithm="ES256", headers={"kid": "new"}),
            "hs256 with the public key": hs256_with_key(claims, rsa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), kid="old"),
        }
        for name, token in refused.items():
            code, details = code_of(lambda: list_with(token))
            assert code == grpc.StatusCode.UNAUTHENTICATED, (name, details)
        channel.close()
    finally:
        proc.stop()


def hs256_with_key(claims: dict, key: bytes, kid: str) -> str:
    """HS256 signed with a public key's PEM as the secret (PyJWT itself refuses to do this)."""
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    signing_input = part(json.dumps({"alg": "HS256", "kid": kid}).encode()) + "." + part(json.dumps(claims).encode())
    return signing_input + "." + part(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


def test_a_server_without_auth_on_a_database_with_tenants_says_so(auth_server, database, secret_file, pb, stubs, capability,
                                                                   tmp_path):
    """Found by black-box testing: a server started without authentication beside JWT servers on
    one database handed a tenant's task to its own executor, with nothing in its log beyond the
    usual development-mode warning. It now names the tenants it would serve."""
    workflows, _ = stubs
    submit(pb, workflows, mint(secret_file, "submitter", "tenant-warned", "--subject", "carol"), capability)
    open_server = Orchestratord(database, tmp_path).start()
    try:
        warnings = [json.loads(line) for line in open_server.proc.log().splitlines()
                    if "AUTHENTICATION IS OFF on a database that holds other tenants' workflows" in line]
        assert len(warnings) == 1, open_server.proc.tail(20)
        # A few of them, by name (the module's other tests stored workflows of several tenants).
        named = warnings[0]["tenants"].split(", ")
        assert named and "default" not in named, warnings[0]
    finally:
        open_server.stop()


def test_subjects_and_tenants_with_control_or_invisible_characters_are_refused(auth_server, database, secret_file, pb,
                                                                               stubs, capability):
    """A `sub` with U+0000 was accepted, then every write failed INTERNAL (PostgreSQL text cannot
    hold it); newlines, escape sequences and bidi overrides in `sub` or `tenant` forged lines in
    text logs (found by black-box testing). They are UNAUTHENTICATED, and the refused name is
    echoed escaped."""
    workflows, _ = stubs
    before = psql(database, "SELECT count(*) FROM workflows")
    for claims, expected in [({"sub": "a\u0000b", "tenant": "acme"}, '"sub" must be a non-empty string'),
                             ({"sub": "eve\nnotice orchestratord: FORGED", "tenant": "acme"}, '"sub" must be'),
                             ({"sub": "ok", "tenant": "acme\u202e"}, 'tenant "acme\\u{202E}" must be'),
                             ({"sub": "ok", "tenant": "ac\nme"}, 'tenant "ac\\u{A}me" must be')]:
        token = pyjwt_token(secret_file, role="submitter", **claims)
        code, details = code_of(lambda: submit(pb, workflows, token, capability))
        assert code == grpc.StatusCode.UNAUTHENTICATED and expected in details, (claims, details)
        assert "\n" not in details and "\u202e" not in details
    assert psql(database, "SELECT count(*) FROM workflows") == before
    # orchctl token refuses what the server would refuse: a command-line mistake, exit 64.
    for args in (("--role", "submitter", "--tenant", "*"), ("--role", "viewer", "--tenant", "a", "--tenants", "b,c"),
                 ("--role", "viewer", "--tenant", "a", "--subject", "x\ty")):
        refused = orchctl("token", "--key-file", secret_file, *args, check=False)
        assert refused.returncode == 64 and refused.stdout == "", (args, refused.stdout, refused.stderr)


def test_a_submit_stream_ends_when_its_token_expires(auth_server, secret_file, pb, stubs, capability):
    """An open SubmitStream went on creating workflows after its token had expired, while a unary
    call with the same token was refused (found by black-box testing). The stream ends
    UNAUTHENTICATED at the first query after expiry; the ones before were answered."""
    import queue
    import threading

    workflows, _ = stubs
    # Expires 3 s from now, past the server's 60 s clock skew.
    token = pyjwt_token(secret_file, role="submitter", tenant="acme", exp=int(time.time()) - 57)
    outbound: queue.Queue = queue.Queue()

    def requests():
        while (item := outbound.get()) is not None:
            yield item

    def query(i):
        return pb.workflows.SubmitStreamRequest(request_id=f"expiring-{capability[-6:]}-{i}", query=pb.query.Query(
            graph=pb.dag.Dag(tasks=[pb.dag.TaskSpec(key="t", required_capabilities=[capability])])))

    replies = workflows.SubmitStream(requests(), metadata=bearer(token), timeout=60)
    outbound.put(query(0))
    first = next(replies)
    assert first.HasField("accepted"), first
    time.sleep(4.5)
    outbound.put(query(1))
    with pytest.raises(grpc.RpcError) as ended:
        next(replies)
    outbound.put(None)
    assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED and "token expired" in ended.value.details(), ended.value
    admin = pyjwt_token(secret_file, role="admin", tenant="*")
    listed = workflows.ListWorkflows(pb.workflows.ListWorkflowsRequest(page_size=1000), metadata=bearer(admin), timeout=10)
    assert [w.request_id for w in listed.workflows if w.request_id.startswith(f"expiring-{capability[-6:]}")] == \
        [f"expiring-{capability[-6:]}-0"]


def test_a_lease_stream_gets_no_new_task_once_its_token_expired(auth_server, secret_file, pb, stubs, capability):
    """An executor's Lease stream kept being handed new tasks (the tenant's inputs and upstream
    results) for as long as it heartbeated after its token expired, while unary calls with the
    token were refused (found by black-box testing). After expiry it is handed nothing new; the
    task it holds may still be reported; holding none, it ends UNAUTHENTICATED."""
    from security_support import LeaseStream

    workflows, executors = stubs
    submitter = mint(secret_file, "submitter", "acme")
    first = submit(pb, workflows, submitter, capability, request_id=f"held-{capability}")
    # Expires 8 s from now, past the server's 60 s clock skew (4 s was too little for the first
    # assignment on a loaded machine: a flaky failure in a full run).
    expires_at = int(time.time()) + 8
    expiring = pyjwt_token(secret_file, sub="worker", role="executor", tenant="acme", exp=expires_at - 60)
    stream = LeaseStream(executors, pb, bearer(expiring), pb.executors.ExecutorHello(
        executor_id="expiring", capabilities=[capability], max_in_flight=4), heartbeat_every=1)
    try:
        assert stream.next_of("welcome", 20)
        held = stream.next_of("assignment", 20)
        assert held and held.workflow_id == first
        time.sleep(max(0.0, expires_at - time.time()) + 1)
        later = submit(pb, workflows, submitter, capability, request_id=f"later-{capability}")
        assert stream.next_of("assignment", 3, keep_others=True) is None
        stream.send(pb.executors.LeaseRequest(completion=pb.executors.TaskCompletion(lease=held.lease, result=b"done")))
        assert stream.next_of("ack", 20).accepted
        end = stream.next_of("assignment", 15)
        assert isinstance(end, tuple) and end[1] == grpc.StatusCode.UNAUTHENTICATED and "token expired" in end[2], end
    finally:
        stream.close()
    fresh = LeaseStream(executors, pb, bearer(mint(secret_file, "executor", "acme")), pb.executors.ExecutorHello(
        executor_id="fresh", capabilities=[capability]), heartbeat_every=1)
    try:
        assert fresh.next_of("assignment", 20).workflow_id == later
    finally:
        fresh.close()


def test_the_python_example_rotates_its_token_through_a_token_file(auth_server, secret_file, pb, stubs, capability,
                                                                 workdir, processes):
    """With tokens that expire, an executor must reconnect with a fresh one: the stream of an
    expired token ends once its tasks are done. The Python example reads `--token-file` for every
    stream it opens, so whatever refreshes the file rotates its token and the work goes on."""
    workflows, _ = stubs
    submitter = mint(secret_file, "submitter", "acme")

    def executor_token(lifetime: int) -> str:
        # `exp` is checked with the server's 60 s clock skew.
        return pyjwt_token(secret_file, sub="rotating", role="executor", tenant="acme", exp=int(time.time()) - 60 + lifetime)

    token_file = workdir / "executor.token"
    token_file.write_text(executor_token(10) + "\n")
    processes.append(python_executor(auth_server.address, workdir, "rotating", [capability], "--token-file", str(token_file)))
    executor = processes[-1]
    first = submit(pb, workflows, submitter, capability, key="first")
    executor.wait_for_log("report completion", 30)
    token_file.write_text(executor_token(600) + "\n")
    executor.wait_for_log("UNAUTHENTICATED", 30)
    second = submit(pb, workflows, submitter, capability, key="second")
    root = mint(secret_file, "admin", "*")
    deadline = time.monotonic() + 30
    states = {}
    while time.monotonic() < deadline:
        states = {w: workflows.GetWorkflow(pb.workflows.GetWorkflowRequest(workflow_id=w), metadata=bearer(root), timeout=10)
                  .workflow.state for w in (first, second)}
        if set(states.values()) == {pb.workflow.WORKFLOW_STATE_SUCCEEDED}:
            break
        time.sleep(0.2)
    assert set(states.values()) == {pb.workflow.WORKFLOW_STATE_SUCCEEDED}, (states, executor.tail())


def test_a_cross_tenant_admin_may_list_events_of_every_tenant_as_star(auth_server, secret_file, pb, stubs, capability):
    """`ListEvents tenant="*"` (how tokens spell every tenant) listed nothing, silently (found by
    black-box testing): for an administrator of every tenant it lists every tenant's events; for
    anyone else it is PERMISSION_DENIED like another tenant's name."""
    workflows, _ = stubs
    submit(pb, workflows, mint(secret_file, "submitter", "acme"), capability)
    submit(pb, workflows, mint(secret_file, "submitter", "beta"), capability)
    root = pyjwt_token(secret_file, role="admin", tenant="*")
    every = workflows.ListEvents(pb.workflows.ListEventsRequest(tenant="*", page_size=1000), metadata=bearer(root), timeout=10)
    unfiltered = workflows.ListEvents(pb.workflows.ListEventsRequest(page_size=1000), metadata=bearer(root), timeout=10)
    assert len(every.events) > 0 and [e.sequence for e in every.events] == [e.sequence for e in unfiltered.events]
    acme_admin = mint(secret_file, "admin", "acme")
    code, details = code_of(lambda: workflows.ListEvents(pb.workflows.ListEventsRequest(tenant="*"), metadata=bearer(acme_admin),
                                                         timeout=10))
    assert code == grpc.StatusCode.PERMISSION_DENIED and 'tenant "acme" only' in details, details
