"""tools/run's demo: the sample executors it starts can run every example the README suggests."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from procs import ROOT, Process, binary, free_port, stop_postmaster


def demo_executor_capabilities() -> set[str]:
    """The capabilities of the `orchctl executor` lines in tools/run (continuation lines joined)."""
    script = (ROOT / "tools/run").read_text().replace("\\\n", " ")
    offered: set[str] = set()
    lines = [line for line in script.splitlines() if re.search(r'"\$orchctl" executor ', line)]
    assert len(lines) == 3, lines  # README: "three sample executors"
    for line in lines:
        words = shlex.split(line.split(">")[0])
        start = words.index("--capabilities") + 1
        for word in words[start:]:
            if word.startswith("--"):
                break
            offered.add(word)
    return offered


def test_the_demo_executors_cover_the_example_dags_and_the_sample_catalog():
    # A newcomer's second command, `orchctl submit --dag examples/dags/diamond.json --watch`, sat
    # at TASK_READY forever: no demo executor offered `echo` (found trying the README on a fresh clone).
    offered = demo_executor_capabilities()
    needed: dict[str, str] = {}
    for path in sorted((ROOT / "examples/dags").glob("*.json")):
        if path.name == "invalid.json":  # refused at submission, by design
            continue
        for task in json.loads(path.read_text())["tasks"]:
            for capability in task.get("required_capabilities", []):
                needed[capability] = f"{path.name} task {task['key']}"
    catalog = json.loads((ROOT / "examples/catalogs/agent-team.json").read_text())
    for entry in catalog["capabilities"]:
        needed[entry["executorCapability"]] = f"agent-team.json {entry['name']}"
    missing = {capability: where for capability, where in needed.items() if capability not in offered}
    assert not missing, f"no demo executor in tools/run offers {missing}"
    assert "echo" in needed


def readme_python_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"```python\n(.*?)```", text, re.S)
    assert match, "README has no python example"
    return match.group(1)


def test_tools_run_then_the_readmes_commands_work_and_ctrl_c_stops_everything(tmp_path):
    """The newcomer's path: tools/run (embedded PostgreSQL, three sample executors, a sample query
    watched to the end), then README's "Trying it" commands and its grpcio example from another
    terminal, then Ctrl-C. Found on a fresh clone: tools/run made no .venv (README's snippet and
    the Python executor need it) and the diamond DAG waited forever for an `echo` executor."""
    folder = Path(tempfile.mkdtemp(prefix="orchestrator-tools-run-", dir="/tmp"))
    os.chmod(folder, 0o777)  # as root the embedded cluster runs as `postgres`
    grpc_port, admin_port, pg_port = free_port(), free_port(), free_port()
    address = f"127.0.0.1:{grpc_port}"
    env = {"ORCH_STATE_DIR": str(tmp_path / "state"), "ORCHESTRATOR_DATA_DIR": str(folder / "pgdata")}
    run = Process([ROOT / "tools/run", "--grpc-address", address, "--admin-address", f"127.0.0.1:{admin_port}",
                   "--embedded-port", pg_port], tmp_path / "tools-run.log", env=env, cwd=ROOT)
    try:
        run.wait_for_log(f"orchestratord is running on {address}", 300)
        assert "WORKFLOW_SUCCEEDED" in run.log(), run.tail()
        # A second tools/run by mistake stops at once (its ports are taken); it wiped the running
        # server's log and left a NUL-filled gap in it (found by black-box testing).
        server_log = tmp_path / "state" / "orchestratord.log"
        assert "orchestratord ready" in server_log.read_text()
        second = subprocess.run([ROOT / "tools/run", "--grpc-address", address, "--admin-address", f"127.0.0.1:{admin_port}",
                                 "--embedded-port", str(pg_port)], capture_output=True, text=True, timeout=300, cwd=ROOT,
                                env={**os.environ, **env, "ORCH_DEMO": "0"})
        assert second.returncode != 0, second.stdout[-2000:]
        kept = server_log.read_bytes()
        assert b"orchestratord ready" in kept and b"\0" not in kept, kept[-2000:]
        orchctl_env = {**os.environ, "ORCHESTRATOR_ADDRESS": address}  # the other terminal, not on :50051

        def call(*args: str, timeout: float = 60) -> str:
            result = subprocess.run([str(binary("orchctl")), *args], capture_output=True, text=True, timeout=timeout,
                                    cwd=ROOT, env=orchctl_env)
            assert result.returncode == 0, result.stderr + result.stdout
            return result.stdout

        assert "answer_from_snippets" in call("plan", "quick answer: what is HTTP/2?")
        watched = call("submit", "--dag", "examples/dags/diamond.json", "--watch", "--timeout", "60")
        assert "WORKFLOW_SUCCEEDED" in watched, watched

        venv_python = ROOT / ".venv/bin/python"
        assert venv_python.exists(), "tools/run must create .venv, as README says"
        generated = tmp_path / "gen"
        generated.mkdir()
        protos = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "protos/orchestrator/v1").glob("*.proto"))
        subprocess.run([venv_python, "-m", "grpc_tools.protoc", "-Iprotos", f"--python_out={generated}",
                        f"--grpc_python_out={generated}", *protos], check=True, cwd=ROOT)
        snippet = readme_python_snippet().replace("127.0.0.1:50051", address).replace("/tmp/gen", str(generated))
        # request_id makes SubmitQuery idempotent: a second run of this test against a reused
        # database would watch the first run's workflow; the data dir is fresh here anyway.
        result = subprocess.run([venv_python, "-c", snippet], capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].split()[1] == "4bf92f3577b34da6a3ce929d0e0e4736", lines  # the trace id sent
        assert lines[-1].split()[1] == "EVENT_TYPE_WORKFLOW_SUCCEEDED", lines
        help_text = subprocess.run([venv_python, "examples/executors/python/executor.py", "--help"],
                                   capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert help_text.returncode == 0 and "--capabilities" in help_text.stdout, help_text.stderr

        # Ctrl-C: the terminal signals the whole foreground process group.
        os.killpg(run.pid, signal.SIGINT)
        run.wait(60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and group_members(run.pid):
            time.sleep(0.2)
        assert not group_members(run.pid), "left running after Ctrl-C: " + str(group_members(run.pid))
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", pg_port)) != 0, "the embedded PostgreSQL still listens"
    finally:
        if run.alive() or group_members(run.pid):
            os.killpg(run.pid, signal.SIGKILL)
        run.stop()
        stop_postmaster(folder / "pgdata")
        shutil.rmtree(folder, ignore_errors=True)


def group_members(pgid: int) -> list[str]:
    """Processes still in the process group (zombies excluded), as `pid command` strings."""
    found = subprocess.run(["ps", "-e", "-o", "pid=,pgid=,stat=,args="], capture_output=True, text=True).stdout
    members = []
    for line in found.splitlines():
        pid, group, stat, *command = line.split(None, 3)
        if int(group) == pgid and not stat.startswith("Z"):
            members.append(f"{pid} {' '.join(command)}")
    return members
