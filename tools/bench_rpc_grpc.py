"""gRPC-side helpers for tools/bench.d/rpc: the request body for h2load and a real gRPC sanity call.

h2load cannot read trailers, so before any load the script calls each server once through grpcio
and checks that Echo/Get really ends with grpc-status 0 and echoes the text.

  bench_rpc_grpc.py body PATH         write one length-prefixed EchoRequest(text="hello world")
  bench_rpc_grpc.py check HOST:PORT   one unary Get through grpcio; exit 1 unless OK and echoed
  bench_rpc_grpc.py free-port         print a TCP port that was free on 127.0.0.1 a moment ago
"""

import importlib
import os
import socket
import struct
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTO = "orchestrator/testing/v1/echo.proto"
METHOD = "/orchestrator.testing.v1.Echo/Get"
TEXT = "hello world"


def echo_pb2():
    """Compiles echo.proto into a throwaway folder, so no generated Python is kept in the repo."""
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="bench-rpc-pb2-")
    code = protoc.main(["protoc", f"-I{ROOT}/protos", f"--python_out={out}", f"{ROOT}/protos/{PROTO}"])
    if code != 0:
        sys.exit(f"protoc failed on {PROTO}")
    sys.path.insert(0, out)
    return importlib.import_module("orchestrator.testing.v1.echo_pb2")


def write_body(path):
    message = echo_pb2().EchoRequest(text=TEXT).SerializeToString()
    # gRPC framing: 1 byte "compressed" flag (0), 4 bytes big-endian length, then the message.
    with open(path, "wb") as f:
        f.write(struct.pack(">BI", 0, len(message)) + message)


def check(target):
    import grpc

    pb2 = echo_pb2()
    with grpc.insecure_channel(target) as channel:
        get = channel.unary_unary(
            METHOD,
            request_serializer=pb2.EchoRequest.SerializeToString,
            response_deserializer=pb2.EchoResponse.FromString,
        )
        try:
            response, call = get.with_call(pb2.EchoRequest(text=TEXT), timeout=10)
        except grpc.RpcError as error:
            sys.exit(f"{target}: Echo/Get failed: {error.code()} {error.details()}")
    if call.code() != grpc.StatusCode.OK or response.text != TEXT:
        sys.exit(f"{target}: Echo/Get answered {call.code()} with text {response.text!r}")
    print(f"{target}: Echo/Get OK, text echoed")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def main(argv):
    if len(argv) == 3 and argv[1] == "body":
        write_body(argv[2])
    elif len(argv) == 3 and argv[1] == "check":
        check(argv[2])
    elif len(argv) == 2 and argv[1] == "free-port":
        free_port()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
