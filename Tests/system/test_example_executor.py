"""The Python example executor's bookkeeping, driven message by message without a server.

Regression (found by tools/chaos): a task revoked and then handed back to the same executor under
a newer fencing token, followed by the refused ack of the old token's report, made the executor
forget the new attempt — it never reported it, while its stream heartbeats kept the lease alive,
so the task sat `leased` until the executor disconnected.
"""

from __future__ import annotations

import importlib.util
import sys
import time

from procs import PYTHON_EXECUTOR


def load_example():
    sys.path.insert(0, str(PYTHON_EXECUTOR.parent))  # it imports sibling modules
    spec = importlib.util.spec_from_file_location("example_executor_under_test", PYTHON_EXECUTOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CapturingSession:
    def __init__(self):
        self.sent = []

    def send(self, message):
        self.sent.append(message)


def test_refused_ack_for_an_old_token_keeps_the_reassigned_attempt(pb):
    example = load_example()
    args = example.parse_args(["--id", "unit", "--max-in-flight", "4", "--sleep-ms", "100"])
    executor = example.Executor(args, pb.executors, pb.executors_grpc)
    session = CapturingSession()
    executor.session = session
    try:
        def assignment(token: int):
            return pb.executors.Assignment(
                lease=pb.executors.LeaseToken(task_id="task-1", fencing_token=token), attempt=token, max_attempts=5,
                spec=pb.dag.TaskSpec(key="k"))

        old = pb.executors.LeaseToken(task_id="task-1", fencing_token=3)
        executor.on_assignment(assignment(3))
        executor.on_revocation(pb.executors.Revocation(lease=old, reason="lease expired"))
        executor.on_assignment(assignment(4))
        # The old attempt's report (sent before the revocation arrived) is refused now.
        executor.on_ack(pb.executors.ReportAck(lease=old, accepted=False, code=9, message="stale lease"))
        assert executor.in_flight["task-1"][0].fencing_token == 4

        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not session.sent:
            time.sleep(0.02)
        reports = [m.completion.lease.fencing_token for m in session.sent if m.WhichOneof("kind") == "completion"]
        assert reports == [4], session.sent

        # Its own ack settles it; an ack for a token it no longer holds changes nothing.
        executor.on_ack(pb.executors.ReportAck(lease=old, accepted=False, code=9))
        assert "task-1" in executor.unacked
        executor.on_ack(pb.executors.ReportAck(lease=pb.executors.LeaseToken(task_id="task-1", fencing_token=4), accepted=True))
        assert "task-1" not in executor.in_flight and "task-1" not in executor.unacked
    finally:
        executor.workers.shutdown(wait=True, cancel_futures=True)


def test_a_report_the_server_could_not_apply_is_sent_again(pb):
    """An ack with code 14 UNAVAILABLE (the server's database was unreachable) means the lease is
    still the executor's and the report must be sent again; the example treated it as refused and
    dropped the result, so the task ran a second time after its lease lapsed (found by black-box
    testing)."""
    example = load_example()
    example.Executor.RESEND_AFTER = 0.05
    args = example.parse_args(["--id", "unit", "--max-in-flight", "1", "--sleep-ms", "10"])
    executor = example.Executor(args, pb.executors, pb.executors_grpc)
    session = CapturingSession()
    executor.session = session
    try:
        lease = pb.executors.LeaseToken(task_id="task-1", fencing_token=1)
        executor.on_assignment(pb.executors.Assignment(lease=lease, attempt=1, max_attempts=3, spec=pb.dag.TaskSpec(key="k")))

        def completions():
            return [m for m in session.sent if m.WhichOneof("kind") == "completion"]

        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not completions():
            time.sleep(0.02)
        assert len(completions()) == 1
        executor.on_ack(pb.executors.ReportAck(lease=lease, accepted=False, code=14, message="the service is temporarily unavailable"))
        assert "task-1" in executor.in_flight and "task-1" in executor.unacked
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(completions()) < 2:
            time.sleep(0.02)
        assert len(completions()) == 2 and completions()[1] == completions()[0]
        executor.on_ack(pb.executors.ReportAck(lease=lease, accepted=True))
        assert "task-1" not in executor.in_flight and "task-1" not in executor.unacked
    finally:
        executor.workers.shutdown(wait=True, cancel_futures=True)
