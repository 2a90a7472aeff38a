#!/usr/bin/env python3
"""tools/chaos's harness: builds the system (PostgreSQL ← proxy ← orchestratord ← proxies ←
executors), runs the load with the fault threads, lets everything go quiet, checks the
invariants and prints the summary line last.

Environment (set by tools/chaos): CHAOS_PG_URL (the run's own cluster, direct), CHAOS_PG_DIR,
CHAOS_PG_BIN, CHAOS_ORCHESTRATORD, CHAOS_WORKDIR.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import faults  # noqa: E402
import invariants  # noqa: E402
import stubs  # noqa: E402
from loadgen import LoadGenerator  # noqa: E402
from free_port import free_port  # noqa: E402
from proxy import ProxyHub  # noqa: E402
from supervisor import Executor, Orchestratord, Postgres  # noqa: E402

CAPABILITY = "chaos"


def via_proxy(url: str, port: int) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}"))


class Progress(threading.Thread):
    """One status line every 10 s, read straight from the database (skipped while it is down)."""

    def __init__(self, db: invariants.Database, load: LoadGenerator) -> None:
        super().__init__(daemon=True, name="progress")
        self.db, self.load, self.stop = db, load, threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self.stop.wait(10):
            try:
                rows = dict(self.db.rows("SELECT state, count(*) FROM tasks GROUP BY state", timeout=5))
                wf = dict(self.db.rows("SELECT state, count(*) FROM workflows GROUP BY state", timeout=5))
            except Exception:  # noqa: BLE001 - the database is down right now
                continue
            print(f"chaos: t={time.monotonic() - started:.0f}s accepted={len(self.load.accepted())}/"
                  f"{len(self.load.submissions)} workflows={wf} tasks={rows}", flush=True)


def wait_quiet(db: invariants.Database, load: LoadGenerator, expected: int, timeout: float) -> bool:
    """True once every submission was answered and every stored workflow is terminal."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            open_ = int(db.value("SELECT count(*) FROM workflows WHERE state NOT IN ('succeeded','failed','cancelled')"))
            stored = int(db.value("SELECT count(*) FROM workflows"))
            if open_ == 0 and stored >= expected and len(load.accepted()) == expected:
                return True
        except Exception:  # noqa: BLE001 - keep waiting
            pass
        time.sleep(2)
    return False


def internal_errors(work: Path) -> Counter:
    """Causes of INTERNAL answers in every orchestratord log of the run (text or JSON format)."""
    causes = Counter()
    for path in sorted(work.glob("orchestratord.*.log")):
        # An entry starts with a JSON object or a timestamp; a multi-line text entry continues on
        # the lines after it.
        entries: list[str] = []
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{") or re.match(r"\d{4}-\d\d-\d\dT", line) or not entries:
                entries.append(line)
            else:
                entries[-1] += "\n" + line
        for entry in entries:
            if entry.startswith("{"):
                try:
                    fields = json.loads(entry)
                except json.JSONDecodeError:
                    continue
                if fields.get("message") == "internal error":
                    causes[" ".join(str(fields.get("error", "")).split())[:160]] += 1
            elif "] internal error" in entry:
                cause = entry.split("error=", 1)[-1].split(" method=")[0]
                causes[" ".join(cause.split())[:160]] += 1
    return causes


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    scenario = faults.QUICK if args.quick else faults.FULL
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    rng = random.Random(seed)
    work = Path(os.environ["CHAOS_WORKDIR"])
    db_url = os.environ["CHAOS_PG_URL"]
    db = invariants.Database(db_url)
    print(f"chaos: scenario={scenario.name} seed={seed} workdir={work}", flush=True)
    # Immediate stops are crashes: a commit must be on disk (WAL) before it is acknowledged, or
    # recovery would lose acknowledged work and the checker would blame the server.
    db.rows(f'ALTER DATABASE "{urllib.parse.urlsplit(db_url).path[1:]}" SET synchronous_commit = on')
    pb = stubs.generate(work / "stubs")
    postgres = Postgres(Path(os.environ["CHAOS_PG_BIN"]), Path(os.environ["CHAOS_PG_DIR"]))

    hub = ProxyHub()
    pg_proxy = hub.add("postgres", urllib.parse.urlsplit(db_url).port, postgres=True)
    server = Orchestratord(Path(os.environ["CHAOS_ORCHESTRATORD"]), work, free_port(), via_proxy(db_url, pg_proxy.port),
                           scenario.lease_ttl, scenario.heartbeat)
    tally = faults.Tally()
    executors: list[Executor] = []
    executor_proxies = []
    load = None
    progress = None
    fault_threads = None
    try:
        if not server.start_ready(timeout=120):
            raise RuntimeError(f"orchestratord did not start:\n{server.log_text()[-2000:]}")
        clock_low = db.value("SELECT now()")
        skews = list(scenario.skewed) + [0] * (scenario.executors - len(scenario.skewed))
        for index in range(scenario.executors):
            proxy = hub.add(f"executor-{index}", server.port)
            executor_proxies.append(proxy)
            executor = Executor(f"chaos-ex{index}", work, f"127.0.0.1:{proxy.port}", work / "stubs",
                                work / f"chaos-ex{index}.ledger", CAPABILITY, scenario.max_in_flight, scenario.sleep_ms,
                                scenario.fail_probability, skews[index])
            executor.started_wall = time.time()
            executor.start()
            executors.append(executor)

        def leases_held(executor_id: str) -> int:
            try:
                return int(db.value(f"SELECT count(*) FROM tasks WHERE lease_owner = '{executor_id}' "
                                    "AND state IN ('leased','running')"))
            except Exception:  # noqa: BLE001 - database down: unknown
                return 0

        load = LoadGenerator(pb, server.address, CAPABILITY, scenario.tasks, seed, f"{seed}")
        print(f"chaos: {len(load.submissions)} workflows, {load.total_tasks} tasks, {scenario.executors} executors, "
              f"{scenario.duration:.0f}s of faults", flush=True)
        progress = Progress(db, load)
        progress.start()
        fault_threads = faults.FaultThreads(scenario, rng, server, postgres, executors, executor_proxies, pg_proxy,
                                            leases_held, tally)
        fault_threads.start()
        submit_deadline = time.monotonic() + scenario.duration + scenario.drain_timeout
        submitter = threading.Thread(target=load.run, args=(scenario.duration * 0.9, submit_deadline), daemon=True)
        submitter.start()
        fault_threads.join()

        # Quiet: every fault undone, every process up; then the backlog must drain.
        print("chaos: faults done; waiting for every workflow to finish", flush=True)
        for proxy in [pg_proxy, *executor_proxies]:
            proxy.set_mode("pass")
        if not os.path.exists(postgres.data / "postmaster.pid"):
            postgres.start()
        fault_threads.ensure_server()
        for executor in executors:
            if not executor.alive():
                executor.start()
        quiet = wait_quiet(db, load, len(load.submissions), scenario.drain_timeout)
        load.stopping.set()
        submitter.join(timeout=30)
        clock_high = db.value("SELECT now()")
    finally:
        if progress:
            progress.stop.set()
        if fault_threads:
            fault_threads.stop.set()
        for executor in executors:
            executor.stop(grace=5)
        server.stop(grace=10)
        if load:
            load.close()
        hub.close()

    ledger = invariants.read_ledgers(work)
    report = invariants.check(db, load.submissions, ledger, (clock_low, clock_high))
    violations = report.counts["violations"]
    if not quiet:
        print(f"chaos: NOT QUIET: workflows still running {scenario.drain_timeout:.0f}s after the faults ended",
              flush=True)
        violations += 1
    # The skewed executors must really have run with a skewed clock (else the skew proved nothing).
    for executor in executors:
        starts = [e for e in ledger if e.get("event") == "start" and e["executor"] == executor.executor_id]
        if executor.skew_seconds and starts:
            observed = starts[0]["wall"] - executor.started_wall
            print(f"chaos: {executor.executor_id} clock skew observed {observed:+.0f}s "
                  f"(asked {executor.skew_seconds:+d}s)", flush=True)
            if abs(observed - executor.skew_seconds) > 30:
                print("chaos: VIOLATION faketime did not skew the executor's clock", flush=True)
                violations += 1
    for executor_id, held, woken in fault_threads.frozen:
        probes = [e for e in ledger if e.get("event") == "stale_probe" and e["executor"] == executor_id
                  and woken <= e.get("mono", 0) <= woken + 60]
        refused = sum(p["outcome"] == "refused" for p in probes)
        print(f"chaos: frozen {executor_id}: held {held} leases; its late reports after waking: "
              f"{refused} refused, {sum(p['outcome'] == 'accepted' for p in probes)} accepted", flush=True)
        if held and not refused:
            # Possible without a bug (the leases were reassigned, or a server restart in between
            # let the executor resume them before the reaper ran), so it is reported, not counted.
            print(f"chaos: note: frozen {executor_id} made no late report that could be refused", flush=True)
    # DESIGN §6: a database that cannot be reached is UNAVAILABLE, never INTERNAL. The edge logs
    # every INTERNAL answer as "internal error" with its cause.
    internal = internal_errors(work)
    if internal:
        violations += sum(internal.values())
        print(f"chaos: VIOLATIONS server answered INTERNAL: {sum(internal.values())} e.g. "
              f"{dict(list(internal.items())[:5])}", flush=True)
    stats = {p.name: p.stats for p in [pg_proxy, *executor_proxies]}
    lost_commit_acks = stats["postgres"].commit_drops_committed
    print(f"chaos: faults {dict(sorted(tally.counts.items()))} lost_commit_acks={lost_commit_acks} "
          f"pg_cuts={stats['postgres'].cuts} executor_cuts={sum(s.cuts for n, s in stats.items() if n != 'postgres')}",
          flush=True)
    retried = [s for s in load.submissions if s.attempts > 1]
    errors = Counter()
    for submission in load.submissions:
        errors.update(submission.errors)
    print(f"chaos: submissions retried={len(retried)} errors={dict(errors)}", flush=True)
    print(f"chaos: workflow states {report.states}; facts {report.facts}", flush=True)
    for category, name, count, samples in report.failures:
        print(f"chaos: {category.upper()} {name}: {count} e.g. {samples}", flush=True)
    print(f"chaos kills={tally.counts['kills']} pg_restarts={tally.counts['pg_restarts']} workflows={report.workflows} "
          f"tasks_checked={report.tasks_checked} lost={report.counts['lost']} duplicated={report.counts['duplicated']} "
          f"violations={violations}", flush=True)
    return 0 if quiet and report.counts["lost"] == 0 and report.counts["duplicated"] == 0 and violations == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
