"""The processes under test: orchestratord, PostgreSQL and executors, each killable and restartable.

Every start of a process gets a log file of its own (name.N.log), so "ready" is looked for in the
output of this start only. Processes run in their own session, so a SIGKILL or SIGSTOP reaches
exactly the process the harness means.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


class Managed:
    """A child process started again on demand, with one log file per start."""

    def __init__(self, name: str, folder: Path, args_fn, env: dict | None = None) -> None:
        self.name = name
        self.folder = folder
        self.args_fn = args_fn
        self.env = env or {}
        self.starts = 0
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.lock = threading.Lock()

    def start(self) -> None:
        with self.lock:
            self.starts += 1
            self.log_path = self.folder / f"{self.name}.{self.starts}.log"
            log = open(self.log_path, "ab", buffering=0)
            self.process = subprocess.Popen([str(a) for a in self.args_fn()], stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, **self.env}, start_new_session=True)
            log.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_text():
                return True
            if not self.alive():
                return False
            time.sleep(0.05)
        return False

    def signal(self, sig: int) -> bool:
        with self.lock:
            if not self.alive():
                return False
            self.process.send_signal(sig)
            return True

    def kill(self) -> None:
        """SIGKILL, no goodbye; waits until the process is gone."""
        self.signal(signal.SIGKILL)
        if self.process is not None:
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass

    def stop(self, grace: float = 10) -> None:
        if not self.alive():
            return
        self.signal(signal.SIGCONT)  # a frozen process cannot act on SIGTERM
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()


class Orchestratord(Managed):
    """orchestratord on a fixed port (executors' proxies point at it), database through a proxy."""

    def __init__(self, binary: Path, folder: Path, port: int, database_url: str, lease_ttl: int, heartbeat: int) -> None:
        help_text = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=60).stdout
        extra: list[str] = []
        if "--admin-address" in help_text:
            # Never the default 9090: other servers on this machine may hold it.
            extra = ["--admin-address", "127.0.0.1:0"]
        self.port = port
        self.address = f"127.0.0.1:{port}"
        super().__init__("orchestratord", folder, lambda: [
            binary, "--grpc-address", self.address, "--database-url", database_url, "--lease-ttl", lease_ttl,
            "--heartbeat-interval", heartbeat, "--shutdown-grace", "2", *extra])

    def start_ready(self, timeout: float = 90) -> bool:
        """Starts and waits for "orchestratord ready"; False if it died or took too long."""
        self.start()
        return self.wait_for_log("orchestratord ready", timeout)


class Postgres:
    """The chaos run's own cluster (tools/lib/pg.sh made it): stopped with `-m immediate` and
    started again with the options pg.sh used (read back from postmaster.opts)."""

    def __init__(self, pg_bin: Path, pg_dir: Path) -> None:
        self.pg_bin = pg_bin
        self.data = pg_dir / "data"
        self.log = pg_dir / "server.log"
        opts = (self.data / "postmaster.opts").read_text().strip()
        # postmaster.opts: the postgres binary, then each argument double-quoted.
        self.options = [part for part in opts.split('"')[1::2] if part != str(self.data)]
        if "-D" in self.options:
            self.options.remove("-D")
        self.stops = 0

    def _as_owner(self, args: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if os.getuid() == 0 else args

    def _pg_ctl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self._as_owner([str(self.pg_bin / "pg_ctl"), "-D", str(self.data), *args]),
                              capture_output=True, text=True, timeout=timeout)

    def stop_immediate(self) -> None:
        """Every backend exits at once without a checkpoint; the next start runs crash recovery."""
        result = self._pg_ctl("-m", "immediate", "-w", "-t", "60", "stop")
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed: {result.stderr}")
        self.stops += 1

    def start(self) -> None:
        quoted = " ".join(f"'{o}'" for o in self.options)
        result = self._pg_ctl("-l", str(self.log), "-w", "-t", "120", "-o", quoted, "start")
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {result.stderr}\n{self.log.read_text()[-2000:]}")


class Executor(Managed):
    """tools/chaos.d/chaos_executor.py (the Python example executor plus a ledger), optionally
    with its wall clock skewed by libfaketime."""

    def __init__(self, executor_id: str, folder: Path, address: str, stubs: Path, ledger: Path,
                 capability: str, max_in_flight: int, sleep_ms: int, fail_probability: float,
                 skew_seconds: int = 0) -> None:
        env = {}
        if skew_seconds:
            env = {"LD_PRELOAD": str(FAKETIME_LIB), "FAKETIME": f"{skew_seconds:+d}s",
                   # Monotonic clocks stay true: grpcio's timers and our heartbeats use them.
                   "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
        self.executor_id = executor_id
        self.skew_seconds = skew_seconds
        super().__init__(executor_id, folder, lambda: [
            sys.executable, HERE / "chaos_executor.py", "--address", address, "--id", executor_id,
            "--capabilities", capability, "--max-in-flight", max_in_flight, "--sleep-ms", sleep_ms,
            "--fail-probability", fail_probability, "--stubs-dir", stubs, "--ledger", ledger], env)
