"""Hostile clients at the connection level: slowloris, idle connections, TLS without h2, garbage
instead of a handshake, and the limits the server must advertise and enforce. Each test gets a
fresh server; afterwards it must be alive, serving, and within its memory budget."""

from __future__ import annotations

import random
import socket
import ssl
import struct
import time

import pytest

import h2raw
from h2raw import RawConnection, frame, goaways
from hostile_support import GET, assert_connection_dropped, get_message, target  # noqa: F401

pytestmark = pytest.mark.hostile


# -- connection exhaustion -------------------------------------------------------------------------

@pytest.mark.parametrize("listener", ["h2c", "tls"])
def test_silent_connection_is_closed(target, listener):
    """A client that connects and never sends the preface or a ClientHello (slowloris) is dropped
    by the handshake timeout (10 s by default), not kept forever."""
    port = target.server.tls_port if listener == "tls" else target.port
    with RawConnection(port, timeout=30) as conn:
        started = time.monotonic()
        frames = conn.drain(20, auto_ack=False)  # not even a SETTINGS ACK
        elapsed = time.monotonic() - started
        assert conn.closed, f"silent connection still open after {elapsed:.0f}s: {frames}"
        assert elapsed < 15, f"closed only after {elapsed:.0f}s"
    target.assert_survived()


def test_two_hundred_idle_connections(target):
    """200 connections that finish the preface and then idle: the server keeps serving others,
    and its memory per idle connection stays small."""
    connections = []
    try:
        for _ in range(200):
            conn = target.connect()
            conn.start()
            connections.append(conn)
        for conn in connections:
            conn.read_until(lambda f: f.type == h2raw.SETTINGS and not f.flags & h2raw.ACK, timeout=10)
        target.assert_survived()
    finally:
        for conn in connections:
            conn.close()


# -- TLS -------------------------------------------------------------------------------------------

def test_tls_without_h2_alpn_is_refused(target):
    """A TLS client that offers only http/1.1: the server must not speak HTTP/2 to it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection(("127.0.0.1", target.server.tls_port), timeout=10)
    try:
        try:
            tls = context.wrap_socket(raw, server_hostname="localhost")
        except (ssl.SSLError, ConnectionResetError):
            tls = None  # refused during the handshake: fine
        if tls is not None:
            assert tls.selected_alpn_protocol() != "http/1.1"
            tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            tls.settimeout(10)
            try:
                answer = tls.recv(100)
            except (ssl.SSLError, ConnectionResetError, socket.timeout):
                answer = b""
            assert not answer.startswith(b"HTTP/1.1 200"), answer
    finally:
        raw.close()
    target.assert_survived()


def test_garbage_instead_of_tls_handshake(target):
    # Plain TCP to the TLS port: random bytes where a ClientHello should be.
    with RawConnection(target.server.tls_port) as conn:
        conn.send(random.Random(5).randbytes(8192))
        assert_connection_dropped(conn)
    target.assert_survived()


# -- advertised limits -----------------------------------------------------------------------------

def server_settings(frame_: h2raw.Frame) -> dict[int, int]:
    return {struct.unpack(">H", frame_.payload[i:i + 2])[0]: struct.unpack(">I", frame_.payload[i + 2:i + 6])[0]
            for i in range(0, len(frame_.payload), 6)}


def test_first_settings_advertise_limits(target):
    """nghttp2 advertises no stream or header-list limit unless told: the server must send them."""
    with target.connect() as conn:
        conn.start()
        _, first = conn.read_until(lambda f: f.type == h2raw.SETTINGS and not f.flags & h2raw.ACK, timeout=5)
    assert first is not None
    values = server_settings(first)
    assert values.get(h2raw.MAX_CONCURRENT_STREAMS) == 100, values
    assert 0 < values.get(h2raw.MAX_HEADER_LIST_SIZE, 0) <= 64 * 1024, values
    target.assert_survived()


def test_streams_beyond_the_limit_are_not_served(target):
    """150 slow calls opened at once after SETTINGS were acknowledged. RFC 9113 §5.1.2 makes the
    excess a stream error (REFUSED_STREAM or PROTOCOL_ERROR), which §5.4.1 lets an endpoint treat
    as a connection error; nghttp2 does the latter (GOAWAY PROTOCOL_ERROR). Either way no more than
    100 calls may run at once."""
    message = h2raw.grpc_message(get_message(target.pb2, delay_ms=1500))
    frames: list[h2raw.Frame] = []
    with target.connect() as conn:
        conn.start()
        conn.read_until(lambda f: f.type == h2raw.SETTINGS and f.flags & h2raw.ACK, timeout=5)
        streams = [conn.new_stream() for _ in range(150)]
        conn.send(b"".join(conn.headers_frame(s, h2raw.grpc_request_headers(GET))
                           + frame(h2raw.DATA, h2raw.END_STREAM, s, message) for s in streams))
        frames = conn.drain(5)
    served = [f.stream for f in frames if f.type == h2raw.HEADERS and f.header("grpc-status") == "0"]
    refused = [f.stream for f in frames if f.type == h2raw.RST_STREAM and f.error_code() == h2raw.REFUSED_STREAM]
    received = goaways(frames)
    assert len(served) <= 100, f"{len(served)} calls served at once on a connection limited to 100"
    if received:
        assert received[0][1] == h2raw.PROTOCOL_ERROR, received
    else:
        assert len(refused) == 50, (len(served), len(refused))
    target.assert_survived()
