"""How the transport answers two kinds of misbehaviour without hurting anyone else: streams beyond
SETTINGS_MAX_CONCURRENT_STREAMS are refused one by one (RST_STREAM REFUSED_STREAM) while the
connection and its calls go on; and past the budget of resets the client provokes, the server
sends exactly one GOAWAY and then nothing more."""

from __future__ import annotations

import pytest

import h2raw
from h2raw import frame, goaways
from hostile_support import GET, get_message, target  # noqa: F401
from test_hostile_connections import server_settings as settings_values

pytestmark = pytest.mark.hostile


@pytest.mark.parametrize("listener", ["h2c", "tls"])
def test_streams_beyond_the_limit_are_refused_and_the_rest_served(target, listener):
    message = h2raw.grpc_message(get_message(target.pb2, delay_ms=1000))
    with target.connect(listener) as conn:
        conn.start()
        frames, first = conn.read_until(lambda f: f.type == h2raw.SETTINGS and not f.flags & h2raw.ACK)
        assert first is not None, frames
        # The limit is advertised in the server's first SETTINGS.
        assert settings_values(first).get(h2raw.MAX_CONCURRENT_STREAMS) == 100, first
        conn.read_until(lambda f: f.type == h2raw.SETTINGS and f.flags & h2raw.ACK, timeout=5)
        streams = [conn.new_stream() for _ in range(130)]
        conn.send(b"".join(conn.headers_frame(s, h2raw.grpc_request_headers(GET, scheme=conn.scheme))
                           + frame(h2raw.DATA, h2raw.END_STREAM, s, message) for s in streams))
        frames = conn.drain(6)
    served = [f.stream for f in frames if f.type == h2raw.HEADERS and f.header("grpc-status") == "0"]
    refused = [f.stream for f in frames if f.type == h2raw.RST_STREAM and f.error_code() == h2raw.REFUSED_STREAM]
    assert goaways(frames) == [], goaways(frames)
    assert sorted(served) == streams[:100]
    assert sorted(refused) == streams[100:]
    target.assert_survived()


def test_one_goaway_and_nothing_after_the_reset_budget(target):
    """1,000 streams in one write, each with a connection-specific header (a malformed request
    the server must reset): a budget's worth of RST_STREAM, then one GOAWAY ENHANCE_YOUR_CALM,
    then silence and the close."""
    with target.connect() as conn:
        conn.start()
        conn.read_until(lambda f: f.type == h2raw.SETTINGS and f.flags & h2raw.ACK, timeout=5)
        streams = [conn.new_stream() for _ in range(1000)]
        conn.send(b"".join(conn.headers_frame(s, h2raw.grpc_request_headers(GET) + [("connection", "close")])
                           for s in streams))
        frames = conn.drain(5)
        closed = conn.closed
    kinds = [f.type for f in frames if f.type in (h2raw.RST_STREAM, h2raw.GOAWAY, h2raw.HEADERS)]
    received = goaways(frames)
    assert len(received) == 1, received
    assert received[0][1] == h2raw.ENHANCE_YOUR_CALM and received[0][2] == b"too_many_resets", received
    # The GOAWAY is the last frame; before it, the resets the budget allowed (burst 50, + refill).
    assert kinds[-1] == h2raw.GOAWAY, kinds[-5:]
    resets = kinds.count(h2raw.RST_STREAM)
    assert 50 <= resets <= 60, resets
    assert closed
    target.assert_survived()
