"""Partly received request messages are bounded per connection (a message that does not fit waits:
its stream gets no window) and per server (a message that does not fit is refused
RESOURCE_EXHAUSTED). Without these budgets one connection could make the server hold 100 streams
× 4 MiB of messages it never finishes (two connections held 860 MB)."""

from __future__ import annotations

import struct
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

import h2raw
from conftest import make_channel, start_server
from h2raw import RawConnection, frame
from hostile_support import GET, get_message

MiB = 1024 * 1024
LARGEST = 4 * MiB  # the server's max-receive-message-size (default)
INITIAL_WINDOW = 1 * MiB  # the server's SETTINGS_INITIAL_WINDOW_SIZE
CHUNK = 16384


class PartialSender:
    """Opens streams that each declare one large message and sends its body as fast as the
    server's flow control allows, never finishing unless told to."""

    def __init__(self, conn: RawConnection):
        self.conn = conn
        self.connection_window = 65535
        self.initial_window = 65535
        self.windows: dict[int, int] = {}
        self.sent: dict[int, int] = {}
        self.declared: dict[int, int] = {}
        self.ended: dict[int, h2raw.Frame] = {}
        self.received: dict[int, bytes] = {}
        conn.start()

    def open(self, declared: int | None, path: str = GET) -> int:
        """A stream whose first message declares `declared` bytes (None: headers only)."""
        stream = self.conn.new_stream()
        self.windows[stream] = self.initial_window
        self.sent[stream] = 0
        self.declared[stream] = declared or 0
        self.conn.sock.settimeout(10)
        assert self.conn.send(self.conn.headers_frame(stream, h2raw.grpc_request_headers(path, scheme=self.conn.scheme)))
        if declared is not None:
            self._data(stream, struct.pack(">BI", 0, declared))
        return stream

    def flood(self, streams: list[int], chunk: bytes, upto: int, quiet: float = 1.5) -> None:
        """Sends `chunk` (whole messages) on each stream while the server gives window, until each
        has sent `upto` bytes or no window came for `quiet` seconds; counts into `sent`."""
        last = time.monotonic()
        while time.monotonic() - last < quiet and any(self.sent[s] < upto for s in streams):
            self.absorb()
            progressed = False
            for stream in streams:
                if self.sent[stream] < upto and min(self.windows[stream], self.connection_window) >= len(chunk):
                    self._data(stream, chunk)
                    self.sent[stream] += len(chunk)
                    progressed = True
            if progressed:
                last = time.monotonic()
            else:
                self.absorb(0.05)

    def _data(self, stream: int, payload: bytes, end: bool = False) -> None:
        # Reads leave a short socket timeout behind, which would turn a full send buffer (the
        # server reading slower than we write) into a failed write.
        self.conn.sock.settimeout(10)
        assert self.conn.send(frame(h2raw.DATA, h2raw.END_STREAM if end else 0, stream, payload)), "the server stopped reading"

        self.windows[stream] -= len(payload)
        self.connection_window -= len(payload)

    def absorb(self, wait: float = 0.0) -> None:
        for current in h2raw.poll(self.conn, wait):
            if current.type == h2raw.SETTINGS and not current.flags & h2raw.ACK:
                for offset in range(0, len(current.payload), 6):
                    key, value = struct.unpack(">HI", current.payload[offset:offset + 6])
                    if key == h2raw.INITIAL_WINDOW_SIZE:
                        for stream in self.windows:
                            self.windows[stream] += value - self.initial_window
                        self.initial_window = value
            elif current.type == h2raw.DATA:
                self.received[current.stream] = self.received.get(current.stream, b"") + current.payload
            elif current.type == h2raw.WINDOW_UPDATE:
                increment = struct.unpack(">I", current.payload[:4])[0] & 0x7FFFFFFF
                if current.stream == 0:
                    self.connection_window += increment
                elif current.stream in self.windows:
                    self.windows[current.stream] += increment
            elif current.stream and (current.type == h2raw.RST_STREAM
                                     or (current.type == h2raw.HEADERS and current.flags & h2raw.END_STREAM)):
                # The first: a trailers-only answer is followed by RST_STREAM NO_ERROR (we had not
                # half-closed).
                self.ended.setdefault(current.stream, current)

    def pump(self, streams: list[int], upto: dict[int, int], quiet: float = 1.0, limit: float = 60.0) -> None:
        """Sends on `streams` until each has sent `upto[stream]` body bytes or the server has
        given no window for `quiet` seconds."""
        started = last_progress = time.monotonic()
        while time.monotonic() - last_progress < quiet and time.monotonic() - started < limit:
            self.absorb()
            progressed = False
            for stream in streams:
                if stream in self.ended:
                    continue
                remaining = upto[stream] - self.sent[stream]
                size = min(CHUNK, remaining, self.windows[stream], self.connection_window)
                if size > 0:
                    self._data(stream, b"x" * size)
                    self.sent[stream] += size
                    progressed = True
            if progressed:
                last_progress = time.monotonic()
            elif all(self.sent[s] >= upto[s] or s in self.ended for s in streams):
                return
            else:
                self.absorb(0.05)

    def finish(self, stream: int, timeout: float = 20.0) -> h2raw.Frame:
        """Sends the rest of the stream's message with END_STREAM; returns its trailers."""
        self.pump([stream], {stream: self.declared[stream]}, quiet=5.0)
        assert self.sent[stream] == self.declared[stream], \
            f"stream {stream} got window for {self.sent[stream]} of {self.declared[stream]} bytes"
        self._data(stream, b"", end=True)
        deadline = time.monotonic() + timeout
        while stream not in self.ended and time.monotonic() < deadline:
            self.absorb(0.1)
        assert stream in self.ended, f"no answer on stream {stream}"
        return self.ended[stream]


def echo_message_of(size: int) -> bytes:
    """An EchoRequest of exactly `size` bytes: field 2 (payload), length-delimited."""
    body = size - 1 - len(_varint(size))
    while 1 + len(_varint(body)) + body != size:
        body -= 1
    return b"\x12" + _varint(body) + b"y" * body


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def vm_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing")


def peak_kib(pid: int) -> int:
    return vm_kib(pid, "VmHWM")


def echo_ok(server, certs, stubs, payload_size: int, calls: int) -> None:
    channel = make_channel(server, "h2c", certs)
    try:
        echo = stubs.grpc.EchoStub(channel)
        payload = b"p" * payload_size
        with ThreadPoolExecutor(calls) as pool:
            replies = list(pool.map(lambda _: echo.Get(stubs.pb2.EchoRequest(payload=payload), timeout=60), range(calls)))
        assert all(reply.payload == payload for reply in replies)
    finally:
        channel.close()


@pytest.mark.hostile
def test_hundred_unfinished_large_messages_on_one_connection(server_binary, certs, tmp_path, stubs):
    """Every stream declares a 4 MiB message and sends what flow control allows, never finishing.
    With the default budget (4 × 4 MiB per connection) four are granted; the other 96 stop at the
    1 MiB initial window: the server holds at most 16 + 96 MiB, not 400."""
    server = start_server(server_binary, certs, tmp_path)
    try:
        echo_ok(server, certs, stubs, 64 * 1024, 4)
        baseline = int(open(f"/proc/{server.pid}/status").read().split("VmRSS:")[1].split()[0])
        with RawConnection(server.h2c_port) as conn:
            sender = PartialSender(conn)
            streams = [sender.open(LARGEST) for _ in range(100)]
            sender.pump(streams, {s: LARGEST - 1 for s in streams}, quiet=1.5)
            beyond_initial = [s for s in streams if sender.sent[s] > INITIAL_WINDOW]
            total = sum(sender.sent.values())
            growth_mib = (peak_kib(server.pid) - baseline) / 1024
            print(f"granted {len(beyond_initial)} streams, {total / MiB:.1f} MiB accepted, peak RSS growth {growth_mib:.1f} MiB")
            assert not sender.ended, sender.ended
            assert len(beyond_initial) == 4, sorted(sender.sent.values())
            assert total <= 4 * LARGEST + 96 * INITIAL_WINDOW
            # Calls on other connections go on meanwhile, large ones included.
            echo_ok(server, certs, stubs, 3 * MiB, 4)
        assert growth_mib < 4 * LARGEST / MiB + 96 * INITIAL_WINDOW / MiB + 32
        assert server.alive()
        # The connection's reservations went with it: the server-wide total is back to zero, so a
        # burst of large calls is served again.
        echo_ok(server, certs, stubs, 3 * MiB, 8)
    finally:
        server.stop()


def test_waiting_message_is_granted_when_the_earlier_one_completes(server_binary, certs, tmp_path, stubs):
    server = start_server(server_binary, certs, tmp_path, "--max-connection-receive-buffer", str(LARGEST))
    try:
        with RawConnection(server.h2c_port) as conn:
            sender = PartialSender(conn)
            first = sender.open(LARGEST)
            sender.pump([first], {first: 2 * MiB})
            assert sender.sent[first] == 2 * MiB  # granted: its window came back
            second = sender.open(LARGEST)
            sender.pump([second], {second: LARGEST}, quiet=1.0)
            assert sender.sent[second] == INITIAL_WINDOW - 5, sender.sent  # waiting: no window beyond the first (less the 5-byte prefix)
            # Completing the first message frees the budget. (Its body, "xx…", parses as repeated
            # unknown field 15, so the call succeeds.)
            ended = sender.finish(first)
            assert ended.type == h2raw.HEADERS and ended.header("grpc-status") == "0", ended
            sender.pump([second], {second: LARGEST - 1}, quiet=3.0)
            assert sender.sent[second] == LARGEST - 1, sender.sent
        assert server.alive()
    finally:
        server.stop()


def test_server_budget_refuses_a_message_that_does_not_fit(server_binary, certs, tmp_path, stubs):
    """The server-wide budget counts bytes that arrived: two connections holding nearly 4 MiB each
    fill 8 MiB, and a third connection's partial message is refused at its first buffered bytes."""
    server = start_server(server_binary, certs, tmp_path, "--max-connection-receive-buffer", str(LARGEST),
                          "--max-server-receive-buffer", str(2 * LARGEST))
    try:
        with RawConnection(server.h2c_port) as a, RawConnection(server.h2c_port) as b, \
                RawConnection(server.h2c_port) as c:
            senders = [PartialSender(conn) for conn in (a, b, c)]
            held = [sender.open(LARGEST) for sender in senders[:2]]
            for sender, stream in zip(senders[:2], held):
                sender.pump([stream], {stream: LARGEST - 1})
                assert sender.sent[stream] == LARGEST - 1 and not sender.ended
            refused = senders[2].open(3 * MiB)
            senders[2].pump([refused], {refused: 2 * MiB}, quiet=1.0)
            answer = senders[2].ended.get(refused)
            assert answer is not None and answer.type == h2raw.HEADERS, senders[2].ended
            assert answer.header("grpc-status") == str(grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]), answer.headers
            message = answer.header("grpc-message") or ""
            assert "partly received request messages" in message and str(2 * LARGEST) in message, message
            # A message that arrives whole in one read buffers nothing partial, so it is served even now.
            small = c.new_stream()
            c.send(c.grpc_call(small, GET, echo_message_of(1000)))
            frames, trailers = c.read_until(lambda f: f.stream == small and f.type == h2raw.HEADERS
                                            and f.flags & h2raw.END_STREAM)
            assert trailers is not None and trailers.header("grpc-status") == "0", frames
            # Resetting one of the held calls gives its bytes back: a new large message fits.
            a.send(h2raw.rst_stream(held[0]))
            time.sleep(0.3)
            again = senders[2].open(3 * MiB)
            senders[2].pump([again], {again: 2 * MiB})
            assert senders[2].sent[again] == 2 * MiB and again not in senders[2].ended, senders[2].ended
        assert server.alive()
        echo_ok(server, certs, stubs, 3 * MiB, 2)
    finally:
        server.stop()


@pytest.mark.hostile
def test_length_prefixes_alone_do_not_fill_the_server_budget(server_binary, certs, tmp_path, stubs):
    """Found by black-box testing: when the server counted declared lengths, 64 connections
    sending nothing but 5-byte prefixes of 4 MiB messages (13 KB in all) filled its 1 GiB and every
    other client's large call was refused. It counts buffered bytes now. The prefixes also no
    longer reserve 4 MiB of address space each (1,000 of them took 4 GB; under `ulimit -v` the
    server aborted)."""
    server = start_server(server_binary, certs, tmp_path, "--max-connection-receive-buffer", str(LARGEST),
                          "--max-server-receive-buffer", str(2 * LARGEST))
    try:
        echo_ok(server, certs, stubs, 3 * MiB, 1)
        virtual_before = vm_kib(server.pid, "VmSize")
        conns = [RawConnection(server.h2c_port) for _ in range(10)]
        try:
            senders = [PartialSender(conn) for conn in conns]
            for sender in senders:
                for _ in range(100):
                    sender.open(LARGEST)
            time.sleep(0.5)
            for sender in senders:
                sender.absorb(0.05)
                assert not sender.ended, sender.ended
            growth_mib = (vm_kib(server.pid, "VmSize") - virtual_before) / 1024
            print(f"1,000 prefixes: address space grew by {growth_mib:.0f} MiB")
            assert growth_mib < 512
            echo_ok(server, certs, stubs, 3 * MiB, 2)
        finally:
            for conn in conns:
                conn.close()
    finally:
        server.stop()


def test_a_waiter_leaving_lets_the_next_one_in(server_binary, certs, tmp_path, stubs):
    """Found by black-box testing: the queue was served only when a reservation ended, so when the
    first waiter left (reset, deadline) the one behind it, which fitted, stayed stuck."""
    server = start_server(server_binary, certs, tmp_path, "--max-connection-receive-buffer", str(3 * LARGEST))
    try:
        with RawConnection(server.h2c_port) as conn:
            sender = PartialSender(conn)
            holders = [sender.open(LARGEST), sender.open(LARGEST), sender.open(2 * MiB)]  # 10 of 12 MiB
            sender.pump(holders, {s: 64 * 1024 for s in holders})
            big = sender.open(LARGEST)  # does not fit: waits
            sender.pump([big], {big: LARGEST - 1}, quiet=1.0)
            fits = sender.open(2 * MiB)  # would fit, but waits behind `big` (oldest first)
            sender.pump([fits], {fits: 2 * MiB - 1}, quiet=1.0)
            assert sender.sent[big] == sender.sent[fits] == INITIAL_WINDOW - 5, sender.sent
            conn.send(h2raw.rst_stream(big))
            sender.pump([fits], {fits: 2 * MiB - 1}, quiet=2.0)
            assert sender.sent[fits] == 2 * MiB - 1 and fits not in sender.ended, sender.sent
        assert server.alive()
    finally:
        server.stop()


@pytest.mark.hostile
@pytest.mark.parametrize("payload,streams", [(0, 1), (1, 20)], ids=["empty-messages", "one-byte-messages-20-streams"])
def test_tiny_messages_to_a_handler_that_stopped_reading_are_held_at_the_window(server_binary, certs, tmp_path, stubs,
                                                                                payload, streams):
    """Found by black-box testing: the handler's queue counted message bytes only, so empty
    messages never held the window (256 MiB of them took 430 MB), and one-byte messages decoded
    within the window weighed ten times their wire size (100 streams took 1.9 GB). Messages now
    cost 64 bytes more each, and bytes arriving while the queue is full are kept raw."""
    server = start_server(server_binary, certs, tmp_path)
    try:
        echo_ok(server, certs, stubs, 1000, 1)
        baseline = vm_kib(server.pid, "VmRSS")
        with RawConnection(server.h2c_port) as conn:
            sender = PartialSender(conn)
            chats = [sender.open(None, path=h2raw.ECHO + "/Chat") for _ in range(streams)]
            stalled = h2raw.grpc_message(get_message(stubs.pb2, delay_ms=120_000))  # the handler sleeps on it
            for chat in chats:
                sender._data(chat, stalled)
            time.sleep(0.3)
            unit = h2raw.grpc_message(b"x" * payload)
            sender.flood(chats, unit * (CHUNK // len(unit)), upto=16 * MiB)
            accepted = max(sender.sent.values())
            growth_mib = (peak_kib(server.pid) - baseline) / 1024
            print(f"{payload}-byte messages on {streams} stream(s): {accepted / MiB:.2f} MiB accepted per stream, "
                  f"peak RSS growth {growth_mib:.1f} MiB")
            # The queue's 256 KiB of cost (64 bytes a message and more), then the 1 MiB window.
            assert accepted <= INITIAL_WINDOW + 256 * 1024 * len(unit) // 64 + CHUNK, accepted
            assert not sender.ended, sender.ended
        assert growth_mib < streams * 4 + 16
        assert server.alive()
        echo_ok(server, certs, stubs, 1000, 2)
    finally:
        server.stop()


def test_concurrent_large_calls_on_one_channel_all_complete(server_binary, certs, tmp_path, stubs):
    """grpcio sends 12 large messages at once on one connection whose budget holds one: they
    wait their turn (flow control), none fails."""
    server = start_server(server_binary, certs, tmp_path, "--max-connection-receive-buffer", str(LARGEST))
    try:
        echo_ok(server, certs, stubs, 3 * MiB, 12)
    finally:
        server.stop()


def test_messages_held_raw_while_the_handler_sleeps_arrive_in_order(server_binary, certs, tmp_path, stubs):
    """What came in while the handler's queue was full (kept raw) is de-framed in order once it
    drains, and the request's end waits for it: every message answered, none lost or reordered."""
    server = start_server(server_binary, certs, tmp_path)
    try:
        channel = make_channel(server, "h2c", certs)
        try:
            echo = stubs.grpc.EchoStub(channel)
            count = 20_000

            def requests():
                yield stubs.pb2.EchoRequest(text="first", delay_ms=1500)
                for index in range(count):
                    yield stubs.pb2.EchoRequest(text=str(index), payload=b"p" * (index % 300))

            texts = [reply.text for reply in echo.Chat(requests(), timeout=120)]
        finally:
            channel.close()
        assert texts == ["first"] + [str(index) for index in range(count)]
    finally:
        server.stop()


@pytest.mark.parametrize("payload,count", [(0, 50_000), (3, 100_000)], ids=["empty", "three-byte"])
def test_a_burst_of_tiny_messages_to_a_client_streaming_call_is_counted_whole(server_binary, certs, tmp_path, stubs,
                                                                              payload, count):
    """Found by black-box testing: a burst of small messages packed into full DATA frames filled
    Collect's queue, the rest was held raw, and once the handler had drained the queue nothing
    de-framed the rest: the call hung (the window held, so no DATA came to restart it)."""
    server = start_server(server_binary, certs, tmp_path)
    try:
        with RawConnection(server.h2c_port) as conn:
            sender = PartialSender(conn)
            collect = sender.open(None, path=h2raw.ECHO + "/Collect")
            unit = h2raw.grpc_message(b"\x18\x81\x01"[:payload])  # empty, or count = 129 (3 bytes)
            per_frame = CHUNK // len(unit)
            sender.flood([collect], unit * per_frame, upto=(count // per_frame) * per_frame * len(unit), quiet=5.0)
            rest = count - sender.sent[collect] // len(unit)
            while rest > 0:
                sender.absorb(0.05)
                if min(sender.windows[collect], sender.connection_window) >= rest * len(unit):
                    sender._data(collect, unit * rest)
                    rest = 0
            sender._data(collect, b"", end=True)
            deadline = time.monotonic() + 30
            while collect not in sender.ended and time.monotonic() < deadline:
                sender.absorb(0.1)
            trailers = sender.ended.get(collect)
            assert trailers is not None and trailers.header("grpc-status") == "0", (sender.sent, trailers)
            reply = stubs.pb2.EchoResponse.FromString(sender.received[collect][5:])
            assert reply.count == count
        assert server.alive()
    finally:
        server.stop()
