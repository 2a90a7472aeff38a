"""Fixtures for the system suite: a PostgreSQL database per test module, orchestratord as a real
process per module (short lease TTL), grpcio stubs generated at test time, and helpers that
submit DAGs, wait for outcomes and check the database."""

from __future__ import annotations

import faulthandler
import importlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
import urllib.parse
import uuid
from pathlib import Path

import grpc
import pytest

from procs import ROOT, Orchestratord, Process, binary, free_port, psql, workflow_uuid
from tls_support import server_certificate, start_with_tls

PROTOS = ROOT / "protos"
# Every orchestratord the suite starts binds its admin HTTP port to a free one (the default,
# 127.0.0.1:9090, would collide between servers and with other runs on the machine); the bound
# address is logged at start-up ("admin HTTP listening").
os.environ.setdefault("ORCHESTRATOR_ADMIN_ADDRESS", "127.0.0.1:0")
TEST_TIMEOUT_SECONDS = 150


class TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def watchdog():
    """No test may hang: SIGALRM fails it, and a stuck C call gets every stack dumped then exits."""

    def expire(signum, frame):
        raise TestTimeout(f"test ran longer than {TEST_TIMEOUT_SECONDS}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_TIMEOUT_SECONDS)
    faulthandler.dump_traceback_later(TEST_TIMEOUT_SECONDS + 30, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session")
def pb(tmp_path_factory) -> types.SimpleNamespace:
    out = tmp_path_factory.mktemp("stubs")
    files = [str(p) for p in sorted((PROTOS / "orchestrator" / "v1").glob("*.proto"))]
    result = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}", f"--python_out={out}",
                             f"--grpc_python_out={out}", *files], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    sys.path.insert(0, str(out))
    ns = types.SimpleNamespace()
    for name in ["dag", "query", "workflow", "workflows", "executors"]:
        ns.__dict__[name] = importlib.import_module(f"orchestrator.v1.{name}_pb2")
    ns.workflows_grpc = importlib.import_module("orchestrator.v1.workflows_pb2_grpc")
    ns.executors_grpc = importlib.import_module("orchestrator.v1.executors_pb2_grpc")
    return ns


# -- PostgreSQL ----------------------------------------------------------------------------------


class Cluster:
    """Makes databases on one cluster: tools/test's throwaway one, or an embedded one that a
    keeper orchestratord (--data-dir) runs for the whole session."""

    def __init__(self, admin_url: str, make_url):
        self.admin_url = admin_url
        self.make_url = make_url

    def create_database(self, name: str) -> str:
        psql(self.admin_url, f'CREATE DATABASE "{name}"')
        return self.make_url(name)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    url = os.environ.get("ORCHESTRATOR_TEST_DATABASE_URL")
    if url:
        parts = urllib.parse.urlsplit(url)

        def make(name: str) -> str:
            return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))

        yield Cluster(make("postgres"), make)
        return
    # No cluster given: let orchestratord start its embedded one. As root it runs as `postgres`,
    # so the folder must be reachable by that user (under /tmp, world-traversable).
    folder = Path(tempfile.mkdtemp(prefix="orchestrator-system-pg-", dir="/tmp"))
    os.chmod(folder, 0o777)
    pg_port = free_port()
    data = folder / "pgdata"
    keeper = Process([binary("orchestratord"), "--grpc-address", f"127.0.0.1:{free_port()}", "--data-dir", data,
                      "--embedded-port", pg_port], folder / "keeper.log")
    try:
        keeper.wait_for_log("orchestratord ready", 120)

        # Over TCP, as tools/test's cluster is (tests that put a proxy before the database need a
        # port); TCP logins take the password the embedded cluster keeps in its folder.
        password = urllib.parse.quote((data / "orchestrator.password").read_text().strip(), safe="")

        def make(name: str) -> str:
            return f"postgresql://postgres:{password}@127.0.0.1:{pg_port}/{name}"

        yield Cluster(make("postgres"), make)
    finally:
        keeper.stop(grace=30)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def database(cluster, request) -> str:
    name = "sys_" + re.sub(r"\W", "_", request.module.__name__.split(".")[-1]) + "_" + uuid.uuid4().hex[:8]
    return cluster.create_database(name)


@pytest.fixture(scope="module")
def server(database, tmp_path_factory):
    folder = tmp_path_factory.mktemp("server")
    instance = Orchestratord(database, folder).start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> dict[str, Path] | None:
    """A CA and a certificate for localhost/127.0.0.1, or None without openssl."""
    return server_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(database, tmp_path_factory, tls_files):
    """The module's orchestratord with a TLS listener (`.tls_address`) beside the cleartext one, when
    openssl made a certificate; a module takes it as its `server` by defining that fixture to return it."""
    instance = start_with_tls(database, tmp_path_factory.mktemp("server"), tls_files)
    yield instance
    instance.stop()


@pytest.fixture
def workdir(tmp_path) -> Path:
    os.chmod(tmp_path, 0o777)
    return tmp_path


@pytest.fixture
def capability(request) -> str:
    """A capability unique to the test, so executors of one test never take another's tasks."""
    return "cap-" + re.sub(r"\W", "-", request.node.name)[:40] + "-" + uuid.uuid4().hex[:6]


@pytest.fixture
def api(server, pb):
    channel = grpc.insecure_channel(server.address)
    grpc.channel_ready_future(channel).result(timeout=30)
    client = Api(channel, pb, server)
    yield client
    channel.close()


@pytest.fixture
def processes():
    """Every Process a test registers here is killed at teardown, whatever happened."""
    started: list[Process] = []
    yield started
    for proc in started:
        try:
            proc.stop(grace=3)
        except Exception:  # noqa: BLE001 - teardown must reach every process
            pass


# -- API helpers -----------------------------------------------------------------------------------


TERMINAL = {"WORKFLOW_STATE_SUCCEEDED", "WORKFLOW_STATE_FAILED", "WORKFLOW_STATE_CANCELLED"}


class Api:
    def __init__(self, channel, pb, server):
        self.channel = channel
        self.pb = pb
        self.server = server
        self.workflows = pb.workflows_grpc.WorkflowsStub(channel)
        self.executors = pb.executors_grpc.ExecutorsStub(channel)

    def task(self, key: str, capability: str, depends_on=(), **fields):
        return self.pb.dag.TaskSpec(key=key, required_capabilities=[capability], depends_on=list(depends_on), **fields)

    def query(self, tasks, **fields):
        return self.pb.query.Query(graph=self.pb.dag.Dag(tasks=tasks), **fields)

    def submit(self, tasks, request_id: str = "", wait: bool = False, timeout: float = 60, **fields):
        request = self.pb.workflows.SubmitQueryRequest(request_id=request_id, query=self.query(tasks, **fields), wait=wait)
        return self.workflows.SubmitQuery(request, timeout=timeout)

    def get(self, workflow_id: str, tasks: bool = False):
        return self.workflows.GetWorkflow(self.pb.workflows.GetWorkflowRequest(workflow_id=workflow_id,
                                                                               include_tasks=tasks), timeout=30).workflow

    def state(self, workflow_id: str) -> str:
        return self.pb.workflow.WorkflowState.Name(self.get(workflow_id).state)

    def wait_finished(self, workflow_id: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            try:
                state = self.state(workflow_id)
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
            if state in TERMINAL:
                return state
            time.sleep(0.2)
        workflow = self.get(workflow_id)
        raise AssertionError(f"{workflow_id} still {state} after {timeout}s; counts: {workflow.counts}")


# -- database checks -------------------------------------------------------------------------------


def task_rows(database: str, workflow_id: str) -> dict[str, dict]:
    rows = psql(database, f"""
        SELECT t.key, t.state, t.attempt,
               (SELECT count(*) FROM task_attempts a WHERE a.task_id = t.id AND a.outcome = 'succeeded'),
               (SELECT count(*) FROM workflow_events e WHERE e.task_id = t.id AND e.type = 'task_succeeded'),
               (SELECT count(*) FROM task_attempts a WHERE a.task_id = t.id)
        FROM tasks t WHERE t.workflow_id = '{workflow_uuid(workflow_id)}'""")
    return {r[0]: {"state": r[1], "attempt": int(r[2]), "succeeded_attempts": int(r[3]),
                   "succeeded_events": int(r[4]), "attempts": int(r[5])} for r in rows}


def workflow_events(database: str, workflow_id: str) -> list[tuple[int, str, str]]:
    rows = psql(database, f"""SELECT seq, type, coalesce(task_key, '') FROM workflow_events
                              WHERE workflow_id = '{workflow_uuid(workflow_id)}' ORDER BY seq""")
    return [(int(r[0]), r[1], r[2]) for r in rows]


def assert_completed_once(database: str, workflow_id: str, expected_tasks: int, max_attempt: int = 1) -> dict:
    """Every task succeeded exactly once (one succeeded attempt, one task_succeeded event), the
    workflow succeeded with one final event, and no task took more than `max_attempt` attempts."""
    tasks = task_rows(database, workflow_id)
    assert len(tasks) == expected_tasks
    bad = {k: v for k, v in tasks.items()
           if v["state"] != "succeeded" or v["succeeded_attempts"] != 1 or v["succeeded_events"] != 1
           or not 1 <= v["attempt"] <= max_attempt}
    assert not bad, f"tasks not completed exactly once: {dict(list(bad.items())[:5])}"
    state = psql(database, f"SELECT state FROM workflows WHERE id = '{workflow_uuid(workflow_id)}'")[0][0]
    assert state == "succeeded"
    types_ = [t for _, t, _ in workflow_events(database, workflow_id)]
    assert types_.count("workflow_succeeded") == 1
    assert types_.count("task_succeeded") == expected_tasks
    assert not {"workflow_failed", "workflow_cancelled"} & set(types_)
    return tasks


def succeeded_by_executor(database: str, workflow_id: str) -> dict[str, int]:
    """How many of the workflow's tasks each executor id completed."""
    rows = psql(database, f"SELECT a.executor_id, count(*) FROM task_attempts a JOIN tasks t ON t.id = a.task_id "
                          f"WHERE t.workflow_id = '{workflow_id}' AND a.outcome = 'succeeded' GROUP BY 1")
    return {executor: int(count) for executor, count in rows}


def run_to_success(api, database: str, tasks) -> tuple[str, dict[str, int]]:
    """Submits `tasks`, waits for the workflow to succeed with each task completed exactly once;
    returns its id and how many tasks each executor completed."""
    workflow_id = api.submit(tasks).workflow.workflow_id
    assert api.wait_finished(workflow_id, 60) == "WORKFLOW_STATE_SUCCEEDED"
    assert_completed_once(database, workflow_id, len(tasks))
    return workflow_id, succeeded_by_executor(database, workflow_id)


def validation_problems(error: grpc.RpcError, pb) -> list:
    """The orchestrator.v1.ValidationProblems of an error's `grpc-status-details-bin` (a
    google.rpc.Status: field 3 is a repeated Any whose field 2 is the problem's bytes)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))
    from protowire import fields

    details = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin", b"")
    problems = []
    for number, detail in fields(details):
        if number == 3:
            problems += [pb.dag.ValidationProblem.FromString(value) for n, value in fields(detail) if n == 2]
    return problems
