"""A second, independent client stack: grpclib (pure Python, on the `h2` HTTP/2 implementation)
instead of grpcio's C core, over h2c and TLS. Different SETTINGS, framing and header habits than
grpcio, so wire-contract mistakes that grpcio tolerates show up here."""

from __future__ import annotations

import asyncio
import importlib
import os
import ssl
import subprocess
import sys
import types

import pytest
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from conftest import ECHO_PROTO, PROTOS
from helpers import new_tag


@pytest.fixture(scope="session")
def grpclib_stubs(stubs, tmp_path_factory) -> types.SimpleNamespace:
    """echo_grpc.py from grpclib's protoc plugin; the messages are the grpcio fixture's echo_pb2."""
    out = tmp_path_factory.mktemp("grpclib-stubs")
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}")
    result = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}",
                             f"--grpclib_python_out={out}", str(PROTOS / ECHO_PROTO)],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, f"protoc (grpclib plugin) failed: {result.stderr}"
    sys.path.append(str(out))  # after the grpcio stubs: the namespace package spans both folders
    module = importlib.import_module("orchestrator.testing.v1.echo_grpc")
    return types.SimpleNamespace(grpc=module, pb2=stubs.pb2)


@pytest.fixture
def run(server, transport, certs, grpclib_stubs):
    """Runs `body(stub)` on a fresh grpclib channel to the shared server, within 60 s."""

    def runner(body):
        async def main():
            if transport == "tls":
                context = ssl.create_default_context(cafile=str(certs.cert))
                context.set_alpn_protocols(["h2"])
                channel = Channel("127.0.0.1", server.tls_port, ssl=context)
            else:
                channel = Channel("127.0.0.1", server.h2c_port)
            try:
                return await asyncio.wait_for(body(grpclib_stubs.grpc.EchoStub(channel)), 60)
            finally:
                channel.close()

        return asyncio.run(main())

    return runner


def test_unary_with_trace(run, grpclib_stubs):
    pb2 = grpclib_stubs.pb2
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"

    async def body(stub):
        return await stub.Get(pb2.EchoRequest(text="hi", payload=b"\x00\x01"), timeout=10,
                              metadata={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})

    response = run(body)
    assert (response.text, response.payload, response.trace_id) == ("hi", b"\x00\x01", trace_id)
    assert response.peer.startswith("127.0.0.1:")


def test_server_streaming(run, grpclib_stubs):
    pb2 = grpclib_stubs.pb2

    async def body(stub):
        async with stub.Expand.open(timeout=30) as stream:
            await stream.send_message(pb2.EchoRequest(count=2000, response_size=100), end=True)
            return [reply.index async for reply in stream]

    assert run(body) == list(range(2000))


def test_client_streaming(run, grpclib_stubs):
    pb2 = grpclib_stubs.pb2

    async def body(stub):
        async with stub.Collect.open(timeout=30) as stream:
            for i in range(100):
                await stream.send_message(pb2.EchoRequest(text=str(i % 10)))
            await stream.end()
            return await stream.recv_message()

    reply = run(body)
    assert reply.count == 100 and reply.text == "0123456789" * 10


def test_bidirectional_ping_pong(run, grpclib_stubs):
    pb2 = grpclib_stubs.pb2

    async def body(stub):
        texts = []
        async with stub.Chat.open(timeout=30) as stream:
            for i in range(50):
                await stream.send_message(pb2.EchoRequest(text=f"ping {i}"))
                texts.append((await stream.recv_message()).text)
            await stream.end()
            assert await stream.recv_message() is None
        return texts

    assert run(body) == [f"ping {i}" for i in range(50)]


def test_metadata_in_headers_and_trailers(run, grpclib_stubs):
    pb2 = grpclib_stubs.pb2
    binary = bytes(range(256))

    async def body(stub):
        async with stub.Get.open(timeout=10, metadata={"x-echo-text": "hello", "x-echo-bin": binary}) as stream:
            await stream.send_message(pb2.EchoRequest(), end=True)
            await stream.recv_message()
            await stream.recv_trailing_metadata()
            return dict(stream.initial_metadata), dict(stream.trailing_metadata)

    headers, trailers = run(body)
    for metadata in (headers, trailers):
        assert metadata.get("x-echo-text") == "hello"
        assert metadata.get("x-echo-bin") == binary


def test_status_and_message(run, grpclib_stubs):
    pb2 = grpclib_stubs.pb2

    async def body(stub):
        await stub.Get(pb2.EchoRequest(fail_with=pb2.EchoStatus(code=5, message="gone: 100% ✓")), timeout=10)

    with pytest.raises(GRPCError) as error:
        run(body)
    assert error.value.status == Status.NOT_FOUND
    assert error.value.message == "gone: 100% ✓"


def test_deadline_reaches_the_handler(run, grpclib_stubs):
    pb2 = grpclib_stubs.pb2
    tag = new_tag("grpclib-deadline")

    async def body(stub):
        try:
            await stub.Get(pb2.EchoRequest(delay_ms=10_000, tag=tag), timeout=0.5)
        except (GRPCError, asyncio.TimeoutError) as error:
            outcome = error
        else:
            outcome = None
        for _ in range(100):
            report = await stub.Cancellations(pb2.CancellationQuery(tag=tag), timeout=5)
            if report.cancelled:
                break
            await asyncio.sleep(0.05)
        return outcome, report

    outcome, report = run(body)
    # grpclib enforces the deadline itself too and then raises asyncio.TimeoutError("Deadline
    # exceeded"); whichever side fires first, the handler must see the call end.
    deadline_status = isinstance(outcome, GRPCError) and outcome.status == Status.DEADLINE_EXCEEDED
    assert deadline_status or isinstance(outcome, asyncio.TimeoutError), outcome
    assert (report.cancelled, report.completed) == (1, 0)


def test_message_over_4_mib_is_resource_exhausted(run, grpclib_stubs):
    pb2 = grpclib_stubs.pb2
    request = pb2.EchoRequest(payload=b"x" * (4 * 1024 * 1024 + 1 - 5))
    assert request.ByteSize() == 4 * 1024 * 1024 + 1

    async def body(stub):
        await stub.Get(request, timeout=30)

    with pytest.raises(GRPCError) as error:
        run(body)
    assert error.value.status == Status.RESOURCE_EXHAUSTED
