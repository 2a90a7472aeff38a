"""Mutual TLS: client certificates verified against a client CA (require / optional), the verified
subject and SANs visible to handlers, and certificates reloaded on SIGHUP without dropping calls."""

from __future__ import annotations

import shutil
import signal
import time
import types

import grpc
import pytest

import pki
from conftest import CLIENT_OPTIONS
from server_process import ServerProcess


@pytest.fixture(scope="module")
def tls_pki(tmp_path_factory) -> types.SimpleNamespace:
    folder = tmp_path_factory.mktemp("pki")
    ca = pki.make_ca(folder, "test-ca")
    other_ca = pki.make_ca(folder, "other-ca")
    return types.SimpleNamespace(
        folder=folder, ca=ca, other_ca=other_ca,
        server_a=pki.issue(folder, "server-a", ca, 0x1A, "/CN=localhost", "DNS:localhost,IP:127.0.0.1"),
        server_b=pki.issue(folder, "server-b", ca, 0x2B, "/CN=localhost", "DNS:localhost,IP:127.0.0.1"),
        client=pki.issue(folder, "executor-1", ca, 0x77, "/O=Acme/CN=executor-1",
                         "DNS:executor-1.example,URI:spiffe://acme/executor-1", client=True),
        stranger=pki.issue(folder, "stranger", other_ca, 0x99, "/CN=stranger", "DNS:stranger", client=True),
    )


def start(server_binary, tls_pki, folder, mode: str, cert=None) -> ServerProcess:
    cert, key = cert or tls_pki.server_a
    return ServerProcess(server_binary, folder / "server.log", cert=cert, key=key,
                         extra_args=("--client-ca", str(tls_pki.ca[0]), "--client-auth", mode)).start()


def channel(server: ServerProcess, tls_pki, client=None) -> grpc.Channel:
    chain = key = None
    if client:
        key = client[1].read_bytes()
        chain = client[0].read_bytes()
    credentials = grpc.ssl_channel_credentials(root_certificates=tls_pki.ca[0].read_bytes(),
                                               private_key=key, certificate_chain=chain)
    return grpc.secure_channel(f"127.0.0.1:{server.tls_port}", credentials, options=CLIENT_OPTIONS)


def call(server, tls_pki, stubs, client=None):
    """One unary call; returns the response's initial metadata as a dict."""
    with channel(server, tls_pki, client) as ch:
        response, call = stubs.grpc.EchoStub(ch).Get.with_call(stubs.pb2.EchoRequest(text="hi"), timeout=10)
        assert response.text == "hi"
        return dict(call.initial_metadata())


def refused(server, tls_pki, stubs, client=None) -> grpc.RpcError:
    with channel(server, tls_pki, client) as ch:
        with pytest.raises(grpc.RpcError) as error:
            stubs.grpc.EchoStub(ch).Get(stubs.pb2.EchoRequest(text="hi"), timeout=10)
        return error.value


def test_require_rejects_a_client_without_a_certificate(server_binary, tls_pki, stubs, tmp_path):
    server = start(server_binary, tls_pki, tmp_path, "require")
    try:
        assert refused(server, tls_pki, stubs).code() == grpc.StatusCode.UNAVAILABLE
        assert refused(server, tls_pki, stubs, tls_pki.stranger).code() == grpc.StatusCode.UNAVAILABLE
        assert server.alive()
    finally:
        server.stop()


def test_require_accepts_a_certificate_signed_by_the_client_ca(server_binary, tls_pki, stubs, tmp_path):
    server = start(server_binary, tls_pki, tmp_path, "require")
    try:
        headers = call(server, tls_pki, stubs, tls_pki.client)
        assert headers["x-peer-subject"] == "CN=executor-1,O=Acme"
        assert headers["x-peer-sans"] == "DNS:executor-1.example,URI:spiffe://acme/executor-1"
        assert headers["x-peer-serial"] == "77"
    finally:
        server.stop()


def test_optional_accepts_clients_with_and_without_certificates(server_binary, tls_pki, stubs, tmp_path):
    server = start(server_binary, tls_pki, tmp_path, "optional")
    try:
        assert "x-peer-subject" not in call(server, tls_pki, stubs)
        assert call(server, tls_pki, stubs, tls_pki.client)["x-peer-subject"] == "CN=executor-1,O=Acme"
        # A certificate that is presented must verify, even when it is optional.
        assert refused(server, tls_pki, stubs, tls_pki.stranger).code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop()


def test_no_client_auth_ignores_client_certificates(server_binary, tls_pki, stubs, tmp_path):
    server = start(server_binary, tls_pki, tmp_path, "none")
    try:
        assert "x-peer-subject" not in call(server, tls_pki, stubs, tls_pki.client)
        assert "x-peer-subject" not in call(server, tls_pki, stubs, tls_pki.stranger)
    finally:
        server.stop()


def wait_for_log(server: ServerProcess, text: str, count: int = 1, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.log_tail(200_000).count(text) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {count}x {text!r} in the server log:\n{server.log_tail()}")


def test_sighup_swaps_the_certificate_and_keeps_open_calls(server_binary, tls_pki, stubs, tmp_path):
    live_cert, live_key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(tls_pki.server_a[0], live_cert)
    shutil.copy(tls_pki.server_a[1], live_key)
    server = start(server_binary, tls_pki, tmp_path, "optional", cert=(live_cert, live_key))
    try:
        assert pki.server_certificate_serial(server.tls_port, tls_pki.ca[0]) == 0x1A
        # A bidirectional call on a connection made with the old certificate.
        old = channel(server, tls_pki, tls_pki.client)
        outbox: list = []
        requests_ready = __import__("threading").Condition()

        def requests():
            sent = 0
            while True:
                with requests_ready:
                    requests_ready.wait_for(lambda: len(outbox) > sent, timeout=30)
                    if len(outbox) <= sent:
                        return
                    item = outbox[sent]
                sent += 1
                if item is None:
                    return
                yield item

        def push(item):
            with requests_ready:
                outbox.append(item)
                requests_ready.notify_all()

        chat = stubs.grpc.EchoStub(old).Chat(requests(), timeout=60)
        push(stubs.pb2.EchoRequest(text="before"))
        assert next(chat).text == "before"

        shutil.copy(tls_pki.server_b[0], live_cert)
        shutil.copy(tls_pki.server_b[1], live_key)
        server.process.send_signal(signal.SIGHUP)
        wait_for_log(server, "TLS certificates reloaded")
        assert pki.server_certificate_serial(server.tls_port, tls_pki.ca[0]) == 0x2B
        assert call(server, tls_pki, stubs, tls_pki.client)["x-peer-serial"] == "77"

        # The call on the old connection goes on after the reload.
        push(stubs.pb2.EchoRequest(text="after"))
        assert next(chat).text == "after"
        push(None)
        assert list(chat) == []
        old.close()

        # A broken file: the reload fails, is logged, and the previous certificate stays in use.
        live_key.write_text("not a key\n")
        server.process.send_signal(signal.SIGHUP)
        wait_for_log(server, "TLS reload failed")
        assert pki.server_certificate_serial(server.tls_port, tls_pki.ca[0]) == 0x2B
        assert call(server, tls_pki, stubs, tls_pki.client)["x-peer-subject"] == "CN=executor-1,O=Acme"
        assert server.alive()
    finally:
        server.stop()


def test_sighup_reloads_the_client_ca(server_binary, tls_pki, stubs, tmp_path):
    """Rotating the client CA: after the reload, certificates of the new CA are accepted and those of
    the old one refused."""
    live_ca = tmp_path / "client-ca.pem"
    shutil.copy(tls_pki.other_ca[0], live_ca)
    cert, key = tls_pki.server_a
    server = ServerProcess(server_binary, tmp_path / "server.log", cert=cert, key=key,
                           extra_args=("--client-ca", str(live_ca), "--client-auth", "require")).start()
    try:
        assert call(server, tls_pki, stubs, tls_pki.stranger)["x-peer-subject"] == "CN=stranger"
        assert refused(server, tls_pki, stubs, tls_pki.client).code() == grpc.StatusCode.UNAVAILABLE
        shutil.copy(tls_pki.ca[0], live_ca)
        server.process.send_signal(signal.SIGHUP)
        wait_for_log(server, "TLS certificates reloaded")
        assert call(server, tls_pki, stubs, tls_pki.client)["x-peer-subject"] == "CN=executor-1,O=Acme"
        assert refused(server, tls_pki, stubs, tls_pki.stranger).code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop()
