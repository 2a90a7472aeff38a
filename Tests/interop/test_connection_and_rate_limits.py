"""Per-client limits: connections per client IP, per-identity token-bucket rate limits answered
with RESOURCE_EXHAUSTED and a retry hint, and the request metadata (header list) size limit."""

from __future__ import annotations

import socket
import time

import grpc
import pytest

import h2raw
from conftest import make_channel, start_server
from protowire import fields


def retry_delay_from_details(details: bytes) -> tuple[str, float]:
    """(type URL, seconds) of the single Any in a google.rpc.Status: field 3 → Any{1: url, 2: value},
    value = RetryInfo{1: Duration{1: seconds, 2: nanos}}."""
    status = dict(fields(details))
    assert status[1] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    any_message = dict(fields(status[3]))
    retry_info = dict(fields(any_message[2]))
    duration = dict(fields(retry_info[1]))
    return any_message[1].decode(), duration.get(1, 0) + duration.get(2, 0) / 1e9


def test_rate_limit_answers_resource_exhausted_with_pushback_and_recovers(server_binary, certs, tmp_path, stubs):
    server = start_server(server_binary, certs, tmp_path, "--rate-limit-rps", "4", "--rate-limit-burst", "3")
    try:
        with make_channel(server, "h2c", certs) as channel:
            echo = stubs.grpc.EchoStub(channel)
            for index in range(3):
                assert echo.Get(stubs.pb2.EchoRequest(text=str(index)), timeout=10).text == str(index)
            with pytest.raises(grpc.RpcError) as error:
                echo.Get(stubs.pb2.EchoRequest(text="over"), timeout=10)
            assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert error.value.details().startswith("rate limit exceeded; retry after ")
            trailers = dict(error.value.trailing_metadata())
            pushback = int(trailers["grpc-retry-pushback-ms"])
            # One token every 250 ms; the burst was used up just now.
            assert 1 <= pushback <= 250, pushback
            assert f"retry after {pushback} ms" in error.value.details()
            type_url, seconds = retry_delay_from_details(trailers["grpc-status-details-bin"])
            assert type_url == "type.googleapis.com/google.rpc.RetryInfo"
            assert 0 < seconds <= 0.25 and abs(seconds * 1000 - pushback) <= 1

            time.sleep(pushback / 1000 + 0.02)
            assert echo.Get(stubs.pb2.EchoRequest(text="again"), timeout=10).text == "again"
    finally:
        server.stop()


def preface_connection(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(h2raw.PREFACE + h2raw.settings())
    return sock


def closed_by_server(sock: socket.socket, timeout: float = 3.0) -> bool:
    """True when the server closed the socket without sending anything (EOF or reset)."""
    sock.settimeout(timeout)
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def first_bytes(sock: socket.socket, timeout: float = 3.0) -> bytes:
    sock.settimeout(timeout)
    return sock.recv(65536)


def test_connections_per_client_are_capped_at_accept(server_binary, certs, tmp_path, stubs):
    server = start_server(server_binary, certs, tmp_path, "--max-connections-per-client", "2")
    try:
        first = preface_connection(server.h2c_port)
        second = preface_connection(server.h2c_port)
        # The server's SETTINGS arrive on the admitted connections.
        assert first_bytes(first)[3] == h2raw.SETTINGS
        assert first_bytes(second)[3] == h2raw.SETTINGS
        third = socket.create_connection(("127.0.0.1", server.h2c_port), timeout=5)
        assert closed_by_server(third)
        third.close()
        # The cap counts both listeners together.
        fourth = socket.create_connection(("127.0.0.1", server.tls_port), timeout=5)
        assert closed_by_server(fourth)
        fourth.close()
        assert "too many connections from one client" in server.log_tail()

        # Closing one frees a place.
        first.close()
        deadline = time.monotonic() + 5
        while True:
            with make_channel(server, "h2c", certs) as channel:
                try:
                    assert stubs.grpc.EchoStub(channel).Get(stubs.pb2.EchoRequest(text="in"), timeout=5).text == "in"
                    break
                except grpc.RpcError as error:
                    # The server may not have seen the close yet.
                    assert error.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline, error
                    time.sleep(0.1)
        second.close()
    finally:
        server.stop()


def test_oversized_metadata_is_refused_and_the_connection_lives(server_binary, certs, tmp_path, stubs):
    server = start_server(server_binary, certs, tmp_path, "--max-header-list-size", "4096")
    try:
        with h2raw.RawConnection(server.h2c_port) as conn:
            conn.start()
            settings_frame, _ = conn.read_until(lambda f: f.type == h2raw.SETTINGS and not f.flags & h2raw.ACK)
            request = stubs.pb2.EchoRequest(text="big").SerializeToString()
            big = conn.new_stream()
            conn.send(conn.grpc_call(big, "/orchestrator.testing.v1.Echo/Get", request,
                                     extra=[("x-big", "v" * 5000)]))
            frames, answer = conn.read_until(
                lambda f: f.stream == big and f.type in (h2raw.HEADERS, h2raw.RST_STREAM))
            assert answer is not None, frames
            assert answer.type == h2raw.HEADERS and answer.header("grpc-status") == "8", answer
            assert "exceed 4096 bytes" in (answer.header("grpc-message") or "")
            small = conn.new_stream()
            conn.send(conn.grpc_call(small, "/orchestrator.testing.v1.Echo/Get", request, extra=[("x-small", "v" * 100)]))
            frames, end = conn.read_until(
                lambda f: f.stream == small and f.type == h2raw.HEADERS and f.header("grpc-status") is not None)
            assert end is not None and end.header("grpc-status") == "0", frames
        # grpcio refuses to send what the server's SETTINGS forbid, or the server answers; either
        # way the caller sees RESOURCE_EXHAUSTED.
        with make_channel(server, "h2c", certs) as channel:
            echo = stubs.grpc.EchoStub(channel)
            assert echo.Get(stubs.pb2.EchoRequest(text="warm"), timeout=10).text == "warm"
            with pytest.raises(grpc.RpcError) as error:
                echo.Get(stubs.pb2.EchoRequest(text="x"), metadata=[("x-big", "v" * 5000)], timeout=10)
            assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        server.stop()


def test_metadata_far_past_the_limit_is_resource_exhausted_not_a_reset(echo, stubs):
    """A 65,000-byte metadata value (over four times the 16 KiB limit, under nghttp2's own 64 KiB
    per field) reset the stream with INTERNAL_ERROR, which grpcio reports as INTERNAL "Received
    RST_STREAM with error code 2", a server fault (found by black-box testing). It is answered
    RESOURCE_EXHAUSTED like any oversized header list, and other calls go on."""
    with pytest.raises(grpc.RpcError) as error:
        echo.Get(stubs.pb2.EchoRequest(text="x"), metadata=[("x-huge", "v" * 65_000)], timeout=10)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.value
    assert "request headers exceed" in error.value.details(), error.value.details()
    assert echo.Get(stubs.pb2.EchoRequest(text="after"), timeout=10).text == "after"
