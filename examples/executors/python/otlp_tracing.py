"""Minimal OpenTelemetry tracing for the example executor, with the standard library only.

Each assignment carries a W3C `traceparent` naming the orchestrator's dispatch span; the work on
the task becomes a CONSUMER span that is its child, so it appears in the workflow's trace. Spans
are exported as OTLP/JSON (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding) to
`<endpoint>/v1/traces` by a background thread, in batches; a collector that is down costs dropped
spans, never a stalled task. A real executor would use opentelemetry-sdk; this file shows what
goes over the wire.
"""

from __future__ import annotations

import json
import queue
import re
import secrets
import threading
import time
import urllib.request

TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")

KIND_CONSUMER = 5
STATUS_OK, STATUS_ERROR = 1, 2


def parse_traceparent(header: str):
    """(trace_id, parent_span_id, sampled) from a traceparent, or None when it is malformed."""
    match = TRACEPARENT.match((header or "").strip().lower())
    if not match:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or set(trace_id) == {"0"} or set(span_id) == {"0"}:
        return None
    return trace_id, span_id, int(flags, 16) & 1 == 1


def _value(value):
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def _attributes(attributes: dict) -> list:
    return [{"key": key, "value": _value(value)} for key, value in attributes.items()]


class Span:
    def __init__(self, tracer: "Tracer", name: str, trace_id: str, parent_span_id: str | None, kind: int, attributes: dict):
        self.tracer = tracer
        self.name = name
        self.trace_id = trace_id
        self.span_id = secrets.token_hex(8)
        self.parent_span_id = parent_span_id
        self.kind = kind
        self.attributes = dict(attributes)
        self.start = time.time_ns()
        self.status = (0, "")
        self.ended = False

    @property
    def traceparent(self) -> str:
        """This span as the parent of calls made on its behalf."""
        return f"00-{self.trace_id}-{self.span_id}-01"

    def set_status(self, ok: bool, message: str = "") -> None:
        self.status = (STATUS_OK, "") if ok else (STATUS_ERROR, message)

    def end(self) -> None:
        if self.ended:
            return
        self.ended = True
        span = {"traceId": self.trace_id, "spanId": self.span_id, "name": self.name, "kind": self.kind,
                "startTimeUnixNano": str(self.start), "endTimeUnixNano": str(time.time_ns()),
                "attributes": _attributes(self.attributes), "status": {"code": self.status[0]}}
        if self.parent_span_id:
            span["parentSpanId"] = self.parent_span_id
        if self.status[1]:
            span["status"]["message"] = self.status[1]
        self.tracer._finished(span)


class Tracer:
    """Starts spans and exports them in batches; `endpoint=None` records nothing."""

    def __init__(self, endpoint: str | None, service_name: str, max_queue: int = 2048):
        self.url = None
        if endpoint:
            base = endpoint.rstrip("/")
            self.url = base if base.endswith("/v1/traces") else base + "/v1/traces"
        self.service_name = service_name
        self.queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self.dropped = 0
        self.exported = 0
        self.stopping = threading.Event()
        self.thread = None
        if self.url:
            self.thread = threading.Thread(target=self._export_loop, name="otlp-export", daemon=True)
            self.thread.start()

    def start_span(self, name: str, traceparent: str = "", kind: int = KIND_CONSUMER, attributes: dict | None = None):
        """A span continuing `traceparent` (a new trace when it is missing, invalid or unsampled-off)."""
        parsed = parse_traceparent(traceparent)
        if parsed:
            trace_id, parent, sampled = parsed
        else:
            trace_id, parent, sampled = secrets.token_hex(16), None, True
        span = Span(self, name, trace_id, parent, kind, attributes or {})
        if not sampled:
            span.ended = True  # never exported: the caller decided not to record this trace
        return span

    def _finished(self, span: dict) -> None:
        if not self.url:
            return
        try:
            self.queue.put_nowait(span)
        except queue.Full:
            self.dropped += 1

    def _export_loop(self) -> None:
        while True:
            stopping = self.stopping.wait(1.0)
            batch = []
            while len(batch) < 512:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            if batch:
                self._post(batch)
            if stopping and self.queue.empty():
                return

    def _post(self, spans: list) -> None:
        body = {"resourceSpans": [{
            "resource": {"attributes": _attributes({"service.name": self.service_name})},
            "scopeSpans": [{"scope": {"name": "examples/python executor"}, "spans": spans}],
        }]}
        request = urllib.request.Request(self.url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                response.read()
            self.exported += len(spans)
        except OSError:
            self.dropped += len(spans)

    def shutdown(self) -> None:
        """Exports what is queued (waits up to a few seconds)."""
        if self.thread:
            self.stopping.set()
            self.thread.join(timeout=10)
