"""The fault schedule: three threads (server, database, executors), each working through its own
randomly timed list of faults while the load runs, so faults of different kinds overlap as they
would in production. Every fault ends by restoring what it broke; the quiet phase checks that.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Scenario:
    name: str
    tasks: int
    executors: int
    duration: float                 # seconds of load and faults
    drain_timeout: float            # after the faults: every workflow terminal within this
    server_kills: int
    pg_stops: int
    executor_kills: int
    freezes: int
    skewed: list                    # clock skews in seconds, one executor each
    executor_proxy: dict            # mode -> episodes on executor↔server proxies
    pg_proxy: dict                  # mode -> episodes on server↔PostgreSQL proxy (incl. commit_drop)
    blackhole_seconds: float
    lease_ttl: int = 3
    heartbeat: int = 1
    max_in_flight: int = 4
    sleep_ms: int = 30
    fail_probability: float = 0.01


QUICK = Scenario("quick", tasks=300, executors=4, duration=45, drain_timeout=120, server_kills=5, pg_stops=2,
                 executor_kills=2, freezes=1, skewed=[600],
                 executor_proxy={"delay": 1, "stall": 1, "blackhole": 1, "cut": 1},
                 pg_proxy={"delay": 1, "stall": 1, "blackhole": 1, "cut": 1, "commit_drop": 2}, blackhole_seconds=8)

FULL = Scenario("full", tasks=10_000, executors=8, duration=540, drain_timeout=600, server_kills=50, pg_stops=20,
                executor_kills=16, freezes=2, skewed=[600, -600],
                executor_proxy={"delay": 3, "stall": 3, "blackhole": 1, "cut": 6},
                pg_proxy={"delay": 3, "stall": 3, "blackhole": 1, "cut": 6, "commit_drop": 8}, blackhole_seconds=30)


@dataclass
class Tally:
    counts: Counter = field(default_factory=Counter)
    notes: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] += n

    def note(self, text: str) -> None:
        with self.lock:
            self.notes.append(f"{time.strftime('%H:%M:%S')} {text}")
        print(f"chaos: {time.strftime('%H:%M:%S')} {text}", flush=True)


class FaultThreads:
    def __init__(self, scenario: Scenario, rng: random.Random, server, postgres, executors, executor_proxies,
                 pg_proxy, leases_held, tally: Tally) -> None:
        self.s = scenario
        self.base_rng = rng
        self.local = threading.local()  # each fault thread draws from its own seeded generator
        self.server = server
        self.postgres = postgres
        self.executors = executors
        self.executor_proxies = executor_proxies
        self.pg_proxy = pg_proxy
        self.leases_held = leases_held      # executor id -> leases it holds now (by the database)
        self.tally = tally
        self.stop = threading.Event()
        self.server_lock = threading.Lock()  # one restart at a time
        self.threads: list[threading.Thread] = []
        self.frozen: list[tuple[str, int, float]] = []  # (executor id, leases held, monotonic time woken)
        # A freeze excludes database faults: with the database away the leases could not lapse,
        # and what the frozen executor is told on waking would prove nothing.
        self.database_calm = threading.Lock()

    @property
    def rng(self) -> random.Random:
        return getattr(self.local, "rng", self.base_rng)

    # -- schedules --------------------------------------------------------------------------------

    def times(self, count: int, within: float = 1.0) -> list[float]:
        """`count` random instants in the first `within` of the fault window."""
        return sorted(self.rng.uniform(3, self.s.duration * within - 3) for _ in range(count))

    def start(self) -> None:
        t0 = time.monotonic()
        server_plan = [(t, "kill") for t in self.times(self.s.server_kills)]
        db_plan = [(t, "pg_stop") for t in self.times(self.s.pg_stops)]
        for mode, n in self.s.pg_proxy.items():
            db_plan += [(t, f"pg_{mode}") for t in self.times(n)]
        exec_plan = [(t, "executor_kill") for t in self.times(self.s.executor_kills)]
        # Freezes fall while workflows are still being submitted, so the victim holds leases.
        exec_plan += [(t, "freeze") for t in self.times(self.s.freezes, within=0.8)]
        for mode, n in self.s.executor_proxy.items():
            exec_plan += [(t, f"net_{mode}") for t in self.times(n)]
        for name, plan in [("server", server_plan), ("database", db_plan), ("executors", exec_plan)]:
            seed = self.base_rng.random()  # same --seed, same victims and durations per thread
            thread = threading.Thread(target=self.run_plan, args=(sorted(plan), t0, seed), name=f"chaos-{name}",
                                      daemon=True)
            thread.start()
            self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join()

    def run_plan(self, plan, t0: float, seed: float) -> None:
        self.local.rng = random.Random(seed)
        for at, action in plan:
            if self.stop.wait(max(0.0, t0 + at - time.monotonic())):
                return
            try:
                self.handler(action)(action)
            except Exception as error:  # noqa: BLE001 - a fault that failed is reported, the run goes on
                self.tally.note(f"{action} failed: {error!r}")
                self.tally.count("fault_errors")

    def handler(self, action: str):
        if action in ("kill", "pg_stop", "freeze", "executor_kill"):
            return getattr(self, "do_" + action)
        return getattr(self, "do_" + action.split("_", 1)[0])  # pg_<mode>, net_<mode>

    # -- orchestratord ------------------------------------------------------------------------------

    def do_kill(self, _action: str) -> None:
        with self.server_lock:
            self.server.kill()
            self.tally.count("kills")
            time.sleep(self.rng.uniform(0, 1.0))
            self.ensure_server()

    def ensure_server(self, attempts: int = 5) -> None:
        """(Re)starts orchestratord until it reports ready (it may start while the database is down)."""
        for _ in range(attempts):
            if self.server.alive():
                if self.server.wait_for_log("orchestratord ready", 120):
                    return
                self.server.kill()
            if self.server.start_ready(timeout=120):
                return
            self.tally.note(f"orchestratord start {self.server.starts} failed: {self.server.log_text()[-300:]!r}")
            self.tally.count("server_start_failures")
            time.sleep(1)
        raise RuntimeError("orchestratord does not start")

    # -- PostgreSQL -----------------------------------------------------------------------------------

    def do_pg_stop(self, _action: str) -> None:
        with self.database_calm:
            self.postgres.stop_immediate()
            self.tally.count("pg_restarts")
            time.sleep(self.rng.uniform(0.5, 3.0))
            self.postgres.start()

    def do_pg(self, action: str) -> None:
        with self.database_calm:
            self.proxy_episode(action[len("pg_"):], [self.pg_proxy], "pg")

    # -- executors ------------------------------------------------------------------------------------

    def do_executor_kill(self, _action: str) -> None:
        victim = self.rng.choice(self.executors)
        victim.kill()
        self.tally.count("executor_kills")
        time.sleep(self.rng.uniform(0, 2.0))
        victim.start()

    def do_freeze(self, _action: str) -> None:
        """SIGSTOP an executor that holds leases for twice the lease TTL, then SIGCONT: the server
        must have given its work to others, and refuse what it reports when it wakes."""
        victim, held = self.executors[0], 0
        deadline = time.monotonic() + 10
        while held == 0 and time.monotonic() < deadline and not self.stop.is_set():
            victim = max(self.executors, key=lambda e: self.leases_held(e.executor_id))
            held = self.leases_held(victim.executor_id)
            if held == 0:
                time.sleep(0.2)
        with self.database_calm:
            victim.signal(signal.SIGSTOP)
            self.tally.note(f"froze {victim.executor_id} holding {held} leases for {2 * self.s.lease_ttl}s")
            time.sleep(2 * self.s.lease_ttl)
            welcomes = victim.log_text().count("welcome session=")
            victim.signal(signal.SIGCONT)
            self.frozen.append((victim.executor_id, held, time.monotonic()))
            # Until it has reconnected (its resume answered, its late reports sent), with the
            # database still there and no executor fault (this thread) hitting it meanwhile.
            deadline = time.monotonic() + 15
            while victim.log_text().count("welcome session=") == welcomes and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1)
        self.tally.count("freezes")

    def do_net(self, action: str) -> None:
        proxies = list(self.executor_proxies)
        mode = action[len("net_"):]
        count = len(proxies) // 2 if mode == "blackhole" else self.rng.randint(1, len(proxies))
        self.proxy_episode(mode, self.rng.sample(proxies, max(1, count)), "executors")

    # -- proxies --------------------------------------------------------------------------------------

    def proxy_episode(self, mode: str, proxies, where: str) -> None:
        if mode == "cut":
            cut = sum(p.cut_all() for p in proxies)
            self.tally.count(f"{where}_cut")
            self.tally.note(f"{where}: cut {cut} connections")
            return
        if mode == "commit_drop":
            proxy = proxies[0]
            proxy.arm_commit_drop(skip=self.rng.randint(0, 30))
            deadline = time.monotonic() + 30
            while proxy.commit_drop_pending() and time.monotonic() < deadline and not self.stop.is_set():
                time.sleep(0.1)
            self.tally.count("pg_commit_drop")
            return
        seconds = {"delay": self.rng.uniform(5, 10), "stall": self.rng.uniform(2, 2 * self.s.lease_ttl),
                   "blackhole": self.s.blackhole_seconds}[mode]
        delay = self.rng.uniform(0.02, 0.3) if mode == "delay" else 0.0
        self.tally.note(f"{where}: {mode} on {len(proxies)} proxies for {seconds:.1f}s")
        for proxy in proxies:
            proxy.set_mode(mode, delay)
        self.stop.wait(seconds)
        for proxy in proxies:
            proxy.set_mode("pass")
        self.tally.count(f"{where}_{mode}")
