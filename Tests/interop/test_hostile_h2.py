"""Hostile HTTP/2 clients over raw sockets. Each test gets a fresh server; afterwards the server
must still be alive, answer a normal grpcio call, and its peak RSS must stay within budget."""

from __future__ import annotations

import random
import struct
import time

import pytest

import h2raw
from h2raw import RawConnection, frame, goaways, poll
from helpers import new_tag, wait_for_report
from hostile_support import EXPAND, GET, RSS_BUDGET_KIB, assert_connection_dropped, get_message, target  # noqa: F401

pytestmark = pytest.mark.hostile


# -- malformed bytes -------------------------------------------------------------------------------

@pytest.mark.parametrize("opening", [
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
    random.Random(7).randbytes(4096),
], ids=["http1", "wrong-magic", "random"])
def test_bad_preface_is_dropped(target, opening):
    with target.connect() as conn:
        conn.send(opening)
        assert_connection_dropped(conn)
    target.assert_survived()


def test_bad_preface_over_tls_is_dropped(target, certs):
    with RawConnection(target.server.tls_port, tls=True) as conn:
        conn.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
        assert_connection_dropped(conn)
    target.assert_survived()


def test_garbage_frames_after_preface(target):
    with target.connect() as conn:
        conn.start()
        conn.send(random.Random(11).randbytes(64 * 1024))
        frames = assert_connection_dropped(conn)
        assert all(code != h2raw.NO_ERROR for _, code, _ in goaways(frames)), frames
    target.assert_survived()


def test_data_on_stream_zero_is_protocol_error(target):
    with target.connect() as conn:
        conn.start()
        conn.send(frame(h2raw.DATA, 0, 0, b"hello"))
        frames = assert_connection_dropped(conn)
        assert [code for _, code, _ in goaways(frames)] == [h2raw.PROTOCOL_ERROR], frames
    target.assert_survived()


def test_frame_larger_than_max_frame_size(target):
    with target.connect() as conn:
        conn.start()
        conn.send(conn.headers_frame(1, h2raw.grpc_request_headers(h2raw.ECHO + "/Collect")))
        # 20,000 bytes against the default SETTINGS_MAX_FRAME_SIZE of 16,384 (RFC 9113 §4.2).
        conn.send(frame(h2raw.DATA, 0, 1, b"\0" * 20_000))
        frames = assert_connection_dropped(conn)
        assert [code for _, code, _ in goaways(frames)] == [h2raw.FRAME_SIZE_ERROR], frames
    target.assert_survived()


# -- oversized headers -----------------------------------------------------------------------------

def send_header_block(conn: RawConnection, stream: int, block: bytes, chunk: int = 16_000) -> None:
    """One header block split over HEADERS + CONTINUATION frames, then a request body."""
    pieces = [block[i:i + chunk] for i in range(0, len(block), chunk)] or [b""]
    data = b""
    for index, piece in enumerate(pieces):
        type_ = h2raw.HEADERS if index == 0 else h2raw.CONTINUATION
        flags = h2raw.END_HEADERS if index == len(pieces) - 1 else 0
        data += frame(type_, flags, stream, piece)
    conn.send(data)


def assert_request_refused(conn: RawConnection, pb2, stream: int = 1) -> list[h2raw.Frame]:
    """The oversized request must not be served: a reset, an error response, or a GOAWAY."""
    conn.send(frame(h2raw.DATA, h2raw.END_STREAM, stream, h2raw.grpc_message(get_message(pb2, text="x"))))
    frames, end = conn.read_until(
        lambda f: (f.stream == stream and (f.type == h2raw.RST_STREAM or f.flags & h2raw.END_STREAM))
        or f.type == h2raw.GOAWAY, timeout=10)
    served = [f for f in frames if f.stream == stream and f.header("grpc-status") == "0"]
    assert not served, f"the server accepted the oversized header list: {frames}"
    assert end is not None or conn.closed, frames
    return frames


def test_64_kib_header_block(target):
    with target.connect() as conn:
        conn.start()
        headers = h2raw.grpc_request_headers(GET) + [("x-big", "b" * (64 * 1024 - 200))]
        send_header_block(conn, 1, conn.encode(headers))
        assert_request_refused(conn, target.pb2)
    target.assert_survived()


def test_thousand_small_headers(target):
    with target.connect() as conn:
        conn.start()
        headers = h2raw.grpc_request_headers(GET) + [(f"x-h{i}", "v") for i in range(1000)]
        send_header_block(conn, 1, conn.encode(headers))
        assert_request_refused(conn, target.pb2)
    target.assert_survived()


def test_hpack_bomb(target):
    """One 4 KB entry in the dynamic table, then 1,000 one-byte references to it: ~4 MB decoded."""
    with target.connect() as conn:
        conn.start()
        block = conn.encode(h2raw.grpc_request_headers(GET))
        name, value = b"x-bomb", b"B" * 4000
        # Literal with incremental indexing, new name (RFC 7541 §6.2.1); lengths < 127 use one byte,
        # 4000 needs the 7-bit prefix continuation.
        literal = b"\x40" + bytes([len(name)]) + name + b"\x7f" + encode_int_tail(4000 - 127) + value
        # The newest dynamic entry always has index 62 (RFC 7541 §2.3.3): an indexed field 0x80|62.
        reference = bytes([0x80 | 62])
        send_header_block(conn, 1, block + literal + reference * 1000)
        assert_request_refused(conn, target.pb2)
    target.assert_survived()


def encode_int_tail(value: int) -> bytes:
    """The continuation bytes of an HPACK integer after a full prefix (RFC 7541 §5.1)."""
    out = b""
    while value >= 128:
        out += bytes([(value % 128) + 128])
        value //= 128
    return out + bytes([value])


def test_continuation_that_never_ends(target):
    with target.connect() as conn:
        conn.start()
        conn.send(frame(h2raw.HEADERS, 0, 1, conn.encode(h2raw.grpc_request_headers(GET))))
        sent = 0
        started = time.monotonic()
        while not (conn.closed or conn.write_closed) and sent < 100_000 and time.monotonic() - started < 10:
            # Empty fragments: the header list never grows, so only a CONTINUATION count can stop this.
            if not conn.send(frame(h2raw.CONTINUATION, 0, 1, b"") * 100):
                break
            sent += 100
            poll(conn)
        frames = assert_connection_dropped(conn)
        assert sent < 100_000, "the server accepted 100,000 CONTINUATION frames without closing"
        del frames
    target.assert_survived()


# -- reset floods ----------------------------------------------------------------------------------

@pytest.mark.parametrize("listener", ["h2c", "tls"])
def test_rapid_reset_burst(target, listener):
    """10,000 HEADERS + RST_STREAM pairs (CVE-2023-44487): the server must GOAWAY, not serve them all."""
    frames: list[h2raw.Frame] = []
    with target.connect(listener) as conn:
        conn.start()
        batch = b""
        for index in range(10_000):
            stream = conn.new_stream()
            batch += conn.headers_frame(stream, h2raw.grpc_request_headers(GET)) + h2raw.rst_stream(stream)
            if index % 200 == 199:
                if not conn.send(batch):
                    break
                batch = b""
                frames += poll(conn)
        frames += conn.drain(5)
        assert goaways(frames), f"no GOAWAY after 10,000 rapid resets; last frames: {frames[-5:]}"
    target.assert_survived()


def provoke(conn: RawConnection, stream: int, provocation: str, message: bytes) -> bytes:
    """Frames that open `stream` and then make the server reset it (or, for the last two, that
    nghttp2 escalates to a connection error, which RFC 9113 §5.4.1 allows)."""
    if provocation == "connection-specific-header":  # RFC 9113 §8.2.2: malformed request
        return conn.headers_frame(stream, h2raw.grpc_request_headers(GET) + [("connection", "close")])
    # Encoded only when sent: encoding updates the HPACK dynamic table the server mirrors.
    opening = conn.headers_frame(stream, h2raw.grpc_request_headers(GET))
    if provocation == "stream-window-overflow":
        return opening + h2raw.window_update(stream, 2**31 - 1)  # FLOW_CONTROL_ERROR on the stream
    if provocation == "trailers-without-end-stream":  # RFC 9113 §8.1: malformed
        return opening + conn.headers_frame(stream, [("x-trailer", "1")])
    if provocation == "window-update-zero":  # RFC 9113 §6.9
        return opening + h2raw.window_update(stream, 0)
    assert provocation == "data-after-end-stream"
    return (opening + frame(h2raw.DATA, h2raw.END_STREAM, stream, message)
            + frame(h2raw.DATA, 0, stream, message))


@pytest.mark.parametrize("provocation,stream_error", [
    ("stream-window-overflow", True),
    ("connection-specific-header", True),
    ("trailers-without-end-stream", True),
    ("window-update-zero", False),
    ("data-after-end-stream", False),
])
def test_server_sent_resets_in_a_loop(target, provocation, stream_error):
    """MadeYouReset: 10,000 streams the client makes the server reset; past a budget of resets
    it sends, the server must GOAWAY instead of resetting forever."""
    frames: list[h2raw.Frame] = []
    message = h2raw.grpc_message(get_message(target.pb2, delay_ms=1000))
    with target.connect() as conn:
        conn.start()
        # Batches of 50, each waited for, so the client never exceeds MAX_CONCURRENT_STREAMS (a
        # stream counts as open until its RST_STREAM arrives); up to 10,000 streams in all.
        for round_ in range(200):
            batch = [conn.new_stream() for _ in range(50)]
            if not conn.send(b"".join(provoke(conn, stream, provocation, message) for stream in batch)):
                break
            pending = set(batch)
            while pending and not goaways(frames):
                current = conn.read_frame(10)
                if current is None:
                    break
                frames.append(current)
                if current.type == h2raw.RST_STREAM or (current.type == h2raw.HEADERS
                                                        and current.flags & h2raw.END_STREAM):
                    pending.discard(current.stream)
            if goaways(frames) or conn.closed:
                break
        frames += conn.drain(5)
        resets = len(h2raw.find(frames, h2raw.RST_STREAM))
        received = goaways(frames)
        assert received, f"no GOAWAY after {(round_ + 1) * 50} provoked resets ({resets} RST_STREAM seen)"
        if stream_error:
            # The provocation must really have made the server reset streams before giving up.
            assert resets >= 1, f"no RST_STREAM before GOAWAY {received}"
            # The budget of server-sent resets ran out, not some other error.
            assert received[0][1] == h2raw.ENHANCE_YOUR_CALM, received
        else:
            assert received[0][1] != h2raw.NO_ERROR, received
    target.assert_survived()


# -- control-frame floods --------------------------------------------------------------------------

def test_settings_flood(target):
    with target.connect() as conn:
        conn.start()
        one = h2raw.settings({h2raw.INITIAL_WINDOW_SIZE: 65535})
        for _ in range(100):
            if not conn.send(one * 100):
                break
        frames = conn.drain(3)
        if not conn.closed:
            # Either the server gave up on the connection, or it is still coherent: it answers a PING.
            conn.send(h2raw.ping(b"alive?!!"))
            _, ack = conn.read_until(lambda f: f.type == h2raw.PING and f.flags & h2raw.ACK
                                     and f.payload == b"alive?!!", timeout=10)
            assert ack is not None or goaways(frames), frames[-5:]
        else:
            assert goaways(frames), "connection closed without GOAWAY"
    target.assert_survived()


@pytest.mark.parametrize("listener", ["h2c", "tls"])
def test_ping_flood_gets_too_many_pings(target, listener):
    frames: list[h2raw.Frame] = []
    with target.connect(listener) as conn:
        conn.start()
        for index in range(1000):
            if not conn.send(h2raw.ping(struct.pack(">Q", index))):
                break
            if index % 10 == 9:
                frames += poll(conn)
                if goaways(frames):
                    break
        frames += conn.drain(5)
        received = goaways(frames)
        assert received, f"no GOAWAY after {index + 1} PINGs without data"
        _, code, debug = received[0]
        assert code == h2raw.ENHANCE_YOUR_CALM, received
        assert debug == b"too_many_pings", received
    target.assert_survived()


def test_connection_window_overflow(target):
    with target.connect() as conn:
        conn.start()
        conn.send(h2raw.window_update(0, 2**31 - 1))  # 65,535 + 2^31-1 exceeds the maximum window
        frames = assert_connection_dropped(conn)
        assert [code for _, code, _ in goaways(frames)] == [h2raw.FLOW_CONTROL_ERROR], frames
    target.assert_survived()


def test_stream_window_overflow(target):
    with target.connect() as conn:
        conn.start()
        conn.send(conn.headers_frame(1, h2raw.grpc_request_headers(h2raw.ECHO + "/Chat")))
        conn.send(h2raw.window_update(1, 2**31 - 1))
        frames, reset = conn.read_until(lambda f: f.type == h2raw.RST_STREAM and f.stream == 1, timeout=10)
        assert reset is not None and reset.error_code() == h2raw.FLOW_CONTROL_ERROR, frames
        # A stream error leaves the connection usable.
        conn.send(h2raw.ping(b"stillok!"))
        _, ack = conn.read_until(lambda f: f.type == h2raw.PING and f.payload == b"stillok!", timeout=10)
        assert ack is not None
    target.assert_survived()


# -- flow control ----------------------------------------------------------------------------------

@pytest.mark.parametrize("listener", ["h2c", "tls"])
@pytest.mark.parametrize("streams", [1, 8])
def test_client_that_never_reads(target, streams, listener):
    """Huge HTTP/2 windows, a tiny TCP receive buffer, and no reads: only the server's own bounded
    queues stand between a 1 GiB-per-stream Expand and its memory."""
    tag = new_tag("never-reads")
    samples = []
    with target.connect(listener, rcvbuf=4096) as conn:
        request = h2raw.grpc_message(get_message(target.pb2, count=16_384, response_size=65_536, tag=tag))
        # One write, so the server reads every request before its output stalls: a server that
        # stops reading while its output is above the watermark would otherwise never start the
        # later handlers, and only started handlers can report their cancellation.
        opening = h2raw.PREFACE + h2raw.settings({h2raw.INITIAL_WINDOW_SIZE: 2**31 - 1})
        opening += h2raw.window_update(0, 2**31 - 1 - 65535)
        for _ in range(streams):
            stream = conn.new_stream()
            opening += conn.headers_frame(stream, h2raw.grpc_request_headers(EXPAND, scheme=conn.scheme))
            opening += frame(h2raw.DATA, h2raw.END_STREAM, stream, request)
        assert conn.send(opening)
        for _ in range(30):
            time.sleep(0.1)
            samples.append(target.server.rss_kib())
    # Closing the socket must cancel the stalled handlers, not leave them blocked forever.
    report = wait_for_report(target.echo, target.pb2, tag, cancelled=streams)
    growth = max(samples) - target.baseline_kib
    assert growth < RSS_BUDGET_KIB, f"RSS grew by {growth // 1024} MiB while the client did not read"
    assert (report.cancelled, report.completed) == (streams, 0), report
    target.assert_survived()
