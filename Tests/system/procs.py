"""Real processes for the system suite: orchestratord, executors, and the PostgreSQL they share."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON_EXECUTOR = ROOT / "examples" / "executors" / "python" / "executor.py"
GO_EXECUTOR_DIR = ROOT / "examples" / "executors" / "go"

sys.path.insert(0, str(ROOT / "tools" / "lib"))
from free_port import free_port  # noqa: E402  (below the ephemeral range: see its docstring)


def binary(name: str) -> Path:
    """ORCH_<NAME> (e.g. ORCH_ORCHESTRATORD), else ORCH_BIN_DIR/name, else .build/debug/name."""
    explicit = os.environ.get(f"ORCH_{name.upper()}")
    if explicit:
        return Path(explicit)
    folder = os.environ.get("ORCH_BIN_DIR")
    path = Path(folder) / name if folder else ROOT / ".build" / "debug" / name
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: build it (swift build --product {name}) or set ORCH_{name.upper()}")
    return path


def psql(conninfo: str, sql: str, timeout: float = 60) -> list[list[str]]:
    """Runs SQL with psql; returns rows as lists of strings (tab-separated, unaligned)."""
    result = subprocess.run(["psql", "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql],
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"psql failed: {result.stderr.strip()}\n{sql}")
    return [line.split("\t") for line in result.stdout.splitlines() if line != ""]


def workflow_uuid(workflow_id: str) -> str:
    """Workflow rows are keyed by the API id itself (migration 0002 made ids text)."""
    assert workflow_id.startswith("wf_"), workflow_id
    return workflow_id


class Process:
    """A child process whose output goes to a log file; stopped for sure at teardown."""

    def __init__(self, args: list[str], log_path: Path, env: dict | None = None, cwd: Path | None = None):
        self.args = [str(a) for a in args]
        self.log_path = log_path
        self.log_file = open(log_path, "ab", buffering=0)
        self.process = subprocess.Popen(self.args, stdout=self.log_file, stderr=subprocess.STDOUT,
                                        env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def wait_for_log(self, text: str, timeout: float, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log().count(text) >= count:
                return
            if not self.alive():
                raise AssertionError(f"{self.args[0]} exited ({self.process.returncode}) before logging {text!r}:\n{self.tail()}")
            time.sleep(0.05)
        raise AssertionError(f"{self.args[0]} did not log {text!r} within {timeout}s:\n{self.tail()}")

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, grace: float = 10) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.log_file.close()


class Orchestratord:
    """orchestratord on a free port against one database, with a short lease TTL."""

    def __init__(self, database_url: str, folder: Path, lease_ttl: int = 3, heartbeat: int = 1, extra_args=()):
        self.database_url = database_url
        self.extra_args = [str(arg) for arg in extra_args]
        self.folder = folder
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.lease_ttl = lease_ttl
        self.heartbeat = heartbeat
        self.starts = 0
        self.proc: Process | None = None

    def start(self, timeout: float = 60) -> "Orchestratord":
        self.starts += 1
        args = [binary("orchestratord"), "--grpc-address", self.address, "--database-url", self.database_url,
                "--lease-ttl", self.lease_ttl, "--heartbeat-interval", self.heartbeat, "--shutdown-grace", "2",
                *self.extra_args]
        self.proc = Process(args, self.folder / f"orchestratord.{self.port}.{self.starts}.log")
        self.proc.wait_for_log("orchestratord ready", timeout)
        return self

    def kill(self) -> None:
        assert self.proc
        self.proc.kill()

    def admin_address(self) -> str:
        """host:port of the admin HTTP server, from its start-up line (JSON or text logs)."""
        assert self.proc
        return admin_address(self.proc.log())

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()


def admin_address(log: str) -> str:
    """The address in the last "admin HTTP listening" line of an orchestratord log."""
    for line in reversed(log.splitlines()):
        if "admin HTTP listening" in line:
            match = re.search(r'"admin":"([^"]+)"', line) or re.search(r"admin=(\S+)", line)
            if match:
                return match.group(1)
    raise AssertionError("orchestratord logged no admin address")


def python_executor(address: str, folder: Path, executor_id: str, capabilities: list[str], *extra) -> Process:
    args = [sys.executable, PYTHON_EXECUTOR, "--address", address, "--id", executor_id,
            "--capabilities", *capabilities, "--stubs-dir", folder / "py-stubs", *extra]
    return Process(args, folder / f"{executor_id}.log")


# The fan-out tasks of `fan_out_graph`: work00 … work39.
FAN_OUT = [f"work{i:02}" for i in range(40)]


def fan_out_graph(api, capability: str) -> list:
    """The 42-task workflow the polyglot tests give two executors: `start`, then the 40 `FAN_OUT`
    tasks after it (more than both executors hold at once), then `join` after all of them."""
    return [api.task("start", capability), *(api.task(key, capability, ["start"]) for key in FAN_OUT),
            api.task("join", capability, FAN_OUT)]


def beside_python_executor(executor: Process, processes: list, address: str, folder: Path, executor_id: str,
                           capability: str, timeout: float = 30) -> None:
    """Starts the Python example executor (4 in flight, 100 ms per task) beside another language's
    `executor` and returns once both are welcomed: the first one connected could otherwise take
    every task of the workflow a test then submits."""
    python = python_executor(address, folder, executor_id, [capability], "--max-in-flight", "4", "--sleep-ms", "100")
    processes.append(python)
    for process in (executor, python):
        process.wait_for_log("welcome session=", timeout)


def orchctl_executor(address: str, folder: Path, name: str, capabilities: list[str], *extra) -> Process:
    args = [binary("orchctl"), "executor", "--address", address, "--capabilities", *capabilities, *extra]
    return Process(args, folder / f"{name}.log")


def stop_postmaster(data: Path) -> None:
    """Fast shutdown of a postmaster a failed test left behind, so it does not outlive the suite."""
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        pid = int((data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
