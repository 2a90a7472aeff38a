"""Support for the security suite: orchestratord with JWT authentication, tokens minted (and
forged) in Python independently of the server's own code, database snapshots that prove a
refused call changed nothing, and a minimal in-process executor on a Lease stream."""

from __future__ import annotations

import os

import base64
import hashlib
import hmac
import json
import queue
import subprocess
import threading
import time
from pathlib import Path

import grpc
import jwt

from procs import Orchestratord, Process, binary, psql

ISSUER = "https://issuer.orchestrator.test"
AUDIENCE = "orchestrator-api"


# -- keys ------------------------------------------------------------------------------------------


def write_secret(path: Path, secret: bytes) -> Path:
    # The server drops a secret file's trailing CR/LF (an editor's final newline; KeyFiles.secret):
    # random bytes ending in one would sign with a key the server never uses, about 1 run in 100.
    assert not secret.endswith((b"\n", b"\r")), "a secret ending in a line break is read without it"
    path.write_bytes(secret)
    return path


def random_secret(length: int = 48) -> bytes:
    """Random HS256 key bytes that the server reads exactly as written (no trailing CR/LF)."""
    secret = os.urandom(length)
    while secret.endswith((b"\n", b"\r")):
        secret = os.urandom(length)
    return secret


def rsa_keypair(folder: Path, name: str) -> tuple[Path, Path]:
    """An RSA-2048 private key and its public PEM, made with openssl (as an operator would)."""
    private = folder / f"{name}.key.pem"
    public = folder / f"{name}.pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", private],
                   check=True, capture_output=True, timeout=60)
    subprocess.run(["openssl", "pkey", "-in", private, "-pubout", "-out", public], check=True, capture_output=True, timeout=60)
    return private, public


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rsa_jwk(public_pem: Path, kid: str) -> dict:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    numbers = load_pem_public_key(public_pem.read_bytes()).public_numbers()

    def uint(value: int) -> str:
        return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": uint(numbers.n), "e": uint(numbers.e)}


def oct_jwk(secret: bytes, kid: str) -> dict:
    return {"kty": "oct", "kid": kid, "alg": "HS256", "k": b64url(secret)}


# -- tokens ----------------------------------------------------------------------------------------


def claims(sub: str, role: str, tenant: str, ttl: int = 3600, **extra) -> dict:
    now = int(time.time())
    body = {"sub": sub, "role": role, "tenant": tenant, "iat": now, "exp": now + ttl, "iss": ISSUER, "aud": AUDIENCE}
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def mint(body: dict, key, algorithm: str = "HS256", kid: str | None = None) -> str:
    headers = {"kid": kid} if kid else None
    return jwt.encode(body, key, algorithm=algorithm, headers=headers)


def forge(header: dict, body: dict, signing_key: bytes | None) -> str:
    """A compact JWS built by hand: for tokens PyJWT refuses to make (alg none, HS256 keyed with
    an RSA public key). `signing_key` None leaves the signature empty."""
    head = b64url(json.dumps(header, separators=(",", ":")).encode())
    payload = b64url(json.dumps(body, separators=(",", ":")).encode())
    signing_input = f"{head}.{payload}".encode()
    signature = b"" if signing_key is None else hmac.new(signing_key, signing_input, hashlib.sha256).digest()
    return f"{head}.{payload}.{b64url(signature)}"


def bearer(token: str | None) -> list[tuple[str, str]]:
    return [] if token is None else [("authorization", f"Bearer {token}")]


# -- servers ---------------------------------------------------------------------------------------


class SecureOrchestratord(Orchestratord):
    """orchestratord with `--auth jwt` and the given key settings (flags from the auth interface)."""

    def __init__(self, database_url: str, folder: Path, auth_args: list, lease_ttl: int = 30, heartbeat: int = 5):
        super().__init__(database_url, folder, lease_ttl=lease_ttl, heartbeat=heartbeat)
        self.auth_args = [str(a) for a in auth_args]

    def start(self, timeout: float = 60) -> "SecureOrchestratord":
        self.starts += 1
        args = [binary("orchestratord"), "--grpc-address", self.address, "--database-url", self.database_url,
                "--lease-ttl", self.lease_ttl, "--heartbeat-interval", self.heartbeat, "--shutdown-grace", "2",
                "--auth", "jwt", *self.auth_args]
        self.proc = Process(args, self.folder / f"orchestratord.{self.port}.{self.starts}.log")
        self.proc.wait_for_log("orchestratord ready", timeout)
        return self


# -- database snapshots ----------------------------------------------------------------------------

# Every table the application writes, with the columns whose change would mean a refused call
# still did something (counts alone miss an UPDATE).
_FINGERPRINTS = {
    "workflows": "id || state || current_dag_version || coalesce(error, '') || last_event_seq || updated_at",
    "queries": "workflow_id || md5(message)",
    "dag_versions": "workflow_id || version",
    "tasks": "id || state || attempt || fencing_token || unfinished_upstream || coalesce(lease_owner, '') "
             "|| coalesce(lease_expires_at::text, '') || updated_at",
    "edges": "upstream_task_id::text || downstream_task_id::text",
    "task_attempts": "task_id::text || attempt || outcome || coalesce(resumed_by, '')",
    "workflow_events": "seq::text",
}


def snapshot(database: str) -> dict[str, tuple]:
    """Row count, highest event sequence and a fingerprint of the rows of every table."""
    parts = []
    for table, expression in _FINGERPRINTS.items():
        parts.append(f"SELECT '{table}', count(*)::text, md5(coalesce(string_agg({expression}, ',' ORDER BY {expression}), '')) "
                     f"FROM {table}")
    parts.append("SELECT 'last_event_seq', coalesce(max(seq), 0)::text, '' FROM workflow_events")
    rows = psql(database, " UNION ALL ".join(parts))
    return {row[0]: (int(row[1]), row[2] if len(row) > 2 else "") for row in rows}


def assert_unchanged(database: str, before: dict, what: str) -> None:
    after = snapshot(database)
    changed = {table: (before[table], after[table]) for table in before if before[table] != after[table]}
    assert not changed, f"{what} changed the database: {changed}"


# -- a minimal executor ------------------------------------------------------------------------------


class LeaseStream:
    """One Lease stream driven from the test: send messages, read responses with a timeout."""

    def __init__(self, stub, pb, metadata, hello, heartbeat_every: float | None = None):
        """`heartbeat_every`: send an empty heartbeat at that interval, as an executor must; without
        it the stream is silent and the server closes it one lease TTL after it was last heard."""
        self.pb = pb
        self.outbound: queue.Queue = queue.Queue()
        self.inbound: queue.Queue = queue.Queue()
        self.closed = threading.Event()
        self.held: list = []  # responses set aside by next_of(keep_others=True)
        self.outbound.put(pb.executors.LeaseRequest(hello=hello))
        self.call = stub.Lease(self._requests(), metadata=metadata, timeout=120)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if heartbeat_every:
            threading.Thread(target=self._heartbeat, args=(heartbeat_every,), daemon=True).start()

    def _heartbeat(self, interval: float) -> None:
        while not self.closed.wait(interval):
            self.outbound.put(self.pb.executors.LeaseRequest(heartbeat=self.pb.executors.HeartbeatSignal()))

    def _requests(self):
        while True:
            message = self.outbound.get()
            if message is None:
                return
            yield message

    def _read(self):
        try:
            for response in self.call:
                self.inbound.put(response)
            self.inbound.put(("end", grpc.StatusCode.OK, ""))
        except grpc.RpcError as error:
            self.inbound.put(("end", error.code(), error.details()))

    def send(self, message) -> None:
        self.outbound.put(message)

    def next(self, timeout: float):
        """The next response, ("end", code, details) when the stream ended, or None on timeout."""
        try:
            return self.inbound.get(timeout=timeout)
        except queue.Empty:
            return None

    def next_of(self, kind: str, timeout: float, keep_others: bool = False):
        """The next response carrying `kind` (welcome, assignment, ack …), skipping others — or,
        with `keep_others`, setting them aside for a later `next_of` of their kind: an assignment
        of a task ready anyway can come between a report and its ack (only the tasks a report
        made ready wait for its ack)."""
        for index, held in enumerate(self.held):
            if held.WhichOneof("kind") == kind:
                del self.held[index]
                return getattr(held, kind)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            item = self.next(left)
            if item is None or isinstance(item, tuple):
                return item
            if item.WhichOneof("kind") == kind:
                return getattr(item, kind)
            if keep_others:
                self.held.append(item)
        return None

    def close(self) -> None:
        self.closed.set()
        self.outbound.put(None)
        self.call.cancel()
        self.reader.join(timeout=10)
