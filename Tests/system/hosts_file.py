"""Runs a command that resolves names through a hosts file of the test's own (a private mount of it
over /etc/hosts, `unshare -m`): how a test gives `localhost` the two addresses it has on a standard
Debian (::1 first, then 127.0.0.1) on machines whose /etc/hosts lists only 127.0.0.1. Needs root."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

# A standard Debian's /etc/hosts: ::1 before 127.0.0.1.
IPV6_FIRST = "::1 localhost\n127.0.0.1 localhost\n"


def skip_without_private_mounts() -> None:
    if os.geteuid() != 0 or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs root and mount namespaces (unshare -m) to give a process its own /etc/hosts")


def with_hosts_file(folder: Path, command: str, content: str = IPV6_FIRST) -> list[str]:
    """The argv running the shell `command` (after `exec`) with `content` as its /etc/hosts."""
    hosts = folder / "hosts"
    hosts.write_text(content)
    return ["unshare", "-m", "sh", "-c", f"mount --bind '{hosts}' /etc/hosts && {command}"]
