#!/usr/bin/env python3
"""Free loopback TCP ports for the scripts and test harnesses that start servers on them.

A port the kernel picks for a bind to port 0 comes from the ephemeral range (32768–60999 on
Linux), the same range every outgoing connection takes its local port from. Between picking such
a port and the server binding it, a PostgreSQL or gRPC client connection can take it, and the
server fails "Address already in use" (seen in a CI rehearsal). Ports below the ephemeral range
are only ever taken by an explicit bind, so a port that binds now stays free unless another
server is started on it; ports handed out by this process are never handed out twice.

    free_port.py [COUNT]    print COUNT (default 1) distinct free ports, separated by spaces
"""

from __future__ import annotations

import random
import socket
import sys

LOWEST = 20_000
_handed_out: set[int] = set()


def ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(part) for part in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32_768, 60_999


def _binds(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port() -> int:
    """A port on 127.0.0.1 that nothing is bound to now, outside the ephemeral range when it can be."""
    low, high = ephemeral_range()
    if low - LOWEST >= 1_000:
        candidates = range(LOWEST, low)
    elif 65_535 - high >= 1_000:
        candidates = range(high + 1, 65_536)
    else:  # an ephemeral range this wide leaves nothing outside it: the kernel's pick it is
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]
    for _ in range(200):
        port = random.choice(candidates)
        if port not in _handed_out and _binds(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free loopback port found in {candidates.start}–{candidates.stop - 1}")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    print(" ".join(str(free_port()) for _ in range(count)))
