"""A throwaway PKI for TLS tests, made with the openssl CLI: CAs, server and client certificates."""

from __future__ import annotations

import ssl
import socket
import subprocess
from pathlib import Path


def _run(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True, timeout=60)


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA certificate and key: (cert, key)."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "2", "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", str(key), "-out", str(cert))
    return cert, key


def issue(folder: Path, name: str, ca: tuple[Path, Path], serial: int, subject: str, sans: str,
          client: bool = False) -> tuple[Path, Path]:
    """A leaf certificate signed by `ca` with an explicit serial number: (cert, key)."""
    cert, key, csr = folder / f"{name}.pem", folder / f"{name}.key", folder / f"{name}.csr"
    extensions = folder / f"{name}.ext"
    usage = "clientAuth" if client else "serverAuth"
    extensions.write_text(f"subjectAltName={sans}\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n")
    _run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-subj", subject, "-keyout", str(key), "-out", str(csr))
    _run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
         "-set_serial", str(serial), "-days", "2", "-extfile", str(extensions), "-out", str(cert))
    return cert, key


def server_certificate_serial(port: int, ca: Path) -> int:
    """Connects with TLS (ALPN h2) and returns the serial number of the certificate the server shows."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(ca))
    context.check_hostname = False
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return int(tls.getpeercert()["serialNumber"], 16)
