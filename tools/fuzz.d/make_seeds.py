#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets to Tests/fuzz/corpus/<target>/ (docs/FUZZING.md).

Seeds are small valid (and a few nearly valid) inputs in each target's input layout: a selector
byte, then the document. Run with the project venv: .venv/bin/python tools/fuzz.d/make_seeds.py
The generated files are committed; rerun only when a target's input layout or the protos change.
"""
import base64
import gzip
import hashlib
import hmac
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "Tests", "fuzz", "corpus")


def compile_protos(out):
    from grpc_tools import protoc
    import grpc_tools
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    protos = []
    for base, _, files in os.walk(os.path.join(ROOT, "protos")):
        protos += [os.path.relpath(os.path.join(base, f), os.path.join(ROOT, "protos")) for f in files if f.endswith(".proto")]
    args = ["protoc", f"-I{os.path.join(ROOT, 'protos')}", f"-I{include}", f"--python_out={out}"] + sorted(protos)
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    sys.path.insert(0, out)


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def frame(message, compressed=False):
    return bytes([1 if compressed else 0]) + struct.pack(">I", len(message)) + message


def framing():
    # Selector: encoding = s % 3 (identity, gzip, deflate), limit = (s // 3) % 5 (0, 16, 300, 4096, 4 MiB).
    t = "FuzzFraming"
    hello = b"\x0a\x05hello"
    write(t, "identity-two-messages", bytes([3 * 3 + 0, 7]) + frame(hello) + frame(b""))
    write(t, "identity-partial", bytes([3 * 2 + 0, 1]) + frame(hello)[:4])
    write(t, "identity-too-large", bytes([3 * 1 + 0, 9]) + frame(b"x" * 40))
    write(t, "gzip-message", bytes([3 * 3 + 1, 3]) + frame(gzip.compress(hello * 10, mtime=0), compressed=True) + frame(hello))
    write(t, "deflate-message", bytes([3 * 3 + 2, 5]) + frame(zlib.compress(hello * 10), compressed=True))
    write(t, "gzip-bomb", bytes([3 * 2 + 1, 2]) + frame(gzip.compress(b"\0" * 100_000, mtime=0), compressed=True))
    write(t, "compressed-without-encoding", bytes([3 * 3 + 0, 4]) + frame(gzip.compress(hello, mtime=0), compressed=True))
    write(t, "bad-flag", bytes([3 * 4 + 0, 0]) + b"\x02\x00\x00\x00\x01x")


class Raw:
    """Already-encoded message bytes, standing in for a generated class."""

    def __init__(self, data):
        self.data = data

    def SerializeToString(self):
        return self.data


def string_field(number, text):
    data = text.encode()
    return bytes([number << 3 | 2, len(data)]) + data


def request_decoding(pb):
    from orchestrator.v1 import workflows_pb2 as wf, executors_pb2 as ex, query_pb2 as q, dag_pb2 as d
    from orchestrator.testing.v1 import echo_pb2 as echo, codegen_test_pb2 as cg
    t = "FuzzRequestDecoding"
    dag = d.Dag(tasks=[d.TaskSpec(key="fetch", required_capabilities=["web.fetch"], labels={"team": "a"}, payload=b"{}",
                                  retry=d.RetryPolicy(max_attempts=3), timeouts=d.Timeouts(lease_ttl_ms=5000)),
                       d.TaskSpec(key="sum", depends_on=["fetch"], estimated_cost=2.5, priority=-1,
                                  resources=d.Resources(cpu_cores=0.5, custom={"gpu-slot": 1}))])
    query = q.Query(text="summarise the news", goals=["report"], graph=dag, planner=1, labels={"k": "v"},
                    constraints=q.Constraints(max_total_cost=10, forbidden_capabilities=["x"]), failure_policy=2)
    lease = ex.LeaseToken(task_id="t1", fencing_token=2)
    # The order of RequestDecodingTarget.types.
    messages = [
        wf.SubmitQueryRequest(request_id="r1", query=query, wait=True),
        wf.SubmitStreamRequest(request_id="r2", query=query, watch=True),
        wf.PlanWorkflowRequest(query=query),
        wf.GetWorkflowRequest(workflow_id="w1", include_tasks=True),
        wf.ListWorkflowsRequest(page_token="p", page_size=10),
        wf.GetDagRequest(workflow_id="w1", version=2),
        wf.UpdateDagRequest(workflow_id="w1", expected_version=1, add_tasks=[dag.tasks[0]], remove_tasks=["old"], reason="r"),
        wf.CancelWorkflowRequest(workflow_id="w1", reason="done"),
        wf.WatchWorkflowRequest(workflow_id="w1", after_sequence=5, stop_when_finished=True),
        wf.ListEventsRequest(workflow_id="w1", actor_subject="alice", tenant="t1", page_token="x"),
        ex.LeaseRequest(hello=ex.ExecutorHello(executor_id="e1", capabilities=["web.fetch"], labels={"zone": "a"}, max_in_flight=4)),
        ex.PollTasksRequest(executor_id="e1", capabilities=["web.fetch"], max_tasks=2, wait_ms=100),
        ex.ReportStatusRequest(executor_id="e1", completion=ex.TaskCompletion(lease=lease, result=b"ok")),
        ex.HeartbeatRequest(executor_id="e1", leases=[lease]),
        # grpc.* protos clash with the grpcio package's name in Python: these few are encoded by hand.
        Raw(string_field(1, "orchestrator.v1.Workflows")),  # HealthCheckRequest.service
        Raw(b""),  # HealthListRequest
        Raw(string_field(1, "h") + string_field(7, "")),  # v1 ServerReflectionRequest host, list_services
        Raw(string_field(4, "orchestrator.v1.Workflows")),  # v1alpha file_containing_symbol
        echo.EchoRequest(text="hi", payload=b"\x00\x01", count=2, tag="t"),
        cg.Everything(),
        cg.TreeNode(label="root", left=cg.TreeNode(label="l"), children=[cg.TreeNode(note="n")]),
    ]
    for index, message in enumerate(messages):
        name = type(message).__name__ if not isinstance(message, Raw) else ["HealthCheckRequest", "HealthListRequest",
                                                                             "ReflectionV1", "ReflectionV1alpha"][index - 14]
        write(t, f"{index:02d}-{name}", bytes([index]) + message.SerializeToString())
    extra = [
        (10, ex.LeaseRequest(heartbeat=ex.HeartbeatSignal())),
        (10, ex.LeaseRequest(failure=ex.TaskFailure(lease=lease, message="boom", code="E", retryable=True))),
        (10, ex.LeaseRequest(progress=ex.TaskProgress(lease=lease, fraction=0.5, message="half"))),
    ]
    for n, (index, message) in enumerate(extra):
        write(t, f"{index:02d}-{type(message).__name__}-{n}", bytes([index]) + message.SerializeToString())


def dag_validation(pb):
    from orchestrator.v1 import query_pb2 as q, dag_pb2 as d
    t = "FuzzDagValidation"
    # Selector: path = s % 4 (Dag message, Query message, DAG JSON file, built field by field), limits = (s // 4) % 2 (server defaults, tight).
    diamond = d.Dag(tasks=[d.TaskSpec(key="a"), d.TaskSpec(key="b", depends_on=["a"]), d.TaskSpec(key="c", depends_on=["a"]),
                           d.TaskSpec(key="d", depends_on=["b", "c"], estimated_cost=3,
                                      timeouts=d.Timeouts(start_to_close_ms=1500, lease_ttl_ms=30000))])
    broken = d.Dag(tasks=[d.TaskSpec(key="a", depends_on=["c"]), d.TaskSpec(key="b", depends_on=["a"]),
                          d.TaskSpec(key="c", depends_on=["b"]), d.TaskSpec(key="d", depends_on=["missing", "d"]),
                          d.TaskSpec(key="d"), d.TaskSpec(key="bad key!", estimated_cost=-1)])
    write(t, "dag-diamond", bytes([0]) + diamond.SerializeToString())
    write(t, "dag-diamond-tight", bytes([4]) + diamond.SerializeToString())
    write(t, "dag-broken", bytes([0]) + broken.SerializeToString())
    write(t, "query-explicit", bytes([1]) + q.Query(graph=diamond, planner=1, priority=3, labels={"x": "y"}).SerializeToString())
    write(t, "query-text", bytes([1]) + q.Query(text="research and write a report").SerializeToString())
    write(t, "query-goals", bytes([1]) + q.Query(goals=["report", "translated_report"], inputs={"urls": "https://example.org"}).SerializeToString())
    write(t, "query-delegated", bytes([5]) + q.Query(text="plan it", planner=3).SerializeToString())
    # Built field by field (DagValidationTarget.build): count, then per task a field mask, a dependency
    # count and dependency indices, then the fields the mask selects.
    chain = bytes([4, 0, 0,  0, 1, 0,  8, 1, 1]) + struct.pack("<qq", 1500, 30000) + bytes([2 | 16, 2, 1, 2]) \
        + struct.pack("<d", 2.5) + struct.pack("<iqqdd", 4, 100, 1000, 2.0, 0.1)
    write(t, "built-chain", bytes([3]) + chain)
    write(t, "built-chain-tight", bytes([7]) + chain)
    write(t, "built-labels-resources", bytes([3, 2, 64 | 32, 0, 1, 1, ord("k")]) + struct.pack("<d", 1) + struct.pack("<dqi", 0.5, 512, 1)
          + bytes([2, 3]) + b"env" + bytes([4]) + b"prod" + bytes([128 | 1, 1, 0, 2]) + b"zz" + bytes([3]) + b"abc")
    for name in ("diamond.json", "invalid.json"):
        with open(os.path.join(ROOT, "examples", "dags", name), "rb") as f:
            write(t, "json-" + name.replace(".json", ""), bytes([2]) + f.read())


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def jwt():
    # Selector: mode = s % 2 (raw token, header/claims signed by the target), policy = (s // 2) % 2.
    t = "FuzzJWT"
    secret = b"fuzz-target-hs256-secret-of-32+bytes!"
    header = json.dumps({"alg": "HS256", "typ": "JWT", "kid": "h"}, separators=(",", ":")).encode()
    claims = json.dumps({"sub": "alice", "role": "executor", "tenant": "t1", "tenants": ["t2"], "exp": 1800000600,
                         "nbf": 1799999000, "iss": "https://issuer.example", "aud": ["orchestrator"]},
                        separators=(",", ":")).encode()
    admin = json.dumps({"sub": "root", "role": "admin", "tenant": "*", "exp": 1800000600}).encode()
    write(t, "signed-executor", bytes([1]) + header + b"\xff" + claims)
    write(t, "signed-executor-policy", bytes([3]) + header + b"\xff" + claims)
    write(t, "signed-admin", bytes([1]) + header + b"\xff" + admin)
    write(t, "signed-expired", bytes([1]) + header + b"\xff" + json.dumps({"sub": "a", "role": "viewer", "tenant": "t", "exp": 1}).encode())
    signing_input = b64url(header) + b"." + b64url(claims)
    token = signing_input + b"." + b64url(hmac.new(secret, signing_input, hashlib.sha256).digest())
    write(t, "raw-valid", bytes([0]) + token)
    write(t, "raw-none", bytes([0]) + b64url(b'{"alg":"none"}') + b"." + b64url(claims) + b".")
    write(t, "raw-es256", bytes([0]) + b64url(b'{"alg":"ES256","kid":"e"}') + b"." + b64url(claims) + b"." + b64url(b"\x01" * 64))
    write(t, "raw-rs256", bytes([0]) + b64url(b'{"alg":"RS256","kid":"r"}') + b"." + b64url(claims) + b"." + b64url(b"\x02" * 256))


def main():
    with tempfile.TemporaryDirectory() as out:
        compile_protos(out)
        framing()
        request_decoding(None)
        dag_validation(None)
        jwt()
    for target in sorted(os.listdir(CORPUS)):
        print(target, len(os.listdir(os.path.join(CORPUS, target))), "seeds")


if __name__ == "__main__":
    main()
