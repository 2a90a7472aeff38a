"""Server keepalive: the server PINGs quiet connections and drops peers that stop answering.
Each test runs its own server with a 500 ms interval and a 500 ms timeout."""

import time

import pytest

import h2raw
from conftest import make_channel, start_server


@pytest.fixture
def keepalive_server(server_binary, certs, tmp_path):
    server = start_server(server_binary, certs, tmp_path, "--keepalive-interval-ms", "500",
                          "--keepalive-timeout-ms", "500")
    yield server
    server.stop()


def test_server_pings_and_drops_a_dead_peer(keepalive_server):
    """A peer that never ACKs PINGs (as a vanished host would not) is closed within a few seconds."""
    with h2raw.RawConnection(keepalive_server.h2c_port, timeout=20) as conn:
        conn.start()
        started = time.monotonic()
        frames = conn.drain(10)  # answers SETTINGS, never PING
        elapsed = time.monotonic() - started
    pings = [f for f in frames if f.type == h2raw.PING and not f.flags & h2raw.ACK]
    assert pings, f"no keepalive PING within 10 s: {frames}"
    assert conn.closed, f"connection still open after {elapsed:.1f}s of unanswered PINGs"
    assert elapsed < 5, f"dead peer dropped only after {elapsed:.1f}s"


def test_live_peer_stays_connected(keepalive_server):
    """A peer that ACKs every PING keeps its connection for several intervals."""
    with h2raw.RawConnection(keepalive_server.h2c_port, timeout=20) as conn:
        conn.start()
        deadline = time.monotonic() + 4
        acked = 0
        while time.monotonic() < deadline:
            try:
                current = conn.read_frame(max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            assert current is not None, "server closed a connection whose peer answered every PING"
            if current.type == h2raw.PING and not current.flags & h2raw.ACK:
                conn.send(h2raw.ping(current.payload, ack=True))
                acked += 1
        assert acked >= 2, f"expected keepalive PINGs every 500 ms, answered {acked}"
        # Still usable: our own PING is answered.
        conn.send(h2raw.ping(b"liveness"))
        _, ack = conn.read_until(lambda f: f.type == h2raw.PING and f.flags & h2raw.ACK
                                 and f.payload == b"liveness", timeout=5)
        assert ack is not None


def test_grpcio_channel_survives_keepalive(keepalive_server, certs, stubs):
    """grpcio answers PINGs itself: an idle channel keeps working across many intervals."""
    channel = make_channel(keepalive_server, "h2c", certs)
    echo = stubs.grpc.EchoStub(channel)
    first = echo.Get(stubs.pb2.EchoRequest(text="a"), timeout=10)
    time.sleep(3)
    second = echo.Get(stubs.pb2.EchoRequest(text="b"), timeout=10)
    assert first.peer == second.peer, "the connection was replaced: keepalive dropped a live peer"
    channel.close()
