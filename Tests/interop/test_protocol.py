"""Wire-contract details: unknown methods and services, content-type, compression, ALPN."""

import ssl
from urllib.parse import unquote

import grpc
import pytest

import h2raw


def identity(value):
    return value


@pytest.mark.parametrize("path", ["/orchestrator.testing.v1.Echo/NoSuchMethod", "/no.such.Service/Get"])
def test_unknown_method_or_service_is_unimplemented(channel, path):
    call = channel.unary_unary(path, request_serializer=identity, response_deserializer=identity)
    with pytest.raises(grpc.RpcError) as error:
        call(b"", timeout=10)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_unknown_streaming_method_is_unimplemented(channel):
    call = channel.stream_stream("/orchestrator.testing.v1.Echo/Nope", request_serializer=identity,
                                 response_deserializer=identity)
    with pytest.raises(grpc.RpcError) as error:
        list(call(iter([b"a", b"b"]), timeout=10))
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", None])
def test_wrong_content_type_is_http_415(server, transport, stubs, content_type):
    port = server.tls_port if transport == "tls" else server.h2c_port
    with h2raw.RawConnection(port, tls=transport == "tls") as conn:
        conn.start()
        headers = h2raw.grpc_request_headers(h2raw.ECHO + "/Get", scheme=conn.scheme)
        headers = [(k, v) for k, v in headers if k != "content-type"]
        if content_type:
            headers.append(("content-type", content_type))
        body = h2raw.grpc_message(stubs.pb2.EchoRequest(text="x").SerializeToString())
        conn.send(conn.headers_frame(1, headers) + h2raw.frame(h2raw.DATA, h2raw.END_STREAM, 1, body))
        frames, response = conn.read_until(lambda f: f.type == h2raw.HEADERS and f.stream == 1, timeout=10)
    assert response is not None, f"no response headers: {frames}"
    assert response.header(":status") == "415", response


@pytest.mark.parametrize("content_type", ["application/grpc", "application/grpc+proto"])
def test_grpc_content_types_are_accepted(server, transport, stubs, content_type):
    port = server.tls_port if transport == "tls" else server.h2c_port
    with h2raw.RawConnection(port, tls=transport == "tls") as conn:
        conn.start()
        message = stubs.pb2.EchoRequest(text="raw").SerializeToString()
        conn.send(conn.grpc_call(1, h2raw.ECHO + "/Get", message, content_type=content_type))
        frames, end = conn.read_until(lambda f: f.stream == 1 and f.flags & h2raw.END_STREAM
                                      and f.type == h2raw.HEADERS, timeout=10)
    assert end is not None, frames
    assert end.header("grpc-status") == "0", frames
    first = h2raw.find(frames, h2raw.HEADERS, 1)[0]
    assert first.header(":status") == "200"
    assert first.header("content-type", ).startswith("application/grpc")
    data = b"".join(f.payload for f in h2raw.find(frames, h2raw.DATA, 1))
    assert data[0] == 0 and int.from_bytes(data[1:5], "big") == len(data) - 5
    assert stubs.pb2.EchoResponse.FromString(data[5:]).text == "raw"


@pytest.mark.parametrize("content_type", ["application/grpc+json", "application/grpc+JSON; charset=utf-8"])
def test_another_codec_is_unimplemented_saying_protobuf_only(server, transport, stubs, content_type):
    """`application/grpc+json` was accepted and its body decoded as protobuf: a JSON body got a
    confusing INVALID_ARGUMENT (found by black-box testing). The codec is refused up front."""
    port = server.tls_port if transport == "tls" else server.h2c_port
    with h2raw.RawConnection(port, tls=transport == "tls") as conn:
        conn.start()
        conn.send(conn.grpc_call(1, h2raw.ECHO + "/Get", b'{"text": "raw"}', content_type=content_type))
        frames, end = conn.read_until(lambda f: f.stream == 1 and f.type == h2raw.HEADERS and f.header("grpc-status"), timeout=10)
    assert end is not None and end.header("grpc-status") == "12", frames
    assert "protobuf only" in unquote(end.header("grpc-message")), end.header("grpc-message")
    assert end.header(":status") == "200"


def test_tls_negotiates_h2_with_alpn(server):
    with h2raw.RawConnection(server.tls_port, tls=True) as conn:
        assert isinstance(conn.sock, ssl.SSLSocket)
        assert conn.sock.selected_alpn_protocol() == "h2"


@pytest.mark.parametrize("rpc", ["unary", "client_stream", "bidi"])
def test_gzip_compressed_requests(channel_factory, stubs, rpc):
    channel = channel_factory(compression=grpc.Compression.Gzip)
    echo = stubs.grpc.EchoStub(channel)
    payload = b"compressible " * 20_000
    if rpc == "unary":
        assert echo.Get(stubs.pb2.EchoRequest(payload=payload), timeout=20).payload == payload
    elif rpc == "client_stream":
        requests = [stubs.pb2.EchoRequest(text="z" * 10_000) for _ in range(20)]
        assert echo.Collect(iter(requests), timeout=20).count == 20
    else:
        requests = [stubs.pb2.EchoRequest(payload=payload[: 1000 * (i + 1)]) for i in range(10)]
        replies = list(echo.Chat(iter(requests), timeout=20))
        assert [len(r.payload) for r in replies] == [1000 * (i + 1) for i in range(10)]


def test_gzip_per_call(echo, stubs):
    payload = b"a" * 100_000
    response = echo.Get(stubs.pb2.EchoRequest(payload=payload), compression=grpc.Compression.Gzip, timeout=10)
    assert response.payload == payload


def raw_unary(server, transport, headers_extra, body: bytes):
    """One raw request; returns (response header frames, trailers frame or None, all frames)."""
    port = server.tls_port if transport == "tls" else server.h2c_port
    with h2raw.RawConnection(port, tls=transport == "tls") as conn:
        conn.start()
        headers = h2raw.grpc_request_headers(h2raw.ECHO + "/Get", scheme=conn.scheme, extra=headers_extra)
        conn.send(conn.headers_frame(1, headers) + h2raw.frame(h2raw.DATA, h2raw.END_STREAM, 1, body))
        frames, end = conn.read_until(
            lambda f: f.stream == 1 and (f.type == h2raw.RST_STREAM or (f.type == h2raw.HEADERS
                                                                         and f.flags & h2raw.END_STREAM)),
            timeout=10)
    return end, frames


def test_unsupported_grpc_encoding_is_unimplemented(server, transport, stubs):
    # gRPC over HTTP/2: a message compressed with an encoding the server lacks → UNIMPLEMENTED.
    message = stubs.pb2.EchoRequest(text="x").SerializeToString()
    body = bytes([1]) + len(message).to_bytes(4, "big") + message
    end, frames = raw_unary(server, transport, [("grpc-encoding", "snappy")], body)
    assert end is not None and end.header("grpc-status") == "12", frames


def test_compressed_flag_without_encoding_is_rejected(server, transport, stubs):
    message = stubs.pb2.EchoRequest(text="x").SerializeToString()
    body = bytes([1]) + len(message).to_bytes(4, "big") + message
    end, frames = raw_unary(server, transport, [], body)
    assert end is not None and end.header("grpc-status") == "13", frames


def test_corrupt_gzip_is_rejected(server, transport):
    body = bytes([1]) + (10).to_bytes(4, "big") + b"not gzip!!"
    end, frames = raw_unary(server, transport, [("grpc-encoding", "gzip")], body)
    status = end.header("grpc-status") if end is not None else None
    assert status not in (None, "0"), frames


def test_gzip_bomb_is_resource_exhausted_saying_it_inflates_past_the_limit(server, transport):
    """5 MB of zeros gzip to a few kilobytes: inflating stops at the 4 MiB limit, and the status
    says so instead of naming the size where inflation stopped as the message's."""
    import gzip
    from urllib.parse import unquote

    compressed = gzip.compress(b"\0" * (5 * 1024 * 1024))
    body = bytes([1]) + len(compressed).to_bytes(4, "big") + compressed
    end, frames = raw_unary(server, transport, [("grpc-encoding", "gzip")], body)
    assert end is not None and end.header("grpc-status") == "8", frames
    assert "inflates past the limit of 4194304 bytes" in unquote(end.header("grpc-message")), end.header("grpc-message")


def test_undecodable_protobuf_is_invalid_argument(server, transport):
    # A field with wire type 7 does not exist: the request cannot be decoded.
    end, frames = raw_unary(server, transport, [], h2raw.grpc_message(b"\x0f\xff\xff"))
    assert end is not None and end.header("grpc-status") == "3", frames
    # Named as the client knows it (its protobuf name), not by the server's Swift type.
    assert unquote(end.header("grpc-message")).startswith(
        "request message is not a valid orchestrator.testing.v1.EchoRequest: not a protobuf encoding of this message (3 bytes)"), end.header("grpc-message")


def test_truncated_message_is_rejected(server, transport):
    # The prefix announces 100 bytes, END_STREAM comes after 3.
    end, frames = raw_unary(server, transport, [], bytes([0]) + (100).to_bytes(4, "big") + b"abc")
    status = end.header("grpc-status") if end is not None else None
    assert status not in (None, "0"), frames
