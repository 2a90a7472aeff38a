"""tools/chaos.d/proxy.py and pgwire.py against plain sockets and a scripted fake PostgreSQL."""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "chaos.d"))

from pgwire import COMMIT_DONE, COMMIT_QUERY, FrameMatcher, frame  # noqa: E402
from proxy import ProxyHub  # noqa: E402

READY = frame(b"Z", b"I")


class Target:
    """A loopback TCP server; `respond(data) -> bytes` answers each chunk it reads."""

    def __init__(self, respond) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.received = bytearray()
        self.respond = respond
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn) -> None:
        with conn:
            try:
                while data := conn.recv(65536):
                    self.received += data
                    reply = self.respond(bytes(data))
                    if reply:
                        conn.sendall(reply)
            except ConnectionError:
                pass  # the proxy resets connections on purpose


def echo(data: bytes) -> bytes:
    return data


@pytest.fixture
def hub():
    hub = ProxyHub()
    yield hub
    hub.close()


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return sock


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_frame_matcher_finds_a_frame_split_across_chunks():
    matcher = FrameMatcher(COMMIT_QUERY)
    stream = frame(b"Q", b"BEGIN\x00") + COMMIT_QUERY
    cut = len(stream) - 5
    assert matcher.feed(stream[:cut]) is None
    assert matcher.feed(stream[cut:]) == COMMIT_QUERY
    assert COMMIT_QUERY == b"Q" + struct.pack("!I", 11) + b"COMMIT\x00"


def test_pass_forwards_both_ways(hub):
    proxy = hub.add("t", Target(echo).port)
    with connect(proxy.port) as sock:
        sock.sendall(b"hello")
        assert recv_exactly(sock, 5) == b"hello"


def test_stall_holds_bytes_and_releases_them_intact(hub):
    proxy = hub.add("t", Target(echo).port)
    with connect(proxy.port) as sock:
        sock.sendall(b"a")
        assert recv_exactly(sock, 1) == b"a"
        proxy.set_mode("stall")
        sock.sendall(b"bcd")
        sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            sock.recv(10)
        proxy.set_mode("pass")
        sock.settimeout(5)
        assert recv_exactly(sock, 3) == b"bcd"


def test_delay_forwards_late(hub):
    proxy = hub.add("t", Target(echo).port)
    proxy.set_mode("delay", 0.3)
    with connect(proxy.port) as sock:
        started = time.monotonic()
        sock.sendall(b"x")
        assert recv_exactly(sock, 1) == b"x"
        assert time.monotonic() - started >= 0.55  # delayed on the way there and back


def test_delay_is_latency_not_a_throughput_limit(hub):
    proxy = hub.add("t", Target(echo).port)
    proxy.set_mode("delay", 0.3)
    with connect(proxy.port) as sock:
        started = time.monotonic()
        for _ in range(20):
            sock.sendall(b"y")
            time.sleep(0.01)
        assert recv_exactly(sock, 20) == b"y" * 20
        assert time.monotonic() - started < 2.0  # 20 chunks one after another would take 6 s


def test_a_reset_on_one_side_resets_the_other(hub):
    """A peer that dies must not leave the other side's connection open (a PostgreSQL backend
    would keep its transaction, and its row locks, for as long as it stays open)."""
    closed = threading.Event()

    def watch(data: bytes) -> bytes:
        return b""

    target = Target(watch)
    original = target.handle

    def handle(conn):
        original(conn)
        closed.set()

    target.handle = handle
    proxy = hub.add("t", target.port)
    sock = connect(proxy.port)
    sock.sendall(b"begin")
    time.sleep(0.2)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST
    assert closed.wait(5), "the target's connection stayed open after the client's reset"


def test_blackhole_swallows_then_resets(hub):
    target = Target(echo)
    proxy = hub.add("t", target.port)
    with connect(proxy.port) as sock:
        sock.sendall(b"before")
        assert recv_exactly(sock, 6) == b"before"
        proxy.set_mode("blackhole")
        sock.sendall(b"lost")
        sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            sock.recv(10)
        proxy.set_mode("pass")
        sock.settimeout(5)
        with pytest.raises(ConnectionResetError):
            while sock.recv(10):
                pass
    assert bytes(target.received) == b"before"
    with connect(proxy.port) as fresh:  # new connections pass again
        fresh.sendall(b"after")
        assert recv_exactly(fresh, 5) == b"after"


def test_cut_resets_every_connection(hub):
    proxy = hub.add("t", Target(echo).port)
    socks = [connect(proxy.port) for _ in range(3)]
    for sock in socks:
        sock.sendall(b"x")
        assert recv_exactly(sock, 1) == b"x"
    assert proxy.cut_all() == 3
    for sock in socks:
        with pytest.raises(ConnectionResetError):
            while sock.recv(10):
                pass
        sock.close()


def test_commit_reply_is_dropped_after_the_commit_reached_the_server(hub):
    """The fake server answers COMMIT with CommandComplete "COMMIT" + ReadyForQuery; the client must
    see neither, its connection must be reset, and the proxy must count a committed drop."""

    def postgres(data: bytes) -> bytes:
        if COMMIT_QUERY in data:
            return COMMIT_DONE + READY
        return frame(b"C", b"SELECT 1\x00") + READY

    target = Target(postgres)
    proxy = hub.add("pg", target.port, postgres=True)
    proxy.arm_commit_drop(skip=1)  # the second COMMIT
    with connect(proxy.port) as sock:
        sock.sendall(frame(b"Q", b"SELECT 1\x00"))
        assert recv_exactly(sock, 20)[:1] == b"C"
        sock.sendall(COMMIT_QUERY)
        assert recv_exactly(sock, len(COMMIT_DONE + READY)) == COMMIT_DONE + READY  # skipped
        sock.sendall(COMMIT_QUERY)
        with pytest.raises(ConnectionResetError):
            while sock.recv(100):
                pass
    assert bytes(target.received).count(COMMIT_QUERY) == 2  # the server did get the COMMIT
    assert not proxy.commit_drop_pending()
    assert proxy.stats.commit_drops == 1 and proxy.stats.commit_drops_committed == 1
