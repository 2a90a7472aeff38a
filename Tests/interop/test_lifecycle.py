"""Graceful shutdown: SIGTERM sends GOAWAY, turns health NOT_SERVING, lets in-flight calls finish,
then the process exits 0. Each test starts its own server."""

import signal
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import h2raw
from conftest import make_channel, start_server


@pytest.fixture
def own_server(server_binary, certs, tmp_path):
    server = start_server(server_binary, certs, tmp_path)
    yield server
    server.stop()


def test_sigterm_lets_in_flight_calls_finish(own_server, certs, stubs):
    channel = make_channel(own_server, "h2c", certs)
    echo = stubs.grpc.EchoStub(channel)
    echo.Get(stubs.pb2.EchoRequest(), timeout=10)
    future = echo.Get.future(stubs.pb2.EchoRequest(text="in flight", delay_ms=1500), timeout=30)
    time.sleep(0.3)
    own_server.process.send_signal(signal.SIGTERM)
    assert future.result().text == "in flight"
    assert own_server.process.wait(timeout=20) == 0
    channel.close()


def test_sigterm_sends_goaway(own_server):
    with h2raw.RawConnection(own_server.h2c_port) as conn:
        conn.start()
        conn.read_until(lambda f: f.type == h2raw.SETTINGS and not f.flags & h2raw.ACK, timeout=5)
        own_server.process.send_signal(signal.SIGTERM)
        frames, goaway = conn.read_until(lambda f: f.type == h2raw.GOAWAY, timeout=10)
    assert goaway is not None, frames
    assert goaway.goaway()[1] == h2raw.NO_ERROR, goaway
    assert own_server.process.wait(timeout=20) == 0


def test_health_turns_not_serving_while_draining(own_server, certs, stubs):
    channel = make_channel(own_server, "h2c", certs)
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=30)
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    # An in-flight call keeps the server draining long enough to observe the change.
    slow = stubs.grpc.EchoStub(channel).Get.future(stubs.pb2.EchoRequest(delay_ms=2000), timeout=30)
    time.sleep(0.2)
    own_server.process.send_signal(signal.SIGTERM)
    assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
    # Then the watch ends: it used to stay open and hold the drain for the whole grace period
    # (found by black-box testing with grpc-java).
    with pytest.raises(grpc.RpcError) as ended:
        next(watch)
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE, ended.value
    slow.result()
    assert own_server.process.wait(timeout=20) == 0
    channel.close()


def test_new_calls_fail_after_shutdown(own_server, certs, stubs):
    warm = make_channel(own_server, "h2c", certs)
    stubs.grpc.EchoStub(warm).Get(stubs.pb2.EchoRequest(), timeout=10)
    warm.close()
    own_server.process.send_signal(signal.SIGTERM)
    assert own_server.process.wait(timeout=20) == 0
    channel = make_channel(own_server, "h2c", certs)
    with pytest.raises(grpc.RpcError) as error:
        stubs.grpc.EchoStub(channel).Get(stubs.pb2.EchoRequest(), timeout=2)
    assert error.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    channel.close()


def test_sigterm_right_after_start_drains_and_exits_cleanly(own_server):
    # The server announces itself only after its signal handlers are installed, so a SIGTERM at
    # once must take the graceful path (exit 0), not the default action (killed by the signal).
    own_server.process.send_signal(signal.SIGTERM)
    assert own_server.process.wait(timeout=20) == 0


@pytest.mark.parametrize("listener", ["h2c", "tls"])
def test_sigterm_lets_a_slow_reader_have_every_byte(own_server, stubs, listener):
    """Once a draining server had written its last response, it closed the socket while the
    client was still reading slowly and sending WINDOW_UPDATEs: the kernel answered those with a
    reset that discarded the end of the response — no trailers, though the server logged the call
    OK (found by black-box testing). Now it half-closes and closes when the client does."""
    count, size = 200, 65_536
    port = own_server.tls_port if listener == "tls" else own_server.h2c_port
    request = stubs.pb2.EchoRequest(text="big", count=count, response_size=size).SerializeToString()
    with h2raw.RawConnection(port, tls=listener == "tls", rcvbuf=16_384) as conn:
        assert conn.start({h2raw.INITIAL_WINDOW_SIZE: 1 << 20})
        assert conn.send(h2raw.window_update(0, 8 << 20))
        stream = conn.new_stream()
        assert conn.send(conn.grpc_call(stream, h2raw.ECHO + "/Expand", request))
        started = time.monotonic()
        signalled = False
        received, trailers, goaway = 0, None, None
        while True:
            if not signalled and time.monotonic() - started > 0.3:
                own_server.process.send_signal(signal.SIGTERM)
                signalled = True
            current = conn.read_frame(timeout=20)
            if current is None:
                break
            if current.type == h2raw.DATA and current.payload:
                received += len(current.payload)
                # As real clients do: the window back for every DATA frame read, slowly.
                conn.send(h2raw.window_update(0, len(current.payload)) + h2raw.window_update(stream, len(current.payload)))
                time.sleep(0.003)
            elif current.type == h2raw.HEADERS and current.flags & h2raw.END_STREAM:
                trailers = dict(current.headers)
            elif current.type == h2raw.GOAWAY:
                goaway = current.goaway()
    assert goaway is not None and goaway[1] == h2raw.NO_ERROR, goaway
    assert trailers is not None and trailers.get("grpc-status") == "0", (trailers, received)
    assert received >= count * size
    assert own_server.process.wait(timeout=20) == 0
