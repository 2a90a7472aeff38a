"""Message-size limits and concurrency: many streams on one connection, many connections."""

import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from conftest import make_channel, start_server

MIB = 1024 * 1024


def request_of_size(pb2, size: int):
    """An EchoRequest whose serialized form is exactly `size` bytes (payload field only)."""
    # Field 2: one tag byte, a varint length (4 bytes between 2^21 and 2^28), then the bytes.
    request = pb2.EchoRequest(payload=b"\xab" * (size - 5))
    assert request.ByteSize() == size
    return request


@pytest.mark.parametrize("size", [4 * MIB, 4 * MIB - 1024])
def test_message_up_to_4_mib_is_accepted(echo, stubs, size):
    request = request_of_size(stubs.pb2, size)
    response = echo.Get(request, timeout=30)
    assert response.payload == request.payload


def test_message_of_4_mib_plus_one_is_rejected(echo, stubs):
    with pytest.raises(grpc.RpcError) as error:
        echo.Get(request_of_size(stubs.pb2, 4 * MIB + 1), timeout=30)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The connection survives the rejected stream.
    assert echo.Get(stubs.pb2.EchoRequest(text="after"), timeout=10).text == "after"


def test_oversized_message_in_client_stream_is_rejected(echo, stubs):
    requests = [stubs.pb2.EchoRequest(text="small"), request_of_size(stubs.pb2, 4 * MIB + 1)]
    with pytest.raises(grpc.RpcError) as error:
        echo.Collect(iter(requests), timeout=30)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_max_receive_size_flag(server_binary, certs, tmp_path, stubs):
    small = start_server(server_binary, certs, tmp_path, "--max-receive-size", "1024")
    try:
        channel = make_channel(small, "h2c", certs)
        echo = stubs.grpc.EchoStub(channel)
        ok = stubs.pb2.EchoRequest(text="a" * (1024 - 3))
        assert ok.ByteSize() == 1024
        assert echo.Get(ok, timeout=10).text == ok.text
        with pytest.raises(grpc.RpcError) as error:
            echo.Get(stubs.pb2.EchoRequest(text="a" * (1025 - 3)), timeout=10)
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        channel.close()
    finally:
        small.stop()


def test_one_hundred_concurrent_streams_on_one_connection(echo, stubs):
    delay_ms = 500
    started = time.monotonic()
    futures = [echo.Get.future(stubs.pb2.EchoRequest(text=str(i), delay_ms=delay_ms), timeout=30)
               for i in range(100)]
    responses = [future.result() for future in futures]
    elapsed = time.monotonic() - started
    assert [r.text for r in responses] == [str(i) for i in range(100)]
    # One channel, one connection: every response saw the same client port.
    assert len({r.peer for r in responses}) == 1
    # Serially this would take 50 s; concurrently one delay plus scheduling (CI shares 2 cores).
    assert elapsed < 10, f"100 concurrent 500 ms calls took {elapsed:.1f}s"


def test_fifty_connections_at_once(channel_factory, stubs):
    # A local subchannel pool per channel stops grpcio from sharing one connection between them.
    channels = [channel_factory(options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(50)]
    for channel in channels:
        grpc.channel_ready_future(channel).result(timeout=15)
    stubs_list = [stubs.grpc.EchoStub(channel) for channel in channels]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(
            lambda pair: pair[1].Get(stubs.pb2.EchoRequest(text=str(pair[0]), delay_ms=1000), timeout=30),
            enumerate(stubs_list)))
    elapsed = time.monotonic() - started
    assert [r.text for r in responses] == [str(i) for i in range(50)]
    assert len({r.peer for r in responses}) == 50, "calls did not use 50 distinct connections"
    # Serially 50 s.
    assert elapsed < 15, f"50 parallel 1 s calls took {elapsed:.1f}s"
