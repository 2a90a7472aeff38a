"""The four RPC shapes against InteropTestServer's Echo service, over h2c and TLS."""

import grpc
import pytest

from helpers import RequestQueue, new_tag, wait_for_report


def test_unary_echoes_text_payload_and_peer(echo, stubs):
    payload = bytes(range(256)) * 4
    response = echo.Get(stubs.pb2.EchoRequest(text="hello", payload=payload), timeout=10)
    assert response.text == "hello"
    assert response.payload == payload
    assert response.peer.startswith("127.0.0.1:"), response.peer
    assert response.index == 0


def test_unary_empty_request(echo, stubs):
    response = echo.Get(stubs.pb2.EchoRequest(), timeout=10)
    assert response.text == "" and response.payload == b""


def test_server_streaming_ten_thousand_messages(echo, stubs):
    count = 10_000
    responses = echo.Expand(stubs.pb2.EchoRequest(text="x", count=count, response_size=32), timeout=60)
    indexes = []
    for response in responses:
        assert len(response.payload) == 32
        assert response.text == "x"
        indexes.append(response.index)
    assert indexes == list(range(count))


def test_server_streaming_large_messages(echo, stubs):
    # 64 x 256 KiB = 16 MiB through flow control on one stream.
    responses = list(echo.Expand(stubs.pb2.EchoRequest(count=64, response_size=256 * 1024), timeout=60))
    assert [r.index for r in responses] == list(range(64))
    assert all(len(r.payload) == 256 * 1024 for r in responses)


def test_server_streaming_zero_messages(echo, stubs):
    assert list(echo.Expand(stubs.pb2.EchoRequest(count=0), timeout=10)) == []


def test_client_streaming_counts_and_concatenates(echo, stubs):
    requests = [stubs.pb2.EchoRequest(text=str(i % 10)) for i in range(1000)]
    response = echo.Collect(iter(requests), timeout=30)
    assert response.count == 1000
    assert response.text == "".join(str(i % 10) for i in range(1000))


def test_client_streaming_no_messages(echo, stubs):
    response = echo.Collect(iter([]), timeout=10)
    assert response.count == 0


def test_bidirectional_ping_pong(echo, stubs):
    requests = RequestQueue()
    responses = echo.Chat(requests, timeout=30)
    for i in range(200):
        requests.put(stubs.pb2.EchoRequest(text=f"ping {i}"))
        # Each reply must arrive before the next request is sent: true interleaving.
        reply = next(responses)
        assert reply.text == f"ping {i}"
        assert reply.index == i
    requests.close()
    assert list(responses) == []
    assert responses.code() == grpc.StatusCode.OK


def test_bidirectional_half_close_then_drain(echo, stubs):
    requests = [stubs.pb2.EchoRequest(text=str(i)) for i in range(500)]
    replies = list(echo.Chat(iter(requests), timeout=30))
    assert [r.text for r in replies] == [str(i) for i in range(500)]


def test_fail_with_status_and_message(echo, stubs):
    message = "nope: 100% ünïcödé\nline two"
    with pytest.raises(grpc.RpcError) as error:
        echo.Get(stubs.pb2.EchoRequest(fail_with=stubs.pb2.EchoStatus(code=5, message=message)), timeout=10)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    # grpc-message is percent-encoded on the wire; it must decode back exactly.
    assert error.value.details() == message


def test_expand_fails_after_its_messages(echo, stubs):
    call = echo.Expand(stubs.pb2.EchoRequest(count=3, fail_with=stubs.pb2.EchoStatus(code=10, message="stop")),
                       timeout=10)
    received = []
    with pytest.raises(grpc.RpcError) as error:
        for response in call:
            received.append(response.index)
    assert received == [0, 1, 2]
    assert error.value.code() == grpc.StatusCode.ABORTED
    assert error.value.details() == "stop"


def test_completed_calls_are_counted(echo, stubs):
    tag = new_tag("completed")
    for _ in range(3):
        echo.Get(stubs.pb2.EchoRequest(tag=tag), timeout=10)
    report = wait_for_report(echo, stubs.pb2, tag, completed=3)
    assert (report.completed, report.cancelled) == (3, 0)


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c != grpc.StatusCode.OK], ids=lambda c: c.name)
def test_every_status_code_reaches_the_client(echo, stubs, code):
    number = code.value[0]
    request = stubs.pb2.EchoRequest(fail_with=stubs.pb2.EchoStatus(code=number, message=f"code {number}"))
    with pytest.raises(grpc.RpcError) as error:
        echo.Get(request, timeout=10)
    assert error.value.code() == code
    assert error.value.details() == f"code {number}"
