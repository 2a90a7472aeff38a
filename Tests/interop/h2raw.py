"""A raw HTTP/2 client over sockets for protocol and hostile tests.

grpcio never sends malformed frames, so these tests write frames byte by byte (hpack from the
`h2` project encodes header blocks) and read whatever the server answers."""

from __future__ import annotations

import socket
import ssl
import struct
import time
from dataclasses import dataclass, field

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
FRAME_NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING", "GOAWAY",
               "WINDOW_UPDATE", "CONTINUATION"]
END_STREAM = ACK = 0x1
END_HEADERS = 0x4

# Error codes (RFC 9113 §7).
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL = 0x5, 0x6, 0x7, 0x8
COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 0x9, 0xB

# SETTINGS identifiers.
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE = 0x1, 0x2, 0x3, 0x4
MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE = 0x5, 0x6

ECHO = "/orchestrator.testing.v1.Echo"


@dataclass
class Frame:
    type: int
    flags: int
    stream: int
    payload: bytes
    headers: list[tuple[str, str]] | None = field(default=None)

    @property
    def name(self) -> str:
        return FRAME_NAMES[self.type] if self.type < len(FRAME_NAMES) else f"0x{self.type:x}"

    def goaway(self) -> tuple[int, int, bytes]:
        """(last stream id, error code, debug data) of a GOAWAY frame."""
        last, code = struct.unpack(">II", self.payload[:8])
        return last & 0x7FFFFFFF, code, self.payload[8:]

    def error_code(self) -> int:
        """Error code of an RST_STREAM frame."""
        return struct.unpack(">I", self.payload[:4])[0]

    def header(self, name: str) -> str | None:
        for key, value in self.headers or []:
            if key == name:
                return value
        return None

    def __repr__(self) -> str:
        detail = ""
        if self.type == GOAWAY:
            detail = f" goaway={self.goaway()}"
        elif self.type == RST_STREAM:
            detail = f" code={self.error_code()}"
        elif self.headers is not None:
            detail = f" headers={self.headers}"
        return f"<{self.name} flags=0x{self.flags:x} stream={self.stream} len={len(self.payload)}{detail}>"


def frame(type_: int, flags: int, stream: int, payload: bytes = b"", length: int | None = None) -> bytes:
    """Serialises one frame; `length` lets a test lie about the payload length."""
    size = len(payload) if length is None else length
    return struct.pack(">I", size)[1:] + struct.pack(">BBI", type_, flags, stream & 0x7FFFFFFF) + payload


def settings(values: dict[int, int] | None = None, ack: bool = False) -> bytes:
    body = b"".join(struct.pack(">HI", key, value) for key, value in (values or {}).items())
    return frame(SETTINGS, ACK if ack else 0, 0, body)


def window_update(stream: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", increment))


def rst_stream(stream: int, code: int = CANCEL) -> bytes:
    return frame(RST_STREAM, 0, stream, struct.pack(">I", code))


def ping(data: bytes = b"12345678", ack: bool = False) -> bytes:
    return frame(PING, ACK if ack else 0, 0, data)


def grpc_message(message: bytes) -> bytes:
    """The gRPC length-prefixed message: flag byte (uncompressed) + big-endian length."""
    return struct.pack(">BI", 0, len(message)) + message


def grpc_request_headers(path: str, authority: str = "127.0.0.1", scheme: str = "http",
                         content_type: str = "application/grpc", extra=()) -> list[tuple[str, str]]:
    return [(":method", "POST"), (":scheme", scheme), (":path", path), (":authority", authority),
            ("content-type", content_type), ("te", "trailers"), *extra]


class RawConnection:
    """One TCP (or TLS with ALPN h2) connection driven frame by frame."""

    def __init__(self, port: int, tls: bool = False, timeout: float = 10.0, rcvbuf: int | None = None):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # Set before connect so the advertised TCP window is small too.
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        raw.settimeout(timeout)
        raw.connect(("127.0.0.1", port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["h2"])
            raw = context.wrap_socket(raw, server_hostname="localhost")
            self.scheme = "https"
        self.sock = raw
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 24
        self.decoder.max_allowed_table_size = 1 << 24
        self.buffer = b""
        self.closed = False  # the server's side ended (EOF or reset) and everything sent was read
        self.write_closed = False  # a write failed: the server no longer reads
        self.header_block: tuple[Frame, bytes] | None = None
        self.next_stream = 1

    # -- writing --------------------------------------------------------------------------

    def send(self, data: bytes) -> bool:
        """Writes bytes; False when the server already closed the connection. Reading goes on:
        what the server sent before closing (a GOAWAY) is still in our receive buffer."""
        if self.write_closed:
            return False
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.write_closed = True
            return False

    def start(self, values: dict[int, int] | None = None) -> bool:
        return self.send(PREFACE + settings(values))

    def new_stream(self) -> int:
        stream = self.next_stream
        self.next_stream += 2
        return stream

    def encode(self, headers) -> bytes:
        return self.encoder.encode(headers)

    def headers_frame(self, stream: int, headers, end_stream: bool = False) -> bytes:
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        return frame(HEADERS, flags, stream, self.encode(headers))

    def grpc_call(self, stream: int, path: str, message: bytes, content_type: str = "application/grpc",
                  extra=()) -> bytes:
        """HEADERS + one DATA frame with END_STREAM: a complete unary request."""
        headers = grpc_request_headers(path, scheme=self.scheme, content_type=content_type, extra=extra)
        return self.headers_frame(stream, headers) + frame(DATA, END_STREAM, stream, grpc_message(message))

    # -- reading --------------------------------------------------------------------------

    def read_frame(self, timeout: float = 10.0, auto_ack: bool = True) -> Frame | None:
        """The next frame, or None once the server closed the connection. Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buffer) >= 9:
                length = int.from_bytes(self.buffer[:3], "big")
                if len(self.buffer) >= 9 + length:
                    type_, flags, stream = struct.unpack(">BBI", self.buffer[3:9])
                    payload = self.buffer[9:9 + length]
                    self.buffer = self.buffer[9 + length:]
                    result = Frame(type_, flags, stream & 0x7FFFFFFF, payload)
                    self._decode_headers(result)
                    if auto_ack and type_ == SETTINGS and not flags & ACK:
                        self.send(settings(ack=True))
                    return result
            if self.closed:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no frame from the server")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(1 << 16)
            except socket.timeout as error:
                raise TimeoutError("no frame from the server") from error
            except (ConnectionResetError, ssl.SSLError, OSError):
                chunk = b""
            if not chunk:
                self.closed = True
            self.buffer += chunk

    def _decode_headers(self, result: Frame) -> None:
        if result.type == HEADERS:
            block = result.payload
            if result.flags & 0x8:  # PADDED
                pad = block[0]
                block = block[1:len(block) - pad]
            if result.flags & 0x20:  # PRIORITY
                block = block[5:]
            self.header_block = (result, block)
        elif result.type == CONTINUATION and self.header_block:
            self.header_block = (self.header_block[0], self.header_block[1] + result.payload)
        else:
            return
        if result.flags & END_HEADERS and self.header_block:
            first, block = self.header_block
            first.headers = [(k.decode() if isinstance(k, bytes) else k, v.decode() if isinstance(v, bytes) else v)
                             for k, v in self.decoder.decode(block, raw=True)]
            result.headers = first.headers
            self.header_block = None

    def read_until(self, predicate, timeout: float = 10.0) -> tuple[list[Frame], Frame | None]:
        """Frames up to and including the first matching one (None if the connection closed first)."""
        seen: list[Frame] = []
        deadline = time.monotonic() + timeout
        while True:
            current = self.read_frame(max(0.01, deadline - time.monotonic()))
            if current is None:
                return seen, None
            seen.append(current)
            if predicate(current):
                return seen, current

    def drain(self, timeout: float = 5.0, auto_ack: bool = True) -> list[Frame]:
        """Reads until the server closes the connection or `timeout` passes quietly."""
        seen: list[Frame] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                current = self.read_frame(max(0.01, deadline - time.monotonic()), auto_ack=auto_ack)
            except TimeoutError:
                break
            if current is None:
                break
            seen.append(current)
        return seen

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "RawConnection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def find(frames: list[Frame], type_: int, stream: int | None = None) -> list[Frame]:
    return [f for f in frames if f.type == type_ and (stream is None or f.stream == stream)]


def poll(conn: RawConnection, wait: float = 0.0) -> list[Frame]:
    """Frames already available (waiting at most `wait` for the first); never blocks longer."""
    seen: list[Frame] = []
    try:
        first = conn.read_frame(max(wait, 0.001))
    except TimeoutError:
        return seen
    while first is not None:
        seen.append(first)
        try:
            first = conn.read_frame(0.001)
        except TimeoutError:
            break
    return seen


def goaways(frames: list[Frame]) -> list[tuple[int, int, bytes]]:
    return [f.goaway() for f in frames if f.type == GOAWAY]
