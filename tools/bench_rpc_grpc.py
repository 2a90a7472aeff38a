"""gRPC-side helpers for tools/bench.d/rpc: the request body for h2load and a real gRPC sanity call.

h2load cannot read trailers, so before any load the script calls each server once through grpcio
and checks that the method really ends with grpc-status 0 and the expected answer.

  bench_rpc_grpc.py body PATH [echo|plan]         write one length-prefixed request: for echo an
                                                  EchoRequest(text="hello world"), for plan a
                                                  PlanWorkflowRequest with a 4-task diamond DAG
  bench_rpc_grpc.py check HOST:PORT [echo|plan]   one unary call through grpcio; exit 1 unless OK
                                                  and echoed (echo) or planned as expected (plan)
  bench_rpc_grpc.py path echo|plan                print the method's HTTP/2 :path
"""

import importlib
import os
import struct
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATHS = {"echo": "/orchestrator.testing.v1.Echo/Get", "plan": "/orchestrator.v1.Workflows/PlanWorkflow"}
TEXT = "hello world"
DIAMOND = [("fetch", []), ("parse", ["fetch"]), ("index", ["fetch"]), ("publish", ["parse", "index"])]


def compiled(module, *protos):
    """Compiles protos into a throwaway folder (so no generated Python is kept in the repo)."""
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="bench-rpc-pb2-")
    code = protoc.main(["protoc", f"-I{ROOT}/protos", f"--python_out={out}", *[f"{ROOT}/protos/{p}" for p in protos]])
    if code != 0:
        sys.exit(f"protoc failed on {protos}")
    sys.path.insert(0, out)
    return importlib.import_module(module)


def messages(method):
    """(request, request class, response class) for a method."""
    if method == "echo":
        pb2 = compiled("orchestrator.testing.v1.echo_pb2", "orchestrator/testing/v1/echo.proto")
        return pb2.EchoRequest(text=TEXT), pb2.EchoRequest, pb2.EchoResponse
    pb2 = compiled(
        "orchestrator.v1.workflows_pb2",
        *[f"orchestrator/v1/{name}.proto" for name in ("dag", "query", "workflow", "workflows")],
    )
    query_pb2 = importlib.import_module("orchestrator.v1.query_pb2")
    dag_pb2 = importlib.import_module("orchestrator.v1.dag_pb2")
    graph = dag_pb2.Dag(
        tasks=[dag_pb2.TaskSpec(key=key, depends_on=deps, required_capabilities=["echo"]) for key, deps in DIAMOND]
    )
    request = pb2.PlanWorkflowRequest(query=query_pb2.Query(text="bench", graph=graph))
    return request, pb2.PlanWorkflowRequest, pb2.PlanWorkflowResponse


def write_body(path, method):
    message = messages(method)[0].SerializeToString()
    # gRPC framing: 1 byte "compressed" flag (0), 4 bytes big-endian length, then the message.
    with open(path, "wb") as f:
        f.write(struct.pack(">BI", 0, len(message)) + message)


def check(target, method):
    import grpc

    request, request_type, response_type = messages(method)
    with grpc.insecure_channel(target) as channel:
        call_method = channel.unary_unary(
            PATHS[method],
            request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString,
        )
        try:
            response, call = call_method.with_call(request, timeout=10)
        except grpc.RpcError as error:
            sys.exit(f"{target}: {PATHS[method]} failed: {error.code()} {error.details()}")
    if call.code() != grpc.StatusCode.OK:
        sys.exit(f"{target}: {PATHS[method]} answered {call.code()}")
    if method == "echo" and response.text != TEXT:
        sys.exit(f"{target}: Echo/Get answered text {response.text!r}")
    if method == "plan" and list(response.analysis.topological_order[:1]) != ["fetch"] or (
        method == "plan" and len(response.dag.tasks) != len(DIAMOND)
    ):
        sys.exit(f"{target}: PlanWorkflow answered an unexpected plan: {response}")
    print(f"{target}: {PATHS[method]} OK")


def main(argv):
    if len(argv) in (3, 4) and argv[1] == "body":
        write_body(argv[2], argv[3] if len(argv) == 4 else "echo")
    elif len(argv) in (3, 4) and argv[1] == "check":
        check(argv[2], argv[3] if len(argv) == 4 else "echo")
    elif len(argv) == 3 and argv[1] == "path" and argv[2] in PATHS:
        print(PATHS[argv[2]])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
