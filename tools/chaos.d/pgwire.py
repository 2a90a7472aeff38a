"""Just enough of the PostgreSQL wire protocol for the proxy to spot a COMMIT and its answer.

libpq sends `PQexec("COMMIT")` (what the server's transaction runner does) as one simple-query
message: type byte 'Q', an int32 length that counts itself, the text, a NUL. The backend answers a
statement that committed with CommandComplete 'C' tagged "COMMIT" (a transaction that had failed
answers "ROLLBACK" to the same COMMIT), then ReadyForQuery 'Z'. Matching these exact frames is
parsing those two messages: their type, length and body are fixed. A matcher keeps the tail of the
previous chunk so that a frame split across TCP reads is still found.
"""

from __future__ import annotations

import struct


def frame(kind: bytes, body: bytes) -> bytes:
    """A typed protocol message: type byte, int32 length (itself included), body."""
    return kind + struct.pack("!I", 4 + len(body)) + body


COMMIT_QUERY = frame(b"Q", b"COMMIT\x00")              # frontend: simple query "COMMIT"
COMMIT_DONE = frame(b"C", b"COMMIT\x00")               # backend: the transaction committed
COMMIT_ROLLED_BACK = frame(b"C", b"ROLLBACK\x00")      # backend: COMMIT of a failed transaction


class FrameMatcher:
    """Finds whole frames in a byte stream that arrives in arbitrary chunks."""

    def __init__(self, *frames: bytes) -> None:
        self.frames = frames
        self.keep = max(len(f) for f in frames) - 1
        self.tail = b""

    def feed(self, chunk: bytes) -> bytes | None:
        """Returns the first frame found in the stream so far (spanning chunks), else None."""
        window = self.tail + chunk
        found = [(window.find(f), f) for f in self.frames]
        found = [(at, f) for at, f in found if at >= 0]
        self.tail = window[-self.keep:] if self.keep else b""
        if not found:
            return None
        self.tail = b""
        return min(found)[1]
