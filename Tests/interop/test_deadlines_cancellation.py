"""Deadlines and cancellation: the handler itself must observe them (checked via Cancellations)."""

import time

import grpc
import pytest

import h2raw
from helpers import RequestQueue, new_tag, wait_for_report


def test_deadline_exceeded_cancels_handler(echo, stubs):
    tag = new_tag("deadline")
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as error:
        echo.Get(stubs.pb2.EchoRequest(delay_ms=10_000, tag=tag), timeout=0.5)
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 3
    report = wait_for_report(echo, stubs.pb2, tag, cancelled=1)
    assert (report.cancelled, report.completed) == (1, 0), "the delayed handler never saw the deadline"


def test_deadline_not_reached_completes(echo, stubs):
    tag = new_tag("in-time")
    echo.Get(stubs.pb2.EchoRequest(delay_ms=100, tag=tag), timeout=10)
    report = wait_for_report(echo, stubs.pb2, tag, completed=1)
    assert (report.cancelled, report.completed) == (0, 1)


def test_client_cancels_server_stream_mid_stream(echo, stubs):
    tag = new_tag("cancel-expand")
    call = echo.Expand(stubs.pb2.EchoRequest(count=1_000_000, delay_ms=5, tag=tag), timeout=60)
    for expected in range(5):
        assert next(call).index == expected
    call.cancel()
    with pytest.raises(grpc.RpcError) as error:
        next(call)
    assert error.value.code() == grpc.StatusCode.CANCELLED
    report = wait_for_report(echo, stubs.pb2, tag, cancelled=1)
    assert (report.cancelled, report.completed) == (1, 0), "the handler never saw the RST_STREAM"


def test_client_cancels_bidirectional_mid_stream(echo, stubs):
    tag = new_tag("cancel-chat")
    requests = RequestQueue()
    call = echo.Chat(requests, timeout=60)
    requests.put(stubs.pb2.EchoRequest(text="one", tag=tag))
    assert next(call).text == "one"
    call.cancel()
    report = wait_for_report(echo, stubs.pb2, tag, cancelled=1)
    requests.close()
    assert (report.cancelled, report.completed) == (1, 0)


def test_client_cancels_delayed_unary(echo, stubs):
    tag = new_tag("cancel-get")
    future = echo.Get.future(stubs.pb2.EchoRequest(delay_ms=10_000, tag=tag), timeout=60)
    time.sleep(0.3)
    assert future.cancel()
    report = wait_for_report(echo, stubs.pb2, tag, cancelled=1)
    assert (report.cancelled, report.completed) == (1, 0)


def test_server_enforces_grpc_timeout_itself(server, stubs, transport, echo):
    """A raw client sends grpc-timeout but never cancels: the server must end the call on its own."""
    tag = new_tag("server-deadline")
    port = server.tls_port if transport == "tls" else server.h2c_port
    with h2raw.RawConnection(port, tls=transport == "tls") as conn:
        conn.start()
        request = stubs.pb2.EchoRequest(delay_ms=10_000, tag=tag).SerializeToString()
        started = time.monotonic()
        conn.send(conn.grpc_call(1, h2raw.ECHO + "/Get", request, extra=[("grpc-timeout", "300m")]))
        frames, end = conn.read_until(
            lambda f: f.stream == 1 and (f.type == h2raw.RST_STREAM or (f.flags & h2raw.END_STREAM)), timeout=5)
        elapsed = time.monotonic() - started
    assert end is not None, f"no end of stream within 5s: {frames}"
    assert elapsed < 3, f"the server took {elapsed:.1f}s to enforce a 300 ms deadline"
    if end.type != h2raw.RST_STREAM:
        assert end.header("grpc-status") == "4", end
    report = wait_for_report(echo, stubs.pb2, tag, cancelled=1)
    assert (report.cancelled, report.completed) == (1, 0)


@pytest.mark.parametrize("timeout,delay_ms,expected", [
    ("99999999H", 0, "0"),   # the largest legal value: effectively no deadline
    ("20S", 0, "0"),
    ("1n", 2000, "4"),       # one nanosecond: already expired
    ("200000u", 2000, "4"),  # 200 ms in microseconds
    ("1m", 2000, "4"),
])
def test_grpc_timeout_units(server, stubs, timeout, delay_ms, expected):
    with h2raw.RawConnection(server.h2c_port) as conn:
        conn.start()
        message = stubs.pb2.EchoRequest(delay_ms=delay_ms).SerializeToString()
        conn.send(conn.grpc_call(1, h2raw.ECHO + "/Get", message, extra=[("grpc-timeout", timeout)]))
        frames, end = conn.read_until(lambda f: f.stream == 1 and (f.type == h2raw.RST_STREAM or (
            f.type == h2raw.HEADERS and f.flags & h2raw.END_STREAM)), timeout=10)
    assert end is not None, frames
    if end.type == h2raw.HEADERS:
        assert end.header("grpc-status") == expected, end
    else:
        assert expected == "4", f"unexpected reset for grpc-timeout {timeout}: {end}"


@pytest.mark.parametrize("timeout", ["123456789S", "10", "-5S", "1.5S", "10X", "", "S"])
def test_malformed_grpc_timeout_gets_an_answer(server, stubs, timeout):
    """At most 8 digits and a unit (H M S m u n): anything else must still get a definite answer
    (an error status or a reset), promptly, and leave the connection usable."""
    with h2raw.RawConnection(server.h2c_port) as conn:
        conn.start()
        message = stubs.pb2.EchoRequest(text="t").SerializeToString()
        conn.send(conn.grpc_call(1, h2raw.ECHO + "/Get", message, extra=[("grpc-timeout", timeout)]))
        frames, end = conn.read_until(lambda f: f.stream == 1 and (f.type == h2raw.RST_STREAM or (
            f.type == h2raw.HEADERS and f.flags & h2raw.END_STREAM)), timeout=10)
        assert end is not None, frames
        conn.send(conn.grpc_call(3, h2raw.ECHO + "/Get", message))
        _, after = conn.read_until(lambda f: f.stream == 3 and f.type == h2raw.HEADERS
                                   and f.flags & h2raw.END_STREAM, timeout=10)
        assert after is not None and after.header("grpc-status") == "0"
