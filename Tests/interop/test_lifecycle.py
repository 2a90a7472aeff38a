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
