"""Starts and watches one InteropTestServer process for the tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

LISTENING = re.compile(r"listening on (?P<host>[0-9.]+):(?P<port>\d+)(?:\s*\((?P<kind>\w+)\))?")


class ServerProcess:
    """One server process; its stdout/stderr go to `log_path` so failures can show the tail."""

    def __init__(self, binary: Path, log_path: Path, cert: Path | None = None, key: Path | None = None,
                 extra_args: tuple[str, ...] = ()):
        self.binary = binary
        self.log_path = log_path
        self.cert = cert
        self.key = key
        self.extra_args = extra_args
        self.process: subprocess.Popen | None = None
        self.h2c_port: int | None = None
        self.tls_port: int | None = None
        self._log_file = None

    def start(self, timeout: float = 30.0) -> "ServerProcess":
        args = [str(self.binary), "--port", "0"]
        if self.cert and self.key:
            args += ["--tls-port", "0", "--cert", str(self.cert), "--key", str(self.key)]
        args += list(self.extra_args)
        self._log_file = open(self.log_path, "ab", buffering=0)
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._log_file)
        ports: list[tuple[str | None, int]] = []
        want = 2 if self.cert else 1
        lines_seen: list[str] = []
        deadline = time.monotonic() + timeout
        # A reader thread so a server that prints nothing cannot block the fixture past `timeout`.
        found = threading.Event()

        def pump() -> None:
            assert self.process and self.process.stdout
            for raw in self.process.stdout:
                self._log_file.write(raw)
                line = raw.decode(errors="replace")
                lines_seen.append(line)
                match = LISTENING.search(line)
                if match and not found.is_set():
                    ports.append((match.group("kind"), int(match.group("port"))))
                    if len(ports) >= want:
                        found.set()

        threading.Thread(target=pump, daemon=True).start()
        while not found.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not report its ports (exit={self.process.returncode}); "
                                   f"stdout: {''.join(lines_seen)[-2000:]!r}; log tail: {self.log_tail()!r}")
        for index, (kind, port) in enumerate(ports):
            if kind == "tls" or (kind is None and index == 1):
                self.tls_port = port
            else:
                self.h2c_port = port
        return self

    @property
    def pid(self) -> int:
        assert self.process
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def rss_kib(self) -> int:
        """Resident set size from /proc/PID/status (VmRSS, in KiB)."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("VmRSS missing")

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-size:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._log_file:
            self._log_file.close()
            self._log_file = None


def binary_path(root: Path) -> Path:
    """ORCH_INTEROP_SERVER when set, otherwise a build with our own scratch path (built once)."""
    prebuilt = os.environ.get("ORCH_INTEROP_SERVER")
    if prebuilt:
        path = Path(prebuilt)
        if not os.access(path, os.X_OK):
            raise RuntimeError(f"ORCH_INTEROP_SERVER={prebuilt} is not an executable file")
        return path
    scratch = os.environ.get("ORCH_INTEROP_SCRATCH", str(root / ".build-interop"))
    command = ["swift", "build", "--scratch-path", scratch, "--product", "InteropTestServer"]
    build = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=3600)
    if build.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}")
    bin_dir = subprocess.run(command + ["--show-bin-path"], cwd=root, capture_output=True, text=True,
                             timeout=600, check=True).stdout.strip()
    return Path(bin_dir) / "InteropTestServer"
