"""The steady load: random DAG workflows submitted through grpcio at an even pace.

Each submission carries a request id and is retried with the same id until the server accepts
it (UNAVAILABLE while orchestratord restarts, an unknown outcome when a COMMIT's reply was lost):
idempotency must turn every retry into the workflow already stored, never a second one.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc

CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 1000)]


def random_dag(rng: random.Random, size: int) -> list[tuple[str, list[str]]]:
    """(key, upstream keys) in topological order: a chain, a fan-out/fan-in, layers, or a random DAG."""
    keys = [f"t{i:03d}" for i in range(size)]
    shape = rng.choice(["chain", "fan", "layers", "random"])
    if shape == "chain" or size < 3:
        return [(k, [keys[i - 1]] if i else []) for i, k in enumerate(keys)]
    if shape == "fan":
        return [(keys[0], [])] + [(k, [keys[0]]) for k in keys[1:-1]] + [(keys[-1], keys[1:-1])]
    if shape == "layers":
        width = rng.randint(2, 5)
        return [(k, keys[max(0, (i // width - 1) * width):(i // width) * width] if i >= width else [])
                for i, k in enumerate(keys)]
    return [(k, sorted(rng.sample(keys[:i], min(i, rng.randint(0, 2))))) for i, k in enumerate(keys)]


@dataclass
class Submission:
    request_id: str
    size: int
    workflow_id: str = ""
    attempts: int = 0
    errors: dict = field(default_factory=dict)   # status code name -> count
    conflicting_ids: list = field(default_factory=list)  # a retry answered with another workflow


class LoadGenerator:
    def __init__(self, pb, address: str, capability: str, total_tasks: int, seed: int, run_id: str,
                 min_size: int = 5, max_size: int = 45) -> None:
        self.pb = pb
        self.capability = capability
        self.rng = random.Random(seed)
        self.channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self.stub = pb.workflows_grpc.WorkflowsStub(self.channel)
        self.submissions: list[Submission] = []
        self.plans: list[list[tuple[str, list[str]]]] = []
        left = total_tasks
        while left > 0:
            size = min(left, self.rng.randint(min_size, max_size))
            if left - size < min_size and left - size > 0:
                size = left  # never leave a remainder too small for a workflow of its own
            self.plans.append(random_dag(self.rng, size))
            self.submissions.append(Submission(f"chaos-{run_id}-{len(self.submissions):05d}", size))
            left -= size
        self.stopping = threading.Event()

    @property
    def total_tasks(self) -> int:
        return sum(s.size for s in self.submissions)

    def query(self, plan):
        retry = self.pb.dag.RetryPolicy(max_attempts=20, initial_backoff_ms=100, max_backoff_ms=2000)
        tasks = [self.pb.dag.TaskSpec(key=key, depends_on=ups, required_capabilities=[self.capability], retry=retry,
                                      payload=f"{key}".encode()) for key, ups in plan]
        return self.pb.query.Query(graph=self.pb.dag.Dag(tasks=tasks), labels={"chaos": "1"})

    def submit(self, index: int, deadline: float) -> None:
        submission, plan = self.submissions[index], self.plans[index]
        request = self.pb.workflows.SubmitQueryRequest(request_id=submission.request_id, query=self.query(plan))
        while time.monotonic() < deadline and not self.stopping.is_set():
            submission.attempts += 1
            try:
                response = self.stub.SubmitQuery(request, timeout=10)
                workflow_id = response.workflow.workflow_id
                if submission.workflow_id and workflow_id != submission.workflow_id:
                    submission.conflicting_ids.append(workflow_id)
                submission.workflow_id = submission.workflow_id or workflow_id
                return
            except grpc.RpcError as error:
                code = error.code().name
                submission.errors[code] = submission.errors.get(code, 0) + 1
                if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                    raise RuntimeError(f"{submission.request_id} rejected: {error.details()}") from error
                time.sleep(0.3)

    def run(self, duration: float, deadline: float) -> None:
        """Submits every workflow, evenly spread over `duration` seconds (blocks until done)."""
        start = time.monotonic()
        count = len(self.submissions)

        def one(index: int) -> None:
            wait = start + duration * index / max(1, count) - time.monotonic()
            if wait > 0 and self.stopping.wait(wait):
                return
            self.submit(index, deadline)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(one, range(count)))

    def accepted(self) -> list[Submission]:
        return [s for s in self.submissions if s.workflow_id]

    def close(self) -> None:
        self.stopping.set()
        self.channel.close()
