"""Small helpers shared by the interop tests."""

from __future__ import annotations

import queue
import time
import uuid


def new_tag(prefix: str) -> str:
    """A tag unique to one call, for the server's Cancellations bookkeeping."""
    return f"{prefix}-{uuid.uuid4().hex}"


def wait_for_report(echo, pb2, tag: str, cancelled: int = 0, completed: int = 0, timeout: float = 10.0):
    """Polls Cancellations(tag) until it shows at least the wanted counts; returns the last report."""
    deadline = time.monotonic() + timeout
    while True:
        report = echo.Cancellations(pb2.CancellationQuery(tag=tag), timeout=5)
        if report.cancelled >= cancelled and report.completed >= completed:
            return report
        if time.monotonic() > deadline:
            return report
        time.sleep(0.05)


class RequestQueue:
    """An iterator of requests fed from the test, so a bidirectional call can interleave."""

    _END = object()

    def __init__(self):
        self._queue: queue.Queue = queue.Queue()

    def put(self, request) -> None:
        self._queue.put(request)

    def close(self) -> None:
        self._queue.put(self._END)

    def __iter__(self):
        return self

    def __next__(self):
        item = self._queue.get(timeout=60)
        if item is self._END:
            raise StopIteration
        return item
