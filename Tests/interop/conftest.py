"""Fixtures for the interop suite: grpcio stubs generated at test time, a self-signed certificate,
the InteropTestServer binary (built once, or ORCH_INTEROP_SERVER), and channels over h2c and TLS."""

from __future__ import annotations

import faulthandler
import importlib
import signal
import subprocess
import sys
import types
from pathlib import Path

import grpc
import pytest

from server_process import ServerProcess, binary_path

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos"
ECHO_PROTO = "orchestrator/testing/v1/echo.proto"
# Every test gets this long before the watchdog fails it, so nothing can hang CI.
TEST_TIMEOUT_SECONDS = 120
# Big enough for the 4 MiB echo tests; the server's own limit is what those tests probe.
CLIENT_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024),
                  ("grpc.max_send_message_length", 64 * 1024 * 1024)]


class TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def watchdog():
    def expire(signum, frame):
        raise TestTimeout(f"test ran longer than {TEST_TIMEOUT_SECONDS}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_TIMEOUT_SECONDS)
    # If a C call ignores the signal, at least dump every thread's stack before CI's limit.
    faulthandler.dump_traceback_later(TEST_TIMEOUT_SECONDS + 30, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session")
def stubs(tmp_path_factory) -> types.SimpleNamespace:
    """echo_pb2 / echo_pb2_grpc generated from protos/ with grpc_tools.protoc into a temp dir."""
    out = tmp_path_factory.mktemp("stubs")
    command = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}", f"--python_out={out}",
               f"--grpc_python_out={out}", str(PROTOS / ECHO_PROTO)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"protoc failed: {result.stderr}"
    sys.path.insert(0, str(out))
    pb2 = importlib.import_module("orchestrator.testing.v1.echo_pb2")
    pb2_grpc = importlib.import_module("orchestrator.testing.v1.echo_pb2_grpc")
    return types.SimpleNamespace(pb2=pb2, grpc=pb2_grpc)


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> types.SimpleNamespace:
    """A self-signed P-256 certificate for 127.0.0.1 and localhost, made with the openssl CLI."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return types.SimpleNamespace(cert=cert, key=key, pem=cert.read_bytes())


@pytest.fixture(scope="session")
def server_binary() -> Path:
    return binary_path(ROOT)


def start_server(server_binary: Path, certs, folder: Path, *extra: str) -> ServerProcess:
    return ServerProcess(server_binary, folder / "server.log", cert=certs.cert, key=certs.key,
                         extra_args=extra).start()


@pytest.fixture(scope="session")
def server(server_binary, certs, tmp_path_factory):
    process = start_server(server_binary, certs, tmp_path_factory.mktemp("server"))
    yield process
    alive = process.alive()
    process.stop()
    assert alive, f"the shared server died during the session; log tail:\n{process.log_tail()}"


def make_channel(server: ServerProcess, transport: str, certs, options=(), compression=None) -> grpc.Channel:
    options = list(CLIENT_OPTIONS) + list(options)
    if transport == "tls":
        credentials = grpc.ssl_channel_credentials(root_certificates=certs.pem)
        return grpc.secure_channel(f"127.0.0.1:{server.tls_port}", credentials, options=options,
                                   compression=compression)
    return grpc.insecure_channel(f"127.0.0.1:{server.h2c_port}", options=options, compression=compression)


@pytest.fixture(params=["h2c", "tls"])
def transport(request) -> str:
    return request.param


@pytest.fixture
def channel_factory(server, transport, certs):
    """Makes channels to the shared server over the test's transport; closes them afterwards."""
    made: list[grpc.Channel] = []

    def factory(options=(), compression=None) -> grpc.Channel:
        channel = make_channel(server, transport, certs, options, compression)
        made.append(channel)
        return channel

    yield factory
    for channel in made:
        channel.close()


@pytest.fixture
def channel(channel_factory) -> grpc.Channel:
    channel = channel_factory()
    grpc.channel_ready_future(channel).result(timeout=10)
    return channel


@pytest.fixture
def echo(channel, stubs):
    return stubs.grpc.EchoStub(channel)
