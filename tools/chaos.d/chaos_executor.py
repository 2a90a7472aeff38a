#!/usr/bin/env python3
"""The example Python executor (examples/executors/python/executor.py), unchanged in behaviour,
plus what the chaos checker needs to see from the executor's side:

- a ledger (JSON lines, appended and flushed per line, so a SIGKILL loses at most the line being
  written): every ack with the report kind it answered, and the start time by this process's
  (possibly faketime-skewed) wall clock;
- stale-report probes: when a reconnect's resume is rejected, the executor still reports the
  task as completed through the unary ReportStatus, as a frozen or partitioned executor that
  finished late would. The server must refuse every such report (FAILED_PRECONDITION); the
  ledger records what it answered.

Its gRPC channels retry connecting within a second instead of grpcio's default backoff (up to
120 s), so executors come back promptly after the server or the proxy returns.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import signal
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "executors" / "python"
sys.path.insert(0, str(EXAMPLE))  # the example imports its sibling modules
spec = importlib.util.spec_from_file_location("example_executor", EXAMPLE / "executor.py")
example = importlib.util.module_from_spec(spec)
spec.loader.exec_module(example)

import grpc  # noqa: E402  (after the example module, which imports it lazily too)

CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 1000)]


class _GrpcWithPromptReconnect:
    """The grpc module as the example executor uses it, with prompt reconnect options."""

    def __getattr__(self, name):
        return getattr(grpc, name)

    @staticmethod
    def insecure_channel(target, options=None):
        return grpc.insecure_channel(target, options=list(options or []) + CHANNEL_OPTIONS)


class ChaosExecutor(example.Executor):
    def __init__(self, args, pb2, pb2_grpc) -> None:
        super().__init__(args, pb2, pb2_grpc)
        self.grpc = _GrpcWithPromptReconnect()
        self.ledger = open(args.ledger, "a", buffering=1)
        self.ledger_lock = threading.Lock()
        self.probe_stub = pb2_grpc.ExecutorsStub(self.grpc.insecure_channel(args.address))

    def record(self, **entry) -> None:
        entry["executor"] = self.args.id
        # CLOCK_MONOTONIC is system-wide and faketime leaves it true: comparable with the harness's.
        entry["mono"] = time.monotonic()
        with self.ledger_lock:
            self.ledger.write(json.dumps(entry, sort_keys=True) + "\n")

    def on_ack(self, ack) -> None:
        with self.lock:
            report = self.unacked.get(ack.lease.task_id)
        kind = "unknown"
        if report is not None and getattr(report, report.WhichOneof("kind")).lease.fencing_token == ack.lease.fencing_token:
            kind = report.WhichOneof("kind")
        self.record(event="ack", task=ack.lease.task_id, token=ack.lease.fencing_token, accepted=ack.accepted,
                    kind=kind, code=ack.code)
        super().on_ack(ack)

    def on_welcome(self, session, welcome) -> None:
        rejected = list(welcome.rejected_resumes)
        super().on_welcome(session, welcome)
        for lease in rejected:
            threading.Thread(target=self.probe_stale, args=(lease,), daemon=True).start()

    def probe_stale(self, lease) -> None:
        """Reports a task whose resume was rejected as completed anyway; records the answer."""
        request = self.pb2.ReportStatusRequest(executor_id=self.args.id, completion=self.pb2.TaskCompletion(
            lease=lease, result=json.dumps({"stale": True, "executor": self.args.id}).encode()))
        deadline = time.monotonic() + 30
        outcome = "unanswered"
        while time.monotonic() < deadline and not self.stopping.is_set():
            try:
                self.probe_stub.ReportStatus(request, timeout=5)
                outcome = "accepted"
                break
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    outcome = "refused"
                    break
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                                        grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
                    outcome = f"error:{error.code().name}"
                    break
                time.sleep(0.5)  # the server or the network is down: the late report tries again
        example.log(self.args.id, f"stale probe task={lease.task_id} token={lease.fencing_token}: {outcome}")
        self.record(event="stale_probe", task=lease.task_id, token=lease.fencing_token, outcome=outcome)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--ledger", type=Path, required=True)
    own, rest = parser.parse_known_args(argv)
    args = example.parse_args(rest)
    args.ledger = own.ledger
    pb2, pb2_grpc = example.load_stubs(args.protos, args.stubs_dir)
    executor = ChaosExecutor(args, pb2, pb2_grpc)
    executor.record(event="start", wall=time.time())
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=executor.stop, daemon=True).start())
    example.log(args.id, f"connecting to {args.address} capabilities={args.capabilities}")
    status = executor.run()
    example.log(args.id, f"stopped after {executor.completed} completions")
    executor.workers.shutdown(wait=False, cancel_futures=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
