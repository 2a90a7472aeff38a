"""TLS for the system suite's client interop tests: a throwaway CA with a server certificate for
localhost/127.0.0.1, made with the openssl CLI, and an orchestratord serving it beside cleartext."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from procs import Orchestratord, free_port


def server_certificate(folder: Path) -> dict[str, Path] | None:
    """ca.pem, server.pem and server.key (with their intermediates) in `folder`; None without openssl."""
    if not shutil.which("openssl"):
        return None
    files = {name: folder / name for name in ["ca.key", "ca.pem", "server.key", "server.csr", "server.pem", "ext.cnf"]}
    files["ext.cnf"].write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                                "extendedKeyUsage=serverAuth\n")
    for command in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", files["ca.key"], "-out", files["ca.pem"], "-days", "2",
         "-subj", "/CN=orchestrator-test-ca"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", files["server.key"], "-out", files["server.csr"],
         "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", files["server.csr"], "-CA", files["ca.pem"], "-CAkey", files["ca.key"], "-CAcreateserial",
         "-out", files["server.pem"], "-days", "2", "-extfile", files["ext.cnf"]],
    ):
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True, timeout=60)
    return files


def start_with_tls(database: str, folder: Path, tls_files: dict[str, Path] | None) -> Orchestratord:
    """orchestratord with a TLS listener beside the cleartext one at `.tls_address` ("" without
    certificate files)."""
    instance = Orchestratord(database, folder)
    instance.tls_address = f"127.0.0.1:{free_port()}" if tls_files else ""
    if tls_files:
        instance.extra_args += ["--grpc-tls-address", instance.tls_address, "--tls-cert-file", str(tls_files["server.pem"]),
                                "--tls-key-file", str(tls_files["server.key"])]
    return instance.start()
